"""The console's reads of the archive: aggregated on the server (GROUP BY, window functions).

The browser never receives every run: the overview gets one row of figures per job, the
timeline one bar per (job, pixel bucket), the charts a bounded number of points. The SQL is
the portable subset both stores speak (window functions, CASE, integer division) over the
indexes of archive/schema.py; a dialect supplies only how a time column becomes microseconds.

Counting follows `kubectl openclaw summary --since` (cli/stats.py): a run counts once, with its
last attempt's result; Skipped/Missed runs are "not run" (neither success nor failure); p50/p95
are nearest-rank percentiles of the durations of the runs that ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..archive.sql import SqlStore, from_micros, to_micros

NOT_RUN = ("Skipped", "Missed")
FAILED = ("Failed", "TimedOut")
#: Runs that may still be inside a window although scheduled before it (the index bound).
LONGEST_RUN = timedelta(hours=6)


@dataclass(frozen=True)
class JobStats:
    """One job's runs in a window, counted as `summary --since` counts them."""

    namespace: str
    job: str
    runs: int = 0  # that ran (last attempt not Skipped/Missed)
    succeeded: int = 0
    failed: int = 0
    not_run: int = 0
    attempts: int = 0
    p50: float | None = None
    p95: float | None = None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None


@dataclass(frozen=True)
class StripRun:
    """One run in a job's strip of recent runs."""

    name: str  # job~runId~attempt (the last attempt)
    result: str
    scheduled: datetime
    attempts: int


@dataclass
class Bucket:
    """Runs of one job whose start falls in one pixel bucket of the timeline."""

    namespace: str
    job: str
    start: datetime
    end: datetime
    count: int
    failed: int
    succeeded: int
    not_run: int
    retries: int
    dependency: int
    run: str = ""  # job~runId~attempt when the bucket holds one attempt
    trigger: str = ""

    @property
    def result(self) -> str:
        if self.failed:
            return "failed"
        if self.succeeded:
            return "succeeded"
        return "notrun"


@dataclass
class Totals:
    jobs: int = 0
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    not_run: int = 0
    by_job: dict[tuple[str, str], JobStats] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.runs if self.runs else None


def _in(column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def _scope(store: SqlStore, namespaces: Sequence[str], jobs: Sequence[str] | None, since: datetime, until: datetime,
           alias: str = "") -> tuple[str, list[Any]]:  # fmt: skip
    """The WHERE clause (columns of table `alias`, if given) for these namespaces, jobs and window."""
    a = f"{alias}." if alias else ""
    where, params = _in(f"{a}namespace", namespaces)
    clauses = [where, f"{a}scheduled_time >= ?", f"{a}scheduled_time < ?"]
    params += [store.time_param(since), store.time_param(until)]
    if jobs is not None:
        j, p = _in(f"{a}job", jobs)
        clauses.append(j)
        params += p
    return " AND ".join(clauses), params


_LAST = (
    "SELECT namespace, job, run_id, attempt, result, duration_seconds, scheduled_time, "
    "ROW_NUMBER() OVER (PARTITION BY namespace, job, run_id ORDER BY attempt DESC, id DESC) AS rn "
    "FROM runs WHERE {where}"
)


def job_stats(
    store: SqlStore,
    namespaces: Sequence[str],
    since: datetime,
    until: datetime,
    jobs: Sequence[str] | None = None,
    percentiles_of: Sequence[str] | None = None,
) -> Totals:
    """Per-job figures for runs scheduled in [since, until), and their sums; no rows when no namespace.

    Counts come from one GROUP BY over every attempt, minus the attempts a later attempt of the
    same run superseded (attempts are numbered 1, 2, ... so attempt n supersedes n - 1): few
    rows, found through the index on (namespace, job, run_id). p50/p95 need the durations sorted,
    so they are computed only for `percentiles_of` (the jobs a page shows; None: all of `jobs`).
    """
    totals = Totals()
    if not namespaces or (jobs is not None and not jobs):
        return totals
    where, params = _scope(store, namespaces, jobs, since, until)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for ns, job, result, count in store.read(
        f"SELECT namespace, job, result, COUNT(*) FROM runs WHERE {where} GROUP BY namespace, job, result", params
    ):
        counts.setdefault((ns, job), {})[str(result)] = int(count)
    attempts = {key: sum(by.values()) for key, by in counts.items()}
    r_where, _ = _scope(store, namespaces, jobs, since, until, alias="r")
    for ns, job, result, count in store.read(
        "SELECT p.namespace, p.job, p.result, COUNT(*) FROM runs r JOIN runs p ON p.namespace = r.namespace "
        "AND p.job = r.job AND p.run_id = r.run_id AND p.attempt = r.attempt - 1 "
        f"WHERE r.attempt > 1 AND {r_where} GROUP BY p.namespace, p.job, p.result",
        params,
    ):
        by = counts[(ns, job)]
        by[str(result)] = by.get(str(result), 0) - int(count)
    pct_jobs = jobs if percentiles_of is None else percentiles_of
    marks = _percentiles(store, namespaces, pct_jobs, since, until) if pct_jobs is None or pct_jobs else {}
    for (ns, job), by in counts.items():
        ok = by.get("Succeeded", 0)
        notrun = sum(by.get(r, 0) for r in NOT_RUN)
        ran = sum(by.values()) - notrun
        m = marks.get((ns, job), {})
        stats = JobStats(namespace=ns, job=job, runs=ran, succeeded=ok, failed=ran - ok, not_run=notrun,
                         attempts=attempts[(ns, job)], p50=m.get(50), p95=m.get(95))  # fmt: skip
        totals.by_job[(ns, job)] = stats
        totals.runs += stats.runs
        totals.succeeded += stats.succeeded
        totals.failed += stats.failed
        totals.not_run += stats.not_run
    totals.jobs = len(totals.by_job)
    return totals


def _percentiles(
    store: SqlStore, namespaces: Sequence[str], jobs: Sequence[str] | None, since: datetime, until: datetime
) -> dict[tuple[str, str], dict[int, float]]:
    """Nearest-rank p50/p95 of the durations of each job's runs that ran (last attempts)."""
    where, params = _scope(store, namespaces, jobs, since, until)
    not_run = ", ".join(f"'{r}'" for r in NOT_RUN)
    ranks = store.read(
        f"WITH last AS ({_LAST.format(where=where)}), "
        "ran AS (SELECT namespace, job, duration_seconds, "
        "ROW_NUMBER() OVER (PARTITION BY namespace, job ORDER BY duration_seconds) AS k, "
        "COUNT(*) OVER (PARTITION BY namespace, job) AS n "
        f"FROM last WHERE rn = 1 AND result NOT IN ({not_run}) AND duration_seconds IS NOT NULL) "
        "SELECT namespace, job, k, n, duration_seconds FROM ran "
        "WHERE k = (50 * n + 99) / 100 OR k = (95 * n + 99) / 100",
        params,
    )
    pct: dict[tuple[str, str], dict[int, float]] = {}
    for ns, job, k, n, duration in ranks:
        marks = pct.setdefault((ns, job), {})
        if int(k) == (50 * int(n) + 99) // 100:
            marks[50] = float(duration)
        if int(k) == (95 * int(n) + 99) // 100:
            marks[95] = float(duration)
    return pct


def strips(
    store: SqlStore, namespaces: Sequence[str], jobs: Sequence[str], since: datetime, until: datetime, per_job: int = 20
) -> dict[tuple[str, str], list[StripRun]]:
    """The last `per_job` runs of each job (last attempts, oldest first) scheduled in [since, until)."""
    if not namespaces or not jobs:
        return {}
    where, params = _scope(store, namespaces, jobs, since, until)
    rows = store.read(
        f"WITH last AS ({_LAST.format(where=where)}), "
        "newest AS (SELECT namespace, job, run_id, attempt, result, scheduled_time, "
        "ROW_NUMBER() OVER (PARTITION BY namespace, job ORDER BY scheduled_time DESC, run_id DESC) AS k "
        "FROM last WHERE rn = 1) "
        "SELECT namespace, job, run_id, attempt, result, scheduled_time FROM newest WHERE k <= ? "
        "ORDER BY namespace, job, scheduled_time",
        [*params, per_job],
    )
    out: dict[tuple[str, str], list[StripRun]] = {}
    for ns, job, run_id, attempt, result, scheduled in rows:
        out.setdefault((ns, job), []).append(
            StripRun(f"{job}~{run_id}~{attempt}", result, store.time_value(scheduled), int(attempt))
        )
    return out


def timeline(
    store: SqlStore,
    namespaces: Sequence[str],
    jobs: Sequence[str],
    start: datetime,
    end: datetime,
    buckets: int,
) -> list[Bucket]:
    """Attempts running in [start, end) of these jobs, grouped per job into `buckets` equal slices by start.

    A bucket with one attempt is that attempt's exact bar (start to end); with more it spans the
    first start to the last end and counts them. Attempts without a start (Skipped, Missed)
    sit at their scheduled time.
    """
    if not namespaces or not jobs or end <= start:
        return []
    ns_in, params = _in("namespace", namespaces)
    job_in, job_params = _in("job", jobs)
    t0, span = to_micros(start), to_micros(end) - to_micros(start)
    s = f"COALESCE({store.micros_sql('start_time')}, {store.micros_sql('scheduled_time')})"
    e = f"COALESCE({store.micros_sql('completion_time')}, {s})"
    rows = store.read(
        f"WITH w AS (SELECT namespace, job, run_id, attempt, trigger_type, result, {s} AS s, {e} AS e "
        f"FROM runs WHERE {ns_in} AND {job_in} AND scheduled_time >= ? AND scheduled_time < ?) "
        "SELECT namespace, job, (s - ?) * ? / ? AS b, COUNT(*), MIN(s), MAX(e), "
        f"SUM(CASE WHEN result IN ({', '.join(repr(r) for r in FAILED)}) THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN result = 'Succeeded' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN result IN ({', '.join(repr(r) for r in NOT_RUN)}) THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN attempt > 1 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN trigger_type = 'Dependency' THEN 1 ELSE 0 END), "
        "MIN(run_id), MIN(attempt), MIN(trigger_type) "
        "FROM w WHERE e >= ? AND s < ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        [
            *params,
            *job_params,
            store.time_param(start - LONGEST_RUN),
            store.time_param(end),
            t0,
            buckets,
            span,
            t0,
            t0 + span,
        ],
    )
    out = []
    for ns, job, _b, count, lo, hi, failed, ok, notrun, retries, dep, run_id, attempt, trigger in rows:
        one = int(count) == 1
        out.append(
            Bucket(
                namespace=ns,
                job=job,
                start=from_micros(int(lo)),
                end=from_micros(int(hi)),
                count=int(count),
                failed=int(failed),
                succeeded=int(ok),
                not_run=int(notrun),
                retries=int(retries),
                dependency=int(dep),
                run=f"{job}~{run_id}~{attempt}" if one else "",
                trigger=str(trigger) if one else "",
            )
        )
    return out


def durations(
    store: SqlStore, namespace: str, job: str, since: datetime, until: datetime, limit: int = 500
) -> list[tuple[datetime, float, str]]:
    """(scheduled, duration, result) of the job's newest `limit` attempts with a duration, oldest first."""
    rows = store.read(
        "SELECT scheduled_time, duration_seconds, result FROM runs "
        "WHERE namespace = ? AND job = ? AND scheduled_time >= ? AND scheduled_time < ? "
        "AND duration_seconds IS NOT NULL ORDER BY scheduled_time DESC, id DESC LIMIT ?",
        [namespace, job, store.time_param(since), store.time_param(until), limit],
    )
    return [(store.time_value(t), float(d), str(r)) for t, d, r in reversed(rows)]


def attempts(store: SqlStore, namespace: str, job: str, run_id: str) -> list[tuple[int, str, str, float | None]]:
    """(attempt, result, reason, duration) of every archived attempt of one run."""
    rows = store.read(
        "SELECT attempt, result, reason, duration_seconds FROM runs "
        "WHERE namespace = ? AND job = ? AND run_id = ? ORDER BY attempt",
        [namespace, job, run_id],
    )
    return [(int(a), str(r), str(why), None if d is None else float(d)) for a, r, why, d in rows]


def nearest_run(
    store: SqlStore, namespace: str, job: str, at: datetime, *, before: bool, within: timedelta = timedelta(days=1)
) -> tuple[str, str, datetime] | None:
    """The run of `job` scheduled nearest before (or at/after) `at`, within `within`: (name, result, scheduled)."""
    if before:
        cond, order, lo, hi = "scheduled_time <= ? AND scheduled_time >= ?", "DESC", at, at - within
    else:
        cond, order, lo, hi = "scheduled_time >= ? AND scheduled_time <= ?", "ASC", at, at + within
    rows = store.read(
        f"SELECT run_id, attempt, result, scheduled_time FROM runs WHERE namespace = ? AND job = ? AND {cond} "
        f"ORDER BY scheduled_time {order}, attempt DESC LIMIT 1",
        [namespace, job, store.time_param(lo), store.time_param(hi)],
    )
    if not rows:
        return None
    run_id, attempt, result, scheduled = rows[0]
    return f"{job}~{run_id}~{attempt}", str(result), store.time_value(scheduled)


def namespaces(store: SqlStore, since: datetime) -> list[str]:
    """Namespaces with runs scheduled since `since` (jobs deleted since still have history)."""
    rows = store.read("SELECT DISTINCT namespace FROM runs WHERE scheduled_time >= ?", [store.time_param(since)])
    return sorted(str(r[0]) for r in rows)
