"""`instance_metadata`: the node's instance-profile role, from IMDS only (never env, files or IRSA)."""

from __future__ import annotations

from botocore.credentials import InstanceMetadataProvider
from botocore.utils import InstanceMetadataFetcher

from exporter.config import InstanceMetadataIdentity
from exporter.credentials import Credentials
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.reasons import Reason


class InstanceMetadataSource(IdentitySource):
    def __init__(self, cfg: InstanceMetadataIdentity) -> None:
        self.cfg = cfg

    def resolve(self) -> ResolvedIdentity:
        kwargs: dict[str, object] = {"timeout": self.cfg.timeout, "num_attempts": self.cfg.attempts}
        if self.cfg.endpoint:
            kwargs["base_url"] = self.cfg.endpoint.rstrip("/")
        provider = InstanceMetadataProvider(iam_role_fetcher=InstanceMetadataFetcher(**kwargs))
        found = provider.load()
        if found is None:
            raise IdentityError(Reason.CONNECTION_ERROR,
                                "no instance-profile credentials from instance metadata (unreachable, hop limit, "
                                "or no role attached)")
        frozen = found.get_frozen_credentials()
        expiry = getattr(found, "_expiry_time", None)
        return ResolvedIdentity(Credentials(frozen.access_key, frozen.secret_key, frozen.token, expiry),
                                "instance_metadata")
