"""`web_identity`: sts:AssumeRoleWithWebIdentity with a projected token file, exactly as IRSA does in a pod."""

from __future__ import annotations

from exporter.config import WebIdentityIdentity
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.identities.sts import assume_error, assumed_arn, credentials_from_sts
from exporter.identities.sts_context import STSContext
from exporter.reasons import Reason


def assume_role_with_web_identity(
    sts: STSContext, role_arn: str, token: str, session_name: str, duration: float, source: str
) -> ResolvedIdentity:
    """The unsigned AWIWI call; the token is sent to STS and nowhere else."""
    try:
        answer = sts.client(None).assume_role_with_web_identity(
            RoleArn=role_arn,
            RoleSessionName=session_name,
            WebIdentityToken=token,
            DurationSeconds=int(duration),
        )
    except Exception as exc:
        raise assume_error(exc, "AssumeRoleWithWebIdentity") from None
    return ResolvedIdentity(credentials_from_sts(answer), source, assumed_arn(answer))


class WebIdentitySource(IdentitySource):
    def __init__(self, cfg: WebIdentityIdentity, sts: STSContext) -> None:
        self.cfg, self.sts = cfg, sts

    def resolve(self) -> ResolvedIdentity:
        try:
            token = self.cfg.token_file.read_text().strip()
        except OSError as exc:
            raise IdentityError(Reason.INVALID_CREDENTIALS, f"cannot read token_file: {exc.strerror}") from None
        return assume_role_with_web_identity(
            self.sts, self.cfg.role_arn, token, self.cfg.session_name, self.cfg.duration, "web_identity"
        )
