"""The custom collector: renders the latest results at scrape time (the client_python custom-Collector model).

Names and labels are the contract in README's metric reference; dashboards and alerts depend on them.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.result_store import DURATION_BUCKETS, ResultStore

P = "objstore_permission_"


class ProbeCollector(Collector):
    def __init__(self, store: ResultStore, revision: str = "unknown") -> None:
        self.store = store
        self.revision = revision

    def collect(self) -> Iterator[Metric]:
        snap = self.store.snapshot()
        ops = ["target", "component", "operation"]
        success = GaugeMetricFamily(P + "probe_success", "1 if the last probe of the operation succeeded.", labels=ops)
        required = GaugeMetricFamily(
            P + "probe_required", "1 if the component needs the operation, 0 if probed only as an excess check.",
            labels=ops)
        duration = HistogramMetricFamily(
            P + "probe_duration_seconds", "Latency of the operation's requests.", labels=ops)
        probes = CounterMetricFamily(P + "probes", "Probes run.", labels=ops)
        failures = CounterMetricFamily(P + "probe_failures", "Failed probes, by reason.", labels=[*ops, "reason"])
        ident_ok = GaugeMetricFamily(
            P + "identity_success", "1 if credentials were obtained and the principal resolved.",
            labels=["target", "component"])
        ident_fail = CounterMetricFamily(
            P + "identity_failures", "Identity failures, by reason.", labels=["target", "component", "reason"])
        ident_info = GaugeMetricFamily(
            P + "identity_info", "Credential source and principal used for the target.",
            labels=["target", "component", "source", "principal"])
        expiry = GaugeMetricFamily(
            P + "credentials_expiry_timestamp_seconds", "When the cached credentials expire.", labels=["target"])
        target_info = GaugeMetricFamily(
            P + "target_info", "Static facts about the target, for joins.",
            labels=["target", "component", "namespace", "service_account", "bucket", "prefix", "endpoint"])
        last = GaugeMetricFamily(
            P + "last_probe_timestamp_seconds", "End of the last completed probe cycle.", labels=["target"])
        leaked = GaugeMetricFamily(
            P + "leaked_objects", "Probe objects that could not be removed (retried every cycle).", labels=["target"])
        interval = GaugeMetricFamily(
            P + "probe_interval_seconds", "Configured interval between probe cycles.", labels=["target"])

        for name, target in sorted(snap.targets.items()):
            comp = target.component.value
            target_info.add_metric(
                [name, comp, target.namespace, target.service_account, target.s3.bucket, target.prefix,
                 target.s3.endpoint], 1)
            interval.add_metric([name], snap.interval)
            result = snap.latest.get(name)
            if result is None:
                continue
            ident = result.identity
            ident_ok.add_metric([name, comp], 1 if ident.ok else 0)
            if ident.source:
                ident_info.add_metric([name, comp, ident.source, ident.principal], 1)
            if ident.expiry is not None:
                expiry.add_metric([name], ident.expiry.timestamp())
            last.add_metric([name], result.finished)
            leaked.add_metric([name], result.leaked_objects)
            for op in result.operations:
                labels = [name, comp, op.operation.value]
                success.add_metric(labels, 1 if op.success else 0)
                required.add_metric(labels, 1 if op.required else 0)

        for (name, op_name), count in sorted(snap.probes_total.items()):
            if name in snap.targets:
                probes.add_metric([name, snap.targets[name].component.value, op_name], count)
        for (name, op_name, reason), count in sorted(snap.failures_total.items()):
            if name in snap.targets:
                failures.add_metric([name, snap.targets[name].component.value, op_name, reason], count)
        for (name, reason), count in sorted(snap.identity_failures_total.items()):
            if name in snap.targets:
                ident_fail.add_metric([name, snap.targets[name].component.value, reason], count)
        for (name, op_name), hist in sorted(snap.durations.items()):
            if name not in snap.targets:
                continue
            buckets = [(_le(b), c) for b, c in zip(DURATION_BUCKETS, hist.counts, strict=True)]
            buckets.append(("+Inf", hist.total))
            duration.add_metric([name, snap.targets[name].component.value, op_name], buckets, hist.sum)

        yield from (success, required, duration, probes, failures, ident_ok, ident_fail, ident_info, expiry,
                    target_info, last, leaked, interval)
        build = GaugeMetricFamily(
            P + "build_info", "Build information.", labels=["version", "revision", "pythonversion"])
        build.add_metric([__version__, self.revision, platform.python_version()], 1)
        yield build


def _le(bound: float) -> str:
    return repr(float(bound))
