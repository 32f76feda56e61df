"""The fast encoder writes exactly what prometheus_client would, for any label values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from exporter.exposition import render


class Fixed(Collector):
    def __init__(self, values: list[str], number: float) -> None:
        self.values, self.number = values, number

    def collect(self):  # type: ignore[no-untyped-def]
        gauge = GaugeMetricFamily("x_gauge", 'help with \\ and\nnewline', labels=["target", "principal"])
        counter = CounterMetricFamily("x_events", "events", labels=["target"])
        hist = HistogramMetricFamily("x_seconds", "latency", labels=["target"])
        for i, value in enumerate(self.values):
            gauge.add_metric([value, f"p{i}"], self.number)
            counter.add_metric([value], i)
            hist.add_metric([value], [("0.1", 1), ("1.0", 2), ("+Inf", 3)], 1.5)
        yield from (gauge, counter, hist)


def _parsed(text: str) -> list[tuple[str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]:
    out = []
    for fam in text_string_to_metric_families(text):
        samples = sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in fam.samples)
        out.append((fam.name, fam.type, samples))
    return out


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.text(max_size=20), min_size=1, max_size=5, unique=True),
       number=st.floats(allow_nan=False, allow_infinity=True))
def test_render_matches_prometheus_client(values: list[str], number: float) -> None:
    collector = Fixed(values, number)
    registry = CollectorRegistry()
    registry.register(collector)
    ours = render([collector]).decode()
    theirs = generate_latest(registry).decode()
    assert _parsed(ours) == _parsed(theirs)
    assert [line for line in ours.splitlines() if line.startswith("#")] == [
        line for line in theirs.splitlines() if line.startswith("#") and "_created" not in line]
