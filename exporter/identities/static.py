"""`static`: fixed keys from env or a file (per-component MinIO/Ceph users)."""

from __future__ import annotations

from exporter.config import StaticIdentity
from exporter.credentials import Credentials
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.reasons import Reason


class StaticSource(IdentitySource):
    def __init__(self, cfg: StaticIdentity) -> None:
        self.cfg = cfg

    def resolve(self) -> ResolvedIdentity:
        try:
            token = self.cfg.session_token.read() if self.cfg.session_token else None
            creds = Credentials(self.cfg.access_key_id.read(), self.cfg.secret_access_key.read(), token or None)
        except (OSError, ValueError) as exc:
            raise IdentityError(Reason.INVALID_CREDENTIALS, f"cannot read static keys: {exc}") from None
        return ResolvedIdentity(creds, "static")
