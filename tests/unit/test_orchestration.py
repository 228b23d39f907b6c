"""Orchestration semantics (DESIGN §9): the pure rules, and the reconciler applying them.

The reconciler tests play the operator's loop by hand like test_reconcile.py: reconcile,
"apply" the plan (status, Pods rendered by the real renderer), advance the clock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession, ClientTimeout, web

from openclaw_cron import naming as n
from openclaw_cron.api import DependsOn, EscalationStatus, Notify, RunCondition
from openclaw_cron.job import JobView
from openclaw_cron.orchestration import (
    JobSummary,
    OrchestrationInputs,
    RunSummary,
    dependents,
    escalation,
    gather_inputs,
)
from openclaw_cron.orchestration import conditions as cond
from openclaw_cron.orchestration import dependencies as deps
from openclaw_cron.pods import JobRef, pod_view, render_pod
from openclaw_cron.reconcile import Context, Plan, parse_spec, reconcile
from openclaw_cron.settings import Settings
from support.http import serving

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
REF = JobRef(namespace="team", name="report", uid="0b6c5d4e-aaaa-bbbb-cccc-000000000002")
SETTINGS = Settings(resync_seconds=30, start_timeout_seconds=120)
AGENT = {"kind": "agentTurn", "message": "hello"}
EVERY_MINUTE = {"kind": "every", "every": "60s"}


def s(t: int) -> datetime:
    return T0 + timedelta(seconds=t)


def run(name: str, at: int, result: str = "Succeeded", done: int | None = None) -> RunSummary:
    return RunSummary(f"{name}-{at}", s(at), result, s(done if done is not None else at + 5))


def job(name: str, *runs: RunSummary, busy: bool = False) -> JobSummary:
    return JobSummary(name, tuple(runs), busy)


# --- dependencies (pure) ----------------------------------------------------------------


def dep(*jobs: str, **kw: Any) -> DependsOn:
    return DependsOn.model_validate({"jobs": list(jobs), **kw})


def test_all_needs_every_job_any_needs_one() -> None:
    jobs = {"a": job("a", run("a", 10)), "b": job("b", run("b", 10, "Failed"))}
    all_ = deps.evaluate(dep("a", "b"), s(0), s(60), jobs)
    assert not all_.verdict.met and all_.verdict.final  # b failed and is not running: waiting cannot help
    assert (
        all_.verdict.message
        == "dependsOn (All): b: no successful run since 2026-11-25T08:00:00Z; last run Failed (b-10)"
    )
    any_ = deps.evaluate(dep("a", "b", mode="Any"), s(0), s(60), jobs)
    assert any_.verdict.met and any_.satisfied_at == s(15)


def test_a_running_dependency_is_worth_waiting_for() -> None:
    jobs = {"a": job("a", run("a", 10, "Failed"), busy=True), "b": job("b", run("b", 10))}
    v = deps.evaluate(dep("a", "b"), s(0), s(60), jobs).verdict
    assert not v.met and not v.final
    # a dependency with no run yet in the window may still run
    assert not deps.evaluate(dep("a"), s(0), s(60), {"a": job("a")}).verdict.final


def test_window_edges() -> None:
    jobs = {"a": job("a", run("a", 100))}
    d = dep("a", windowSeconds=50)
    assert deps.window_start(d, s(150), s(0)) == s(100)
    assert not deps.evaluate(d, s(100), s(200), jobs).verdict.met  # exactly at the window's start: before it
    assert deps.evaluate(d, s(99), s(200), jobs).verdict.met
    assert not deps.evaluate(d, s(0), s(99), jobs).verdict.met  # scheduled after now: not yet
    # default window: since this job's previous slot
    assert deps.window_start(dep("a"), s(150), s(60)) == s(60)


def test_sequential_needs_the_listed_order() -> None:
    in_order = {"a": job("a", run("a", 10, done=20)), "b": job("b", run("b", 10, done=30))}
    assert deps.evaluate(dep("a", "b", mode="Sequential"), s(0), s(60), in_order).verdict.met
    reversed_ = {"a": job("a", run("a", 10, done=40)), "b": job("b", run("b", 10, done=30))}
    v = deps.evaluate(dep("a", "b", mode="Sequential"), s(0), s(60), reversed_).verdict
    assert not v.met
    assert v.message == "dependsOn (Sequential): b finished (2026-11-25T08:00:30Z) before a (2026-11-25T08:00:40Z)"
    # All does not care about the order
    assert deps.evaluate(dep("a", "b"), s(0), s(60), reversed_).verdict.met


def test_missing_dependency_is_final_and_named() -> None:
    v = deps.evaluate(dep("ghost"), None, s(60), {}).verdict
    assert (v.met, v.final) == (False, True)
    assert v.message == "dependsOn (All): ghost: no such OpenClawCronJob in this namespace"


def test_dependents_of_a_job() -> None:
    specs = [
        ("team", "process", {"dependsOn": {"jobs": ["import"]}}),
        ("team", "report", {"dependsOn": {"jobs": ["process", "import"]}}),
        ("other", "x", {"dependsOn": {"jobs": ["import"]}}),
        ("team", "import", {}),
    ]
    assert dependents("import", "team", specs) == ["process", "report"]
    assert dependents("report", "team", specs) == []


# --- conditions (pure) ------------------------------------------------------------------

NY = ZoneInfo("America/New_York")


def rc(**kw: Any) -> RunCondition:
    return RunCondition.model_validate(kw)


def test_cel_sees_local_time_across_dst() -> None:
    # 2026-03-08 is the spring-forward Sunday in New York: 07:30Z is 03:30 EDT (02:30 does not exist)
    assert cond.time_fields(datetime(2026, 3, 8, 7, 30, tzinfo=UTC), NY) == {
        "year": 2026, "month": 3, "dayOfMonth": 8, "dayOfWeek": 0, "dayOfYear": 67, "hour": 3, "minute": 30,
    }  # fmt: skip
    # 2026-11-01 falls back: 05:30Z and 06:30Z are both 01:30 local
    assert cond.time_fields(datetime(2026, 11, 1, 5, 30, tzinfo=UTC), NY)["hour"] == 1
    assert cond.time_fields(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), NY)["hour"] == 1
    weekend = [rc(name="weekend", expression="dayOfWeek in [0, 6]")]
    # Saturday 23:30 in New York is already Sunday in UTC, Friday 22:00 local is Saturday in UTC
    assert cond.evaluate(weekend, datetime(2026, 11, 29, 4, 30, tzinfo=UTC), NY, None).met
    friday = cond.evaluate(weekend, datetime(2026, 11, 28, 3, 0, tzinfo=UTC), NY, None)
    assert not friday.met and friday.final
    assert friday.message == (
        "condition 'weekend' 'dayOfWeek in [0, 6]' is false at year=2026, month=11, dayOfMonth=27, dayOfWeek=5,"
        " dayOfYear=331, hour=22, minute=0"
    )


def test_key_and_http_conditions() -> None:
    cm = [rc(configMapKeyRef={"name": "flags", "key": "run", "equals": "yes"})]
    sec = [rc(secretKeyRef={"name": "tok", "key": "k", "equals": "s3cret"})]
    web_ = [rc(name="api", http={"url": "http://h/ready", "expectStatus": 204})]
    slot = s(0)
    got = OrchestrationInputs(
        keys={("ConfigMap", "flags", "run"): "no", ("Secret", "tok", "k"): "wrong"}, http={"http://h/ready": 503},
        checked=True,
    )  # fmt: skip
    assert cond.evaluate(cm, slot, NY, got).message == (
        "conditions[0] (configMapKeyRef): ConfigMap flags key 'run' is not 'yes' (it is 'no')"
    )
    assert (
        cond.evaluate(sec, slot, NY, got).message == "conditions[0] (secretKeyRef): Secret tok key 'k' is not 's3cret'"
    )
    assert (
        cond.evaluate(web_, slot, NY, got).message == "condition 'api': http://h/ready answered HTTP 503, expected 204"
    )
    missing = cond.evaluate([rc(configMapKeyRef={"name": "flags", "key": "other"})], slot, NY, got)
    assert missing.message == "conditions[0] (configMapKeyRef): ConfigMap flags has no key 'other'"
    unread = cond.evaluate(cm, slot, NY, OrchestrationInputs())
    assert unread.unknown and not unread.final
    ok = OrchestrationInputs(keys={("ConfigMap", "flags", "run"): "yes"}, http={"http://h/ready": 204}, checked=True)
    assert cond.evaluate([*cm, *web_], slot, NY, ok).met


# --- escalation (pure) ------------------------------------------------------------------


def test_escalation_levels_fire_once_each_and_resolve_once() -> None:
    spec = Notify.model_validate(
        {
            "escalation": [
                {"afterSeconds": 0, "channels": ["chat"]},
                {"afterSeconds": 600, "channels": ["pager", "chat"]},
            ]
        }
    )
    first = escalation.step(spec, None, failing=True, now=s(0))
    assert [(m.kind, m.level, m.channels) for m in first.messages] == [("escalation", 1, ("chat",))]
    assert first.wake_at == s(600)
    again = escalation.step(spec, first.state, failing=True, now=s(300))
    assert again.messages == [] and again.state == first.state
    # an operator restart at 900 s reads the state back from status: level 2 once
    restored = EscalationStatus.model_validate(json.loads(json.dumps(first.state.model_dump(by_alias=True))))  # type: ignore[union-attr]
    second = escalation.step(spec, restored, failing=True, now=s(900))
    assert [(m.level, m.channels) for m in second.messages] == [(2, ("pager", "chat"))]
    assert escalation.step(spec, second.state, failing=True, now=s(901)).messages == []
    done = escalation.step(spec, second.state, failing=False, now=s(1000))
    assert [(m.kind, m.channels) for m in done.messages] == [("resolved", ("chat", "pager"))]
    assert done.state is None
    assert escalation.step(spec, None, failing=False, now=s(1001)).messages == []


def test_after_long_downtime_only_the_highest_due_level_is_sent() -> None:
    spec = Notify.model_validate(
        {"escalation": [{"afterSeconds": 60, "channels": ["a"]}, {"afterSeconds": 120, "channels": ["b"]}]}
    )
    start = EscalationStatus(since=n.rfc3339(s(0)), level=0)
    assert [m.level for m in escalation.step(spec, start, failing=True, now=s(3600)).messages] == [2]


# --- the reconciler ------------------------------------------------------------------------


class World:
    """One job, its Pods, a clock and the orchestration inputs; plans applied like the core does."""

    def __init__(self, job_spec: dict[str, Any], *, inputs: OrchestrationInputs | None = None) -> None:
        self.job = JobView(ref=REF, generation=1, created=T0, spec=job_spec, status={})
        self.pods: dict[str, dict[str, Any]] = {}
        self.inputs = inputs
        self.plans: list[Plan] = []

    def step(self, at: datetime) -> Plan:
        views = [v for v in (pod_view(p) for p in self.pods.values()) if v]
        plan = reconcile(self.job, views, Context(now=at, settings=SETTINGS, orchestration=self.inputs))
        for st in plan.starts:
            assert plan.spec is not None
            body = render_pod(REF, plan.spec, st, SETTINGS)
            body["metadata"]["creationTimestamp"] = n.rfc3339(at)
            self.pods.setdefault(body["metadata"]["name"], body)
        self.job = replace(self.job, status=plan.status)
        for name, _ in plan.deletes:
            self.pods.pop(name, None)
        self.plans.append(plan)
        return plan

    def finish_all(self, *, ok: bool, at: datetime) -> None:
        for pod in self.pods.values():
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            pod["status"] = {
                "phase": "Succeeded" if ok else "Failed",
                "startTime": pod["metadata"]["creationTimestamp"],
                "containerStatuses": [
                    {"name": "run", "state": {"terminated": {"exitCode": 0 if ok else 1, "finishedAt": n.rfc3339(at),
                     "message": json.dumps({"result": "Succeeded" if ok else "Failed", "reason": "Completed" if ok
                                            else "AgentError", "message": "m", "retryable": False})}}}
                ],
            }  # fmt: skip

    @property
    def status(self) -> dict[str, Any]:
        return self.job.status

    def last(self) -> dict[str, Any]:
        return dict(self.status["recentRuns"][0])


def inputs_with(**jobs: JobSummary) -> OrchestrationInputs:
    return OrchestrationInputs(jobs=dict(jobs), checked=True)


def test_slot_waits_for_its_dependency_then_runs() -> None:
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "dependsOn": {"jobs": ["process"], "waitSeconds": 300}})
    w.inputs = inputs_with(process=job("process", busy=True), report=job("report"))
    plan = w.step(s(60))
    assert plan.starts == []
    assert [(p["reason"], p["notBefore"]) for p in w.status["pending"]] == [("Waiting", n.rfc3339(s(360)))]
    assert plan.wake_at is not None and plan.wake_at <= s(90)
    w.inputs = inputs_with(process=job("process", run("process", 55, done=70)), report=job("report"))
    plan = w.step(s(71))
    assert [(st.trigger, st.scheduled) for st in plan.starts] == [("Schedule", s(60))]
    assert w.status["pending"] == []


def test_wait_times_out_into_a_dependency_not_met_skip() -> None:
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "dependsOn": {"jobs": ["process"], "waitSeconds": 30}})
    w.inputs = inputs_with(process=job("process", busy=True), report=job("report"))
    w.step(s(60))
    w.step(s(89))
    assert w.status["pending"] and w.status["recentRuns"] == []
    w.step(s(90))
    rec = w.last()
    assert (rec["result"], rec["reason"], rec["scheduledTime"]) == ("Skipped", "DependencyNotMet", n.rfc3339(s(60)))
    assert rec["message"] == "dependsOn (All): process: no run since 2026-11-25T08:00:00Z (waited 30s)"
    assert w.status["counters"]["skipped"] == 1


def test_failed_dependency_skips_at_once() -> None:
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "dependsOn": {"jobs": ["process"], "waitSeconds": 600}})
    w.inputs = inputs_with(process=job("process", run("process", 50, "Failed")), report=job("report"))
    assert w.step(s(60)).starts == []
    assert (w.last()["reason"], w.status["pending"]) == ("DependencyNotMet", [])


def test_unknown_dependency_is_an_invalid_spec_at_runtime() -> None:
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "dependsOn": {"jobs": ["prcess"]}})
    w.inputs = inputs_with(process=job("process"), report=job("report"))
    w.step(s(60))
    ready = next(c for c in w.status["conditions"] if c["type"] == "Ready")
    assert (w.status["state"], ready["message"]) == (
        "Invalid",
        "spec.dependsOn.jobs: no OpenClawCronJob 'prcess' in this namespace",
    )


def test_condition_not_met_is_a_skipped_run_naming_the_condition() -> None:
    # T0 is a Wednesday
    w = World(
        {
            "schedule": EVERY_MINUTE,
            "payload": AGENT,
            "conditions": [{"name": "weekend", "expression": "dayOfWeek == 6"}],
        }
    )
    assert w.step(s(60)).starts == []
    rec = w.last()
    assert (rec["result"], rec["reason"]) == ("Skipped", "ConditionNotMet")
    assert rec["message"].startswith("condition 'weekend' 'dayOfWeek == 6' is false at year=2026, month=11")


def test_dependency_triggered_job_runs_once_per_success() -> None:
    w = World({"payload": AGENT, "dependsOn": {"jobs": ["process"]}})
    w.inputs = inputs_with(process=job("process"), report=job("report"))
    w.step(s(10))
    assert (w.status["state"], w.status["schedule"]) == ("Scheduled", "after process (All)")
    w.inputs = inputs_with(process=job("process", run("process", 20, done=31)), report=job("report"))
    plan = w.step(s(32))
    assert [(st.trigger, st.scheduled) for st in plan.starts] == [("Dependency", s(31))]
    assert w.step(s(33)).starts == []  # the same success starts nothing again
    w.finish_all(ok=True, at=s(40))
    w.step(s(41))
    w.inputs = inputs_with(process=job("process", run("process", 20, done=31), run("process", 80, done=95)))
    assert [st.scheduled for st in w.step(s(96)).starts] == [s(95)]


def fail_runs(w: World, count: int, start: int) -> int:
    """Let `count` scheduled runs fail (every 60 s); returns the next clock second."""
    t = start
    for _ in range(count):
        w.step(s(t))
        w.finish_all(ok=False, at=s(t + 1))
        w.step(s(t + 2))
        t += 60
    return t


def test_pause_after_n_failures_then_resume_by_annotation() -> None:
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "failurePolicy": {"pauseAfterConsecutiveFailures": 3}})
    t = fail_runs(w, 2, 60)
    assert w.status["state"] == "Scheduled"
    t = fail_runs(w, 1, t)
    assert w.status["state"] == "Paused"
    assert w.status["paused"]["consecutiveFailures"] == 3
    assert "nextRunTime" not in w.status
    paused = next(c for c in w.status["conditions"] if c["type"] == "Paused")
    assert (paused["status"], paused["reason"]) == ("True", "ConsecutiveFailures")
    assert paused["message"] == (
        "paused after 3 consecutive failed runs (failurePolicy.pauseAfterConsecutiveFailures 3);"
        " resume with `kubectl openclaw resume` or any spec change"
    )
    events = [(e.type, e.reason) for p in w.plans for e in p.events]
    assert events.count(("Warning", "Paused")) == 1
    assert "suspend" not in w.job.spec  # written in status only: GitOps sees no drift
    # no scheduled runs while paused; a manual run still runs
    assert w.step(s(t + 300)).starts == []
    w.job = replace(w.job, run_now="now-1")
    assert [st.trigger for st in w.step(s(t + 301)).starts] == ["Manual"]
    w.finish_all(ok=False, at=s(t + 302))
    w.step(s(t + 303))
    assert w.status["state"] == "Paused"
    # resume: the streak counts afresh, so it takes 3 more failures to pause again
    w.job = replace(w.job, resume="r1")
    plan = w.step(s(t + 310))
    assert w.status["state"] != "Paused" and "paused" not in w.status
    assert ("Normal", "Resumed") in [(e.type, e.reason) for e in plan.events]
    assert next(c for c in w.status["conditions"] if c["type"] == "Paused")["status"] == "False"
    t2 = fail_runs(w, 2, t + 370)
    assert w.status["state"] != "Paused"
    fail_runs(w, 1, t2)
    assert w.status["state"] == "Paused"


def test_a_spec_change_resumes() -> None:
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "failurePolicy": {"pauseAfterConsecutiveFailures": 1}})
    fail_runs(w, 1, 60)
    assert w.status["state"] == "Paused"
    w.job = replace(w.job, spec={**w.job.spec, "timeoutSeconds": 600}, generation=2)
    w.step(s(200))
    assert w.status["state"] != "Paused"


def backfill(w: World, text: str) -> None:
    w.job = replace(w.job, backfill=text)


def test_backfill_20_slots_one_at_a_time_with_forbid_each_once() -> None:
    w = World({"schedule": {"kind": "cron", "expr": "0 2 * * *", "tz": "UTC"}, "payload": AGENT})
    request = json.dumps({"from": "2026-11-01T00:00:00Z", "to": "2026-11-20T23:00:00Z", "id": "nov"})
    backfill(w, request)
    started: list[datetime] = []
    t = 10
    for _ in range(25):
        plan = w.step(s(t))
        started += [st.scheduled for st in plan.starts]
        assert all(st.trigger == "Backfill" for st in plan.starts)
        assert len(w.status.get("active", [])) <= 1
        w.finish_all(ok=True, at=s(t + 1))
        t += 2
    assert started == [datetime(2026, 11, d, 2, tzinfo=UTC) for d in range(1, 21)]
    assert w.status["backfill"] == {
        "id": "nov", "from": "2026-11-01T00:00:00Z", "to": "2026-11-20T23:00:00Z",
        "total": 20, "started": 20, "state": "Completed",
    }  # fmt: skip
    # the same request again (or an operator restart) runs nothing
    assert w.step(s(t)).starts == []
    backfill(w, request.replace('"nov"', '"nov-2"'))
    assert len(w.step(s(t + 1)).starts) == 1  # a new id is a new request


def test_backfill_progress_and_bounds() -> None:
    w = World(
        {"schedule": {"kind": "cron", "expr": "0 * * * *", "tz": "UTC"}, "payload": AGENT, "concurrencyPolicy": "Allow"}
    )
    backfill(w, json.dumps({"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T23:59:00Z", "id": "day"}))
    plan = w.step(s(10))
    assert len(plan.starts) == 10  # Allow: a burst of at most 10 per pass
    assert (w.status["backfill"]["started"], w.status["backfill"]["total"]) == (10, 24)
    assert w.status["backfill"]["nextSlot"] == "2026-11-01T10:00:00Z"
    backfill(w, json.dumps({"from": "2026-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z", "id": "year"}))
    plan = w.step(s(11))
    assert plan.starts == [] and w.status["backfill"]["state"] == "Refused"
    assert w.status["backfill"]["message"].startswith("annotation cron.openclaw.io/backfill: the range")
    assert [e.reason for e in plan.events] == ["BackfillRefused"]
    assert [e.reason for e in w.step(s(12)).events] == []  # said once


def test_escalation_through_the_reconciler_survives_a_restart() -> None:
    levels = [{"afterSeconds": 0, "channels": ["chat"]}, {"afterSeconds": 300, "channels": ["pager"]}]
    notify = {"channels": ["ops"], "alertAfterConsecutiveFailures": 2, "escalation": levels}
    w = World({"schedule": EVERY_MINUTE, "payload": AGENT, "notify": notify})
    t = fail_runs(w, 2, 60)
    sent = [(m.kind, m.channels) for p in w.plans for m in p.messages]
    assert sent == [("alert", ("chat",))]
    assert w.status["escalation"]["level"] == 1
    # "restart": a fresh world from the stored status only
    w2 = World(w.job.spec)
    w2.job = replace(w2.job, status=json.loads(json.dumps(w.status)))
    w2.pods = w.pods
    fail_runs(w2, 5, t)
    msgs = [m for p in w2.plans for m in p.messages]
    assert [(m.kind, m.channels, m.context["reason"]) for m in msgs] == [("alert", ("pager",), "escalation level 2")]
    w2.step(s(t + 400))
    w2.finish_all(ok=True, at=s(t + 401))
    w2.step(s(t + 402))
    w2.step(s(t + 403))
    msgs = [m for p in w2.plans for m in p.messages][1:]
    assert [(m.kind, m.channels) for m in msgs] == [("recovery", ("chat", "pager"))]
    assert "escalation" not in w2.status


# --- gather_inputs: reads only what the spec needs, HTTP against a real local server --------


class Reader:
    def __init__(self, jobs: list[Mapping[str, Any]], maps: dict[str, dict[str, str]], session: ClientSession):
        self.jobs, self.maps, self.session = jobs, maps, session
        self.calls: list[str] = []

    async def jobs_in_namespace(self, namespace: str) -> list[Mapping[str, Any]]:
        self.calls.append(f"jobs {namespace}")
        return self.jobs

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, str] | None:
        self.calls.append(f"configmap {name}")
        return self.maps.get(name)

    async def get_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        self.calls.append(f"secret {name}")
        return None

    async def http_status(self, url: str) -> int:
        self.calls.append(f"http {url}")
        async with self.session.get(url, allow_redirects=False) as resp:
            return resp.status


async def test_gather_inputs_reads_what_is_due() -> None:
    async def health(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/slow", slow)
    async with serving(app) as base:
        raw = {
            "schedule": EVERY_MINUTE,
            "payload": AGENT,
            "dependsOn": {"jobs": ["process"]},
            "conditions": [
                {"configMapKeyRef": {"name": "flags", "key": "on"}},
                {"http": {"url": f"{base}/health", "expectStatus": 204}},
                {"http": {"url": f"{base}/slow", "timeoutSeconds": 1}},
            ],
        }
        spec = parse_spec(raw)
        record = {
            "runId": "p-1",
            "scheduledTime": n.rfc3339(T0),
            "completionTime": n.rfc3339(s(9)),
            "result": "Succeeded",
        }
        other = {
            "metadata": {"name": "process"},
            "spec": {"dependsOn": {"jobs": ["import"]}},
            "status": {"recentRuns": [record]},
        }
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            reader = Reader([other], {"flags": {"on": "1"}}, session)
            view = JobView(REF, 1, T0, raw, {"nextRunTime": n.rfc3339(s(60))})
            early = await gather_inputs(view, spec, s(30), reader)
            assert reader.calls == ["jobs team"] and not early.checked
            assert early.jobs["process"].runs[0].completed == s(9)
            assert early.graph == {"process": ("import",)}
            due = await gather_inputs(view, spec, s(60), reader)
        assert due.checked
        assert due.keys == {("ConfigMap", "flags", "on"): "1"}
        assert due.http[f"{base}/health"] == 204
        assert due.http[f"{base}/slow"] == "no answer (TimeoutError)"
        nothing = await gather_inputs(view, parse_spec({"schedule": EVERY_MINUTE, "payload": AGENT}), s(60), reader)
        assert nothing == OrchestrationInputs()


@pytest.mark.parametrize("mode", ["All", "Any", "Sequential"])
def test_describe_names_the_mode(mode: str) -> None:
    assert deps.describe(dep("a", "b", mode=mode)) == f"after a, b ({mode})"


# --- the scheduler's side (scheduler/orchestration.py) ------------------------------------


def test_job_view_reads_the_orchestration_annotations() -> None:
    from openclaw_cron.job import job_view

    meta = {"name": "j", "annotations": {"cron.openclaw.io/resume": "r1", "cron.openclaw.io/backfill": "{}", "x": "y"}}
    view = job_view({"metadata": meta}, T0)
    assert (view.resume, view.backfill, view.created) == ("r1", "{}", T0)
    bare = job_view({"metadata": {"name": "j"}}, T0)
    assert (bare.resume, bare.backfill) == (None, None)


def test_wiring_who_to_wake() -> None:
    from kubernetes.client import Configuration

    from openclaw_cron.kube import Kube
    from openclaw_cron.scheduler.orchestration import Orchestration

    def body(ns: str, name: str, *needs: str) -> dict[str, Any]:
        spec = {"dependsOn": {"jobs": list(needs)}} if needs else {}
        return {"metadata": {"namespace": ns, "name": name, "uid": f"uid-{ns}-{name}"}, "spec": spec}

    bodies = [body("team", "import"), body("team", "process", "import"), body("other", "process", "import")]
    orch = Orchestration(
        Kube(Configuration(host="http://127.0.0.1:9")),
        lambda ns: [b for b in bodies if b["metadata"]["namespace"] == ns],
    )
    view = JobView(JobRef("team", "import", "uid-team-import"), 1, T0, {}, {})
    plan = Plan(status={})
    assert orch.to_wake(view, plan) == []  # nothing finished: nobody to wake
    plan.finished.append(parse_run_record())
    assert orch.to_wake(view, plan) == ["uid-team-process"]


def parse_run_record() -> Any:
    from openclaw_cron.api import RunRecord

    return RunRecord(run_id="import-1", scheduled_time=n.rfc3339(T0), result="Succeeded")
