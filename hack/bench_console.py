"""The console's server time and page weight at 1,000 jobs and 50,000 runs in the window.

The console over a real SQLite archive (SqliteStore.put, the operator's store code) and a
static view of `--jobs` jobs (what the scheduler would hand it), served on the archive's direct
listener (loopback HTTP: no SubjectAccessReview, whose cost is in bench_archive_api.py). The
`--runs` attempts are spread over the last 24 hours, so they are all in the timeline's default
window (last 24 h + next 24 h) and in the overview's 7-day figures. Each page is requested
`--requests` times one after another; p50/p99 are of the whole request as the client sees it.

    .venv/bin/python hack/bench_console.py --jobs 1000 --runs 50000 --requests 40
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]

from openclaw_cron.archive.model import RunEntry  # noqa: E402
from openclaw_cron.archive.server import ArchiveServerSettings, start_server  # noqa: E402
from openclaw_cron.archive.sqlite import SqliteStore  # noqa: E402
from openclaw_cron.console import Console  # noqa: E402

NS = "bench"
BASE = f"/apis/archive.cron.openclaw.io/v1alpha1/namespaces/{NS}/console"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jobs(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        schedule = (
            {"kind": "cron", "expr": f"{i % 60} * * * *", "tz": "Europe/Berlin"}
            if i % 2
            else {"kind": "every", "every": "30m", "staggerSeconds": 300}
        )
        out.append(
            {
                "metadata": {"name": f"job-{i:04d}", "namespace": NS, "uid": f"uid-{i}",
                             "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"schedule": schedule, "payload": {"kind": "command", "command": ["true"]}},
                "status": {"state": "Scheduled", "lastRunResult": "Succeeded",
                           "nextRunTime": (datetime.now(UTC) + timedelta(minutes=i % 60)).isoformat()},
            }
        )  # fmt: skip
    return out


def fill(store: SqliteStore, runs: int, job_count: int) -> None:
    rng = random.Random(1)
    now = datetime.now(UTC)
    batch: list[RunEntry] = []
    for i in range(runs):
        job = f"job-{i % job_count:04d}"
        when = now - timedelta(seconds=rng.uniform(60, 86400 - 60))
        result = rng.choice(["Succeeded"] * 8 + ["Failed", "Skipped"])
        duration = rng.uniform(1, 600)
        started = when + timedelta(seconds=2)
        batch.append(
            RunEntry(
                namespace=NS, job=job, job_uid=f"uid-{job}", run_id=f"{job}-{int(when.timestamp())}-{i}", attempt=1,
                trigger="Schedule", result=result, scheduled_time=when,
                start_time=None if result == "Skipped" else started,
                completion_time=None if result == "Skipped" else started + timedelta(seconds=duration),
                duration_seconds=None if result == "Skipped" else duration, log=f"log {i}\n",
            )
        )  # fmt: skip
        if len(batch) == 5000:
            store.put(batch)
            batch = []
    store.put(batch)


async def measure(port: int, path: str, requests: int) -> tuple[list[float], int, int]:
    times: list[float] = []
    size = packed = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(requests):
            t = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                body = await resp.read()
                assert resp.status == 200, (resp.status, body[:300])
            times.append(time.perf_counter() - t)
            size, packed = len(body), len(gzip.compress(body, 6))
    return times, size, packed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=50000)
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "archive.db"))
        t = time.perf_counter()
        fill(store, args.runs, args.jobs)
        print(f"filled {args.runs} runs of {args.jobs} jobs in {time.perf_counter() - t:.1f}s")
        view = jobs(args.jobs)
        console = Console(store, lambda ns: view)
        port = free_port()
        runner = await start_server(ArchiveServerSettings(port=0, direct_port=port), store, mount=console.mount)
        try:
            pages = {
                "overview (100 of 1,000 jobs, 7-day figures of all)": f"{BASE}/overview",
                "overview, live partial": f"{BASE}/overview?partial=1",
                "timeline (50 jobs, last 24 h + next 24 h)": f"{BASE}/timeline",
                "timeline, last 7 d + next 24 h": f"{BASE}/timeline?from=7d",
                "job page (history, durations chart)": f"{BASE}/job?name=job-0007",
            }
            print(f"{'page':55} {'p50':>8} {'p99':>8} {'bytes':>9} {'gzip':>8}")
            for label, path in pages.items():
                await measure(port, path, 2)  # warm the caches (templates, SQLite pages)
                times, size, packed = await measure(port, path, args.requests)
                p50, p99 = pct(times, 50) * 1000, pct(times, 99) * 1000
                print(f"{label:55} {p50:6.1f}ms {p99:6.1f}ms {size:9,d} {packed:8,d}")
            print(f"({args.requests} requests each, one after another; mean of all: "
                  f"{statistics.mean(times) * 1000:.1f} ms for the last page)")  # fmt: skip
        finally:
            await runner.stop()
            store.close()


if __name__ == "__main__":
    asyncio.run(main())
