"""The janitor: keeps the canary present and removes probe objects targets could not delete.

It runs under its own identity (the exporter's by default), which needs write and delete only inside the
probe dir. One janitor per bucket location (endpoint, bucket, prefix), shared by the targets probing it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from exporter.clients import configured_region, s3_client
from exporter.identities.cache import CredentialCache
from exporter.logs import kv
from exporter.objstore import S3Config
from exporter.probes.bucket import ProbeBucket
from exporter.probes.keyspace import CANARY_PAYLOAD, Keyspace
from exporter.reasons import classify

log = logging.getLogger(__name__)


class Janitor:
    def __init__(
        self, s3: S3Config, keyspace: Keyspace, identity: CredentialCache, timeout: float,
        canary_ttl: float, leftover_age: float, pool: int = 2,
    ) -> None:
        self.s3 = s3
        self.keyspace = keyspace
        self.identity = identity
        self.timeout = timeout
        self.canary_ttl = canary_ttl
        self.leftover_age = leftover_age
        self.pool = pool  # shared by every target on the bucket: size it like the worker pool
        self._lock = threading.Lock()
        self._canary_checked = 0.0
        self._swept = 0.0
        self._region = configured_region(s3)
        self._cached: tuple[object, ProbeBucket] | None = None

    def _bucket(self) -> ProbeBucket | None:
        status = self.identity.current()
        if status.probe_as is None:
            log.warning("janitor has no credentials", extra=kv(bucket=self.s3.bucket, reason=status.reason,
                                                               detail=status.message))
            return None
        creds = status.probe_as.credentials
        if self._cached is not None and self._cached[0] is creds:
            return self._cached[1]
        if not self._region:
            # same rule as minio-go: look the region up, fall back to us-east-1
            lookup = ProbeBucket(s3_client(self.s3, creds, "us-east-1", self.timeout), self.s3, self.keyspace)
            try:
                self._region = lookup.bucket_location()
            except Exception:
                self._region = "us-east-1"
        client = s3_client(self.s3, creds, self._region, self.timeout, pool=self.pool)
        bucket = ProbeBucket(client, self.s3, self.keyspace)
        self._cached = (creds, bucket)  # one client per janitor until its credentials change
        return bucket

    def ensure_canary(self) -> str | None:
        """Make sure the canary exists with the right content (at most once per TTL). Returns a problem or None."""
        with self._lock:
            if time.monotonic() - self._canary_checked < self.canary_ttl and self._canary_checked:
                return None
            bucket = self._bucket()
            if bucket is None:
                return "janitor has no credentials"
            try:
                try:
                    status, body = bucket.get(self.keyspace.canary)
                    present = status == 200 and body == CANARY_PAYLOAD
                except ClientError as exc:
                    # 404, or 403 when the janitor's ListBucket is scoped to the probe dir and the canary is
                    # missing: (re)writing the canary with its fixed content is harmless either way
                    if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) not in (403, 404):
                        raise
                    present = False
                if not present:
                    bucket.put(self.keyspace.canary, CANARY_PAYLOAD)
                    log.info("janitor wrote the canary", extra=kv(bucket=self.s3.bucket, key=self.keyspace.canary))
            except Exception as exc:
                log.warning("janitor cannot keep the canary",
                            extra=kv(bucket=self.s3.bucket, reason=classify(exc), error=type(exc).__name__))
                return f"janitor cannot keep the canary: {classify(exc)}"
            self._canary_checked = time.monotonic()
            self._maybe_sweep(bucket)
            return None

    def remove(self, keys: list[str]) -> list[str]:
        """Delete keys (all inside the probe dir); return the ones that could not be removed."""
        if not keys:
            return []
        bucket = self._bucket()
        if bucket is None:
            return list(keys)
        left = []
        for key in keys:
            try:
                bucket.delete(key)
            except Exception as exc:
                log.warning("janitor could not delete a probe object",
                            extra=kv(bucket=self.s3.bucket, key=key, reason=classify(exc)))
                left.append(key)
        return left

    def _maybe_sweep(self, bucket: ProbeBucket) -> None:
        """Remove per-cycle objects older than leftover_age (left by a crash mid-cycle). Called under the lock."""
        now = time.monotonic()
        if self._swept and now - self._swept < self.leftover_age / 2:
            return
        self._swept = now
        cutoff = datetime.now(UTC) - timedelta(seconds=self.leftover_age)
        try:
            objects: list[dict[str, Any]] = bucket.list_probe_dir(recursive=True, sub="targets/")
        except Exception as exc:
            log.warning("janitor cannot list leftovers", extra=kv(bucket=self.s3.bucket, reason=classify(exc)))
            return
        for obj in objects:
            if obj["LastModified"] < cutoff:
                try:
                    bucket.delete(obj["Key"])
                except Exception as exc:
                    log.warning("janitor could not delete a leftover",
                                extra=kv(bucket=self.s3.bucket, key=obj["Key"], reason=classify(exc)))
