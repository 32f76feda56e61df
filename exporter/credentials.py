"""Credentials as the exporter holds them in memory: never logged, never exported, never in a repr."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Credentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiry: datetime | None = None

    def seconds_left(self, now: datetime | None = None) -> float | None:
        if self.expiry is None:
            return None
        return (self.expiry - (now or datetime.now(UTC))).total_seconds()


# `.../assumed-role/ROLE/SESSION`; Ceph RGW also keeps the role path: `.../assumed-role/PATH/ROLE/SESSION`
_ASSUMED = re.compile(r"^(arn:[^:]+:sts::[0-9]*:assumed-role/.+)/[^/]+$")


def principal_label(arn: str) -> str:
    """The caller ARN without the session name (session names are per-run values and may carry identifiers)."""
    match = _ASSUMED.match(arn)
    return match.group(1) if match else arn


def principal_matches(arn: str, expected: str) -> bool:
    """Does the caller ARN belong to the expected role/user ARN? Handles assumed-role vs role ARNs and paths."""
    actual = principal_label(arn)
    if actual == expected:
        return True
    exp = re.match(r"^arn:([^:]+):iam::([0-9]*):role/(?:.*/)?([^/]+)$", expected)
    act = re.match(r"^arn:([^:]+):sts::([0-9]*):assumed-role/(?:.*/)?([^/]+)$", actual)
    if exp and act:
        return exp.group(1) == act.group(1) and exp.group(2) == act.group(2) and exp.group(3) == act.group(3)
    return False
