"""Orchestration end to end (DESIGN §9): the real operator against the emulated API server.

Pipelines, run conditions (a ConfigMap key toggled at runtime, an HTTP check against a real
local server), a backfill of 20 slots, pause and resume, escalation to a real local webhook.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scenarios import NS, command_job, condition, job, runs, start, status, wait_status

from openclaw_cron import naming as n
from support import Cluster, wait_for


def after(name: str, *deps: str, **spec: Any) -> dict[str, Any]:
    """A command job that runs on its dependencies' success (no schedule of its own)."""
    body: dict[str, Any] = command_job(name, **spec)
    del body["spec"]["schedule"]
    body["spec"]["dependsOn"] = {"jobs": list(deps), **body["spec"].get("dependsOn", {})}
    return body


def started(rec: dict[str, Any]) -> str:
    return str(rec.get("startTime") or rec["scheduledTime"])


def test_three_job_pipeline_runs_in_order(cluster: Cluster) -> None:
    start(cluster)
    cluster.apply(
        command_job("ingest", every="3s"),
        after("process", "ingest"),
        after("report", "process"),
    )
    st = wait_status(cluster, "report", lambda s: len(runs(s, "Succeeded")) >= 2, 45, "two reports")
    assert {r["trigger"] for r in runs(st)} == {"Dependency"}
    assert st["schedule"] == "after process (All)"
    process = runs(status(cluster, "process"), "Succeeded")
    ingest = runs(status(cluster, "ingest"), "Succeeded")
    for rec in runs(st, "Succeeded"):
        # each report started after a process run that finished before it, which started after an ingest
        before = [p for p in process if p["completionTime"] <= started(rec)]
        assert before, (rec, process)
        latest = max(before, key=lambda p: p["completionTime"])
        assert any(i["completionTime"] <= started(latest) for i in ingest), (latest, ingest)


def test_last_step_is_skipped_when_the_first_fails(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="fetch-", exit_code=1, output="upstream down\n")
    start(cluster)
    # publish waits up to 2 s for fetch -> transform; fetch failing settles it at once
    sequential = {"jobs": ["fetch", "transform"], "mode": "Sequential", "waitSeconds": 2}
    cluster.apply(command_job("fetch", every="3s"), after("transform", "fetch"), command_job("publish", every="3s",
                  dependsOn=sequential))  # fmt: skip

    def failed_upstream(s: dict[str, Any]) -> bool:
        return any("last run Failed (fetch-" in (r.get("message") or "") for r in runs(s, "Skipped"))

    st = wait_status(cluster, "publish", failed_upstream, 30, "publish skipped because fetch failed")
    rec = next(r for r in runs(st, "Skipped") if "last run Failed" in (r.get("message") or ""))
    assert rec["reason"] == "DependencyNotMet"
    assert rec["message"].startswith("dependsOn (Sequential): fetch: no successful run since ")
    assert "; transform: no run since " in rec["message"]
    assert runs(st, "Succeeded") == [] and runs(status(cluster, "transform")) == []


def flags(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": NS},
            "data": {"enabled": value}}  # fmt: skip


def test_configmap_condition_toggled_at_runtime(cluster: Cluster) -> None:
    cluster.apply(flags("no"))
    start(cluster)
    gate = {"configMapKeyRef": {"name": "flags", "key": "enabled", "equals": "yes"}}
    cluster.apply(command_job("gated", every="2s", conditions=[gate]))
    st = wait_status(cluster, "gated", lambda s: len(runs(s, "Skipped")) >= 2, 30, "skips")
    rec = runs(st, "Skipped")[0]
    assert rec["reason"] == "ConditionNotMet"
    assert rec["message"] == "conditions[0] (configMapKeyRef): ConfigMap flags key 'enabled' is not 'yes' (it is 'no')"
    assert runs(st, "Succeeded") == []
    cluster.apply(flags("yes"))
    st = wait_status(cluster, "gated", lambda s: len(runs(s, "Succeeded")) >= 2, 30, "runs once enabled")
    cluster.apply(flags("off"))
    wait_status(cluster, "gated", lambda s: runs(s)[0]["result"] == "Skipped", 30, "skipped again")


class _Health(BaseHTTPRequestHandler):
    answer = 503
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"answer": 503, "hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ready", handler
    server.shutdown()
    server.server_close()


def test_http_condition_against_a_real_local_server(cluster: Cluster, health: tuple[str, type[_Health]]) -> None:
    url, handler = health
    start(cluster, OPENCLAW_CRON_HTTP_CONDITION_HOSTS="127.0.0.1")
    cluster.apply(command_job("probed", every="2s", conditions=[{"name": "api-ready", "http": {"url": url}}]))
    st = wait_status(cluster, "probed", lambda s: bool(runs(s, "Skipped")), 30, "a skip while 503")
    assert runs(st, "Skipped")[0]["message"] == f"condition 'api-ready': {url} answered HTTP 503, expected 200"
    handler.answer = 200
    wait_status(cluster, "probed", lambda s: bool(runs(s, "Succeeded")), 30, "a run once 200")
    assert handler.hits >= 2
    # without the operator setting, the same spec is invalid and says why
    cluster.apply(command_job("elsewhere", every="2s", conditions=[{"http": {"url": "http://example.com/"}}]))
    st = wait_status(cluster, "elsewhere", lambda s: s.get("state") == "Invalid", 20, "invalid")
    assert 'host "example.com" is not allowed' in condition(st, "Ready")["message"]


def test_backfill_of_20_slots_with_forbid(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="daily-", run_seconds=0.3)
    start(cluster)
    daily = command_job("daily", history={"statusLimit": 50, "successfulPodsLimit": 1}, concurrencyPolicy="Forbid")
    daily["spec"]["schedule"] = {"kind": "cron", "expr": "0 2 * * *", "tz": "UTC"}
    cluster.apply(daily)
    first = (datetime.now(UTC) - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    request = {"from": n.rfc3339(first), "to": n.rfc3339(first + timedelta(days=19, hours=23)), "id": "q3"}
    cluster.kubectl("annotate", "ocj", "daily", "-n", NS, f"cron.openclaw.io/backfill={json.dumps(request)}")
    st = wait_status(
        cluster, "daily", lambda s: (s.get("backfill") or {}).get("state") == "Completed" and not s.get("active"),
        90, "backfill done",
    )  # fmt: skip
    wait_status(cluster, "daily", lambda s: len(runs(s)) >= 20, 30, "20 records")
    st = status(cluster, "daily")
    recs = sorted((r for r in runs(st) if r["trigger"] == "Backfill"), key=lambda r: r["scheduledTime"])
    assert [r["scheduledTime"] for r in recs] == [n.rfc3339(first + timedelta(days=d, hours=2)) for d in range(20)]
    assert all(r["result"] == "Succeeded" for r in recs)
    for a, b in itertools.pairwise(recs):  # Forbid: never two at once
        assert a["completionTime"] <= b["startTime"], (a, b)
    assert st["backfill"]["started"] == 20 == st["backfill"]["total"]
    # asking again with the same id runs nothing more
    cluster.kubectl(
        "annotate", "ocj", "daily", "-n", NS, "--overwrite", f"cron.openclaw.io/backfill={json.dumps(request)}"
    )
    cluster.kubectl("annotate", "ocj", "daily", "-n", NS, "poke=1")
    time.sleep(2)
    assert status(cluster, "daily")["counters"]["runs"] == 20


def test_pause_after_three_failures_then_resume(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="brittle-", exit_code=1, output="no\n")
    start(cluster)
    cluster.apply(command_job("brittle", every="1s", failurePolicy={"pauseAfterConsecutiveFailures": 3}))
    st = wait_status(cluster, "brittle", lambda s: s.get("state") == "Paused", 30, "paused")
    assert st["counters"]["failed"] == 3 and "nextRunTime" not in st
    assert condition(st, "Paused")["status"] == "True"
    assert job(cluster, "brittle")["spec"].get("suspend") is False  # status only: the spec is untouched
    events = json.loads(cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Paused" and e["type"] == "Warning" for e in events)
    time.sleep(3)
    assert status(cluster, "brittle")["counters"]["runs"] == 3  # nothing scheduled while paused
    cluster.kubelet.script(name_prefix="brittle-", exit_code=0)
    cluster.kubectl("annotate", "ocj", "brittle", "-n", NS, "cron.openclaw.io/resume=now")
    st = wait_status(cluster, "brittle", lambda s: bool(runs(s, "Succeeded")), 30, "runs after resume")
    assert st["state"] != "Paused" and condition(st, "Paused")["status"] == "False"


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"path": self.path, **body})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_escalation_to_level_2_and_one_resolved_message(cluster: Cluster, tmp_path: Path) -> None:
    handler: type[_Hook] = type("Hook", (_Hook,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        channels = {name: {"type": "webhook", "url": f"{base}/{name}"} for name in ("ops", "oncall", "manager")}
        config = tmp_path / "notify.yaml"
        config.write_text(json.dumps({"channels": channels}))
        cluster.kubelet.script(name_prefix="critical-", exit_code=1)
        start(cluster, OPENCLAW_CRON_NOTIFY_CONFIG=str(config))
        levels = [{"afterSeconds": 0, "channels": ["oncall"]}, {"afterSeconds": 4, "channels": ["manager"]}]
        notify = {"channels": ["ops"], "alertAfterConsecutiveFailures": 2, "escalation": levels}
        cluster.apply(command_job("critical", every="1s", notify=notify))
        wait_for(lambda: any(m["path"] == "/manager" for m in handler.received), 40, message="level 2")
        st = status(cluster, "critical")
        assert st["escalation"]["level"] == 2
        cluster.kubelet.script(name_prefix="critical-", exit_code=0)
        wait_for(lambda: any(m["kind"] == "recovery" and m["path"] == "/manager" for m in handler.received), 30,
                 message="resolved")  # fmt: skip
        time.sleep(2)  # nothing more arrives
        got = [(m["path"], m["kind"]) for m in handler.received]
        assert got.count(("/oncall", "alert")) == 1 and got.count(("/manager", "alert")) == 1, got
        assert got.count(("/oncall", "recovery")) == 1 and got.count(("/manager", "recovery")) == 1, got
        assert got.count(("/ops", "alert")) == 1 and got.count(("/ops", "recovery")) == 1, got
        assert "escalation" not in status(cluster, "critical")
    finally:
        server.shutdown()
        server.server_close()
