"""The run archive end to end: the real operator archives every attempt before pruning its Pod.

The operator runs against the emulated API server with a real store (SQLite file, or a real
PostgreSQL server started for the test) and serves the archive's direct read API on loopback;
the real plugin (`kubectl-openclaw`, a separate process) reads it with `--archive-url`.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from scenarios import NS, command_job, job_pods, patch_spec, start, status, wait_status

from support import Cluster, wait_for
from support.http import list_all
from support.postgres import PostgresServer, pg_server

__all__ = ["pg_server"]  # the session's PostgreSQL server, a fixture
PLUGIN = str(Path(sys.executable).parent / "kubectl-openclaw")
RUN_ID_COLUMN = "runId"
HISTORY = {"successfulPodsLimit": 1, "failedPodsLimit": 1, "statusLimit": 5}
#: Each run prints its own run id; runs whose Unix second is a multiple of 3 fail.
SCRIPT = 'echo "log of $RUN"; test $(( ${RUN##*-} % 3 )) -ne 0'
RUN_ENV = [{"name": "RUN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['cron.openclaw.io/run-id']"}}}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def archived_job(name: str, every: str = "1s") -> dict[str, Any]:
    obj = command_job(name, every=every, history=HISTORY)
    obj["spec"]["payload"].update({"command": ["sh", "-c", SCRIPT], "env": RUN_ENV})
    return obj


def archive_env(url: str, port: int) -> dict[str, str]:
    return {"OPENCLAW_CRON_ARCHIVE_URL": url, "OPENCLAW_CRON_ARCHIVE_DIRECT_PORT": str(port),
            "OPENCLAW_CRON_ARCHIVE_PORT": "0"}  # fmt: skip


def runs_in_archive(port: int, job: str) -> list[dict[str, Any]]:
    return list_all(
        f"http://127.0.0.1:{port}/apis/archive.cron.openclaw.io/v1alpha1/namespaces/{NS}/runs?job={job}&limit=500"
    )


def plugin(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLUGIN, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cluster.env(),
        check=False,
    )


def _run_ids(port: int, job: str) -> set[str]:
    return {r["runId"] for r in runs_in_archive(port, job)}


def test_thirty_runs_with_one_kept_pod_all_archived_with_their_logs(cluster: Cluster, tmp_path: Path) -> None:
    cluster.kubelet.script(name_prefix="arch-", execute=True)
    port = _free_port()
    start(cluster, **archive_env(f"sqlite:///{tmp_path}/archive.db", port))
    cluster.apply(archived_job("arch"))
    wait_status(cluster, "arch", lambda s: s.get("counters", {}).get("runs", 0) >= 30, 90, "30 runs")
    patch_spec(cluster, "arch", {"suspend": True})
    time.sleep(2)
    total = status(cluster, "arch")["counters"]
    wait_for(lambda: len(runs_in_archive(port, "arch")) >= total["runs"], 30, 0.5, "every run archived")
    # the history limits hold once archived: one succeeded and one failed Pod at most
    wait_for(lambda: len(job_pods(cluster, "arch")) <= 2, 30, 0.5, "pods pruned after archiving")

    archived = runs_in_archive(port, "arch")
    ids = sorted({r["runId"] for r in archived})
    assert len(ids) == total["runs"], (len(ids), total)
    live = {p["metadata"]["labels"]["cron.openclaw.io/run-id"] for p in job_pods(cluster, "arch")}
    gone = [i for i in ids if i not in live]
    assert len(gone) >= 28
    for run_id in gone:  # every run's log, from the archive, after its Pod is gone
        done = plugin(cluster, "logs", "arch", "-n", NS, "--run", run_id, "--archive-url", f"http://127.0.0.1:{port}")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"log of {run_id}\n", (run_id, done.stdout, done.stderr)

    done = plugin(cluster, "history", "arch", "-n", NS, "--result", "failed", "-o", "csv", "--since", "1h",
                  "--limit", "500", "--archive-url", f"http://127.0.0.1:{port}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    failed = {i for i in ids if int(i.rsplit("-", 1)[1]) % 3 == 0}
    assert {r[RUN_ID_COLUMN] for r in rows} == failed
    assert len(rows) == total["failed"]
    assert {r["result"] for r in rows} == {"Failed"}


def _lags(cluster: Cluster, name: str, since: float) -> list[float]:
    """Seconds from each Pod's scheduled time to its creation, for slots after `since`."""
    out = []
    for p in job_pods(cluster, name):
        meta = p["metadata"]
        scheduled = datetime.fromisoformat(
            meta["annotations"]["cron.openclaw.io/scheduled-time"].replace("Z", "+00:00")
        )
        created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        if scheduled.timestamp() >= since:
            out.append((created - scheduled).total_seconds())
    return out


def test_database_down_30s_and_operator_killed_loses_nothing_and_delays_no_run(
    cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    pg: PostgresServer = request.getfixturevalue("pg_server")
    cluster.kubelet.script(name_prefix="pgjob-", execute=True)
    port = _free_port()
    dsn = pg.create_database()
    op = start(cluster, **archive_env(dsn, port))
    cluster.apply(archived_job("pgjob", every="2s"))
    wait_status(cluster, "pgjob", lambda s: s.get("counters", {}).get("runs", 0) >= 3, 60, "runs")
    wait_for(lambda: len(runs_in_archive(port, "pgjob")) >= 3, 30, 0.5, "first runs archived")

    pg.stop()
    outage = time.time()
    before = status(cluster, "pgjob")["counters"]["runs"]
    time.sleep(30)
    during = status(cluster, "pgjob")["counters"]["runs"] - before
    assert during >= 12, f"runs were delayed by the store outage: {during} in 30 s of every 2s"
    lags = _lags(cluster, "pgjob", outage)
    assert lags and max(lags) < 2.0, f"schedule lag during the outage: {sorted(lags)[-3:]}"
    # nothing could be archived: every finished Pod since the outage is kept
    assert len(job_pods(cluster, "pgjob")) >= during

    os.kill(op.pid, signal.SIGKILL)  # between the Pods' end and their archiving
    op.process.wait(10)
    pg.start()
    start(cluster, **archive_env(dsn, port))
    wait_status(cluster, "pgjob", lambda s: s.get("counters", {}).get("runs", 0) >= before + during + 2, 60, "runs")
    patch_spec(cluster, "pgjob", {"suspend": True})
    time.sleep(3)
    total = status(cluster, "pgjob")["counters"]["runs"]
    wait_for(lambda: len(_run_ids(port, "pgjob")) >= total, 60, 0.5, "every run archived after the outage")
    archived = {r["runId"]: r for r in runs_in_archive(port, "pgjob")}
    assert len(archived) == total
    wait_for(lambda: len(job_pods(cluster, "pgjob")) <= 2, 60, 0.5, "pods pruned once archived")
    for run_id in archived:
        done = plugin(cluster, "logs", "pgjob", "-n", NS, "--run", run_id, "--archive-url", f"http://127.0.0.1:{port}")
        assert done.returncode == 0 and done.stdout == f"log of {run_id}\n", (run_id, done.stdout, done.stderr)
