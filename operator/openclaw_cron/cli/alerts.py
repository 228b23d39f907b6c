"""`kubectl openclaw alerts`: jobs failing repeatedly or unhealthy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cluster import Ctx
from .common import EXIT_FAILURE, EXIT_OK, _one_line, condition, dump, status_of, table
from .summary import _job_brief

DEFAULT_ALERT_AFTER = 3


def alert_threshold(job: Mapping[str, Any]) -> int:
    notify = (job.get("spec") or {}).get("notify") or {}
    value = notify.get("alertAfterConsecutiveFailures", DEFAULT_ALERT_AFTER)
    return value if isinstance(value, int) and value > 0 else DEFAULT_ALERT_AFTER


def alert_reason(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the job needs attention, else None."""
    healthy = condition(job, "Healthy")
    failures = int(status_of(job).get("consecutiveFailures") or 0)
    threshold = alert_threshold(job)
    if failures >= threshold:
        last = (status_of(job).get("recentRuns") or [{}])[-1] if status_of(job).get("recentRuns") else {}
        detail = (healthy or {}).get("message") or last.get("message") or ""
        return "ConsecutiveFailures", f"{failures} failed runs in a row (threshold {threshold}). {detail}".strip()
    if healthy is not None and healthy.get("status") == "False":
        return str(healthy.get("reason") or "Unhealthy"), str(healthy.get("message") or "")
    return None


def cmd_alerts(ctx: Ctx) -> int:
    a = ctx.args
    found: list[dict[str, Any]] = []
    for job in ctx.cluster.jobs(a.all_namespaces):
        why = alert_reason(job)
        if why is not None:
            found.append(
                {
                    **_job_brief(job),
                    "threshold": alert_threshold(job),
                    "reason": why[0],
                    "message": why[1],
                }
            )
    if a.output in ("json", "yaml"):
        ctx.out.write(dump(found, a.output))
    elif not found:
        print("No alerting jobs.", file=ctx.err)
    else:
        headers = ["NAME", "FAILURES", "THRESHOLD", "LAST RESULT", "REASON", "MESSAGE"]
        rows: list[list[object]] = []
        for f in found:
            row: list[object] = [
                f["name"],
                f["consecutiveFailures"],
                f["threshold"],
                f["lastRunResult"] or "<none>",
                f["reason"],
                _one_line(f["message"], 80),
            ]
            if a.all_namespaces:
                row.insert(0, f["namespace"])
            rows.append(row)
        if a.all_namespaces:
            headers.insert(0, "NAMESPACE")
        ctx.out.write(table(headers, rows))
    return EXIT_FAILURE if found else EXIT_OK
