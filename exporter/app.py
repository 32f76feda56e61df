"""Wiring: config -> targets -> identities -> probers -> results -> metrics/HTTP."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from exporter.config import Config
from exporter.identities.cache import CredentialCache
from exporter.identities.registry import build_source, sts_context
from exporter.metrics import ProbeCollector
from exporter.probes.janitor import Janitor
from exporter.probes.keyspace import Keyspace
from exporter.probes.prober import TargetProber
from exporter.result_store import ResultStore
from exporter.results import CycleResult
from exporter.scheduler import ProbeScheduler
from exporter.targets import Target, build_targets
from exporter.web import WebServer

log = logging.getLogger(__name__)


def build_probers(config: Config, targets: list[Target]) -> list[TargetProber]:
    settings = config.global_
    janitors: dict[tuple[str, str, str], Janitor] = {}
    probers = []
    for target in targets:
        keyspace = Keyspace(target.prefix, settings.probe_dir)
        location = (target.s3.endpoint, target.s3.bucket, target.prefix)
        if location not in janitors:
            jcfg = settings.janitor.identity
            jcache = CredentialCache(
                build_source(jcfg, target.s3, settings),
                sts_context(target.s3, settings.timeout),
                settings.credentials_refresh_margin,
                resolve_principal=False,
            )
            janitors[location] = Janitor(target.s3, keyspace, jcache, settings.timeout,
                                         canary_ttl=settings.interval, leftover_age=settings.janitor.leftover_age)
        sts_endpoint = getattr(target.identity, "sts_endpoint", None)
        sts_region = getattr(target.identity, "sts_region", None)
        cache = CredentialCache(
            build_source(target.identity, target.s3, settings, target.namespace, target.service_account),
            sts_context(target.s3, settings.timeout, sts_endpoint, sts_region),
            settings.credentials_refresh_margin,
            expected_principal=target.expected_principal,
            resolve_principal=settings.resolve_principal,
        )
        probers.append(TargetProber(target, cache, janitors[location], keyspace, settings.timeout))
    return probers


def run_once(config: Config) -> list[CycleResult]:
    """One cycle for every target, in parallel (bounded by `concurrency`); for `check` and `demo --once`."""
    probers = build_probers(config, build_targets(config))
    with ThreadPoolExecutor(max_workers=config.global_.concurrency) as pool:
        results = list(pool.map(lambda p: p.run_cycle(), probers))
    return [r for r in results if r is not None]


@dataclass
class Exporter:
    """A running exporter: scheduler + HTTP server over one result store."""

    store: ResultStore
    scheduler: ProbeScheduler
    web: WebServer

    def stop(self) -> None:
        self.scheduler.stop()
        self.web.stop()


def log_result(result: CycleResult) -> None:
    if not result.identity.ok:
        log.warning("identity failed target=%s reason=%s detail=%s", result.target, result.identity.reason,
                    result.identity.message)
    for op in result.required_failures():
        log.warning("required operation failed target=%s operation=%s reason=%s detail=%s",
                    result.target, op.operation, op.reason, op.detail)


def start_exporter(config: Config, listen_address: str) -> Exporter:
    targets = build_targets(config)
    store = ResultStore(config.global_.interval)
    store.set_targets(targets)
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(ProbeCollector(store))
    web = WebServer(listen_address, registry, ready=lambda: store.first_cycle_done)

    def on_result(result: CycleResult) -> None:
        store.record(result)
        log_result(result)

    settings = config.global_
    scheduler = ProbeScheduler(build_probers(config, targets), on_result, settings.interval, settings.jitter,
                               settings.concurrency)
    web.start()
    scheduler.start()
    log.info("listening address=%s targets=%d interval=%ss", listen_address, len(targets), settings.interval)
    return Exporter(store, scheduler, web)


def serve_forever(exporter: Exporter) -> None:
    """Block until SIGTERM/SIGINT, then stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    exporter.stop()
