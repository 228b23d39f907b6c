"""`kubectl openclaw run`: start a run now, optionally wait for its result."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import naming as n
from ..humanize import human_duration
from .cluster import Cluster, Ctx
from .common import EXIT_FAILURE, EXIT_OK, SINGULAR_REF, parse_time, rfc3339_ms, status_of


def cmd_run(ctx: Ctx) -> int:
    a, cluster = ctx.args, ctx.cluster
    cluster.get(a.name)  # NotFound before writing anything
    requested = ctx.now()
    value = rfc3339_ms(requested)
    cluster.merge_patch(a.name, {"metadata": {"annotations": {n.ANNOTATION_RUN_NOW: value}}})
    print(f"{SINGULAR_REF}/{a.name} triggered (run-now={value})", file=ctx.out)
    if not a.wait:
        return EXIT_OK
    floor = requested.replace(microsecond=0)
    deadline = time.monotonic() + a.timeout
    run_id: str | None = None
    while True:
        if run_id is None:
            run_id = _manual_run_id(cluster, a.name, value)
        job = cluster.get(a.name)
        for rec in status_of(job).get("recentRuns") or []:
            if rec.get("trigger") != "Manual":
                continue
            scheduled = parse_time(rec.get("scheduledTime"))
            if rec.get("runId") == run_id or (scheduled is not None and scheduled >= floor):
                return _report_run(ctx, rec)
        if time.monotonic() >= deadline:
            print(f"error: timed out after {a.timeout:g}s waiting for the run to finish", file=ctx.err)
            return EXIT_FAILURE
        ctx.sleep(a.poll_interval)


def _manual_run_id(cluster: Cluster, name: str, value: str) -> str | None:
    """The run started for our run-now value: its Pod carries the value as an annotation."""
    for pod in cluster.pods(f"{n.LABEL_JOB}={n.job_label(name)}"):
        meta = pod.get("metadata") or {}
        if (meta.get("annotations") or {}).get(n.ANNOTATION_RUN_NOW) == value:
            run: str | None = (meta.get("labels") or {}).get(n.LABEL_RUN_ID)
            return run
    return None


def _report_run(ctx: Ctx, rec: Mapping[str, Any]) -> int:
    result = rec.get("result", "Unknown")
    duration = rec.get("durationSeconds")
    took = f" in {human_duration(duration)}" if isinstance(duration, int | float) else ""
    print(f"run {rec.get('runId')} {result}{took} (attempts: {rec.get('attempts', 1)})", file=ctx.out)
    if result != "Succeeded":
        for key in ("reason", "message"):
            if rec.get(key):
                print(f"{key}: {rec[key]}", file=ctx.out)
    return EXIT_OK if result == "Succeeded" else EXIT_FAILURE
