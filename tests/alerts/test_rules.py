"""The alerting rules: promtool check + unit tests, and the structure every alert must have.

promtool comes from the Debian `prometheus` package (scripts/install-test-packages.sh). Without it the promtool
tests skip, unless OPE_REQUIRE_REAL_SERVERS=1 (CI), where they fail.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "objstore-permission-exporter.rules.yml"
RULE_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/objstore-permission-exporter/objstore-permission-exporter/blob/main/docs/runbook.md"
SEVERITIES = {"critical", "warning", "info"}


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def runbook_anchors() -> set[str]:
    anchors: set[str] = set()
    in_code = False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            anchors.add(github_anchor(m.group(1)))
    return anchors


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool")
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    proc = _promtool("check", "rules", RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in proc.stdout


@pytest.mark.prometheus
def test_promtool_rule_unit_tests() -> None:
    assert RULE_TESTS, "no rule unit tests found"
    proc = _promtool("test", "rules", *RULE_TESTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_TESTS), proc.stdout


@pytest.mark.prometheus
def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """Guards the wrapper itself: a test file expecting an alert that cannot fire must make promtool fail."""
    bad = tmp_path / "bad.test.yml"
    bad.write_text(yaml.safe_dump({
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [],
            "alert_rule_test": [{
                "eval_time": "20m", "alertname": "ObjstorePermissionExporterAbsent",
                "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "objstore-permission-exporter"}}],
            }],
        }],
    }))
    proc = _promtool("test", "rules", bad)
    assert proc.returncode != 0
    assert 'severity="warning"' in proc.stdout + proc.stderr


def test_every_alert_has_severity_summary_description_runbook() -> None:
    anchors = runbook_anchors()
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        ann = alert["annotations"]
        assert ann["summary"].strip() and ann["description"].strip(), name
        url = ann["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base == RUNBOOK_URL, name
        assert anchor == name.lower(), f"{name}: runbook anchor {anchor!r} should be the alert name"
        assert anchor in anchors, f"{name}: docs/runbook.md has no heading for #{anchor}"


def test_runbook_documents_every_tunable_for_duration() -> None:
    header = RULES.read_text().split("groups:", 1)[0]
    runbook = RUNBOOK.read_text()
    for alert in _alerts():
        name = alert["alert"].removeprefix("ObjstorePermission")
        if "for" in alert:
            assert f"{name} {alert['for']}" in header, f"{name}: for {alert['for']} missing from the header"
            assert f"`for:` {name} | `{alert['for']}`" in runbook, f"{name}: for missing from runbook tunables"
        else:
            # "... RequiredOperationFailing, IdentityFailing, ... have no `for:`: their debounce is in the expression"
            no_for = header.split("have no `for:`")[0].rsplit(".", 1)[-1]
            assert name in no_for, f"{name}: not listed among the alerts without `for:`"
            assert name in runbook.split("have no `for:`")[0].rsplit("\n\n", 1)[-1], name


def test_only_required_operations_and_identities_page() -> None:
    critical = {a["alert"] for a in _alerts() if a["labels"]["severity"] == "critical"}
    assert critical == {"ObjstorePermissionRequiredOperationFailing", "ObjstorePermissionIdentityFailing"}
    for alert in _alerts():
        if alert["alert"] == "ObjstorePermissionRequiredOperationFailing":
            assert "objstore_permission_probe_required" in alert["expr"]
            assert re.search(r"objstore_permission_probe_required\{[^}]*\}\s*==\s*1", alert["expr"])
        if "probe_required" in alert["expr"] and re.search(r"probe_required\{[^}]*\}\s*==\s*0", alert["expr"]):
            assert alert["labels"]["severity"] == "warning", alert["alert"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == ["../objstore-permission-exporter.rules.yml"], path
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fired == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested staying silent"
