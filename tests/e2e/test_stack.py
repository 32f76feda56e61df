"""The e2e harness itself: real Prometheus and Alertmanager on loopback, the committed rules loaded, the
Alertmanager -> webhook leg working, and every process gone after the stack closes. (No exporter here: the
end-to-end test with the real exporter demo is test_alerting_e2e.py.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_binary
from tests.e2e import stack

pytestmark = pytest.mark.prometheus


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_prometheus_loads_the_rules_and_alertmanager_reaches_the_webhook(tmp_path: Path) -> None:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    with stack.alerting_stack(tmp_path) as s:
        assert s.prometheus is not None and s.alertmanager is not None and s.webhook is not None
        pids = [p.pid for p in s.processes]
        expected = {r["alert"] for g in yaml.safe_load(stack.RULES.read_text())["groups"] for r in g["rules"]}
        rules = stack.wait_for(
            lambda: (r := s.prometheus.rules()) and all(x.get("health") == "ok" for x in r) and r,  # type: ignore[union-attr]
            30, what="all rules evaluated")
        assert {r["name"] for r in rules} == expected

        # Alertmanager -> webhook, firing then resolved (an alert posted straight to Alertmanager's API)
        now = time.time()
        alert = {"labels": {"alertname": "HarnessCheck", "severity": "info"},
                 "annotations": {"summary": "harness"},
                 "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        s.alertmanager.post_alerts([alert])
        firing = s.webhook.wait("firing", 20, alertname="HarnessCheck")
        assert firing["annotations"]["summary"] == "harness"
        s.alertmanager.post_alerts([alert | {"endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 1))}])
        s.webhook.wait("resolved", 20, alertname="HarnessCheck")
    assert not any(_alive(pid) for pid in pids), "a stack process survived close()"
