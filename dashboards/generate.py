"""Generates the Grafana dashboard(s) of objstore-permission-exporter with the grafana-foundation-sdk.

    python -m dashboards.generate            # (re)writes dashboards/*.json
    python dashboards/generate.py --check    # exits 1 if a committed JSON differs from the generator

The committed JSON is what users import (and what mixin.libsonnet exports); tests/dashboards checks it equals this
generator's output. Pin: grafana-foundation-sdk==1769699379!11.6.0 (Grafana 11.6 models, schemaVersion 41).
Every query uses only the exporter's metric contract (probe-model §6) and the `${datasource}` variable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    TableCellBackgroundDisplayMode,
    TableColoredBackgroundCellOptions,
    VisibilityMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DASHBOARD_DIR = Path(__file__).resolve().parent
OVERVIEW_FILE = "objstore-permission-overview.json"
RUNBOOK = "https://github.com/objstore-permission-exporter/objstore-permission-exporter/blob/main/docs/runbook.md"

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Per-operation and per-identity series carry target and component; per-target series only target.
SEL = 'job=~"$job", component=~"$component", target=~"$target"'
TSEL = 'job=~"$job", target=~"$target"'
# Join labels: one exporter instance's view of one target.
JOIN = "job, instance, target, component"

SUCCESS = f"objstore_permission_probe_success{{{SEL}}}"
REQUIRED = f"objstore_permission_probe_required{{{SEL}}}"
# Status code of an operation: 0 required+failing, 1 required+ok, 2 not needed+denied, 3 not needed+allowed (excess)
STATUS = f"{SUCCESS} + 2 * (1 - {REQUIRED})"
STATUS_MAPPING = ValueMap({
    "0": ValueMappingResult(text="FAILING", color="red", index=0),
    "1": ValueMappingResult(text="OK", color="green", index=1),
    "2": ValueMappingResult(text="denied (not needed)", color="blue", index=2),
    "3": ValueMappingResult(text="EXCESS", color="orange", index=3),
})
IDENTITY_MAPPING = ValueMap({
    "0": ValueMappingResult(text="FAILING", color="red", index=0),
    "1": ValueMappingResult(text="OK", color="green", index=1),
})


def _with_identity(expr: str) -> str:
    """`expr` (per target+component[+operation]) with the source and principal of identity_info, if present."""
    info = f"topk by ({JOIN}) (1, objstore_permission_identity_info{{{SEL}}})"
    return f"({expr}) * on ({JOIN}) group_left (source, principal) {info} or on ({JOIN}) ({expr})"


def _recent(counter: str) -> str:
    """Counter series that increased in the time range, or appeared in it (their first increment is not an increase)."""
    return f"(increase({counter}[$__range]) > 0) or ({counter} unless {counter} offset $__range)"


def _query(expr: str, ref: str = "A", legend: str | None = None, instant: bool = False) -> Dataquery:
    q = Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend is not None:
        q = q.legend_format(legend)
    if instant:
        q = q.instant().format(PromQueryFormat.TABLE)
    return q


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def _stat(title: str, expr: str, description: str, *steps: tuple[float | None, str], unit: str = "none") -> Any:
    return (stat.Panel().title(title).description(description).datasource(DS)
            .with_target(_query(expr, instant=False))
            .unit(unit).thresholds(_thresholds(*steps))
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .color_mode(BigValueColorMode.BACKGROUND).graph_mode(BigValueGraphMode.NONE)
            .height(4).span(4))


def _organize(exclude: list[str], rename: dict[str, str]) -> DataTransformerConfig:
    return DataTransformerConfig(id_val="organize", options={
        "excludeByName": {name: True for name in exclude}, "renameByName": rename})


def _table(title: str, description: str, expr: str, exclude: list[str], rename: dict[str, str],
           height: int = 8, span: int = 12) -> Any:
    return (table.Panel().title(title).description(description).datasource(DS)
            .with_target(_query(expr, instant=True))
            .with_transformation(_organize(["Time", *exclude], rename))
            .height(height).span(span))


def overview() -> Dashboard:
    all_ops = f"({STATUS})"
    d = (
        Dashboard("Objstore permissions / Overview")
        .uid("objstore-permission-overview")
        .description("Object-storage permissions of each Thanos component, probed under the component's own "
                     "identity by objstore-permission-exporter.")
        .tags(["objstore-permission-exporter", "thanos", "s3"])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .link(DashboardLink("Runbook").type(DashboardLinkType.LINK).url(RUNBOOK).target_blank(True).icon("doc"))
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(_variable("job", "Job", "label_values(objstore_permission_target_info, job)", all_value=".*"))
        .with_variable(_variable("namespace", "Namespace",
                                 'label_values(objstore_permission_target_info{job=~"$job"}, namespace)',
                                 all_value=".*"))
        .with_variable(_variable(
            "component", "Component",
            'label_values(objstore_permission_target_info{job=~"$job", namespace=~"$namespace"}, component)',
            all_value=".*"))
        # No ".*" all-value for target: "All" must stay the list of targets of the selected namespaces/components.
        .with_variable(_variable(
            "target", "Target",
            'label_values(objstore_permission_target_info{job=~"$job", namespace=~"$namespace", '
            'component=~"$component"}, target)'))
    )

    d = d.with_row(Row("Summary"))
    d = d.with_panel(_stat(
        "Required operations failing",
        f"count(({SUCCESS} == 0) and ({REQUIRED} == 1)) or vector(0)",
        "Operations a component needs that failed in the last probe cycle. Pages after two cycles.",
        (None, "green"), (1, "red")))
    d = d.with_panel(_stat(
        "Identities failing", f"count(objstore_permission_identity_success{{{SEL}}} == 0) or vector(0)",
        "Targets whose credentials could not be obtained or verified (e.g. no_role_annotation).",
        (None, "green"), (1, "red")))
    d = d.with_panel(_stat(
        "Excess permissions", f"count(({SUCCESS} == 1) and ({REQUIRED} == 0)) or vector(0)",
        "Operations a component does not need but is allowed to perform (least-privilege findings).",
        (None, "green"), (1, "orange")))
    d = d.with_panel(_stat(
        "Leaked probe objects", f"sum(objstore_permission_leaked_objects{{{TSEL}}}) or vector(0)",
        "Probe objects nobody could delete; retried every cycle.",
        (None, "green"), (1, "orange")))
    d = d.with_panel(_stat(
        "Oldest cycle (intervals ago)",
        f"max((time() - objstore_permission_last_probe_timestamp_seconds{{{TSEL}}}) "
        f"/ objstore_permission_probe_interval_seconds{{{TSEL}}})",
        "Age of the oldest last completed probe cycle, in probe intervals. Stale at 3.",
        (None, "green"), (2, "orange"), (3, "red")))
    d = d.with_panel(_stat(
        "Earliest credential expiry",
        f"min(objstore_permission_credentials_expiry_timestamp_seconds{{{TSEL}}} - time())",
        "Time until the first cached credentials expire. The exporter refreshes them with 5 minutes left, so "
        "a value under 4 minutes means the refresh is failing.",
        (None, "red"), (240, "orange"), (300, "green"), unit="s"))

    d = d.with_row(Row("Permission matrix"))
    d = d.with_panel(
        table.Panel().title("Component by operation (last cycle)")
        .description("One row per target, one column per operation. FAILING: needed and failed. OK: needed and "
                     "works. denied (not needed): the least-privilege check was refused, as it should be. "
                     "EXCESS: not needed but allowed.")
        .datasource(DS)
        .with_target(_query(f"max by (target, component, operation) {all_ops}", instant=True))
        .with_transformation(DataTransformerConfig(id_val="groupingToMatrix", options={
            "columnField": "operation", "rowField": "target", "valueField": "Value", "emptyValue": "null"}))
        .with_transformation(_organize([], {"target\\operation": "target"}))
        .mappings([STATUS_MAPPING])
        .cell_options(TableColoredBackgroundCellOptions(mode=TableCellBackgroundDisplayMode.BASIC))
        # the row-label column (renamed from "target\\operation" above) is text, not a status cell
        .override_by_name("target", [DynamicConfigValue(id_val="custom.cellOptions", value={"type": "auto"})])
        .height(9).span(24))
    d = d.with_panel(
        statetimeline.Panel().title("Operation status over time")
        .description("The same status per target and operation over the time range.")
        .datasource(DS)
        .with_target(_query(f"max by (target, operation) {all_ops}", legend="{{target}} {{operation}}"))
        .mappings([STATUS_MAPPING])
        .show_value(VisibilityMode.NEVER).merge_values(True)
        .legend(VizLegendOptions().show_legend(False))
        .height(12).span(24))

    d = d.with_row(Row("Failures and identities"))
    failures = f"objstore_permission_probe_failures_total{{{SEL}}}"
    d = d.with_panel(_table(
        "Failing operations and reasons",
        "Operations failing in the last cycle, with the failure reasons seen in the time range and how often.",
        f"sum by (target, component, operation, reason) (({_recent(failures)}) "
        f"and on ({JOIN}, operation) ({SUCCESS} == 0))",
        [], {"Value": "failures in range"}))
    d = d.with_panel(_table(
        "Identity",
        "How each target authenticates: credential source and the principal sts:GetCallerIdentity returned.",
        _with_identity(f"objstore_permission_identity_success{{{SEL}}}"),
        ["__name__", "instance", "job"], {"Value": "identity"})
        .mappings([IDENTITY_MAPPING])
        .override_by_name("identity", [DynamicConfigValue(id_val="custom.cellOptions",
                                                          value={"type": "color-background"})]))
    ident_failures = f"objstore_permission_identity_failures_total{{{SEL}}}"
    d = d.with_panel(_table(
        "Identity failures by reason",
        "Identity failures in the time range (no_role_annotation: the ServiceAccount has no role annotation and "
        "the pod falls back to the node's role).",
        f"sum by (target, component, reason) ({_recent(ident_failures)})",
        [], {"Value": "failures in range"}))
    d = d.with_panel(_table(
        "Excess permissions",
        "Operations the component does not need but may perform. Remove the IAM action from the principal.",
        _with_identity(f"({SUCCESS} == 1) and ({REQUIRED} == 0)"),
        ["__name__", "instance", "job", "Value"], {}))

    d = d.with_row(Row("Latency"))
    for quantile in ("0.5", "0.99"):
        d = d.with_panel(
            timeseries.Panel().title(f"p{int(float(quantile) * 100)} latency per operation")
            .description("Latency of the operation's requests, over all selected targets.")
            .datasource(DS)
            .with_target(_query(
                f"histogram_quantile({quantile}, sum by (operation, le) "
                f"(rate(objstore_permission_probe_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
                legend="{{operation}}"))
            .unit("s").min(0)
            .legend(VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.TABLE)
                    .placement(LegendPlacement.RIGHT).calcs(["mean", "max"]))
            .height(8).span(12))

    d = d.with_row(Row("Credentials and probe hygiene"))
    d = d.with_panel(
        bargauge.Panel().title("Credential expiry (time left)")
        .description("Time until each target's cached credentials expire. Static credentials have none. "
                     "Below 4 minutes the refresh is failing.")
        .datasource(DS)
        .with_target(_query(
            f"objstore_permission_credentials_expiry_timestamp_seconds{{{TSEL}}} - time()", legend="{{target}}"))
        .unit("s").min(0)
        .thresholds(_thresholds((None, "red"), (240, "orange"), (300, "green")))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(8).span(8))
    d = d.with_panel(
        timeseries.Panel().title("Time since the last completed cycle")
        .description("Seconds since each target's last completed probe cycle, and 3 probe intervals (the stale "
                     "threshold) for comparison.")
        .datasource(DS)
        .with_target(_query(f"time() - objstore_permission_last_probe_timestamp_seconds{{{TSEL}}}",
                            legend="{{target}}"))
        .with_target(_query(f"3 * max(objstore_permission_probe_interval_seconds{{{TSEL}}})", ref="B",
                            legend="stale threshold"))
        .unit("s").min(0)
        .height(8).span(8))
    d = d.with_panel(
        timeseries.Panel().title("Leaked probe objects")
        .description("Probe objects that neither the target nor the janitor identity could delete.")
        .datasource(DS)
        .with_target(_query(f"objstore_permission_leaked_objects{{{TSEL}}}", legend="{{target}}"))
        .min(0).decimals(0)
        .height(8).span(8))
    d = d.with_panel(_table(
        "Targets",
        "Static facts of each probed target.",
        f"objstore_permission_target_info{{{SEL}}}",
        ["__name__", "Value"], {}, span=24))
    return d


def _variable(name: str, label: str, query: str, all_value: str | None = None) -> QueryVariable:
    v = (QueryVariable(name).label(label).query(query).datasource(DS)
         .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
         .multi(True).include_all(True))
    if all_value is not None:
        v = v.all_value(all_value)
    return v


def _number_panels(panels: list[dict[str, Any]]) -> None:
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number


def to_json(builder: Dashboard) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    _number_panels(data["panels"])
    # The SDK writes `"annotations": {}` when there are none; Grafana's loader expects a list (it adds its
    # built-in "Annotations & Alerts" entry to it).
    data.setdefault("annotations", {}).setdefault("list", [])
    return data


DASHBOARDS = {OVERVIEW_FILE: overview}


def render(name: str) -> str:
    return json.dumps(to_json(DASHBOARDS[name]()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if a committed file differs")
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.out / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    for path in stale:
        print(f"{path} is not the generator's output; run: python -m dashboards.generate", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
