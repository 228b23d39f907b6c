"""`kubectl openclaw summary --since 7d`: per job, from the archive: runs, success rate, p50/p95, last failure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..humanize import run_duration
from .archive import Archive, namespace_of
from .cluster import Ctx
from .common import EXIT_OK, dump, table, to_csv

#: Runs that never started (held back or missed) count neither as success nor failure.
NOT_RUN = ("Skipped", "Missed")
#: At most this many attempts are read for one summary.
MAX_ATTEMPTS = 200_000
FIELDS = ("namespace", "job", "runs", "succeeded", "failed", "notRun", "successRate", "p50Seconds", "p95Seconds",
          "lastFailureTime", "lastFailureReason")  # fmt: skip


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(p/100 * n)); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (namespace, job); a run counts once, with the result of its last attempt."""
    last: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for item in items:
        ns = (item.get("metadata") or {}).get("namespace", "")
        key = (ns, str(item.get("job")), str(item.get("runId")))
        if key not in last or int(item.get("attempt") or 1) > int(last[key].get("attempt") or 1):
            last[key] = item
    jobs: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for (ns, job, _), item in last.items():
        jobs.setdefault((ns, job), []).append(item)
    rows = []
    for (ns, job), runs in sorted(jobs.items()):
        ran = [r for r in runs if r.get("result") not in NOT_RUN]
        ok = [r for r in ran if r.get("result") == "Succeeded"]
        failed = sorted((r for r in ran if r.get("result") != "Succeeded"), key=lambda r: r.get("scheduledTime") or "")
        durations = [float(r["durationSeconds"]) for r in ran if isinstance(r.get("durationSeconds"), int | float)]
        worst = failed[-1] if failed else {}
        rows.append(
            {
                "namespace": ns,
                "job": job,
                "runs": len(ran),
                "succeeded": len(ok),
                "failed": len(failed),
                "notRun": len(runs) - len(ran),
                "successRate": round(len(ok) / len(ran), 4) if ran else None,
                "p50Seconds": percentile(durations, 50),
                "p95Seconds": percentile(durations, 95),
                "lastFailureTime": worst.get("scheduledTime"),
                "lastFailureReason": worst.get("reason") or worst.get("result"),
            }
        )
    return rows


def cmd_archive_summary(ctx: Ctx) -> int:
    a = ctx.args
    namespace = None if a.all_namespaces else namespace_of(ctx)
    query = {"since": a.since, **({"until": a.until} if getattr(a, "until", None) else {})}
    rows = summarize(Archive(ctx).runs(namespace, query, MAX_ATTEMPTS))
    if a.output in ("json", "yaml"):
        ctx.out.write(dump(rows, a.output))
        return EXIT_OK
    if a.output == "csv":
        ctx.out.write(to_csv(FIELDS, ([r[f] for f in FIELDS] for r in rows)))
        return EXIT_OK
    if not rows:
        where = "" if namespace is None else f" in {namespace} namespace"
        print(f"No archived runs since {a.since}{where}.", file=ctx.err)
        return EXIT_OK
    headers = ["JOB", "RUNS", "SUCCESS", "P50", "P95", "LAST FAILURE"]
    if namespace is None:
        headers.insert(0, "NAMESPACE")
    out = []
    for r in rows:
        rate = "<none>" if r["successRate"] is None else f"{r['successRate'] * 100:.1f}%"
        fail = f"{r['lastFailureTime']} ({r['lastFailureReason']})" if r["lastFailureTime"] else "<none>"
        row: list[object] = [
            r["job"],
            r["runs"],
            rate,
            run_duration(r["p50Seconds"]),
            run_duration(r["p95Seconds"]),
            fail,
        ]
        out.append([r["namespace"], *row] if namespace is None else row)
    ctx.out.write(table(headers, out))
    return EXIT_OK
