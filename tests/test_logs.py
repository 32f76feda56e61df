"""Log lines: logfmt or JSON with structured fields as their own keys, Prometheus-style levels."""

from __future__ import annotations

import json
import logging

from exporter.logs import JSONFormatter, LogfmtFormatter, kv


def _record(level: int = logging.WARNING) -> logging.LogRecord:
    record = logging.LogRecord("exporter.app", level, __file__, 1, "required operation failed", None, None)
    for key, value in kv(target="monitoring/thanos-compact", operation="delete", reason="access_denied",
                         detail='DeleteObject: AccessDenied "x"').items():
        setattr(record, key, value)
    return record


def test_logfmt_fields_and_level() -> None:
    line = LogfmtFormatter().format(_record())
    assert " level=warn " in line and 'msg="required operation failed"' in line
    assert "target=monitoring/thanos-compact operation=delete reason=access_denied" in line
    assert 'detail="DeleteObject: AccessDenied \\"x\\""' in line


def test_json_fields_are_keys() -> None:
    out = json.loads(JSONFormatter().format(_record(logging.ERROR)))
    assert out["level"] == "error" and out["msg"] == "required operation failed"
    assert out["target"] == "monitoring/thanos-compact" and out["reason"] == "access_denied"
