"""`objstore_config`: what Thanos itself authenticates with, given the same bucket config file."""

from __future__ import annotations

from exporter.credentials import Credentials
from exporter.identities.base import IdentitySource, ResolvedIdentity
from exporter.identities.default import default_chain_credentials
from exporter.objstore import S3Config


class ObjstoreConfigSource(IdentitySource):
    def __init__(self, s3: S3Config) -> None:
        self.s3 = s3

    def resolve(self) -> ResolvedIdentity:
        if self.s3.access_key:
            token = self.s3.session_token.get_secret_value() or None
            creds = Credentials(self.s3.access_key, self.s3.secret_key.get_secret_value(), token)
            return ResolvedIdentity(creds, "objstore_config")
        return ResolvedIdentity(default_chain_credentials(), "objstore_config")
