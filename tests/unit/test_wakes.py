"""Issue 18's pure parts: run ids per run-now value, bookkeeping by run + attempt, adoption of
what this operator started but has not written, merge patches that drop nested fields, the
safety-net's definition of a correction, and the Pod store's resourceVersion guard."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_reconcile import REF, SETTINGS, T0, World, spec

from openclaw_cron import naming as n
from openclaw_cron.orchestration.inputs import JobSummary, OrchestrationInputs, RunSummary
from openclaw_cron.pods import PodStore, Start, pod_view, render_pod
from openclaw_cron.reconcile import Context, Plan, parse_spec, reconcile
from openclaw_cron.scheduler.writes import corrections, status_patch

COMMAND = {"kind": "command", "image": "busybox:1.36", "command": ["true"]}


def test_manual_run_ids_are_unique_per_value_and_deterministic() -> None:
    when = datetime(2026, 11, 25, 8, 0, 5, tzinfo=UTC)
    a, b = n.manual_tag("2026-11-25T08:00:05.100Z"), n.manual_tag("2026-11-25T08:00:05.400Z")
    assert a != b and a == n.manual_tag("2026-11-25T08:00:05.100Z") and a.startswith("m") and len(a) == 8
    assert n.run_id("nightly", when, a) != n.run_id("nightly", when, b)
    assert n.run_tag(n.run_id("nightly", when, a)) == a and n.run_tag(n.run_id("nightly", when)) is None
    long = "x" * 80
    for attempt in (1, 2, 10):
        name = n.pod_name(long, when, attempt, a)
        assert len(name) <= 63 and a in name
    assert len(n.run_id(long, when, a)) <= 63
    # a scheduled run's names are what they always were (a restart over old Pods adopts them)
    assert n.pod_name("nightly", when, 2) == f"nightly-{int(when.timestamp())}-2"
    # the gateway's idempotency key differs per manual run, so two are two gateway runs
    assert n.idempotency_key("u", when, 1, a) != n.idempotency_key("u", when, 1, b)
    st = Start(run_id=n.run_id("nightly", when, a), scheduled=when, attempt=2, trigger="Manual")
    assert st.tag == a and st.pod_name("nightly") == n.pod_name("nightly", when, 2, a)


def test_two_run_now_values_in_one_second_are_two_runs_counted_once_each() -> None:
    w = World(spec(schedule={"kind": "cron", "expr": "0 7 * * *"}, payload=COMMAND, concurrencyPolicy="Allow"))
    w.step(T0 + timedelta(seconds=1))
    at = T0 + timedelta(seconds=5, milliseconds=100)
    w.job = replace(w.job, run_now="v1")
    first = w.step(at)
    w.job = replace(w.job, run_now="v2")
    second = w.step(at + timedelta(milliseconds=300))
    assert [s.trigger for s in first.starts + second.starts] == ["Manual", "Manual"]
    pods = [a["podName"] for a in w.status["active"]]
    assert len(set(pods)) == 2 and w.status["counters"]["runs"] == 2
    for pod in pods:
        w.finish(pod, ok=True, at=at + timedelta(seconds=1))
    for k in range(4):  # every later pass, whatever woke it, records nothing again
        w.step(at + timedelta(seconds=2 + k))
    c = w.status["counters"]
    assert (c["runs"], c["succeeded"], len(w.status["recentRuns"])) == (2, 2, 2)


def test_a_duplicate_active_entry_is_settled_once() -> None:
    """A status written by an older version with the same run twice in `active` counts it once."""
    w = World(spec(payload=COMMAND))
    w.step(T0 + timedelta(seconds=60))
    active = w.status["active"]
    w.job = replace(w.job, status={**w.status, "active": active + active})
    w.finish(active[0]["podName"], ok=True, at=T0 + timedelta(seconds=61))
    plan = w.step(T0 + timedelta(seconds=62))
    assert len(plan.finished) == 1 and w.status["counters"]["succeeded"] == 1


def test_a_start_of_a_run_on_record_or_active_is_no_start() -> None:
    w = World(spec(schedule={"kind": "cron", "expr": "0 7 * * *"}, payload=COMMAND, concurrencyPolicy="Replace"))
    w.step(T0 + timedelta(seconds=1))
    w.job = replace(w.job, run_now="v1")
    w.step(T0 + timedelta(seconds=5))
    # the same value seen again as new (its lastManualRun lost to a conflict): not a second run,
    # and Replace does not kill the run for itself
    w.job = replace(w.job, status={**w.status, "lastManualRun": None})
    plan = w.step(T0 + timedelta(seconds=5, milliseconds=400))
    assert plan.starts == [] and plan.deletes == [] and w.status["counters"]["runs"] == 1


def test_unrecorded_pods_are_adopted_whatever_their_trigger() -> None:
    """A manual run whose status write met the next value's conflict: the next pass takes it over."""
    w = World(spec(schedule={"kind": "cron", "expr": "0 7 * * *"}, payload=COMMAND, concurrencyPolicy="Allow"))
    w.step(T0 + timedelta(seconds=1))
    before = w.status
    w.job = replace(w.job, run_now="v1")
    lost = w.step(T0 + timedelta(seconds=5))  # its Pod exists; its status write conflicts:
    pod = lost.starts[0].pod_name(REF.name)
    w.job = replace(w.job, status=before, run_now="v2")  # the fresh object: v2, and no trace of v1
    views = [v for v in (pod_view(p) for p in w.pods.values()) if v]
    blind = reconcile(w.job, views, Context(now=T0 + timedelta(seconds=6), settings=SETTINGS))
    assert pod not in {a["podName"] for a in blind.status["active"]}  # what a pass without memory does
    ctx = Context(now=T0 + timedelta(seconds=6), settings=SETTINGS, unrecorded=frozenset({pod}))
    plan = reconcile(w.job, views, ctx)
    assert {a["podName"] for a in plan.status["active"]} >= {pod}
    assert len(plan.starts) == 1 and plan.status["counters"]["runs"] == 2


def test_a_dependency_run_held_back_is_adopted_not_started_again() -> None:
    """B's start was written late (coalesced): the next pass sees its Pod and adopts it."""
    done = datetime(2026, 11, 25, 8, 0, 31, tzinfo=UTC)
    upstream = JobSummary(
        name="a", runs=(RunSummary(run_id="a-1", scheduled=done - timedelta(seconds=5), result="Succeeded",
                                   completed=done),)
    )  # fmt: skip
    inputs = OrchestrationInputs(jobs={"a": upstream, REF.name: JobSummary(name=REF.name)}, checked=True)
    job_spec = {"payload": COMMAND, "dependsOn": {"jobs": ["a"]}}
    w = World(job_spec)
    old = w.status
    plan = reconcile(w.job, [], Context(now=done + timedelta(seconds=1), settings=SETTINGS, orchestration=inputs))
    assert [s.trigger for s in plan.starts] == ["Dependency"]
    spec_model = parse_spec(job_spec)
    assert spec_model is not None
    body = render_pod(REF, spec_model, plan.starts[0], SETTINGS)
    body["metadata"]["creationTimestamp"] = n.rfc3339(done)
    view = pod_view(body)
    assert view is not None
    # the status was not written (held back): the next pass reads the old status and the Pod
    w.job = replace(w.job, status=old)
    again = reconcile(w.job, [view], Context(now=done + timedelta(seconds=2), settings=SETTINGS, orchestration=inputs))
    assert again.starts == [] and [a["podName"] for a in again.status["active"]] == [view.name]
    assert again.status["counters"]["runs"] == 1


def test_status_patch_nulls_a_field_dropped_inside_an_object() -> None:
    running = {
        "backfill": {"id": "b", "started": 2, "total": 3, "nextSlot": "2026-11-03T02:00:00Z", "state": "Running"}
    }
    done = {"backfill": {"id": "b", "started": 3, "total": 3, "state": "Completed"}}
    assert status_patch(running, done) == {"backfill": {"started": 3, "nextSlot": None, "state": "Completed"}}
    assert status_patch(done, done) == {}
    assert status_patch({"active": [1, 2]}, {"active": [1]}) == {"active": [1]}  # lists are replaced


def test_backfill_completed_status_has_no_next_slot_once_applied_as_a_merge_patch() -> None:
    w = World(spec(schedule={"kind": "cron", "expr": "0 2 * * *", "tz": "UTC"}, payload=COMMAND))
    w.job = replace(
        w.job, backfill=json.dumps({"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T23:00:00Z", "id": "b"})
    )
    stored: dict[str, Any] = {}
    t = T0 + timedelta(days=30)
    for _ in range(5):
        before = w.status
        w.step(t)
        stored = merge(stored, status_patch(before, w.status))  # what the API server keeps
        for name in list(w.pods):
            if "status" not in w.pods[name]:
                w.finish(name, ok=True, at=t + timedelta(seconds=1))
        t += timedelta(seconds=2)
    assert stored["backfill"]["state"] == "Completed" and stored["backfill"]["started"] == 3
    assert "nextSlot" not in stored["backfill"]


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def test_a_correction_is_a_pass_that_is_not_a_no_op() -> None:
    w = World(spec(payload=COMMAND))
    w.step(T0 + timedelta(seconds=1))
    rest = w.step(T0 + timedelta(seconds=2))
    assert corrections(w.status, rest) == {}  # a job at rest: nothing to correct
    assert rest.resync  # SETTINGS' 30 s resync comes before its next slot (every 60 s)
    plan = w.step(T0 + timedelta(seconds=60))
    assert corrections(w.plans[-2].status, plan)["started"] == plan.starts[0].run_id
    w.finish(w.status["active"][0]["podName"], ok=True, at=T0 + timedelta(seconds=61))
    before = w.status
    recorded = w.step(T0 + timedelta(seconds=62))
    fixed = corrections(before, recorded)
    assert fixed["recorded"] == recorded.finished[0].run_id and "active" in fixed["status"]
    assert corrections(before, Plan(status=before)) == {}


def test_only_the_resync_asking_for_the_next_look_is_a_safety_net_pass() -> None:
    w = World({"payload": COMMAND, "dependsOn": {"jobs": ["a"]}})
    plan = reconcile(
        w.job,
        [],
        Context(now=T0, settings=SETTINGS, orchestration=OrchestrationInputs(jobs={"a": JobSummary(name="a")})),
    )
    assert plan.resync and plan.wake_at == T0 + timedelta(seconds=SETTINGS.resync_seconds)


def test_pod_store_keeps_the_newer_version() -> None:
    job_spec = parse_spec(spec(payload=COMMAND))
    assert job_spec is not None
    body = render_pod(REF, job_spec, Start(run_id="r", scheduled=T0, attempt=1, trigger="Schedule"), SETTINGS)
    store = PodStore()
    running = {**body, "metadata": {**body["metadata"], "resourceVersion": "10"}, "status": {"phase": "Running"}}
    finished = {**body, "metadata": {**body["metadata"], "resourceVersion": "12"}, "status": {"phase": "Succeeded"}}
    assert store.put(finished) == REF.uid  # read by a pass (GET) before the watch delivered it
    assert store.put(running) is None  # the watch's older event arrives late: no step back
    assert [p.phase for p in store.get(REF.uid)] == ["Succeeded"]
    assert store.put(finished) is None  # the watch catches up: nothing new
    assert store.remove(REF.namespace, body["metadata"]["name"]) == REF.uid
    assert store.put(running) == REF.uid  # a Pod of the same name made again starts afresh


@pytest.mark.parametrize(("value", "result"), [("yes", "Started"), ("no", "Skipped")])
def test_a_slot_due_before_its_configmap_was_read_looks_again_at_once(value: str, result: str) -> None:
    """Nothing watches ConfigMaps (docs/wakes.md); conditions hold at the slot, so a slot that came
    due before they were read waits for the very next pass, which reads them (not the wait's end)."""
    job_spec = spec(payload=COMMAND, conditions=[{"configMapKeyRef": {"name": "flags", "key": "go", "equals": "yes"}}])
    w = World(job_spec)

    def step(at: datetime, checked: bool) -> Plan:
        inputs = OrchestrationInputs(keys={("ConfigMap", "flags", "go"): value}, checked=checked)
        plan = reconcile(w.job, [], Context(now=at, settings=SETTINGS, orchestration=inputs))
        w.job = replace(w.job, status=plan.status)
        return plan

    at = T0 + timedelta(seconds=60)
    unread = step(at, checked=False)
    assert [p["reason"] for p in unread.status["pending"]] == ["Waiting"] and unread.wake_at is not None
    assert unread.wake_at - at <= timedelta(seconds=1) and not unread.resync
    read = step(unread.wake_at, checked=True)
    if result == "Started":
        assert [s.trigger for s in read.starts] == ["Schedule"]
    else:
        assert read.starts == [] and [r.reason for r in read.finished] == ["ConditionNotMet"]
