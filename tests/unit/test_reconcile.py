"""The reconciler as a pure function: a job's world in, a plan out.

Each test plays the operator's loop by hand: reconcile → "apply" (status becomes the
plan's, Pods are rendered with the real renderer and given a phase) → reconcile again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openclaw_cron import naming as n
from openclaw_cron.job import JobView
from openclaw_cron.pods import JobRef, PodView, pod_view, render_pod
from openclaw_cron.reconcile import Context, Plan, reconcile
from openclaw_cron.settings import Settings
from openclaw_cron.validation import FieldError

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
REF = JobRef(namespace="team", name="nightly", uid="0b6c5d4e-aaaa-bbbb-cccc-000000000001")
SETTINGS = Settings(resync_seconds=30, start_timeout_seconds=120)


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schedule": {"kind": "every", "every": "60s"},
        "payload": {"kind": "agentTurn", "message": "hello"},
    }
    base.update(over)
    return base


class World:
    """A job, its Pods and a clock, advanced by applying plans like the daemon does."""

    def __init__(self, job_spec: dict[str, Any], *, settings: Settings = SETTINGS, global_free: int | None = None):
        self.job = JobView(ref=REF, generation=1, created=T0, spec=job_spec, status={})
        self.pods: dict[str, dict[str, Any]] = {}
        self.settings = settings
        self.global_free = global_free
        self.gone: set[str] = set()
        self.plans: list[Plan] = []

    def step(self, at: datetime, *, errors: tuple[FieldError, ...] = (), refused: dict[str, str] | None = None) -> Plan:
        views = [v for v in (pod_view(p) for p in self.pods.values()) if v]
        ctx = Context(
            now=at,
            settings=self.settings,
            global_free=self.global_free,
            extra_errors=errors,
            gone=frozenset(self.gone),
            refused=refused or {},
        )
        plan = reconcile(self.job, views, ctx)
        for st in plan.starts:
            assert plan.spec is not None
            body = render_pod(REF, plan.spec, st, self.settings)
            body["metadata"]["creationTimestamp"] = n.rfc3339(at)
            self.pods.setdefault(body["metadata"]["name"], body)
        self.job = replace(self.job, status=plan.status)
        for name, _why in plan.deletes:
            self.pods.pop(name, None)
        self.plans.append(plan)
        return plan

    def edit(self, **over: Any) -> None:
        self.job = replace(self.job, spec={**self.job.spec, **over}, generation=self.job.generation + 1)

    def finish(
        self,
        name: str,
        *,
        ok: bool,
        at: datetime,
        message: str | None = None,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        pod = self.pods[name]
        code = exit_code if exit_code is not None else (0 if ok else 1)
        pod["status"] = {
            "phase": "Succeeded" if ok else "Failed",
            "startTime": pod["metadata"]["creationTimestamp"],
            "containerStatuses": [
                {
                    "name": "run",
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if ok else "Error",
                            "message": message,
                            "finishedAt": n.rfc3339(at),
                        }
                    },
                }
            ],
        }
        if reason:
            pod["status"]["reason"] = reason

    def running(self, name: str, at: datetime) -> None:
        self.pods[name]["status"] = {"phase": "Running", "startTime": n.rfc3339(at)}

    @property
    def status(self) -> dict[str, Any]:
        return self.job.status


def runner_msg(result: str, reason: str = "Completed", retryable: bool = False, **extra: Any) -> str:
    return json.dumps(
        {"result": result, "reason": reason, "message": extra.pop("message", result), "retryable": retryable, **extra}
    )


def test_first_slot_starts_a_pod_and_status_says_running() -> None:
    w = World(spec())
    idle = w.step(T0 + timedelta(seconds=30))
    assert idle.starts == []
    assert w.status["state"] == "Scheduled"
    assert w.status["nextRunTime"] == n.rfc3339(T0 + timedelta(seconds=60))
    assert idle.wake_at == T0 + timedelta(seconds=60)

    plan = w.step(T0 + timedelta(seconds=60, milliseconds=5))
    assert [s.trigger for s in plan.starts] == ["Schedule"]
    assert plan.starts[0].scheduled == T0 + timedelta(seconds=60)
    assert w.status["state"] == "Running"
    assert w.status["active"][0]["podName"] == n.pod_name("nightly", T0 + timedelta(seconds=60), 1)
    assert w.status["counters"]["runs"] == 1
    assert w.status["nextRunTime"] == n.rfc3339(T0 + timedelta(seconds=120))
    assert plan.events == []  # "Started" is the daemon's, once the Pod exists


def test_success_is_recorded_with_gateway_run_id() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    w.finish(
        pod,
        ok=True,
        at=T0 + timedelta(seconds=65),
        message=runner_msg("Succeeded", gatewayRunId="run-42", delivered=True, output="done"),
    )
    plan = w.step(T0 + timedelta(seconds=66))
    rec = w.status["recentRuns"][0]
    assert rec["result"] == "Succeeded"
    assert rec["gatewayRunId"] == "run-42"
    assert rec["output"] == "done"
    assert rec["delivery"] == {"status": "delivered", "delivered": True}
    assert rec["durationSeconds"] == 5.0
    assert w.status["lastRunResult"] == "Succeeded"
    assert w.status["lastSuccessfulTime"] == n.rfc3339(T0 + timedelta(seconds=65))
    assert w.status["state"] == "Scheduled"
    assert w.status["active"] == []
    assert w.status["counters"] == {"runs": 1, "succeeded": 1, "failed": 0, "skipped": 0, "missed": 0}
    assert [e.reason for e in plan.events] == ["Succeeded"]
    # nothing changes on a second pass: no write is needed
    again = w.step(T0 + timedelta(seconds=67))
    assert again.status == plan.status
    assert again.starts == [] and again.events == []


def test_restart_after_pod_created_before_status_written_adopts_the_pod() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    before = w.plans[-1]
    # the operator died before its status patch: roll status back, keep the Pod
    w.job = replace(w.job, status=w.plans[0].status if len(w.plans) > 1 else {})
    plan = w.step(T0 + timedelta(seconds=70))
    assert plan.starts == [], "the existing Pod must be adopted, not a second one started"
    assert [a["podName"] for a in w.status["active"]] == [a["podName"] for a in before.status["active"]]
    assert w.status["counters"]["runs"] == 1


def test_finished_pod_still_active_in_status_is_recorded_once() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    w.finish(pod, ok=False, at=T0 + timedelta(seconds=61), message="boom", exit_code=3)
    w.step(T0 + timedelta(seconds=62))
    w.step(T0 + timedelta(seconds=63))
    runs = [r for r in w.status["recentRuns"] if r["result"] != "Missed"]
    assert len(runs) == 1
    assert runs[0]["result"] == "Failed" and runs[0]["exitCode"] == 3
    assert w.status["consecutiveFailures"] == 1


def test_retry_after_delay_gets_its_own_pod_then_succeeds() -> None:
    w = World(spec(retry={"limit": 2, "delaySeconds": 30}))
    w.step(T0 + timedelta(seconds=60))
    first = w.status["active"][0]["podName"]
    w.finish(
        first, ok=False, at=T0 + timedelta(seconds=62), message=runner_msg("Failed", "GatewayError", retryable=True)
    )
    plan = w.step(T0 + timedelta(seconds=62))
    assert [e.reason for e in plan.events] == ["Retrying"]
    assert w.status["pending"][0]["attempt"] == 2
    assert plan.wake_at == T0 + timedelta(seconds=92)
    assert w.step(T0 + timedelta(seconds=80)).starts == []
    plan = w.step(T0 + timedelta(seconds=92))
    assert [(s.attempt, s.trigger) for s in plan.starts] == [(2, "Schedule")]
    second = w.status["active"][0]["podName"]
    assert second == n.pod_name("nightly", T0 + timedelta(seconds=60), 2) != first
    w.finish(second, ok=True, at=T0 + timedelta(seconds=95), message=runner_msg("Succeeded"))
    w.step(T0 + timedelta(seconds=96))
    rec = w.status["recentRuns"][0]
    assert (rec["result"], rec["attempts"]) == ("Succeeded", 2)
    assert w.status["counters"]["runs"] == 1


def test_non_retryable_failure_skips_remaining_retries() -> None:
    w = World(spec(retry={"limit": 3, "delaySeconds": 1}))
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    w.finish(
        pod,
        ok=False,
        at=T0 + timedelta(seconds=61),
        message=runner_msg("Failed", "Unauthorized", retryable=False, message="401 from gateway"),
    )
    w.step(T0 + timedelta(seconds=62))
    rec = w.status["recentRuns"][0]
    assert (rec["result"], rec["reason"], rec["attempts"]) == ("Failed", "Unauthorized", 1)
    assert w.status["pending"] == []


def test_exponential_backoff_is_capped() -> None:
    from openclaw_cron.reconcile import parse_spec, retry_delay

    s = parse_spec(spec(retry={"limit": 5, "delaySeconds": 10, "backoff": "Exponential", "maxDelaySeconds": 35}))
    assert s is not None
    assert [retry_delay(s, a).total_seconds() for a in (1, 2, 3, 4)] == [10, 20, 35, 35]


@pytest.mark.parametrize(
    ("policy", "expect_starts", "expect_result"),
    [("Allow", 1, None), ("Forbid", 0, "Skipped"), ("Replace", 1, "Failed"), ("Queue", 0, None)],
)
def test_concurrency_policies(policy: str, expect_starts: int, expect_result: str | None) -> None:
    w = World(spec(concurrencyPolicy=policy))
    w.step(T0 + timedelta(seconds=60))
    first = w.status["active"][0]["podName"]
    w.running(first, T0 + timedelta(seconds=60))
    plan = w.step(T0 + timedelta(seconds=120))
    assert len(plan.starts) == expect_starts
    results = [r["result"] for r in w.status.get("recentRuns", [])]
    if expect_result:
        assert results[0] == expect_result
    if policy == "Replace":
        assert (first, "Replaced") in plan.deletes
        assert w.status["recentRuns"][0]["reason"] == "Replaced"
    if policy == "Queue":
        assert [p["reason"] for p in w.status["pending"]] == ["Queued"]
        w.finish(first, ok=True, at=T0 + timedelta(seconds=125))
        plan = w.step(T0 + timedelta(seconds=126))
        assert [s.scheduled for s in plan.starts] == [T0 + timedelta(seconds=120)]
    if policy == "Forbid":
        assert w.status["counters"]["skipped"] == 1
        assert w.status["recentRuns"][0]["reason"] == "ConcurrencyForbid"


def test_global_cap_queues_runs_beyond_it() -> None:
    w = World(spec(), global_free=0)
    plan = w.step(T0 + timedelta(seconds=60))
    assert plan.starts == []
    assert [p["reason"] for p in w.status["pending"]] == ["GlobalCap"]
    w.global_free = 1
    plan = w.step(T0 + timedelta(seconds=61))
    assert [s.scheduled for s in plan.starts] == [T0 + timedelta(seconds=60)]


def test_pod_deleted_while_running_fails_the_run() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    del w.pods[pod]
    # not yet confirmed gone: might just be late in the watch stream
    assert w.step(T0 + timedelta(seconds=61)).finished == []
    w.gone.add(pod)
    w.step(T0 + timedelta(seconds=62))
    assert (w.status["recentRuns"][0]["result"], w.status["recentRuns"][0]["reason"]) == ("Failed", "PodDeleted")


def test_stuck_pending_fails_with_waiting_reason_and_deletes_pod() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    w.pods[pod]["status"] = {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "run", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}}
        ],
    }
    assert w.step(T0 + timedelta(seconds=100)).finished == []
    plan = w.step(T0 + timedelta(seconds=181))
    assert (pod, "ImagePullBackOff") in plan.deletes
    rec = next(r for r in w.status["recentRuns"] if r["result"] != "Missed")
    assert (rec["result"], rec["reason"]) == ("Failed", "ImagePullBackOff")
    assert "pull access denied" in rec["message"]


def test_deadline_exceeded_is_timed_out() -> None:
    w = World(spec(timeoutSeconds=10))
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    assert w.pods[pod]["spec"]["activeDeadlineSeconds"] == 10
    w.finish(pod, ok=False, at=T0 + timedelta(seconds=71), reason="DeadlineExceeded", exit_code=137)
    w.step(T0 + timedelta(seconds=72))
    assert w.status["recentRuns"][0]["result"] == "TimedOut"


@pytest.mark.parametrize(("catch_up", "runs", "missed"), [("Latest", 1, 9), ("None", 0, 10), ("All", 10, 0)])
def test_catch_up_after_downtime(catch_up: str, runs: int, missed: int) -> None:
    w = World(spec(concurrencyPolicy="Allow", schedule={"kind": "every", "every": "60s", "catchUp": catch_up}))
    w.step(T0 + timedelta(seconds=10))
    plan = w.step(T0 + timedelta(seconds=645))  # ten slots passed while "down", the last 45 s ago
    assert len(plan.starts) == runs
    assert all(s.trigger == "CatchUp" for s in plan.starts)
    assert w.status["counters"]["missed"] == missed
    assert [e.reason for e in plan.events].count("Missed") == (1 if missed else 0)
    # the missed slots are not reported again
    again = w.step(T0 + timedelta(seconds=646))
    assert again.missed == 0 and w.status["counters"]["missed"] == missed


def test_starting_deadline_misses_late_slots() -> None:
    w = World(spec(schedule={"kind": "every", "every": "60s", "startingDeadlineSeconds": 5}))
    w.step(T0 + timedelta(seconds=10))
    plan = w.step(T0 + timedelta(seconds=70))  # 10 s late > 5 s deadline
    assert plan.starts == []
    assert w.status["counters"]["missed"] == 1


def test_suspend_then_resume_applies_catch_up_once() -> None:
    w = World(spec(schedule={"kind": "every", "every": "60s", "catchUp": "Latest"}))
    w.step(T0 + timedelta(seconds=10))
    w.edit(suspend=True)
    w.step(T0 + timedelta(seconds=20))
    assert w.status["state"] == "Suspended" and "nextRunTime" not in w.status
    assert w.step(T0 + timedelta(seconds=300)).starts == []
    w.edit(suspend=False)
    plan = w.step(T0 + timedelta(seconds=340))  # slot 300 is 40 s old: a catch-up, not on time
    assert [s.trigger for s in plan.starts] == ["CatchUp"]
    assert w.status["counters"]["missed"] == 4


def test_run_now_annotation_starts_one_manual_run() -> None:
    w = World(spec(schedule={"kind": "cron", "expr": "0 7 * * *"}))
    w.step(T0 + timedelta(seconds=1))
    w.job = replace(w.job, run_now="2026-11-25T08:00:05Z")
    plan = w.step(T0 + timedelta(seconds=5))
    assert [s.trigger for s in plan.starts] == ["Manual"]
    assert w.status["lastManualRun"] == "2026-11-25T08:00:05Z"
    assert w.step(T0 + timedelta(seconds=6)).starts == []  # same value: no second run
    pod = w.status["active"][0]["podName"]
    assert w.pods[pod]["metadata"]["labels"][n.LABEL_TRIGGER] == "Manual"


def test_delete_after_run_for_at_job() -> None:
    w = World(spec(schedule={"kind": "at", "at": "2m"}))
    w.step(T0 + timedelta(seconds=119))
    plan = w.step(T0 + timedelta(seconds=120))
    assert len(plan.starts) == 1
    pod = w.status["active"][0]["podName"]
    w.finish(pod, ok=True, at=T0 + timedelta(seconds=121))
    plan = w.step(T0 + timedelta(seconds=122))
    assert plan.delete_job
    assert w.status["state"] == "Completed"


def test_at_job_failure_is_completed_not_deleted() -> None:
    w = World(spec(schedule={"kind": "at", "at": "2m"}))
    w.step(T0 + timedelta(seconds=120))
    w.finish(w.status["active"][0]["podName"], ok=False, at=T0 + timedelta(seconds=121))
    plan = w.step(T0 + timedelta(seconds=122))
    assert not plan.delete_job
    assert w.status["state"] == "Completed"
    assert "nextRunTime" not in w.status


def test_invalid_spec_reports_field_and_event_once_then_recovers() -> None:
    w = World(spec(schedule={"kind": "cron", "expr": "61 * * * *"}))
    plan = w.step(T0 + timedelta(seconds=1))
    ready = next(c for c in w.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("spec.schedule.expr: ")
    assert w.status["state"] == "Invalid"
    assert [e.reason for e in plan.events] == ["InvalidSpec"]
    assert w.step(T0 + timedelta(seconds=2)).events == []
    w.edit(schedule={"kind": "cron", "expr": "*/5 * * * *"})
    w.step(T0 + timedelta(seconds=3))
    ready = next(c for c in w.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and w.status["state"] == "Scheduled"
    assert ready["observedGeneration"] == 2


def test_missing_secret_is_invalid() -> None:
    w = World(spec())
    err = FieldError("spec.gateway.tokenSecretRef", 'Secret "openclaw-hooks" not found in namespace "team"')
    w.step(T0 + timedelta(seconds=60), errors=(err,))
    assert w.status["state"] == "Invalid"
    assert w.plans[-1].starts == []


def test_history_limits_prune_old_pods_and_cap_status() -> None:
    w = World(
        spec(concurrencyPolicy="Allow", history={"successfulPodsLimit": 2, "failedPodsLimit": 1, "statusLimit": 3})
    )
    for i in range(1, 7):
        at = T0 + timedelta(seconds=60 * i)
        w.step(at)
        pod = w.status["active"][0]["podName"]
        w.finish(pod, ok=i % 3 != 0, at=at + timedelta(seconds=1))
        w.step(at + timedelta(seconds=2))
    kinds = sorted(p["status"]["phase"] for p in w.pods.values())
    assert kinds == ["Failed", "Succeeded", "Succeeded"]
    assert len(w.status["recentRuns"]) == 3
    assert w.status["counters"] == {"runs": 6, "succeeded": 4, "failed": 2, "skipped": 0, "missed": 0}


def test_consecutive_failures_flip_healthy_and_alert_once() -> None:
    w = World(spec(concurrencyPolicy="Allow", notify={"channels": ["ops"], "alertAfterConsecutiveFailures": 2}))
    kinds: list[str] = []
    for i in range(1, 5):
        at = T0 + timedelta(seconds=60 * i)
        w.step(at)
        w.finish(w.status["active"][0]["podName"], ok=i == 4, at=at + timedelta(seconds=1))
        kinds += [k for k, _ in w.step(at + timedelta(seconds=2)).notifications]
        healthy = next(c for c in w.status["conditions"] if c["type"] == "Healthy")
        if i in (2, 3):
            assert (healthy["status"], healthy["reason"]) == ("False", "ConsecutiveFailures")
    assert healthy["status"] == "True"
    assert kinds.count("alert") == 1 and kinds.count("recovery") == 1


def test_output_and_message_are_bounded() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    w.finish(
        w.status["active"][0]["podName"],
        ok=False,
        at=T0 + timedelta(seconds=61),
        message=runner_msg("Failed", "AgentError", message="x" * 5000, output="y" * 5000),
    )
    w.step(T0 + timedelta(seconds=62))
    rec = w.status["recentRuns"][0]
    assert len(rec["message"].encode()) <= 1024 and len(rec["output"].encode()) <= 1024


def test_edited_schedule_does_not_storm() -> None:
    w = World(spec(schedule={"kind": "every", "every": "1h", "catchUp": "All"}))
    w.step(T0 + timedelta(seconds=10))
    w.edit(schedule={"kind": "every", "every": "1m", "catchUp": "All"})
    plan = w.step(T0 + timedelta(minutes=30))
    assert len(plan.starts) <= 1


def test_pod_view_ignores_foreign_pods() -> None:
    assert pod_view({"metadata": {"name": "x", "labels": {}}}) is None


def test_rendered_pod_reads_back_as_its_run() -> None:
    w = World(spec())
    w.step(T0 + timedelta(seconds=60))
    view = pod_view(next(iter(w.pods.values())))
    assert isinstance(view, PodView)
    assert view.scheduled == T0 + timedelta(seconds=60) and view.trigger == "Schedule" and view.attempt == 1


def test_two_kept_manual_runs_are_not_recorded_again() -> None:
    w = World(spec(schedule={"kind": "cron", "expr": "0 7 * * *"}, history={"successfulPodsLimit": 5}))
    for i, value in enumerate(["first", "second"]):
        at = T0 + timedelta(seconds=10 * (i + 1))
        w.job = replace(w.job, run_now=value)
        w.step(at)
        w.finish(w.status["active"][0]["podName"], ok=True, at=at + timedelta(seconds=1))
        w.step(at + timedelta(seconds=2))
    for k in range(5):
        plan = w.step(T0 + timedelta(seconds=40 + k))
        assert plan.starts == [] and plan.finished == []
    assert w.status["counters"]["runs"] == 2 and len(w.status["recentRuns"]) == 2


def test_retry_not_before_is_rounded_up_to_the_second() -> None:
    w = World(spec(retry={"limit": 1, "delaySeconds": 2}))
    w.step(T0 + timedelta(seconds=60))
    w.finish(w.status["active"][0]["podName"], ok=False, at=T0 + timedelta(seconds=61))
    w.step(T0 + timedelta(seconds=61, milliseconds=300))
    assert w.status["pending"][0]["notBefore"] == n.rfc3339(T0 + timedelta(seconds=64))


def test_pod_the_api_refused_is_a_failed_run_not_retried() -> None:
    w = World(spec(retry={"limit": 3, "delaySeconds": 1}))
    w.step(T0 + timedelta(seconds=60))
    pod = w.status["active"][0]["podName"]
    del w.pods[pod]  # creation was refused: it never existed
    plan = w.step(T0 + timedelta(seconds=60, milliseconds=50), refused={pod: "403 Forbidden: exceeded quota"})
    rec = w.status["recentRuns"][0]
    assert (rec["result"], rec["reason"], rec["attempts"]) == ("Failed", "PodCreateFailed", 1)
    assert "exceeded quota" in rec["message"]
    assert w.status["pending"] == [] and w.status["active"] == []
    assert [e.reason for e in plan.events] == ["Failed"]
