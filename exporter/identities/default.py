"""`default`: the exporter's own AWS credential chain (for running beside one component, or as the janitor)."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError

from exporter.config import DefaultIdentity
from exporter.credentials import Credentials
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.reasons import Reason, classify


def default_chain_credentials(profile: str | None = None) -> Credentials:
    """Resolve the standard chain; unlike minio-go we never fall back to anonymous silently."""
    try:
        found = boto3.session.Session(profile_name=profile).get_credentials()
    except BotoCoreError as exc:
        raise IdentityError(classify(exc), f"default credential chain failed: {type(exc).__name__}") from None
    if found is None:
        raise IdentityError(Reason.INVALID_CREDENTIALS, "no credentials found in the default chain")
    frozen = found.get_frozen_credentials()
    expiry = getattr(found, "_expiry_time", None)
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token, expiry)


class DefaultSource(IdentitySource):
    def __init__(self, cfg: DefaultIdentity) -> None:
        self.cfg = cfg

    def resolve(self) -> ResolvedIdentity:
        return ResolvedIdentity(default_chain_credentials(self.cfg.profile), "default")
