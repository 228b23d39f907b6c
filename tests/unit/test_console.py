"""The console: its aggregations against the archive, its slots against the scheduler's math, and its
pages over real HTTPS with identity and RBAC decided as behind a kube-apiserver (as test_archive_api).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import support
from openclaw_cron import schedule as sched
from openclaw_cron.api import Schedule
from openclaw_cron.archive.model import Query, RunEntry
from openclaw_cron.archive.open import open_store
from openclaw_cron.archive.server import ArchiveServerSettings, Runner, entry_json, start_server
from openclaw_cron.archive.sql import SqlStore
from openclaw_cron.archive.sqlite import SqliteStore
from openclaw_cron.archive.store import iterate
from openclaw_cron.cli.stats import summarize
from openclaw_cron.console import Console, queries
from openclaw_cron.console.jobs import job_row, schedule_words, spec_words
from openclaw_cron.console.upcoming import upcoming
from openclaw_cron.kube import Kube
from support.frontproxy import FrontProxy, binding
from support.postgres import PostgresServer, pg_server

__all__ = ["pg_server"]
ROOT = Path(__file__).resolve().parents[2]
CONSOLE = "/apis/archive.cron.openclaw.io/v1alpha1/namespaces/{ns}/console"
NOW = datetime.now(UTC).replace(microsecond=0)
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def run(ns: str, job: str, minutes_ago: float, result: str = "Succeeded", attempt: int = 1, **kw: Any) -> RunEntry:
    scheduled = NOW - timedelta(minutes=minutes_ago)
    duration = kw.pop("duration", 10.0)
    return RunEntry(
        namespace=ns,
        job=job,
        job_uid=f"uid-{ns}-{job}",
        run_id=f"{job}-{int(scheduled.timestamp())}",
        attempt=attempt,
        trigger=kw.pop("trigger", "Retry" if attempt > 1 else "Schedule"),
        result=result,
        scheduled_time=scheduled,
        start_time=None if result in ("Skipped", "Missed") else scheduled + timedelta(seconds=attempt * 2),
        completion_time=None
        if result in ("Skipped", "Missed")
        else scheduled + timedelta(seconds=attempt * 2 + duration),
        duration_seconds=None if result in ("Skipped", "Missed") else duration,
        **kw,
    )


def random_runs(seed: int = 7, count: int = 600) -> list[RunEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ns, job = rng.choice(["team-a", "team-b"]), f"job-{rng.randrange(6)}"
        result = rng.choice(["Succeeded"] * 6 + ["Failed", "TimedOut", "Skipped", "Missed"])
        minutes = i * 13 + rng.random()  # spread over ~5 days, one slot each
        out.append(run(ns, job, minutes, result, duration=rng.uniform(0.5, 300)))
        if result == "Failed" and rng.random() < 0.5:  # a retry that succeeded: counts once, as Succeeded
            first = out[-1]
            out.append(run(ns, job, minutes, "Succeeded", attempt=2, duration=rng.uniform(0.5, 300)))
            assert out[-1].run_id == first.run_id
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store: Any = SqliteStore(str(tmp_path / "a.db"))
    else:
        pg: PostgresServer = request.getfixturevalue("pg_server")
        store = open_store(pg.create_database())
    yield store
    store.close()


def test_job_stats_match_the_plugins_summary(sql_store: SqlStore) -> None:
    entries = random_runs()
    sql_store.put(entries)
    since, until = NOW - timedelta(days=3), NOW + timedelta(seconds=1)
    totals = queries.job_stats(sql_store, ["team-a", "team-b"], since, until)
    items = [entry_json(e) for e in iterate(sql_store, Query(since=since, until=until, limit=1000))]
    expected = {(r["namespace"], r["job"]): r for r in summarize(items)}
    assert set(totals.by_job) == set(expected)
    for key, want in expected.items():
        got = totals.by_job[key]
        assert (got.runs, got.succeeded, got.failed, got.not_run) == (
            want["runs"], want["succeeded"], want["failed"], want["notRun"]
        ), key  # fmt: skip
        assert got.p50 == pytest.approx(want["p50Seconds"]) and got.p95 == pytest.approx(want["p95Seconds"]), key
        assert got.success_rate == pytest.approx(want["successRate"], abs=1e-4)
    assert totals.runs == sum(r["runs"] for r in expected.values())
    # one namespace only: team-b's runs are not counted
    only_a = queries.job_stats(sql_store, ["team-a"], since, until)
    assert {k[0] for k in only_a.by_job} == {"team-a"}


def test_timeline_buckets_are_the_runs_times(sql_store: SqlStore) -> None:
    entries = [run("team-a", "tl", m, "Failed" if m == 90 else "Succeeded", duration=300) for m in (30, 90, 150)]
    retry = run("team-a", "tl", 90, "Succeeded", attempt=2, duration=60, trigger="Retry")
    later = entries[1].completion_time + timedelta(seconds=120)  # type: ignore[operator]  # the retry delay
    entries.append(dataclasses.replace(retry, start_time=later, completion_time=later + timedelta(seconds=60)))
    entries.append(run("team-a", "dep", 200, trigger="Dependency"))
    sql_store.put(entries)
    start, end = NOW - timedelta(hours=6), NOW
    buckets = queries.timeline(sql_store, ["team-a"], ["tl", "dep"], start, end, 480)
    by_run = {b.run: b for b in buckets}
    assert len(buckets) == 5 and all(b.count == 1 for b in buckets)
    for e in entries:
        b = by_run[f"{e.job}~{e.run_id}~{e.attempt}"]
        assert (b.start, b.end) == (e.start_time, e.completion_time)
    assert by_run[f"tl~{entries[1].run_id}~1"].result == "failed"
    assert by_run[f"tl~{entries[3].run_id}~2"].retries == 1
    assert by_run[f"dep~{entries[4].run_id}~1"].dependency == 1
    # a coarse grid merges neighbours into one bar that counts them
    coarse = queries.timeline(sql_store, ["team-a"], ["tl"], start, end, 1)
    assert len(coarse) == 1 and coarse[0].count == 4 and coarse[0].failed == 1 and coarse[0].run == ""


def test_upcoming_slots_are_the_schedulers() -> None:
    body = {
        "metadata": {"name": "m", "namespace": "a", "uid": "u-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"schedule": {"kind": "cron", "expr": "30 1 * * *", "tz": "America/New_York", "staggerSeconds": 600}},
    }
    row = job_row(body)
    start = datetime(2026, 3, 7, tzinfo=UTC)  # across the DST change of 2026-03-08
    slots, more = upcoming(row, start, start + timedelta(days=3))
    clock = sched.JobClock(schedule=row.schedule, created=row.created, uid="u-1")  # type: ignore[arg-type]
    assert slots == sched.next_n(clock, start, 3) and not more
    assert {(s - sched.stagger("u-1", 600)).strftime("%H:%M") for s in slots} == {"06:30", "05:30"}
    every = job_row({**body, "spec": {"schedule": {"kind": "every", "every": "1s"}}})
    slots, more = upcoming(every, start, start + timedelta(hours=1), cap=100)
    assert len(slots) == 100 and more
    suspended = job_row({**body, "spec": {**body["spec"], "suspend": True}})
    assert upcoming(suspended, start, start + timedelta(days=1)) == ([], False)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (
            {"kind": "cron", "expr": "0 7 * * *", "tz": "America/Los_Angeles"},
            "every day at 07:00 (America/Los_Angeles)",
        ),
        ({"kind": "cron", "expr": "*/15 * * * * *"}, "every 15 seconds (UTC)"),
        ({"kind": "cron", "expr": "30 9 * * 1-5"}, "weekdays at 09:30 (UTC)"),
        ({"kind": "cron", "expr": "5 4 1 * *"}, "5 4 1 * * (UTC)"),
        ({"kind": "every", "every": "20m", "staggerSeconds": 30}, "every 20m, up to 30s later (stagger)"),
        ({"kind": "at", "at": "45s"}, "once, 45s after creation"),
    ],
)
def test_schedule_in_words(schedule: dict[str, Any], words: str) -> None:
    assert schedule_words(Schedule.model_validate(schedule)) == words


def test_spec_words_never_show_a_secret_value() -> None:
    body = {
        "metadata": {"name": "x", "namespace": "a"},
        "spec": {
            "payload": {"kind": "command", "command": ["sh"], "env": [{"name": "TOKEN", "value": "s3cr3t-env"}]},
            "conditions": [{"secretKeyRef": {"name": "flags", "key": "go", "equals": "s3cr3t-flag"}}],
        },
    }
    text = json.dumps(spec_words(body))
    assert "s3cr3t" not in text and "TOKEN" in text and "Secret flags key go equals the expected value" in text


# --- pages over the aggregated listener ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


JOBS = [
    {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"schedule": {"kind": "every", "every": "1h"}, "payload": {"kind": "agentTurn", "message": "hi"}},
        "status": {"state": "Scheduled", "lastRunResult": "Succeeded"},
    }
    for ns, name in [("team-a", "brief"), ("team-a", "backup"), ("team-b", "secret-job")]
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.Cluster]:
    with support.Cluster(tmp_path_factory.mktemp("console"), kubelet=False, install_crd=False) as c:
        yield c


@pytest.fixture(scope="module")
def pki(cluster: support.Cluster, tmp_path_factory: pytest.TempPathFactory) -> FrontProxy:
    fp = FrontProxy(cluster, tmp_path_factory.mktemp("pki"))
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}},
        binding("RoleBinding", "alice-view", "view", "alice", "team-a"),
        binding("ClusterRoleBinding", "carol-view", "view", "carol"),
    )
    return fp


@pytest.fixture
async def server(cluster: support.Cluster, pki: FrontProxy, tmp_path: Path) -> AsyncIterator[Runner]:
    import kubernetes

    store = SqliteStore(str(tmp_path / "archive.db"))
    store.put(
        [
            run("team-a", "brief", 60, reply=XSS, log=f"line one\n{XSS}\n", delivery={"delivered": True}),
            run("team-a", "backup", 120, "Failed", reason="Error", message=XSS),
            run("team-b", "secret-job", 30, log="team-b's private output\n"),
        ]
    )
    conf = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=conf)
    kube = Kube(conf)
    cert, key = pki.serving
    settings = ArchiveServerSettings(port=_free_port(), bind="127.0.0.1", tls_cert=str(cert), tls_key=str(key),
                                     direct_port=0)  # fmt: skip
    console = Console(store, lambda ns: [j for j in JOBS if ns is None or j["metadata"]["namespace"] == ns])
    runner = await start_server(settings, store, kube, mount=console.mount)
    yield runner
    await runner.stop()
    await kube.close()
    store.close()


async def page(runner: Runner, pki: FrontProxy, path: str, user: str | None = "alice", cert: bool = True
               ) -> tuple[int, dict[str, str], str]:  # fmt: skip
    ctx = ssl.create_default_context(cadata=pki.serving_ca.pem)
    if cert:
        ctx.load_cert_chain(*(str(p) for p in pki.proxy_client))
    headers = [("X-Remote-User", user), ("X-Remote-Group", "system:authenticated")] if user else []
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"https://127.0.0.1:{runner.ports['aggregated']}{path}", ssl=ctx, headers=headers, allow_redirects=False
        ) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


async def test_overview_shows_only_namespaces_rbac_allows(server: Runner, pki: FrontProxy) -> None:
    code, headers, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/overview")
    assert code == 200, html
    assert "brief" in html and "backup" in html and "secret-job" not in html
    assert "default-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in html
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-b") + "/overview")
    assert code == 403 and "secret-job" not in html
    assert "User &#34;alice&#34; cannot list resource &#34;runs&#34;" in html and "team-b" in html
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/overview?scope=all")
    assert code == 200 and "secret-job" not in html and 'id="t-namespaces">1<' in html
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/overview?scope=all", user="carol")
    assert code == 200 and "secret-job" in html and 'id="t-namespaces">2<' in html
    for path in ("/run?name=secret-job~x", "/job?name=secret-job", "/timeline", "/log?name=secret-job~x"):
        code, _, html = await page(server, pki, CONSOLE.format(ns="team-b") + path)
        assert code == 403 and "private output" not in html, path


async def test_no_identity_no_console(server: Runner, pki: FrontProxy) -> None:
    code, _, text = await page(server, pki, CONSOLE.format(ns="team-a") + "/overview", cert=False)
    assert code == 401 and "brief" not in text
    code, _, text = await page(server, pki, CONSOLE.format(ns="team-a") + "/overview", user=None)
    assert code == 401 and "brief" not in text


async def test_replies_logs_and_messages_are_escaped(server: Runner, pki: FrontProxy) -> None:
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/job?name=brief")
    assert code == 200, html
    name = re.search(r'data-run="(brief~[^"]+)"', html)
    assert name
    code, headers, html = await page(server, pki, CONSOLE.format(ns="team-a") + f"/run?name={name.group(1)}")
    assert code == 200, html
    assert "<script>window.__xss" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html  # the reply and the log line, as text
    assert html.count("&lt;script&gt;window.__xss=1") == 2
    scripts = re.findall(r"<script[^>]*>", html)
    assert all(re.fullmatch(r'<script src="[^"]+/console/[a-z0-9.-]+\.js" defer>', s) for s in scripts), scripts
    code, headers, text = await page(server, pki, CONSOLE.format(ns="team-a") + f"/log?name={name.group(1)}")
    assert code == 200 and text == f"line one\n{XSS}\n"
    assert headers["Content-Type"].startswith("text/plain") and "attachment" in headers["Content-Disposition"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/job?name=backup")
    assert XSS not in html and "&lt;img src=x" not in html  # messages go to the archive, not this page


async def test_bad_parameters_say_which(server: Runner, pki: FrontProxy) -> None:
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/timeline?from=yesterday")
    assert code == 400 and "from: expected an RFC 3339 time" in html
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/job?name=brief&result=great")
    assert code == 400 and "result: unknown value" in html
    code, _, html = await page(server, pki, CONSOLE.format(ns="team-a") + "/overview?page=0")
    assert code == 400 and "page: expected a whole number" in html


async def test_static_assets_are_the_vendored_ones(server: Runner, pki: FrontProxy) -> None:
    vendored = (ROOT / "operator/openclaw_cron/console/static/VENDORED.md").read_text()
    code, headers, js = await page(server, pki, CONSOLE.format(ns="team-a") + "/htmx-2.0.11.min.js", user=None)
    assert code == 200 and headers["Content-Type"].startswith("text/javascript")
    assert hashlib.sha256(js.encode()).hexdigest() in vendored
    code, _, _ = await page(server, pki, CONSOLE.format(ns="team-a") + "/console.js", cert=False)
    assert code == 401
