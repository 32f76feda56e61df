"""A fast text-format (0.0.4) encoder for the collector's metric families.

prometheus_client's `generate_latest` validates and escapes every label of every sample (~40 µs a sample);
1,000 targets are ~150,000 samples, which took ~6 s a scrape. This encoder writes the same format, escaping
each distinct label value once per scrape, so a scrape stays well inside Prometheus's scrape timeout. Its
output is checked against `generate_latest` and `promtool check metrics` in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.registry import Collector
from prometheus_client.samples import Sample


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def render(collectors: Iterable[Collector]) -> bytes:
    escaped: dict[str, str] = {}
    lines: list[str] = []
    for collector in collectors:
        for family in collector.collect():
            name = family.name
            kind = family.type
            if kind == "counter":
                name_total = name + "_total"
                lines.append(f"# HELP {name_total} {_escape_help(family.documentation)}")
                lines.append(f"# TYPE {name_total} counter")
            else:
                lines.append(f"# HELP {name} {_escape_help(family.documentation)}")
                lines.append(f"# TYPE {name} {kind if kind in ('gauge', 'histogram', 'summary') else 'untyped'}")
            sample: Sample
            for sample in family.samples:
                if sample.labels:
                    parts = []
                    for key, value in sorted(sample.labels.items()):
                        text = escaped.get(value)
                        if text is None:
                            text = escaped[value] = _escape_value(value)
                        parts.append(f'{key}="{text}"')
                    lines.append(f"{sample.name}{{{','.join(parts)}}} {_number(sample.value)}")
                else:
                    lines.append(f"{sample.name} {_number(sample.value)}")
    lines.append("")
    return "\n".join(lines).encode()
