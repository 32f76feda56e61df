"""A recording, fault-injecting HTTP reverse proxy on loopback.

Sits between the exporter and the emulator so tests can see every request the exporter really sends
(method, path, query, timing), delay them, or answer with faults (503 SlowDown, 500, hang).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # unquoted, without query
    query: dict[str, list[str]]
    body: bytes
    started: float
    finished: float
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")


Fault = Callable[["Seen"], tuple[int, dict[str, str], bytes] | None]


class RecordingProxy:
    def __init__(self, upstream: str, delay: float = 0.0) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.delay = delay
        self.fault: Fault | None = None
        self.hang = threading.Event()  # set: requests hang until released
        self.release = threading.Event()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed_path = urllib.parse.urlsplit(self.path)
                seen_partial = Seen(self.command, urllib.parse.unquote(parsed_path.path),
                                    urllib.parse.parse_qs(parsed_path.query, keep_blank_values=True), body,
                                    started, started, tuple(self.headers.items()))
                if proxy.hang.is_set():
                    proxy.release.wait(30)
                if proxy.delay:
                    time.sleep(proxy.delay)
                answer = proxy.fault(seen_partial) if proxy.fault else None
                if answer is None:
                    conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    status, resp_headers, data = resp.status, dict(resp.getheaders()), resp.read()
                    conn.close()
                else:
                    status, resp_headers, data = answer
                with proxy._lock:
                    proxy.seen.append(Seen(seen_partial.method, seen_partial.path, seen_partial.query, body,
                                           started, time.monotonic(), seen_partial.headers))
                self.send_response(status)
                for k, v in resp_headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()


def s3_error(status: int, code: str, message: str = "") -> tuple[int, dict[str, str], bytes]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message or code}</Message><RequestId>test</RequestId></Error>").encode()
    return status, {"Content-Type": "application/xml"}, body
