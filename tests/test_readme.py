"""The README is part of the contract: its example config validates, and its metric table is what we serve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import start_exporter
from exporter.config import parse_config
from exporter.profiles import Component, Operation
from exporter.reasons import Reason
from tests.support.env import ProbeEnv
from tests.test_serving import _get, _wait

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_example_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIVE_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("RECEIVE_SECRET_ACCESS_KEY", "example")
    block = README.split("<!-- example-config")[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(yaml.safe_load(block))
    assert [t.component for t in config.targets] == [Component.COMPACTOR, Component.STORE, Component.RECEIVE]


def _readme_metrics() -> dict[str, tuple[str, set[str]]]:
    section = README.split("## Metrics", 1)[1]
    out = {}
    for line in section.split("| metric |", 1)[1].split("\n\n", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].startswith("`objstore_permission_"):
            labels = {x.strip() for x in cells[2].split(",")} if cells[2] else set()
            out[cells[0].strip("`")] = (cells[1], labels)
    return out


def test_metric_reference_matches_what_is_served(env: ProbeEnv) -> None:
    exporter = start_exporter(env.config([env.component_target(Component.COMPACTOR)], jitter="0s"), "127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{exporter.web.port}"
        _wait(lambda: _get(base + "/-/ready")[0] == 200)
        body = _get(base + "/metrics")[1]
    finally:
        exporter.stop()
    served = {}
    for family in text_string_to_metric_families(body):
        if not family.name.startswith("objstore_permission_"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        served[name] = (family.type, labels)
    documented = _readme_metrics()
    assert set(documented) == set(served)
    for name, (kind, labels) in documented.items():
        assert served[name][0] == kind, name
        assert served[name][1] <= labels, (name, served[name][1], labels)


def test_reason_and_operation_lists_match_the_code() -> None:
    reasons = README.split("Failure reasons (the only values of `reason`):", 1)[1].split(". When", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", reasons)) == {r.value for r in Reason}
    table = README.split("## Operations → S3 requests → IAM actions", 1)[1].split("\n\n", 2)[1]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M)) == {o.value for o in Operation}
