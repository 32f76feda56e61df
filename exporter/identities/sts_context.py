"""Where and how a target talks to STS (derived from its bucket config unless the identity overrides it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.clients import service_client
from exporter.credentials import Credentials


@dataclass(frozen=True)
class STSContext:
    endpoint: str
    region: str
    timeout: float
    verify: bool | str = True

    def client(self, credentials: Credentials | None) -> Any:
        return service_client("sts", self.endpoint, self.region, credentials, self.timeout, self.verify)
