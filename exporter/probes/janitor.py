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
MAX_DELETES = 16  # per cycle and target


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
        self._client_lock = threading.Lock()
        self._canary_checked = 0.0
        self._swept = 0.0
        self._region = configured_region(s3)
        self._cached: tuple[object, ProbeBucket] | None = None

    def _bucket(self) -> ProbeBucket | None:
        with self._client_lock:
            try:
                return self._make_bucket()
            except Exception as exc:  # a client that cannot be built for this config
                log.warning("janitor cannot build its S3 client",
                            extra=kv(bucket=self.s3.bucket, reason=classify(exc), error=type(exc).__name__))
                return None

    def _make_bucket(self) -> ProbeBucket | None:
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
            lookup = ProbeBucket(s3_client(self.s3, creds, "us-east-1", self.timeout), self.s3, self.keyspace,
                                 self.timeout)
            try:
                self._region = lookup.bucket_location()
            except Exception:
                self._region = "us-east-1"
        client = s3_client(self.s3, creds, self._region, self.timeout, pool=self.pool)
        bucket = ProbeBucket(client, self.s3, self.keyspace, self.timeout)
        self._cached = (creds, bucket)  # one client per janitor until its credentials change
        return bucket

    def ensure_canary(self) -> str | None:
        """Make sure the canary exists with the right content (at most once per TTL). Returns a problem or None.

        Once the canary has been seen, never waits for another target's re-check (a slow endpoint must not hold
        every target on the bucket); before that, targets wait so that none reads a canary not yet written.
        Never reads more of the canary than its size: a canary replaced by something huge is just rewritten.
        """
        if not self._lock.acquire(blocking=not self._canary_checked):
            return None  # another target is re-checking it right now
        try:
            return self._ensure_canary()
        finally:
            self._lock.release()

    def _ensure_canary(self) -> str | None:
        if time.monotonic() - self._canary_checked < self.canary_ttl and self._canary_checked:
            return None
        bucket = self._bucket()
        if bucket is None:
            return "janitor has no credentials"
        try:
            try:
                head = bucket.head(self.keyspace.canary)
                present = head.get("ContentLength") == len(CANARY_PAYLOAD)
                if present:
                    status, body = bucket.get(self.keyspace.canary, limit=len(CANARY_PAYLOAD))
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
        """Delete keys (all inside the probe dir); return the ones still there.

        At most `MAX_DELETES` a call: a janitor that lost s3:DeleteObject must not make every cycle longer;
        the rest waits for the next cycle (and is counted meanwhile). One log line per call, not per key.
        """
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        bucket = self._bucket()
        if bucket is None:
            return keys
        left: list[str] = []
        reasons: set[str] = set()
        for i, key in enumerate(keys):
            if i >= MAX_DELETES:
                left.extend(keys[i:])
                break
            try:
                bucket.delete(key)
            except Exception as exc:
                reasons.add(classify(exc).value)
                left.append(key)
        if reasons:
            log.warning("janitor could not delete probe objects",
                        extra=kv(bucket=self.s3.bucket, objects=len(left), reason=",".join(sorted(reasons))))
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
        self._abort_stale_uploads(bucket, cutoff)

    def _abort_stale_uploads(self, bucket: ProbeBucket, cutoff: datetime) -> None:
        """Abort multipart probes that were never completed nor aborted (e.g. Complete failed and the target
        may not s3:AbortMultipartUpload): their parts would stay in the bucket, invisible to listings."""
        try:
            uploads = bucket.list_probe_uploads()
        except Exception as exc:
            log.warning("janitor cannot list incomplete uploads",
                        extra=kv(bucket=self.s3.bucket, reason=classify(exc)))
            return
        for upload in uploads:
            if upload["Initiated"] < cutoff:
                try:
                    bucket.abort_upload(upload["Key"], upload["UploadId"])
                except Exception as exc:
                    log.warning("janitor could not abort an incomplete upload",
                                extra=kv(bucket=self.s3.bucket, key=upload["Key"], reason=classify(exc)))
