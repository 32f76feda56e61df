"""A real alerting pipeline on loopback for end-to-end tests.

    exporter (`objstore-permission-exporter demo`) -> Prometheus (the committed rules) -> Alertmanager -> webhook

Every server runs on a free 127.0.0.1 port with its own temporary directory; every process is started by this
module and stopped by its PID (SIGTERM, then SIGKILL after a grace period). Binaries: `prometheus` and
`prometheus-alertmanager` from Debian (scripts/install-test-packages.sh), and the exporter's console script from
the venv. The webhook receiver is an in-process http.server that records what Alertmanager posts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "objstore-permission-exporter.rules.yml"
JOB = "objstore-permission-exporter"  # the job name the committed rules select
LOOPBACK = "127.0.0.1"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], T | None], timeout: float, interval: float = 0.25, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy, and return that; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError) as exc:  # server not up yet, bad JSON during startup, ...
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    detail = f" ({last_error})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def http_json(url: str, data: Any = None, timeout: float = 5.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@dataclass
class Process:
    """A child process started by this module; `stop()` signals exactly this PID."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=grace)


def spawn(name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str] | None = None) -> Process:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(argv), cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True)
    return Process(name, popen, log_path)


class WebhookReceiver:
    """Records every Alertmanager webhook payload (JSON) POSTed to it."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.payloads.append(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification received so far, in arrival order."""
        with self._lock:
            return [alert for payload in self.payloads for alert in payload.get("alerts", [])]

    def find(self, status: str, **labels: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts()
                if a.get("status") == status and all(a["labels"].get(k) == v for k, v in labels.items())]

    def wait(self, status: str, timeout: float, **labels: str) -> dict[str, Any]:
        found = wait_for(lambda: self.find(status, **labels), timeout, what=f"webhook {status} alert {labels}")
        return found[-1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Alertmanager:
    process: Process
    url: str

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts")
        return result

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", alerts)


def start_alertmanager(workdir: Path, webhook_url: str, binary: str = "prometheus-alertmanager") -> Alertmanager:
    """Alertmanager that sends every alert to `webhook_url` immediately (group_wait 0s), resolved ones too."""
    path = shutil.which(binary)
    if path is None:
        raise FileNotFoundError(binary)
    home = workdir / "alertmanager"
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "target", "operation"],
            "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h",
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }
    (home / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = spawn("alertmanager", [
        path, "--config.file=alertmanager.yml", "--storage.path=data",
        f"--web.listen-address={LOOPBACK}:{port}", "--cluster.listen-address=",
    ], home)
    am = Alertmanager(proc, f"http://{LOOPBACK}:{port}")
    try:
        wait_for(lambda: _ready(am.url, proc), 20, what="alertmanager /-/ready")
    except TimeoutError:
        proc.stop()
        raise TimeoutError(f"alertmanager did not become ready:\n{proc.log()}") from None
    return am


@dataclass
class Prometheus:
    process: Process
    url: str

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": str(at)} if at is not None else {})
        resp = http_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        if resp.get("status") != "success":
            raise ValueError(f"query failed: {expr}: {resp}")
        result: list[dict[str, Any]] = resp["data"]["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
        resp = http_json(f"{self.url}/api/v1/query_range?{urllib.parse.urlencode(params)}")
        if resp.get("status") != "success":
            raise ValueError(f"range query failed: {expr}: {resp}")
        result: list[dict[str, Any]] = resp["data"]["result"]
        return result

    def series(self, match: str, start: float, end: float) -> list[dict[str, str]]:
        """/api/v1/series, which is what Grafana's label_values(<selector>, label) calls."""
        params = {"match[]": match, "start": str(start), "end": str(end)}
        resp = http_json(f"{self.url}/api/v1/series?{urllib.parse.urlencode(params)}")
        result: list[dict[str, str]] = resp["data"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        resp = http_json(f"{self.url}/api/v1/rules")
        return [rule for group in resp["data"]["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return result

    def target_health(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"]
        return result


def start_prometheus(workdir: Path, scrape_targets: Sequence[str], alertmanager_url: str | None = None,
                     rule_files: Sequence[Path] = (RULES,), job: str = JOB, interval: str = "1s",
                     binary: str = "prometheus") -> Prometheus:
    """Prometheus scraping `scrape_targets` (host:port) as `job`, evaluating `rule_files` every `interval`."""
    path = shutil.which(binary)
    if path is None:
        raise FileNotFoundError(binary)
    home = workdir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(scrape_targets)}]}],
    }
    if alertmanager_url is not None:
        host = urllib.parse.urlsplit(alertmanager_url).netloc
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = spawn("prometheus", [
        path, "--config.file=prometheus.yml", "--storage.tsdb.path=data",
        f"--web.listen-address={LOOPBACK}:{port}",
    ], home)
    prom = Prometheus(proc, f"http://{LOOPBACK}:{port}")
    try:
        wait_for(lambda: _ready(prom.url, proc), 30, what="prometheus /-/ready")
    except TimeoutError:
        proc.stop()
        raise TimeoutError(f"prometheus did not become ready:\n{proc.log()}") from None
    return prom


@dataclass
class ExporterDemo:
    process: Process
    address: str  # host:port
    info: dict[str, Any]

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}/metrics"


def exporter_binary() -> str:
    """The console script next to the running interpreter (the venv), else on PATH."""
    candidate = Path(sys.executable).with_name("objstore-permission-exporter")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("objstore-permission-exporter")
    if found is None:
        raise FileNotFoundError("objstore-permission-exporter")
    return found


def start_exporter_demo(workdir: Path, probe_interval: str = "2s", timeout: float = 60) -> ExporterDemo:
    """`objstore-permission-exporter demo` on a free port; waits for its emulator info file and /metrics."""
    home = workdir / "exporter"
    home.mkdir(parents=True, exist_ok=True)
    info_file = home / "emulator-info.json"
    address = f"{LOOPBACK}:{free_port()}"
    proc = spawn("exporter", [
        exporter_binary(), "demo", f"--web.listen-address={address}", f"--probe.interval={probe_interval}",
        f"--emulator-info-file={info_file}",
    ], home)

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"exporter demo exited with {proc.popen.returncode}:\n{proc.log()}")
        return info_file.exists() and b"objstore_permission_" in http_get(f"http://{address}/metrics")

    try:
        wait_for(up, timeout, what="exporter demo /metrics")
        info = wait_for(lambda: json.loads(info_file.read_text()) or None, 10, what="emulator info file")
    except (TimeoutError, RuntimeError):
        proc.stop()
        raise
    return ExporterDemo(proc, address, info)


def _ready(url: str, proc: Process) -> bool:
    if not proc.alive():
        raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
    try:
        return http_get(f"{url}/-/ready", timeout=2) is not None
    except urllib.error.HTTPError:
        return False  # 503 while starting


@dataclass
class Stack:
    """Whatever was started, stopped in reverse order by `close()`."""

    workdir: Path
    webhook: WebhookReceiver | None = None
    alertmanager: Alertmanager | None = None
    prometheus: Prometheus | None = None
    exporter: ExporterDemo | None = None
    processes: list[Process] = field(default_factory=list)

    def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        if self.webhook is not None:
            self.webhook.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} (pid {p.pid}) =====\n{p.log()[-4000:]}" for p in self.processes)


@contextlib.contextmanager
def alerting_stack(workdir: Path, scrape_targets: Sequence[str] = (), exporter: bool = False,
                   probe_interval: str = "2s", interval: str = "1s") -> Iterator[Stack]:
    """Webhook + Alertmanager + Prometheus (+ the exporter demo, scraped by Prometheus, when `exporter`)."""
    stack = Stack(workdir)
    try:
        stack.webhook = WebhookReceiver()
        stack.alertmanager = start_alertmanager(workdir, stack.webhook.url)
        stack.processes.append(stack.alertmanager.process)
        targets = list(scrape_targets)
        if exporter:
            stack.exporter = start_exporter_demo(workdir, probe_interval)
            stack.processes.append(stack.exporter.process)
            targets.append(stack.exporter.address)
        stack.prometheus = start_prometheus(workdir, targets, stack.alertmanager.url, interval=interval)
        stack.processes.append(stack.prometheus.process)
        yield stack
    finally:
        stack.close()
