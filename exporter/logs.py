"""Logging in logfmt or JSON, like Prometheus components; library chatter kept at warning level.

Structured fields go in `extra=kv(target=..., reason=...)`: logfmt appends them as key=value pairs, JSON as keys.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_QUIET = ("botocore", "boto3", "urllib3", "apscheduler", "werkzeug", "kubernetes", "moto", "s3transfer")


_LEVELS = {"WARNING": "warn", "CRITICAL": "error"}


def kv(**fields: object) -> dict[str, dict[str, object]]:
    """Structured fields for one log call: `log.warning("probe failed", extra=kv(target=t, reason=r))`."""
    return {"fields": fields}


def _fields(record: logging.LogRecord) -> dict[str, str]:
    fields = getattr(record, "fields", None) or {}
    return {str(k): "" if v is None else str(v) for k, v in fields.items()}


def _level(record: logging.LogRecord) -> str:
    return _LEVELS.get(record.levelname, record.levelname.lower())


def _logfmt_value(value: str) -> str:
    if value == "" or any(c in value for c in ' ="\n'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return value


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        parts = [f"ts={ts}", f"level={_level(record)}", f"caller={record.name}",
                 f"msg={_logfmt_value(record.getMessage())}"]
        parts += [f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items()]
        if record.exc_info:
            parts.append(f"err={_logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out = {"ts": ts, "level": _level(record), "caller": record.name, "msg": record.getMessage(),
               **_fields(record)}
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
