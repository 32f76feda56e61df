"""Wiring: config -> targets -> identities -> probers -> results -> metrics/HTTP."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest

from exporter.config import Config
from exporter.discovery import Discoverer, KubernetesClusterReader
from exporter.exposition import render
from exporter.identities.cache import CredentialCache
from exporter.identities.registry import build_source, sts_context
from exporter.logs import kv
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


def build_probers(
    config: Config, targets: list[Target], janitors: dict[tuple[str, str, str], Janitor] | None = None
) -> list[TargetProber]:
    """One prober per target; targets on the same bucket location share a janitor (`janitors`, if given)."""
    settings = config.global_
    janitors = {} if janitors is None else janitors
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
                                         canary_ttl=settings.interval, leftover_age=settings.janitor.leftover_age,
                                         pool=settings.concurrency)
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


def all_targets(config: Config) -> list[Target]:
    """The configured targets plus, when discovery is on, the discovered ones (a configured name wins)."""
    targets = build_targets(config)
    if config.discovery.kubernetes.enabled:
        reader = KubernetesClusterReader(config.global_.kubernetes, config.global_.timeout)
        targets += Discoverer(config.discovery.kubernetes, reader).discover(taken={t.name for t in targets})
    return targets


def run_once(config: Config, targets: list[Target] | None = None) -> list[CycleResult]:
    """One cycle for every target, in parallel (bounded by `concurrency`); for `check` and `demo --once`."""
    probers = build_probers(config, build_targets(config) if targets is None else targets)
    with ThreadPoolExecutor(max_workers=config.global_.concurrency) as pool:
        results = list(pool.map(lambda p: p.run_cycle(), probers))
    return [r for r in results if r is not None]


class DiscoveryRefresher:
    """Re-discovers targets every `refresh_interval` and swaps the running prober set; never raises.

    Targets are the configured ones plus the discovered ones (a configured name wins). Unchanged targets keep
    their prober (cached credentials, pending leaks); removed targets leave the result store, so their series
    disappear from /metrics.
    """

    def __init__(self, config: Config, discoverer: Discoverer, store: ResultStore, scheduler: ProbeScheduler,
                 janitors: dict[tuple[str, str, str], Janitor]) -> None:
        self.config = config
        self.discoverer = discoverer
        self.store = store
        self.scheduler = scheduler
        self.janitors = janitors
        self.interval = config.discovery.kubernetes.refresh_interval
        self.refreshed = threading.Event()  # set after the first refresh, successful or not
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="discovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval)

    def refresh(self) -> None:
        try:
            static = build_targets(self.config)
            found = self.discoverer.discover(taken={t.name for t in static})
            self.apply(static + found)
        except Exception:
            log.exception("discovery refresh failed; keeping the current targets")
        finally:
            self.refreshed.set()

    def apply(self, targets: list[Target]) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            current = {p.target.name: p for p in self.scheduler.probers}
            unchanged = {t.name for t in targets if t.name in current and current[t.name].target == t}
            built = {p.target.name: p for p in build_probers(
                self.config, [t for t in targets if t.name not in unchanged], self.janitors)}
            probers = [current[t.name] if t.name in unchanged else built[t.name] for t in targets]
            self.store.set_targets(targets)
            self.scheduler.replace_probers(probers)
            added = sorted(set(built) - set(current))
            changed = sorted(set(built) & set(current))
            removed = sorted(set(current) - {t.name for t in targets})
            if added or changed or removed:
                log.info("discovery: targets=%d added=%s changed=%s removed=%s", len(targets),
                         ",".join(added) or "-", ",".join(changed) or "-", ",".join(removed) or "-")


@dataclass
class Exporter:
    """A running exporter: scheduler + HTTP server over one result store (+ discovery, when enabled)."""

    store: ResultStore
    scheduler: ProbeScheduler
    web: WebServer
    discovery: DiscoveryRefresher | None = None

    def stop(self) -> None:
        if self.discovery is not None:
            self.discovery.stop()
        self.scheduler.stop()
        self.web.stop()


class MetricsRenderer:
    """Renders /metrics, one scrape at a time, reusing the probe part until a result changes: concurrent
    scrapes (an HA Prometheus pair, a curl) cost one rendering, not one each."""

    def __init__(self, store: ResultStore, probes: ProbeCollector, runtime: CollectorRegistry) -> None:
        self.store, self.probes, self.runtime = store, probes, runtime
        self._lock = threading.Lock()
        self._cached: tuple[int, bytes] = (-1, b"")

    def __call__(self) -> bytes:
        with self._lock:
            generation = self.store.generation
            if self._cached[0] != generation:
                self._cached = (generation, render([self.probes]))
            return self._cached[1] + generate_latest(self.runtime)


def log_result(result: CycleResult) -> None:
    ident = result.identity
    if not ident.ok:
        log.warning("identity failed", extra=kv(target=result.target, reason=ident.reason, source=ident.source,
                                                detail=ident.message))
    for op in result.required_failures():
        log.warning("required operation failed", extra=kv(target=result.target, operation=op.operation,
                                                           reason=op.reason, detail=op.detail))


def start_exporter(config: Config, listen_address: str) -> Exporter:
    targets = build_targets(config)
    store = ResultStore(config.global_.interval)
    store.set_targets(targets)
    runtime = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=runtime)
    PlatformCollector(registry=runtime)
    GCCollector(registry=runtime)
    probes = ProbeCollector(store)

    def on_result(result: CycleResult) -> None:
        store.record(result)
        log_result(result)

    settings = config.global_
    janitors: dict[tuple[str, str, str], Janitor] = {}
    scheduler = ProbeScheduler(build_probers(config, targets, janitors), on_result, settings.interval,
                               settings.probe_jitter, settings.concurrency)
    refresher: DiscoveryRefresher | None = None
    if config.discovery.kubernetes.enabled:
        reader = KubernetesClusterReader(settings.kubernetes, settings.timeout)
        refresher = DiscoveryRefresher(config, Discoverer(config.discovery.kubernetes, reader), store, scheduler,
                                       janitors)

    def ready() -> bool:
        """After the first probe cycle of every target (and, with discovery, after the first discovery)."""
        if refresher is None:
            return store.first_cycle_done
        return refresher.refreshed.is_set() and (store.first_cycle_done or not store.snapshot().targets)

    web = WebServer(listen_address, MetricsRenderer(store, probes, runtime), ready=ready)
    web.start()
    scheduler.start()
    if refresher is not None:
        refresher.start()
    log.info("listening", extra=kv(address=listen_address, targets=len(targets), interval=f"{settings.interval}s",
                                   discovery="on" if refresher is not None else "off"))
    return Exporter(store, scheduler, web, refresher)


def serve_forever(exporter: Exporter) -> None:
    """Block until SIGTERM/SIGINT, then stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    exporter.stop()
    # cycles still in flight may wait on a hung endpoint for up to their timeouts; don't outlive the grace
    # period Kubernetes gives (results of an interrupted cycle are not needed any more)
    logging.shutdown()
    os._exit(0)
