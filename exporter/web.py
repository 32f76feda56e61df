"""HTTP endpoints: /metrics (rendered from cached results), /-/healthy, /-/ready, and a small landing page."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LANDING = b"""<html><head><title>objstore-permission-exporter</title></head><body>
<h1>objstore-permission-exporter</h1><p><a href="/metrics">Metrics</a> &middot;
<a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p></body></html>"""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _DualStack(_Server6):
    """`:port` listens on every IPv4 and IPv6 address (IPv6-only clusters reach it too)."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_app(metrics: Callable[[], bytes], ready: Callable[[], bool]) -> Callable[..., Iterable[bytes]]:
    """`metrics` renders the exposition from cached results; it must never do I/O to S3, STS or Kubernetes."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            body = metrics()
            headers = [("Content-Type", CONTENT_TYPE)]
            if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                body = gzip.compress(body, compresslevel=1)
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
            return [body]
        if path == "/-/healthy":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"Healthy.\n"]
        if path == "/-/ready":
            if ready():
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"Ready.\n"]
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"Not ready: waiting for the first probe cycle.\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html")])
            return [LANDING]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found.\n"]

    return app


def parse_listen_address(address: str) -> tuple[str, int]:
    """`:9832` (all addresses, IPv4 and IPv6), `0.0.0.0:9832`, `127.0.0.1:0` or `[::1]:9832`."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid listen address {address!r}: expected [host]:port with a port up to 65535")
    return host.strip("[]"), int(port)


class WebServer:
    def __init__(self, address: str, metrics: Callable[[], bytes], ready: Callable[[], bool]) -> None:
        host, port = parse_listen_address(address)
        app = make_app(metrics, ready)
        if host:
            server = _Server6 if ":" in host else _Server
            self.httpd = make_server(host, port, app, server, handler_class=_QuietHandler)
        else:
            try:
                self.httpd = make_server("::", port, app, _DualStack, handler_class=_QuietHandler)
            except OSError:  # no IPv6 on this host
                self.httpd = make_server("0.0.0.0", port, app, _Server, handler_class=_QuietHandler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
