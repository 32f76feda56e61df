"""Scheduling and serving: no overlapping runs of a target, scrapes never touch the backend, readiness,
and the /metrics output is valid for promtool."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
import urllib.request
from collections import defaultdict

import pytest

from exporter.app import start_exporter
from exporter.profiles import Component
from tests.conftest import require_binary
from tests.support.env import PROBE_DIR, ProbeEnv
from tests.support.proxy import RecordingProxy

CYCLE_DIR = re.compile(rf"/{PROBE_DIR}/targets/([^/]+)/([^/]+)/")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _wait(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_runs_of_one_target_never_overlap(env: ProbeEnv) -> None:
    """Cycles take ~3x the interval (slow backend); the next run of a target starts only after the last."""
    targets = [env.component_target(Component.COMPACTOR), env.component_target(Component.STORE)]
    with RecordingProxy(env.emu.url, delay=0.15) as proxy:
        cfg = env.config(targets, endpoint=proxy.endpoint, interval="1s", jitter="0s", concurrency=4)
        exporter = start_exporter(cfg, "127.0.0.1:0")
        try:
            time.sleep(7)
        finally:
            exporter.stop()
        seen = proxy.requests()
    spans: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for req in seen:
        match = CYCLE_DIR.search(req.path)
        if match:
            slug, cycle = match.groups()
            span = spans[slug].setdefault(cycle, [req.started, req.finished])
            span[0], span[1] = min(span[0], req.started), max(span[1], req.finished)
    assert set(spans) and len(spans) == 2
    for slug, cycles in spans.items():
        ordered = sorted(cycles.values())
        assert len(ordered) >= 2, f"{slug}: expected several cycles, got {len(ordered)}"
        for earlier, later in itertools.pairwise(ordered):
            assert later[0] >= earlier[1], f"{slug}: cycles overlap {earlier} {later}"
    assert max(len(c) for c in spans.values()) <= 4, "a 1s interval with ~2s cycles cannot fit more"


def test_scrapes_never_touch_the_backend_and_ready_follows_first_cycle(env: ProbeEnv) -> None:
    targets = [env.component_target(Component.COMPACTOR), env.component_target(Component.RECEIVE)]
    with RecordingProxy(env.emu.url) as proxy:
        proxy.hang.set()  # hold every backend request until released
        cfg = env.config(targets, endpoint=proxy.endpoint, interval="60s", jitter="0s")
        exporter = start_exporter(cfg, "127.0.0.1:0")
        base = f"http://127.0.0.1:{exporter.web.port}"
        try:
            assert _get(base + "/-/healthy")[0] == 200
            assert _get(base + "/-/ready")[0] == 503, "not ready before the first cycle"
            status, body = _get(base + "/metrics")
            assert status == 200 and "objstore_permission_target_info" in body  # served while probes hang
            proxy.release.set()
            proxy.hang.clear()
            _wait(lambda: _get(base + "/-/ready")[0] == 200)
            exporter.scheduler.stop()
            time.sleep(0.2)
            count = len(proxy.requests())
            for _ in range(20):
                status, body = _get(base + "/metrics")
                assert status == 200
            assert len(proxy.requests()) == count, "a scrape caused backend requests"
            assert 'operation="delete",target="compactor"} 1.0' in body
        finally:
            exporter.stop()


def test_metrics_output_passes_promtool(env: ProbeEnv) -> None:
    promtool = require_binary("promtool")
    cfg = env.config([env.component_target(Component.COMPACTOR), env.component_target(Component.STORE)],
                     jitter="0s")
    exporter = start_exporter(cfg, "127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{exporter.web.port}"
        _wait(lambda: _get(base + "/-/ready")[0] == 200)
        _, body = _get(base + "/metrics")
    finally:
        exporter.stop()
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr
    for name in ("probe_success", "probe_required", "probe_duration_seconds_bucket", "probes_total",
                 "identity_success", "identity_info", "credentials_expiry_timestamp_seconds", "target_info",
                 "last_probe_timestamp_seconds", "leaked_objects", "probe_interval_seconds", "build_info"):
        assert f"objstore_permission_{name}" in body, name
    assert "process_cpu_seconds_total" in body


@pytest.mark.parametrize("path", ["/", "/nope"])
def test_other_paths(env: ProbeEnv, path: str) -> None:
    cfg = env.config([env.component_target(Component.STORE)])
    exporter = start_exporter(cfg, "127.0.0.1:0")
    try:
        status, _ = _get(f"http://127.0.0.1:{exporter.web.port}{path}")
    finally:
        exporter.stop()
    assert status == (200 if path == "/" else 404)


def test_unspecified_host_listens_on_ipv4_and_ipv6() -> None:
    import socket

    from exporter.web import WebServer

    web = WebServer(":0", lambda: b"x 1\n", lambda: True)
    web.start()
    try:
        assert _get(f"http://127.0.0.1:{web.port}/metrics") == (200, "x 1\n")
        if socket.has_ipv6 and web.httpd.address_family == socket.AF_INET6:
            assert _get(f"http://[::1]:{web.port}/-/ready")[0] == 200
    finally:
        web.stop()
