"""A small EC2 instance metadata (IMDSv2) emulator: token, role name, and role credentials."""

from __future__ import annotations

import json
import secrets
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREDS_PATH = "/latest/meta-data/iam/security-credentials/"


class IMDS:
    def __init__(self, role: str, credentials: dict[str, Any]) -> None:
        self.role = role
        self.credentials = credentials  # an STS Credentials dict
        self.token = secrets.token_hex(16)
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self._send(200, imds.token)
                else:
                    self._send(400, "")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                    self._send(401, "")
                elif self.path == CREDS_PATH:
                    self._send(200, imds.role)
                elif self.path == CREDS_PATH + imds.role:
                    c = imds.credentials
                    expiry = c["Expiration"]
                    self._send(200, json.dumps({
                        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": c["AccessKeyId"],
                        "SecretAccessKey": c["SecretAccessKey"], "Token": c["SessionToken"],
                        "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(expiry, datetime)
                        else str(expiry)}))
                else:
                    self._send(404, "")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> IMDS:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
