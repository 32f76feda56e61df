"""mixin.libsonnet, evaluated with the jsonnet Python binding (PyPI `jsonnet`): it exports exactly the committed
alerting rules and dashboards, and its _config overrides reach every expression."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "objstore-permission-exporter.rules.yml"
DEFAULT_SELECTOR = 'job="objstore-permission-exporter"'

if os.environ.get("OPE_REQUIRE_REAL_SERVERS") == "1":
    import _jsonnet
else:
    _jsonnet = pytest.importorskip("_jsonnet", reason="PyPI package jsonnet not installed")


def evaluate(config: str = "{}") -> dict[str, Any]:
    snippet = f"""
        local m = (import 'mixin.libsonnet') + {{ _config+:: {config} }};
        {{ alerts: m.prometheusAlerts, dashboards: m.grafanaDashboards, config: m._config }}
    """
    result: dict[str, Any] = json.loads(_jsonnet.evaluate_snippet("test", snippet, jpathdir=[str(ROOT)]))
    return result


def _rules(alerts: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in alerts["groups"] for rule in group["rules"]]


def test_alerts_equal_the_committed_rules_file() -> None:
    assert evaluate()["alerts"] == yaml.safe_load(RULES.read_text())


def test_dashboards_equal_the_committed_json() -> None:
    committed = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "dashboards").glob("*.json"))}
    assert committed
    assert evaluate()["dashboards"] == committed


def test_default_config_is_the_selector_in_the_rules_file() -> None:
    out = evaluate()
    assert out["config"]["objstorePermissionSelector"] == DEFAULT_SELECTOR
    # the mixin replaces this exact string, so every expression must contain it
    for rule in _rules(out["alerts"]):
        assert DEFAULT_SELECTOR in rule["expr"], rule["alert"]


def test_selector_and_for_overrides() -> None:
    selector = 'job="ope", namespace="monitoring"'
    config = ("{ objstorePermissionSelector: '" + selector + "', "
              "objstorePermissionFor: { ObjstorePermissionExcessPermission: '2h', "
              "ObjstorePermissionProbesStale: '1m' } }")
    out = evaluate(config)
    default = {r["alert"]: r for r in _rules(evaluate()["alerts"])}
    for rule in _rules(out["alerts"]):
        name = rule["alert"]
        assert DEFAULT_SELECTOR not in rule["expr"], name
        assert rule["expr"] == default[name]["expr"].replace(DEFAULT_SELECTOR, selector), name
        assert rule["annotations"] == default[name]["annotations"]
        expected_for = {"ObjstorePermissionExcessPermission": "2h", "ObjstorePermissionProbesStale": "1m"}
        assert rule.get("for") == expected_for.get(name, default[name].get("for")), name


@pytest.mark.prometheus
def test_overridden_rules_are_valid_for_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    out = evaluate("{ objstorePermissionSelector: 'job=~\"ope|objstore.*\", namespace!=\"\"' }")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(out["alerts"]))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
