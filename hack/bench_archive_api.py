"""Latency of the archive API over HTTP: one job's history page among many archived runs.

Measures what `kubectl openclaw history JOB` costs on the operator's side, both ways in: the
direct listener (plain HTTP) and the aggregated one (TLS, front-proxy certificate, SubjectAccess-
Review against the emulated API server; cached after the first request, and uncached). SQLite
store; `--runs` attempts over 30 days for `--jobs` jobs.

    .venv/bin/python hack/bench_archive_api.py --runs 200000 --jobs 200 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import support  # noqa: E402
from openclaw_cron.archive.model import RunEntry  # noqa: E402
from openclaw_cron.archive.server import ArchiveServerSettings, start_server  # noqa: E402
from openclaw_cron.archive.sqlite import SqliteStore  # noqa: E402
from openclaw_cron.kube import Kube  # noqa: E402
from support.frontproxy import FrontProxy, binding  # noqa: E402

BASE = "/apis/archive.cron.openclaw.io/v1alpha1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(store: SqliteStore, runs: int, jobs: int) -> None:
    now = datetime.now(UTC)
    step = timedelta(days=30) / max(1, runs // jobs)
    batch: list[RunEntry] = []
    for i in range(runs):
        job = f"job-{i % jobs}"
        when = now - step * (i // jobs)
        batch.append(
            RunEntry(
                namespace="bench",
                job=job,
                job_uid=f"uid-{job}",
                run_id=f"{job}-{int(when.timestamp())}",
                attempt=1,
                trigger="Schedule",
                result="Failed" if i % 17 == 0 else "Succeeded",
                scheduled_time=when,
                duration_seconds=12.5,
                log="x" * 200,
            )
        )
        if len(batch) >= 5000:
            store.put(batch)
            batch.clear()
    store.put(batch)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def measure(session: aiohttp.ClientSession, url: str, n: int, **kw: object) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        async with session.get(url, **kw) as resp:  # type: ignore[arg-type]
            await resp.read()
            assert resp.status == 200, resp.status
        out.append((time.perf_counter() - t) * 1000)
    return out


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-archive-api-"))
    store = SqliteStore(str(work / "archive.db"))
    t = time.perf_counter()
    fill(store, args.runs, args.jobs)
    print(f"filled {args.runs} runs for {args.jobs} jobs in {time.perf_counter() - t:.1f} s")
    with support.Cluster(work / "cluster", kubelet=False, install_crd=False) as cluster:
        fp = FrontProxy(cluster, work / "pki")
        cluster.apply(binding("ClusterRoleBinding", "alice", "view", "alice"))
        import kubernetes

        conf = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=conf)
        kube = Kube(conf)
        cert, key = fp.serving
        settings = ArchiveServerSettings(
            port=free_port(), bind="127.0.0.1", tls_cert=str(cert), tls_key=str(key), direct_port=free_port()
        )
        runner = await start_server(settings, store, kube)
        path = f"{BASE}/namespaces/bench/runs?job=job-7&since=30d&limit=50"
        async with aiohttp.ClientSession() as session:
            direct = await measure(session, f"http://127.0.0.1:{runner.ports['direct']}{path}", args.requests)
            tls = fp.client_ssl()
            url = f"https://127.0.0.1:{runner.ports['aggregated']}{path}"
            headers = {"X-Remote-User": "alice", "X-Remote-Group": "system:authenticated"}
            cached = await measure(session, url, args.requests, ssl=tls, headers=headers)
            uncached = []
            for i in range(min(args.requests, 100)):  # a new user each time: every request reviews
                headers = {"X-Remote-User": "alice", "X-Remote-Group": f"g{i}"}
                uncached += await measure(session, url, 1, ssl=tls, headers=headers)
        await runner.stop()
        await kube.close()
    store.close()
    for name, values in (("direct", direct), ("aggregated, SAR cached", cached), ("aggregated, SAR each", uncached)):
        print(f"{name:24s} p50 {statistics.median(values):6.2f} ms  p95 {pct(values, 95):6.2f} ms  (n={len(values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
