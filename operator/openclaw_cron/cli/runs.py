"""`kubectl openclaw runs`: a job's recent runs from its status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..humanize import human_duration
from .cluster import Ctx
from .common import EXIT_OK, dump, status_of, table, to_csv


def run_rows(job: Mapping[str, Any], result: str | None, limit: int | None) -> list[dict[str, Any]]:
    """Active runs (result Running) then finished ones, newest first, filtered and limited."""
    status = status_of(job)
    rows: list[dict[str, Any]] = []
    for active in status.get("active") or []:
        rows.append({**active, "result": "Running"})
    finished = [r for r in status.get("recentRuns") or [] if isinstance(r, dict)]
    finished.sort(key=lambda r: (r.get("scheduledTime") or "", r.get("completionTime") or ""), reverse=True)
    rows.extend(finished)
    if result:
        rows = [r for r in rows if str(r.get("result", "")).lower() == result.lower()]
    return rows[:limit] if limit else rows


RUN_COLUMNS = ("RUN ID", "TRIGGER", "SCHEDULED", "DURATION", "ATTEMPTS", "RESULT", "REASON")


RUN_CSV_FIELDS = (
    "runId",
    "trigger",
    "scheduledTime",
    "startTime",
    "completionTime",
    "durationSeconds",
    "attempts",
    "result",
    "reason",
    "message",
    "exitCode",
    "podName",
)


def run_table_row(r: Mapping[str, Any]) -> list[object]:
    duration = r.get("durationSeconds")
    return [
        r.get("runId"),
        r.get("trigger", "Schedule"),
        r.get("scheduledTime"),
        human_duration(duration) if isinstance(duration, int | float) else "<none>",
        r.get("attempts", r.get("attempt", 1)),
        r.get("result"),
        r.get("reason") or "",
    ]


def cmd_runs(ctx: Ctx) -> int:
    a = ctx.args
    rows = run_rows(ctx.cluster.get(a.name), a.result, a.limit)
    if a.output == "json":
        ctx.out.write(dump(rows, "json"))
    elif a.output == "yaml":
        ctx.out.write(dump(rows, "yaml"))
    elif a.output == "csv":
        ctx.out.write(to_csv(RUN_CSV_FIELDS, ([r.get(f) for f in RUN_CSV_FIELDS] for r in rows)))
    elif not rows:
        print(f"No runs found for {a.name} in {ctx.cluster.namespace} namespace.", file=ctx.err)
    else:
        ctx.out.write(table(RUN_COLUMNS, (run_table_row(r) for r in rows)))
    return EXIT_OK
