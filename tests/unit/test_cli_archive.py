"""The plugin's archive verbs (history, logs after the Pod is gone, summary --since) against a real archive API.

The archive server runs for real (aiohttp, SQLite store) on 127.0.0.1. The plugin reaches it
both ways: `--archive-url` (direct), and through "the API server" — a kubeconfig whose server
is the archive listener itself, which serves the same /apis/archive.cron.openclaw.io paths the
aggregation layer proxies, so the plugin's kubernetes-client path (call_api, auth, errors) runs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import support
from openclaw_cron import cli
from openclaw_cron.archive.model import RunEntry
from openclaw_cron.archive.server import ArchiveServerSettings, start_server
from openclaw_cron.archive.sqlite import SqliteStore
from openclaw_cron.cli.stats import percentile, summarize

NOW = datetime.now(UTC).replace(microsecond=0)


def entry(job: str, hours: float, result: str, duration: float, attempt: int = 1, ns: str = "default") -> RunEntry:
    scheduled = NOW - timedelta(hours=hours)
    run_id = f"{job}-{int(scheduled.timestamp())}"
    return RunEntry(
        namespace=ns,
        job=job,
        job_uid=f"uid-{job}",
        run_id=run_id,
        attempt=attempt,
        trigger="Schedule",
        result=result,
        scheduled_time=scheduled,
        start_time=scheduled,
        completion_time=scheduled + timedelta(seconds=duration),
        duration_seconds=duration,
        reason="" if result == "Succeeded" else "Error",
        message="" if result == "Succeeded" else "exit code 1",
        pod_name=f"{run_id}-{attempt}",
        log=f"{job} {run_id} attempt {attempt}: {result}\n",
        delivery={"delivered": True, "replyDisposition": "sent"} if job == "brief" else {},
        reply="Good morning: three meetings." if job == "brief" else "",
    )


ENTRIES = [
    entry("backup", 1, "Succeeded", 10),
    entry("backup", 2, "Failed", 20),
    entry("backup", 2, "Succeeded", 30, attempt=2),  # the retry of run 2 succeeded
    entry("backup", 3, "Failed", 40),
    entry("backup", 4, "Succeeded", 50),
    entry("backup", 5, "Skipped", 0),
    entry("backup", 24 * 10, "Failed", 99),  # outside --since 7d
    entry("brief", 1, "Succeeded", 5, ns="team-b"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def archive_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = SqliteStore(str(tmp_path_factory.mktemp("cli-archive") / "archive.db"))
    store.put(ENTRIES)
    port = _free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        runner = await start_server(ArchiveServerSettings(port=0, direct_port=port), store)
        started.set()
        await stop.wait()
        await runner.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    store.close()


@pytest.fixture(scope="module")
def via_api_server(tmp_path_factory: pytest.TempPathFactory, archive_url: str) -> Path:
    return support.write_kubeconfig(tmp_path_factory.mktemp("kc") / "kubeconfig", archive_url)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- history ------------------------------------------------------------------------------------


def test_history_table(archive_url: str) -> None:
    code, out, err = run("history", "backup", "-n", "default", "--since", "7d", "--archive-url", archive_url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["JOB", "RUN", "ID", "ATTEMPT", "TRIGGER", "SCHEDULED", "DURATION", "RESULT", "REASON"]
    results = [line.split()[-2] if line.split()[-1] == "Error" else line.split()[-1] for line in lines[1:]]
    assert results == ["Succeeded", "Succeeded", "Failed", "Failed", "Succeeded", "Skipped"]


def test_history_failed_as_csv(archive_url: str) -> None:
    code, out, err = run("history", "-n", "default", "--result", "failed", "-o", "csv", "--archive-url", archive_url)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["job"], r["attempt"], r["result"], r["durationSeconds"]) for r in rows] == [
        ("backup", "1", "Failed", "20.0"),
        ("backup", "1", "Failed", "40.0"),
        ("backup", "1", "Failed", "99.0"),
    ]
    assert all(r["reason"] == "Error" and r["message"] == "exit code 1" and r["namespace"] == "default" for r in rows)


def test_history_json_through_the_api_server_carries_reply_and_delivery(via_api_server: Path) -> None:
    code, out, err = run("--kubeconfig", str(via_api_server), "history", "-n", "team-b", "-o", "json")
    assert code == 0, err
    (item,) = json.loads(out)["items"]
    assert item["job"] == "brief" and item["reply"] == "Good morning: three meetings."
    assert item["delivery"] == {"delivered": True, "replyDisposition": "sent"}


def test_history_all_namespaces_and_limit(via_api_server: Path) -> None:
    code, out, _ = run("--kubeconfig", str(via_api_server), "history", "-A", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("NAMESPACE") and len(lines) == 3


def test_history_bad_filter_shows_the_server_message(archive_url: str, via_api_server: Path) -> None:
    for prefix in (["--archive-url", archive_url], ["--kubeconfig", str(via_api_server)]):
        code, out, err = run("history", "-n", "default", "--since", "last tuesday", *prefix)
        assert code == cli.EXIT_ERROR and not out
        assert err.startswith("Error from server (BadRequest): since: expected an RFC 3339 time"), err


def test_history_unreachable_archive(tmp_path: Path) -> None:
    code, _, err = run("history", "-n", "default", "--archive-url", f"http://127.0.0.1:{_free_port()}")
    assert code == cli.EXIT_ERROR and "error: unable to reach the archive at http://127.0.0.1:" in err


# --- logs after the Pod is gone -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.Cluster]:
    with support.Cluster(tmp_path_factory.mktemp("cli-archive-cluster"), kubelet=False) as c:
        yield c


def test_logs_come_from_the_archive_once_the_pod_is_gone(cluster: support.Cluster, archive_url: str) -> None:
    failed = next(e for e in ENTRIES if e.result == "Failed")
    kc = ["--kubeconfig", str(cluster.kubeconfig)]
    code, out, err = run(*kc, "logs", "backup", "--run", failed.run_id, "--attempt", "1", "--archive-url", archive_url)
    assert code == 0, err
    assert out == f"backup {failed.run_id} attempt 1: Failed\n"
    assert f"archived log of run {failed.run_id}, attempt 1 (the Pod is gone)" in err
    # No attempt: the latest one (the retry that succeeded).
    code, out, _ = run(*kc, "logs", "backup", "--run", failed.run_id, "--archive-url", archive_url)
    assert out == f"backup {failed.run_id} attempt 2: Succeeded\n"
    # No run: the newest archived run of the job.
    code, out, _ = run(*kc, "logs", "backup", "--archive-url", archive_url)
    assert out == f"backup {ENTRIES[0].run_id} attempt 1: Succeeded\n"
    code, _, err = run(*kc, "logs", "backup", "--run", "backup-1", "--archive-url", archive_url)
    assert code == cli.EXIT_ERROR
    assert err.startswith("error: no run Pods found for run backup-1 of backup in namespace default")
    assert 'Error from server (NotFound): runs.archive.cron.openclaw.io "backup~backup-1" not found' in err


# --- summary --since ------------------------------------------------------------------------------


def test_summary_since_from_the_archive(archive_url: str) -> None:
    code, out, err = run("summary", "-n", "default", "--since", "7d", "-o", "json", "--archive-url", archive_url)
    assert code == 0, err
    (row,) = json.loads(out)
    # 4 runs that ran (run 2 counts once, with its retry's result), 1 skipped; 3 of 4 succeeded.
    assert row == {
        "namespace": "default",
        "job": "backup",
        "runs": 4,
        "succeeded": 3,
        "failed": 1,
        "notRun": 1,
        "successRate": 0.75,
        "p50Seconds": 30.0,
        "p95Seconds": 50.0,
        "lastFailureTime": row["lastFailureTime"],
        "lastFailureReason": "Error",
    }
    assert row["lastFailureTime"] == (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, _ = run("summary", "-n", "default", "--since", "7d", "--archive-url", archive_url)
    assert out.splitlines()[0].split() == ["JOB", "RUNS", "SUCCESS", "P50", "P95", "LAST", "FAILURE"]
    assert out.splitlines()[1].split()[:5] == ["backup", "4", "75.0%", "30s", "50s"]
    code, out, _ = run("summary", "-A", "--since", "30d", "-o", "csv", "--archive-url", archive_url)
    rows = {r["job"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["backup"]["runs"] == "5" and rows["brief"]["successRate"] == "1.0"


def test_summary_csv_needs_since() -> None:
    code, _, err = run("summary", "-o", "csv", "--kubeconfig", "/nonexistent")
    assert code == cli.EXIT_ERROR and "summary: -o csv needs --since" in err


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_summarize_counts_a_retried_run_once() -> None:
    items: list[dict[str, Any]] = [
        {"metadata": {"namespace": "a"}, "job": "j", "runId": "r1", "attempt": 2, "result": "Succeeded"},
        {"metadata": {"namespace": "a"}, "job": "j", "runId": "r1", "attempt": 1, "result": "Failed"},
        {"metadata": {"namespace": "a"}, "job": "j", "runId": "r2", "attempt": 1, "result": "TimedOut"},
    ]
    (row,) = summarize(items)
    assert (row["runs"], row["succeeded"], row["failed"], row["successRate"]) == (2, 1, 1, 0.5)
    assert row["lastFailureReason"] == "TimedOut" and row["p50Seconds"] is None


# --- where the archive API is not served ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["history"],
        ["history", "-A", "-o", "json"],
        ["logs", "backup", "--run", "backup-1", "--archive"],
        ["summary", "--since", "7d"],
        ["console", "--no-browser"],
    ],
)
def test_each_archive_verb_says_which_api_is_missing(cluster: support.Cluster, argv: list[str]) -> None:
    """The emulated API server serves no archive group here, as a cluster installed without it."""
    code, out, err = run("--kubeconfig", str(cluster.kubeconfig), *argv)
    assert code == cli.EXIT_ERROR and not out
    assert err.count("\n") == 1 and "NotFound" not in err, err
    assert err.startswith("error: the run archive API (archive.cron.openclaw.io/v1alpha1) is not served"), err
    assert "--archive-url" in err and "Helm" in err
