"""One target's probe cycle: identity, then every operation in order, then cleanup through the janitor."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from exporter.clients import configured_region, s3_client
from exporter.identities.cache import CredentialCache, IdentityStatus
from exporter.logs import kv
from exporter.operations.base import CycleState, ProbeFailure, ProbeOperation
from exporter.operations.registry import OPERATIONS
from exporter.probes.bucket import ProbeBucket
from exporter.probes.janitor import Janitor
from exporter.probes.keyspace import Keyspace, UnsafeKeyError
from exporter.profiles import Operation
from exporter.reasons import Reason, classify
from exporter.results import CycleResult, OperationResult
from exporter.targets import Target

log = logging.getLogger(__name__)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {}) or {}
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{exc.operation_name}: {err.get('Code') or 'no code'} (HTTP {status})"
    return type(exc).__name__


_CREDENTIAL_REASONS = (Reason.INVALID_CREDENTIALS, Reason.EXPIRED_CREDENTIALS)


def _attribute_bare_head_denials(results: list[OperationResult]) -> list[OperationResult]:
    """HEAD answers carry no body, so S3 can only say "403" there. When the cycle's other requests named a
    credentials problem (InvalidAccessKeyId, ExpiredToken...), those bare 403s are that problem too, not a
    missing s3:GetObject/s3:ListBucket."""
    named = next((r.reason for r in results if r.reason in _CREDENTIAL_REASONS), None)
    if named is None:
        return results
    return [replace(r, reason=named) if r.reason is Reason.ACCESS_DENIED and "HeadObject: 403" in r.detail else r
            for r in results]


class TargetProber:
    """Runs cycles for one target; a second concurrent call returns None instead of overlapping."""

    def __init__(
        self, target: Target, identity: CredentialCache, janitor: Janitor, keyspace: Keyspace, timeout: float
    ) -> None:
        self.target = target
        self.identity = identity
        self.janitor = janitor
        self.keyspace = keyspace
        self.timeout = timeout
        self.pending_leaks: list[str] = []
        self._running = threading.Lock()

    def run_cycle(self) -> CycleResult | None:
        if not self._running.acquire(blocking=False):
            return None
        try:
            return self._cycle()
        except UnsafeKeyError:
            raise  # a bug in the choke point's callers: never turn it into a metric
        except Exception as exc:
            # e.g. a client that cannot be built for this config: report every operation failed, so alerts
            # fire and readiness is not held back, instead of silently keeping the last result
            log.exception("probe cycle failed", extra=kv(target=self.target.name))
            return self._failed_cycle(exc)
        finally:
            self._running.release()

    def _failed_cycle(self, exc: Exception) -> CycleResult:
        now = time.time()
        reason = classify(exc)
        detail = f"cycle failed: {type(exc).__name__}"
        status = IdentityStatus(False, reason, detail, "", "", None, None)
        results = tuple(OperationResult(op.name, op.name in self.target.required, False, reason, 0.0, detail)
                        for op in OPERATIONS if op.name in self.target.probed)
        return CycleResult(self.target.name, status, results, now, now, len(self.pending_leaks))

    def _cycle(self) -> CycleResult:
        started = time.time()
        status = self.identity.current()
        if status.probe_as is None:
            results = [
                OperationResult(op.name, op.name in self.target.required, False, Reason.SKIPPED_DEPENDENCY, 0.0,
                                f"no credentials: {status.message}")
                for op in OPERATIONS if op.name in self.target.probed
            ]
            return CycleResult(self.target.name, status, tuple(results), started, time.time(),
                               len(self.pending_leaks))
        canary_problem = self.janitor.ensure_canary()
        creds = status.probe_as.credentials
        region = configured_region(self.target.s3)
        cycle_dir = self.keyspace.cycle_dir(self.target.name, f"{int(started)}-{secrets.token_hex(4)}")
        state = CycleState(
            bucket=self._bucket(creds, region or "us-east-1"),
            upload_key=cycle_dir + "upload",
            multipart_key=cycle_dir + "multipart",
            required=self.target.required,
        )
        results = []
        for op in OPERATIONS:
            if op.name not in self.target.probed:
                continue
            result, lookup_region = self._run_op(op, state, canary_problem)
            results.append(result)
            if op.name is Operation.BUCKET_LOCATION and not region:
                # minio-go: use the looked-up region, else the one a denial names, else us-east-1
                region = state.region or lookup_region or "us-east-1"
                if region != "us-east-1":
                    state.bucket = self._bucket(creds, region)
        results = _attribute_bare_head_denials(results)
        leftovers = [k for k in state.created if k not in state.deleted] + self.pending_leaks
        self.pending_leaks = self.janitor.remove(leftovers)
        return CycleResult(self.target.name, status, tuple(results), started, time.time(), len(self.pending_leaks))

    def _bucket(self, creds: Any, region: str) -> ProbeBucket:
        return ProbeBucket(s3_client(self.target.s3, creds, region, self.timeout), self.target.s3, self.keyspace,
                           self.timeout)

    def _run_op(
        self, op: ProbeOperation, state: CycleState, canary_problem: str | None
    ) -> tuple[OperationResult, str | None]:
        required = op.name in self.target.required
        t0 = time.perf_counter()
        reason: Reason | None = None
        detail = ""
        header_region = None
        try:
            op.run(state)
        except UnsafeKeyError:
            raise  # a bug: never turn it into a metric
        except ProbeFailure as failure:
            reason, detail = failure.reason, failure.detail
        except Exception as exc:
            reason, detail = classify(exc), _describe(exc)
            if isinstance(exc, ClientError):
                headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
                header_region = headers.get("x-amz-bucket-region")
            if reason is Reason.NOT_FOUND and canary_problem:
                detail = f"{detail}; {canary_problem}"
        duration = time.perf_counter() - t0
        if reason is not None:
            log.debug("probe failed", extra=kv(target=self.target.name, operation=op.name, reason=reason,
                                               detail=detail))
        return OperationResult(op.name, required, reason is None, reason, duration, detail), header_region
