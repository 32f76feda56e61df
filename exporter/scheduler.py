"""Probe scheduling on APScheduler 3.x: one interval job per target, with jitter, never overlapping.

A bounded thread pool runs the jobs; per-operation timeouts (in the S3/STS clients) keep one hung endpoint
from holding a worker for long. First runs are spread over the jitter window so 1,000 targets do not start
in the same second.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exporter.logs import kv
from exporter.probes.prober import TargetProber
from exporter.results import CycleResult

log = logging.getLogger(__name__)


class ProbeScheduler:
    def __init__(
        self,
        probers: list[TargetProber],
        on_result: Callable[[CycleResult], None],
        interval: float,
        jitter: float,
        concurrency: int,
    ) -> None:
        self.probers = probers
        self.on_result = on_result
        self.interval = interval
        self.jitter = jitter
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=concurrency)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(interval))},
            timezone="UTC",
        )

    def _run(self, prober: TargetProber) -> None:
        try:
            result = prober.run_cycle()
        except Exception:
            log.exception("probe cycle crashed", extra=kv(target=prober.target.name))
            return
        if result is not None:
            self.on_result(result)

    def _add(self, prober: TargetProber, now: datetime) -> None:
        first = now + timedelta(seconds=random.uniform(0, self.jitter))
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=self.interval, jitter=self.jitter or None),
            args=[prober],
            id=prober.target.name,
            name=prober.target.name,
            next_run_time=first,
            replace_existing=True,
        )

    def start(self) -> None:
        now = datetime.now().astimezone()
        for prober in self.probers:
            self._add(prober, now)
        self.scheduler.start()

    def replace_probers(self, probers: list[TargetProber]) -> None:
        """Switch to a new prober set (discovery): unchanged probers keep their job, others are (re)scheduled.

        A prober counts as unchanged when it is the same object, so its cached credentials and pending leaks
        carry over; a removed target's job is removed (a cycle already running finishes, its result is dropped
        by the result store).
        """
        old = {p.target.name: p for p in self.probers}
        new = {p.target.name: p for p in probers}
        self.probers = list(probers)
        if not self.scheduler.running:
            return
        for name, prober in old.items():
            if new.get(name) is not prober:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(name)
        now = datetime.now().astimezone()
        for name, prober in new.items():
            if old.get(name) is not prober:
                self._add(prober, now)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
