"""Bench: the run archive with 1,000,000 runs (30 days, ~1,000 jobs) answers history queries fast.

Fills a fresh SQLite archive (default) through `Store.put` in batches, then times queries as the
API runs them: one job's 30 days (first page, and every page), a namespace, failures only, one
run with its log. Prints p50/p99 of repeated queries; the goal is a one-job history < 100 ms.

    python hack/bench_archive.py [--runs 1000000] [--jobs 1000] [--url sqlite:///tmp/x.db]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from openclaw_cron.archive.model import Query, RunEntry
from openclaw_cron.archive.open import open_store
from openclaw_cron.archive.store import Store, iterate, redact

NAMESPACES = 10
DAYS = 30
RESULTS = ["Succeeded"] * 90 + ["Failed"] * 8 + ["TimedOut"] * 2


def fill(store: Store, runs: int, jobs: int, now: datetime, batch: int = 5000) -> float:
    """`runs` entries spread evenly over the last DAYS days across `jobs` jobs; seconds taken."""
    rng = random.Random(1)
    per_job = runs // jobs
    step = timedelta(days=DAYS) / per_job
    start = now - timedelta(days=DAYS)
    began = time.perf_counter()
    pending: list[RunEntry] = []
    written = 0
    for slot in range(per_job):  # time-ordered like a real archive: every job's slot k, then k + 1
        when = start + step * slot
        for j in range(jobs):
            result = rng.choice(RESULTS)
            scheduled = when + timedelta(seconds=j % 60)
            pending.append(
                RunEntry(
                    namespace=f"team-{j % NAMESPACES}",
                    job=f"job-{j}",
                    job_uid=f"uid-{j}",
                    run_id=f"job-{j}-{slot}",
                    attempt=1,
                    trigger="Schedule",
                    result=result,
                    scheduled_time=scheduled,
                    start_time=scheduled + timedelta(seconds=1),
                    completion_time=scheduled + timedelta(seconds=12),
                    duration_seconds=11.0,
                    reason="" if result == "Succeeded" else "Error",
                    output=f"processed {slot} items",
                    exit_code=0 if result == "Succeeded" else 1,
                    pod_name=f"job-{j}-{slot}-1",
                    node=f"node-{j % 7}",
                    image="ghcr.io/openclaw/runner:1",
                    log=f"starting job-{j} slot {slot}\n" + "working... ok\n" * rng.randint(5, 40),
                )
            )
            if len(pending) >= batch:
                store.put(pending)
                written += len(pending)
                pending = []
                if written % 100_000 == 0:
                    rate = written / (time.perf_counter() - began)
                    print(f"  {written:>9,} runs written ({rate:,.0f}/s)", flush=True)
    if pending:
        store.put(pending)
    return time.perf_counter() - began


def timed(label: str, fn: Callable[[int], object], repeat: int) -> float:
    samples = []
    for i in range(repeat):
        began = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    print(f"  {label:<52} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   (n={repeat})")
    return p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--url", help="a store URL (default: a new SQLite file in a temporary directory)")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench-archive-")
    url = args.url or f"sqlite://{tmp.name}/archive.db"
    now = datetime(2026, 12, 1, tzinfo=UTC)
    store = open_store(url)
    print(f"archive bench: {args.runs:,} runs, {args.jobs:,} jobs, {DAYS} days -> {redact(url)}")
    seconds = fill(store, args.runs, args.jobs, now)
    print(f"filled in {seconds:.1f} s ({args.runs / seconds:,.0f} runs/s, batches of 5000)")
    if url.startswith("sqlite://") and os.path.exists(url[len("sqlite://") :]):
        path = url[len("sqlite://") :]
        size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
        print(f"database size {size / 2**20:,.0f} MiB")

    rng = random.Random(2)
    month = Query(since=now - timedelta(days=DAYS), until=now + timedelta(days=1))

    def job(i: int) -> tuple[str, str]:
        j = rng.randrange(args.jobs)
        return f"team-{j % NAMESPACES}", f"job-{j}"

    def one_job_page(i: int) -> None:
        ns, name = job(i)
        page, _ = store.query(Query(ns, name, month.since, month.until, limit=100))
        assert len(page) == 100, len(page)

    def one_job_all(i: int) -> None:
        ns, name = job(i)
        count = sum(1 for _ in iterate(store, Query(ns, name, month.since, month.until, limit=1000)))
        assert count == args.runs // args.jobs, count

    def one_job_failed(i: int) -> None:
        ns, name = job(i)
        store.query(Query(ns, name, month.since, month.until, result="Failed", limit=100))

    def namespace_page(i: int) -> None:
        store.query(Query(f"team-{i % NAMESPACES}", None, month.since, month.until, limit=100))

    def failures_everywhere(i: int) -> None:
        store.query(Query(result="Failed", since=month.since, limit=100))

    def get_with_log(i: int) -> None:
        ns, name = job(i)
        j = name.split("-")[1]
        got = store.get(ns, name, f"job-{j}-{rng.randrange(args.runs // args.jobs)}")
        assert got is not None and got.log

    print("queries:")
    p99 = timed("one job, 30 days, first page of 100", one_job_page, args.repeat)
    timed(
        f"one job, 30 days, all {args.runs // args.jobs} runs (pages of 1000)", one_job_all, max(10, args.repeat // 10)
    )
    timed("one job, 30 days, result=Failed", one_job_failed, args.repeat)
    timed("one namespace, 30 days, first page of 100", namespace_page, args.repeat)
    timed("every namespace, result=Failed, first page of 100", failures_everywhere, args.repeat)
    timed("one run with its log (get)", get_with_log, args.repeat)
    began = time.perf_counter()
    deleted = store.purge(now, timedelta(days=DAYS), keep_per_job=10_000)
    print(f"purge (nothing due, {args.runs:,} runs checked): {deleted} deleted in {time.perf_counter() - began:.2f} s")
    began = time.perf_counter()
    deleted = store.purge(now, timedelta(days=DAYS - 1), keep_per_job=10_000)
    print(f"purge of the oldest day: {deleted:,} deleted in {time.perf_counter() - began:.2f} s")
    store.close()
    tmp.cleanup()
    goal = 100.0
    print(f"goal: one-job history p99 < {goal:.0f} ms -> {'met' if p99 < goal else 'MISSED'} ({p99:.2f} ms)")
    return 0 if p99 < goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
