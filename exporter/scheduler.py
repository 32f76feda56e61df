"""Probe scheduling on APScheduler 3.x: one interval job per target, with jitter, never overlapping.

A bounded thread pool runs the jobs; per-operation timeouts (in the S3/STS clients) keep one hung endpoint
from holding a worker for long. First runs are spread over the jitter window so 1,000 targets do not start
in the same second.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

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
            log.exception("probe cycle crashed target=%s", prober.target.name)
            return
        if result is not None:
            self.on_result(result)

    def start(self) -> None:
        now = datetime.now().astimezone()
        for prober in self.probers:
            first = now + timedelta(seconds=random.uniform(0, self.jitter))
            self.scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=self.interval, jitter=self.jitter or None),
                args=[prober],
                id=prober.target.name,
                name=prober.target.name,
                next_run_time=first,
            )
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
