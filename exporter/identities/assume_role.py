"""`assume_role`: sts:AssumeRole into the component's role from base credentials."""

from __future__ import annotations

from exporter.config import AssumeRoleIdentity
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.identities.sts import assume_error, assumed_arn, credentials_from_sts
from exporter.identities.sts_context import STSContext


class AssumeRoleSource(IdentitySource):
    def __init__(self, cfg: AssumeRoleIdentity, base: IdentitySource, sts: STSContext) -> None:
        self.cfg, self.base, self.sts = cfg, base, sts

    def resolve(self) -> ResolvedIdentity:
        base = self.base.resolve()
        kwargs = {
            "RoleArn": self.cfg.role_arn,
            "RoleSessionName": self.cfg.session_name,
            "DurationSeconds": int(self.cfg.duration),
        }
        if self.cfg.external_id is not None:
            kwargs["ExternalId"] = self.cfg.external_id.read()
        try:
            answer = self.sts.client(base.credentials).assume_role(**kwargs)
        except IdentityError:
            raise
        except Exception as exc:
            raise assume_error(exc, "AssumeRole") from None
        return ResolvedIdentity(credentials_from_sts(answer), "assume_role", assumed_arn(answer))
