"""The component x operation matrix printed by `check` and `demo --once` (rich table, or JSON for machines)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from exporter.profiles import IAM_ACTIONS, PROBE_ORDER
from exporter.results import CycleResult, OperationResult
from exporter.targets import Target


def _cell(op: OperationResult | None) -> Text:
    if op is None:
        return Text("", style="dim")
    if op.required and op.success:
        return Text("ok", style="green")
    if op.required:
        return Text(f"FAIL {op.reason}", style="bold red")
    if op.success:
        return Text("excess", style="yellow")
    return Text("denied", style="dim")


def render_table(results: list[CycleResult], targets: dict[str, Target], console: Console) -> None:
    """Operations down, one column per target (headed by its component), so five components fit 80 columns."""
    ordered = sorted(results, key=lambda r: r.target)
    table = Table(title="Object storage permissions", header_style="bold", title_justify="left")
    table.add_column("operation")
    for result in ordered:
        table.add_column(targets[result.target].component.value, overflow="fold")
    idents = []
    for result in ordered:
        ident = result.identity
        idents.append(Text("ok", style="green") if ident.ok else Text(f"FAIL {ident.reason}", style="bold red"))
    table.add_row("identity", *idents)
    for op_name in PROBE_ORDER:
        cells = [_cell(next((o for o in r.operations if o.operation is op_name), None)) for r in ordered]
        if any(c.plain for c in cells):
            table.add_row(op_name.value, *cells)
    console.print(table)
    console.print("ok: required, works · FAIL: required, broken · excess: not required but allowed · "
                  "denied: not required and denied (as it should be)", style="dim")
    for result in ordered:
        ident = result.identity
        console.print(f"{result.target}: {ident.source or '-'} as {ident.principal or 'unknown principal'}"
                      + ("" if ident.ok else f" — {ident.message}"))
        for failed in result.required_failures():
            console.print(f"  {failed.operation} needs {IAM_ACTIONS[failed.operation]}: {failed.detail}",
                          style="red")


def to_json(results: list[CycleResult], targets: dict[str, Target]) -> str:
    out: list[dict[str, Any]] = []
    for result in sorted(results, key=lambda r: r.target):
        target = targets[result.target]
        ident = result.identity
        out.append({
            "target": result.target,
            "component": target.component.value,
            "healthy": result.healthy,
            "identity": {"ok": ident.ok, "reason": ident.reason.value if ident.reason else None,
                         "source": ident.source, "principal": ident.principal},
            "operations": [
                {"operation": op.operation.value, "required": op.required, "success": op.success,
                 "reason": op.reason.value if op.reason else None, "duration_seconds": round(op.duration_seconds, 6),
                 "detail": op.detail}
                for op in result.operations
            ],
            "leaked_objects": result.leaked_objects,
        })
    return json.dumps({"targets": out}, indent=2)
