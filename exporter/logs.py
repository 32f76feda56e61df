"""Logging in logfmt or JSON, like Prometheus components; library chatter kept at warning level."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_QUIET = ("botocore", "boto3", "urllib3", "apscheduler", "werkzeug", "kubernetes", "moto", "s3transfer")


def _logfmt_value(value: str) -> str:
    if value == "" or any(c in value for c in ' ="\n'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return value


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        parts = [f"ts={ts}", f"level={record.levelname.lower()}", f"caller={record.name}",
                 f"msg={_logfmt_value(record.getMessage())}"]
        if record.exc_info:
            parts.append(f"err={_logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out = {"ts": ts, "level": record.levelname.lower(), "caller": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["err"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        # never below WARNING: botocore's debug output carries signed headers and session tokens
        logging.getLogger(name).setLevel(logging.WARNING)
