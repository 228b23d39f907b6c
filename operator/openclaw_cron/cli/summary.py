"""`kubectl openclaw summary`: one line per job."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..humanize import relative
from .cluster import Ctx
from .common import EXIT_OK, CliError, dump, parse_time, status_of, table


def summary_rows(
    jobs: list[dict[str, Any]], now: datetime, wide: bool, all_ns: bool
) -> tuple[list[str], list[list[object]]]:
    headers = ["NAME", "STATE", "LAST RESULT", "NEXT RUN", "FAILURES"]
    if wide:
        headers += ["SCHEDULE", "LAST RUN", "SUSPEND"]
    if all_ns:
        headers.insert(0, "NAMESPACE")
    rows: list[list[object]] = []
    for job in jobs:
        st, meta, spec = status_of(job), job.get("metadata") or {}, job.get("spec") or {}
        row: list[object] = [
            meta.get("name"),
            st.get("state") or "<unknown>",
            st.get("lastRunResult") or "<none>",
            relative(parse_time(st.get("nextRunTime")), now),
            st.get("consecutiveFailures", 0),
        ]
        if wide:
            last = parse_time(st.get("lastScheduleTime"))
            row += [st.get("schedule") or "", relative(last, now), bool(spec.get("suspend", False))]
        if all_ns:
            row.insert(0, meta.get("namespace"))
        rows.append(row)
    return headers, rows


def cmd_summary(ctx: Ctx) -> int:
    a = ctx.args
    if getattr(a, "since", None):
        from .stats import cmd_archive_summary

        return cmd_archive_summary(ctx)
    if a.output == "csv":
        raise CliError("summary: -o csv needs --since (a summary of the archived runs)")
    jobs = ctx.cluster.jobs(a.all_namespaces)
    if a.output in ("json", "yaml"):
        ctx.out.write(dump([_job_brief(j) for j in jobs], a.output))
        return EXIT_OK
    if not jobs:
        where = "" if a.all_namespaces else f" in {ctx.cluster.namespace} namespace"
        print(f"No resources found{where}.", file=ctx.err)
        return EXIT_OK
    headers, rows = summary_rows(jobs, ctx.now(), a.output == "wide", a.all_namespaces)
    ctx.out.write(table(headers, rows))
    return EXIT_OK


def _job_brief(job: Mapping[str, Any]) -> dict[str, Any]:
    st, meta = status_of(job), job.get("metadata") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "state": st.get("state"),
        "schedule": st.get("schedule"),
        "suspend": bool((job.get("spec") or {}).get("suspend", False)),
        "lastRunResult": st.get("lastRunResult"),
        "lastScheduleTime": st.get("lastScheduleTime"),
        "nextRunTime": st.get("nextRunTime"),
        "consecutiveFailures": st.get("consecutiveFailures", 0),
    }
