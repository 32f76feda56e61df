"""Every PromQL expression the project ships (alert rules, dashboards), and the metric names they use.

    python -m tests.promql            # list every expression with where it comes from
    python -m tests.promql --metrics  # the metric names used

Used by tests/alerts and tests/dashboards (only contract metrics) and by the e2e test (run every expression
against a real Prometheus). Grafana variables are substituted with `render()` before execution.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = (ROOT / "alerts" / "objstore-permission-exporter.rules.yml",)
DASHBOARD_FILES = tuple(sorted((ROOT / "dashboards").glob("*.json")))

PREFIX = "objstore_permission_"
# probe-model §6 plus the two gauges added with issue #4. A histogram also exposes _bucket, _sum and _count.
CONTRACT_METRICS = frozenset({
    PREFIX + "probe_success",
    PREFIX + "probe_required",
    PREFIX + "probe_duration_seconds",
    PREFIX + "probes_total",
    PREFIX + "probe_failures_total",
    PREFIX + "identity_success",
    PREFIX + "identity_failures_total",
    PREFIX + "identity_info",
    PREFIX + "credentials_expiry_timestamp_seconds",
    PREFIX + "target_info",
    PREFIX + "last_probe_timestamp_seconds",
    PREFIX + "leaked_objects",
    PREFIX + "probe_interval_seconds",
    PREFIX + "build_info",
})
HISTOGRAMS = frozenset({PREFIX + "probe_duration_seconds"})
# Series Prometheus itself creates for every scrape target (rules may use them, dashboards do not).
SCRAPE_SERIES = frozenset({"up"})

KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "atan2", "inf", "nan", "start", "end",
})
# Keywords followed by a parenthesised list of label names.
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(){}\[\],@])
  | (?P<op>==|!=|=~|!~|<=|>=|[-+*/%^<>=])
  | (?P<space>\s+)
""", re.VERBOSE)


@dataclass(frozen=True)
class Expr:
    """One PromQL expression and where it comes from (file and alert / panel+refId / variable)."""

    source: str
    where: str
    expr: str


def tokens(expr: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot tokenize PromQL at {pos}: {expr[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        if kind != "space":
            yield kind, m.group()


def metric_names(expr: str) -> set[str]:
    """Names of the metrics an expression selects (identifiers outside {}, [] and label lists, not calls)."""
    toks = list(tokens(_strip_label_values(expr)))
    names: set[str] = set()
    depth_brace = depth_bracket = 0
    skip_label_list = False
    paren_stack: list[bool] = []  # True when the parenthesis opened a label list
    for i, (kind, text) in enumerate(toks):
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if text == "{":
            depth_brace += 1
        elif text == "}":
            depth_brace -= 1
        elif text == "[":
            depth_bracket += 1
        elif text == "]":
            depth_bracket -= 1
        elif text == "(":
            paren_stack.append(skip_label_list)
            skip_label_list = False
        elif text == ")":
            if paren_stack:
                paren_stack.pop()
        elif kind == "ident" and not depth_brace and not depth_bracket and not any(paren_stack[-1:]):
            if text in LABEL_LIST_KEYWORDS:
                skip_label_list = nxt == "("
            elif text.lower() not in KEYWORDS and nxt not in ("(", "by", "without"):
                # a call (`rate(`), or an aggregation with its modifier first (`topk by (a) (1, x)`), is no metric
                names.add(text)
    return names


def _strip_label_values(query: str) -> str:
    """Grafana's `label_values(<selector>, <label>)` variable query -> the selector alone."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query, re.DOTALL)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query)
    return "" if m else query


def contract_name(metric: str) -> str:
    """The contract name a series name belongs to (histogram suffixes folded)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if metric.endswith(suffix) and metric.removesuffix(suffix) in HISTOGRAMS:
            return metric.removesuffix(suffix)
    return metric


def non_contract_metrics(expr: str, allowed: frozenset[str] = frozenset()) -> set[str]:
    return {m for m in metric_names(expr) if contract_name(m) not in CONTRACT_METRICS | allowed}


def rule_exprs(paths: tuple[Path, ...] = RULE_FILES) -> list[Expr]:
    out = []
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                out.append(Expr(path.relative_to(ROOT).as_posix(), f"{group['name']}/{name}", rule["expr"].strip()))
    return out


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def dashboard_exprs(paths: tuple[Path, ...] = DASHBOARD_FILES) -> list[Expr]:
    out = []
    for path in paths:
        source = path.relative_to(ROOT).as_posix()
        dash = json.loads(path.read_text())
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                query = var["query"]
                text = query if isinstance(query, str) else query.get("query", "")
                out.append(Expr(source, f"variable {var['name']}", text))
        for panel in _panels(dash.get("panels", [])):
            for target in panel.get("targets") or []:
                if "expr" in target:
                    out.append(Expr(source, f"panel {panel.get('title')!r} ref {target.get('refId')}", target["expr"]))
    return out


def all_exprs() -> list[Expr]:
    return rule_exprs() + dashboard_exprs()


GRAFANA_DEFAULTS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
    "job": ".*",
    "namespace": ".*",
    "component": ".*",
    "target": ".*",
}


def render(expr: str, variables: Mapping[str, str] = GRAFANA_DEFAULTS) -> str:
    """Substitute Grafana variables ($name, ${name}, ${name:fmt}); a variable without a value is an error."""

    def sub(m: re.Match[str]) -> str:
        name = (m.group(1) or m.group(2)).split(":", 1)[0]
        if name not in variables:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, expr)


def label_values_selector(expr: str) -> str | None:
    """For a Grafana `label_values(<selector>, label)` variable query, the selector; else None."""
    stripped = _strip_label_values(expr)
    return stripped if stripped != expr else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", action="store_true", help="print the metric names used, one a line")
    args = parser.parse_args(argv)
    exprs = all_exprs()
    if args.metrics:
        for name in sorted({m for e in exprs for m in metric_names(e.expr)}):
            print(name)
    else:
        for e in exprs:
            print(f"# {e.source}: {e.where}\n{e.expr}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
