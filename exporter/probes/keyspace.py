"""Where probe objects live: `<objstore prefix>/<probe dir>/...`, and nowhere else.

Inside the component's own `prefix:` (so prefix-scoped IAM policies are honoured) and outside any block
(ULID) directory (so Thanos ignores it). `require_inside` is the guard every request with a key goes through.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

CANARY_PAYLOAD = (b"objstore-permission-exporter canary; kept by the exporter's janitor.\n" * 2)[:128]
RANGE_LENGTH = 16


class UnsafeKeyError(ValueError):
    """A key outside the probe dir reached the choke point. This is a bug; the request is never sent."""


@dataclass(frozen=True)
class Keyspace:
    prefix: str
    probe_dir: str

    @property
    def base(self) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{self.probe_dir}/" if prefix else f"{self.probe_dir}/"

    @property
    def canary(self) -> str:
        return self.base + "canary"

    @property
    def targets_dir(self) -> str:
        return self.base + "targets/"

    def absent_key(self) -> str:
        """A fresh key that nobody ever writes (for the 404 check and the safe excess-delete check)."""
        return f"{self.base}absent/{secrets.token_hex(8)}"

    def cycle_dir(self, target: str, cycle_id: str) -> str:
        return f"{self.targets_dir}{target_slug(target)}/{cycle_id}/"

    def require_inside(self, key: str) -> str:
        base = self.base
        if not key.startswith(base) or len(key) == len(base):
            raise UnsafeKeyError(f"refusing key outside the probe dir {base!r}: {key!r}")
        rest = key[len(base):]
        if any(part in ("", ".", "..") for part in rest.split("/")) or "\\" in rest or "\x00" in rest:
            raise UnsafeKeyError(f"refusing key with empty, '.' or '..' segments: {key!r}")
        return key


def target_slug(name: str) -> str:
    """A key-safe, collision-free directory name for a target name."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "target"
    return f"{clean[:64]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
