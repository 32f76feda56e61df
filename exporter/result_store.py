"""The latest result per target and the cumulative counters, kept in memory for the collector.

Probes write here; scrapes only read a snapshot taken under a lock, so a scrape never waits on I/O.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from exporter.reasons import Reason
from exporter.results import CycleResult
from exporter.targets import Target

DURATION_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(DURATION_BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def copy(self) -> Histogram:
        return Histogram(list(self.counts), self.total, self.sum)


@dataclass(frozen=True)
class Snapshot:
    targets: dict[str, Target]
    latest: dict[str, CycleResult]
    probes_total: dict[tuple[str, str], int]
    failures_total: dict[tuple[str, str, str], int]
    identity_failures_total: dict[tuple[str, str], int]
    durations: dict[tuple[str, str], Histogram]
    interval: float


class ResultStore:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._targets: dict[str, Target] = {}
        self._latest: dict[str, CycleResult] = {}
        self._probes: Counter[tuple[str, str]] = Counter()
        self._failures: Counter[tuple[str, str, str]] = Counter()
        self._identity_failures: Counter[tuple[str, str]] = Counter()
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._first_cycle = threading.Event()
        self.generation = 0  # bumped on every change; lets /metrics reuse a rendering

    def set_targets(self, targets: list[Target]) -> None:
        """Replace the target set; series of removed targets disappear."""
        with self._lock:
            self._targets = {t.name: t for t in targets}
            keep = set(self._targets)
            self._latest = {k: v for k, v in self._latest.items() if k in keep}
            for counter in (self._probes, self._failures, self._identity_failures):
                for key in [k for k in counter if k[0] not in keep]:
                    del counter[key]
            self._durations = {k: v for k, v in self._durations.items() if k[0] in keep}
            self.generation += 1
            self._check_first_cycle()

    def record(self, result: CycleResult) -> None:
        with self._lock:
            if result.target not in self._targets:
                return  # removed while it ran
            self._latest[result.target] = result
            ident = result.identity
            failure = ident.reason if not ident.ok else ident.refresh_failure
            if failure is not None:
                self._identity_failures[(result.target, failure.value)] += 1
            for op in result.operations:
                key = (result.target, op.operation.value)
                self._probes[key] += 1
                if not op.success:
                    self._failures[(*key, (op.reason or Reason.OTHER).value)] += 1
                if op.reason is not Reason.SKIPPED_DEPENDENCY:
                    self._durations.setdefault(key, Histogram()).observe(op.duration_seconds)
            self.generation += 1
            self._check_first_cycle()

    def _check_first_cycle(self) -> None:
        if self._targets and all(name in self._latest for name in self._targets):
            self._first_cycle.set()

    @property
    def first_cycle_done(self) -> bool:
        return self._first_cycle.is_set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                targets=dict(self._targets),
                latest=dict(self._latest),
                probes_total=dict(self._probes),
                failures_total=dict(self._failures),
                identity_failures_total=dict(self._identity_failures),
                durations={k: v.copy() for k, v in self._durations.items()},
                interval=self.interval,
            )
