"""End to end: the real exporter demo -> real Prometheus with the committed rules -> real Alertmanager -> webhook.

The demo reproduces the compactor incident: the compactor's ServiceAccount has no role annotation, so it is probed
as the node's credentials, which lack s3:DeleteObject. The test changes that IAM policy at runtime through the
emulator's IAM API (admin keys from --emulator-info-file):

  incident     compactor `delete` failing -> RequiredOperationFailing (critical) reaches the webhook, and
               IdentityFailing names no_role_annotation
  grant        s3:DeleteObject added to the node policy -> the alert resolves at the webhook
  revoke       the statement removed again -> the alert fires again, only after two failed probe cycles
  restore      added again -> resolves again

Then every PromQL expression of the rules and the dashboard is executed against this Prometheus.
"""

from __future__ import annotations

import calendar
import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests import promql
from tests.conftest import require_binary
from tests.e2e import stack

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(300)]

PROBE_INTERVAL = 2.0
ALERT = "ObjstorePermissionRequiredOperationFailing"
# generous: first scrape ~5s after Prometheus starts, then 2 probe cycles + evaluation + notification
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Stack]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    workdir = tmp_path_factory.mktemp("e2e")
    with stack.alerting_stack(workdir, exporter=True, probe_interval=f"{PROBE_INTERVAL:g}s") as s:
        assert s.prometheus is not None
        prom = s.prometheus
        processes = list(s.processes)
        assert [p.name for p in processes] == ["alertmanager", "exporter", "prometheus"]
        try:
            stack.wait_for(lambda: prom.query(f'up{{job="{stack.JOB}"}} == 1'), 30, what="first scrape")
            yield s
        except BaseException:
            print(s.logs())
            raise
    # closing the stack stopped every process it started, by PID
    assert not [p.name for p in processes if p.alive()]


class NodePolicy:
    """The IAM inline policy that governs the compactor in the demo (the node user's, see emulator info)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.bucket = info["bucket"]
        effective = info["components"]["compactor"]["effective_policy"]
        assert effective["kind"] == "user", effective
        self.user, self.name = effective["name"], effective["policy_name"]
        self.iam = boto3.client(
            "iam", endpoint_url=info["url"], region_name=info["region"],
            aws_access_key_id=info["admin"]["access_key_id"],
            aws_secret_access_key=info["admin"]["secret_access_key"])
        doc = self.iam.get_user_policy(UserName=self.user, PolicyName=self.name)["PolicyDocument"]
        self.original: dict[str, Any] = json.loads(doc) if isinstance(doc, str) else doc
        assert "s3:DeleteObject" not in json.dumps(self.original), "the demo's node policy should lack delete"

    def _put(self, doc: dict[str, Any]) -> None:
        self.iam.put_user_policy(UserName=self.user, PolicyName=self.name, PolicyDocument=json.dumps(doc))

    def grant_delete(self) -> None:
        doc = copy.deepcopy(self.original)
        doc["Statement"].append({"Sid": "E2eGrantDelete", "Effect": "Allow", "Action": "s3:DeleteObject",
                                 "Resource": f"arn:aws:s3:::{self.bucket}/*"})
        self._put(doc)

    def revoke_delete(self) -> None:
        self._put(self.original)


def _compactor_target(s: stack.Stack) -> str:
    assert s.exporter is not None
    target: str = s.exporter.info["components"]["compactor"]["target"]
    return target


def _delete_failures(prom: stack.Prometheus, target: str, at: float) -> float:
    """Failed delete probes of the target as Prometheus had scraped them at `at` (0 before the first failure)."""
    result = prom.query(
        f'sum(objstore_permission_probe_failures_total{{target="{target}", operation="delete"}})', at=at)
    return float(result[0]["value"][1]) if result else 0.0


def _parse_time(rfc3339: str) -> float:
    """Alertmanager's UTC timestamps, e.g. 2026-12-03T16:10:40.307123456Z (nanoseconds allowed)."""
    base, _, frac = rfc3339.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (float(f"0.{frac}") if frac else 0.0)


def test_revoked_delete_pages_and_restoring_it_resolves(running: stack.Stack) -> None:
    s = running
    assert s.prometheus is not None and s.webhook is not None and s.exporter is not None
    prom, webhook = s.prometheus, s.webhook
    target = _compactor_target(s)
    labels = {"alertname": ALERT, "target": target, "operation": "delete"}
    policy = NodePolicy(s.exporter.info)

    # 1. The demo's incident pages: compactor delete denied for the node credentials.
    firing = webhook.wait("firing", TIMEOUT, **labels)
    assert firing["labels"]["severity"] == "critical"
    assert firing["labels"]["component"] == "compactor"
    assert firing["labels"]["source"] == "node_fallback"
    description = firing["annotations"]["description"]
    assert "s3:DeleteObject" in description and "access_denied" in description, description
    assert firing["labels"]["principal"] in description
    assert firing["annotations"]["runbook_url"].endswith("#objstorepermissionrequiredoperationfailing")
    identity = webhook.wait("firing", TIMEOUT, alertname="ObjstorePermissionIdentityFailing", target=target)
    assert identity["labels"]["severity"] == "critical"
    assert "no_role_annotation" in identity["annotations"]["description"]
    assert "eks.amazonaws.com/role-arn" in identity["annotations"]["description"]

    # 2. Grant s3:DeleteObject to the node policy: the alert resolves.
    policy.grant_delete()
    webhook.wait("resolved", TIMEOUT, **labels)
    assert prom.query(f'objstore_permission_probe_success{{target="{target}", operation="delete"}} == 1')

    # 3. Revoke it at runtime: pages again, and only after two failed probe cycles.
    revoked_at = time.time()
    policy.revoke_delete()
    refired = stack.wait_for(
        lambda: [a for a in webhook.find("firing", **labels) if _parse_time(a["startsAt"]) > revoked_at],
        TIMEOUT, what="alert firing again after the revocation")[-1]
    # Delete was allowed until revoked_at, so every failure counted after it is a failed cycle since then; the
    # alert must not have started before Prometheus had seen two of them. (The counter exists since step 1.)
    started = _parse_time(refired["startsAt"])
    assert revoked_at < started < time.time()
    assert _delete_failures(prom, target, started) - _delete_failures(prom, target, revoked_at) >= 2
    assert "s3:DeleteObject" in refired["annotations"]["description"]

    # 4. Restore: resolves again.
    resolved_before = len(webhook.find("resolved", **labels))
    policy.grant_delete()
    stack.wait_for(lambda: len(webhook.find("resolved", **labels)) > resolved_before, TIMEOUT,
                   what="alert resolved after the restore")

    # Never a page for an operation the component does not need, never a page for an excess permission.
    for alert in webhook.alerts():
        if alert["labels"].get("severity") != "critical" or "operation" not in alert["labels"]:
            continue
        sel = ", ".join(f'{k}="{alert["labels"][k]}"' for k in ("target", "component", "operation"))
        required = prom.query(f"objstore_permission_probe_required{{{sel}}}")
        assert required and all(r["value"][1] == "1" for r in required), alert["labels"]
    assert not [a for a in webhook.alerts()
                if a["labels"]["alertname"] == "ObjstorePermissionExcessPermission"
                and a["labels"].get("severity") == "critical"]

    # Annotations rendered without template errors (Prometheus writes "<error expanding template: ...>").
    for alert in prom.alerts():
        for text in alert["annotations"].values():
            assert "error expanding template" not in text, text


# Panels whose queries must return data in the demo (the others may legitimately be empty, e.g. no leaks).
MUST_HAVE_DATA = {
    "Component by operation (last cycle)", "Operation status over time", "Failing operations and reasons",
    "Identity", "Identity failures by reason", "p50 latency per operation", "p99 latency per operation",
    "Time since the last completed cycle", "Targets", "Required operations failing", "Identities failing",
    "Oldest cycle (intervals ago)", "Credential expiry (time left)",
}


def test_every_rule_and_dashboard_expression_runs(running: stack.Stack) -> None:
    assert running.prometheus is not None
    prom = running.prometheus
    # let the pipeline run long enough for rates and the 2-cycle debounce to have data
    stack.wait_for(lambda: prom.query("count(objstore_permission_probes_total >= 5)"), TIMEOUT,
                   what="a few probe cycles")
    now = time.time()
    empty: list[str] = []
    for e in promql.rule_exprs():
        prom.query(e.expr)  # raises on a PromQL or evaluation error
    for e in promql.dashboard_exprs():
        expr = promql.render(e.expr)
        selector = promql.label_values_selector(expr)
        if selector is not None:  # a variable: Grafana runs label_values() as a series lookup
            result: list[Any] = prom.series(selector, now - 3600, now)
        else:  # panels: the range query of time series panels and the instant query of tables/stats
            result = prom.query_range(expr, now - 300, now, 5) + prom.query(expr)
        if not result:
            empty.append(e.where)
    assert not [w for w in empty if w.startswith("variable")], empty
    missing = [title for title in MUST_HAVE_DATA if any(f"panel {title!r}" in w for w in empty)]
    assert not missing, f"panels without data in the demo: {missing} (all empty: {empty})"
    # the IdentityFailing expression finds the compactor's ServiceAccount without role annotation (the demo keeps
    # it that way whatever the other test does to the node policy)
    identity = next(e for e in promql.rule_exprs() if e.where.endswith("ObjstorePermissionIdentityFailing"))
    assert [r["metric"]["target"] for r in prom.query(identity.expr)] == [_compactor_target(running)]
