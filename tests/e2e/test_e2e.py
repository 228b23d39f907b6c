"""The operator scenarios against a real cluster (KUBECONFIG); see conftest.py for the setup.

The same scenarios as tests/integration/test_operator.py, written only against what a
conformant kube-apiserver and kubelet do: real shell commands in E2E_IMAGE, an image that
cannot be pulled, activeDeadlineSeconds, graceful deletion, the garbage collector, the status
subresource (status writes never bump metadata.generation), JSON merge patches on the custom
resource. All jobs share the module's namespace, so every test uses its own job names.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from support import wait_for

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name at run time
    from conftest import E2E

PLURAL = "openclawcronjobs"
MISSING_IMAGE = "does-not-exist.invalid/nope:1"

#: Runs until killed; answers SIGTERM at once (a shell as PID 1 would otherwise sit out the grace period).
LONG = "trap 'echo terminated; exit 143' TERM; sleep {seconds} & wait"
ATTEMPT_ENV = [
    {"name": "ATTEMPT", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['cron.openclaw.io/attempt']"}}}
]


def runs(st: dict[str, Any], result: str | None = None) -> list[dict[str, Any]]:
    return [r for r in st.get("recentRuns", []) if result is None or r["result"] == result]


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


@pytest.fixture(autouse=True)
def _delete_jobs_after(e2e: E2E) -> Iterator[None]:
    """Each test's jobs go away afterwards, so the shared operator only works on the current test."""
    yield
    e2e.kubectl("delete", PLURAL, "--all", "--wait=false", check=False)


def test_command_job_runs_and_records_history(e2e: E2E) -> None:
    e2e.apply(e2e.command_job("hello", "echo hello from the job"))
    st = e2e.wait_status("hello", lambda s: len(runs(s, "Succeeded")) >= 2, 60, "two successful runs")
    rec = runs(st, "Succeeded")[0]
    assert rec["trigger"] == "Schedule" and rec["attempts"] == 1 and rec["exitCode"] == 0
    assert rec["podName"].startswith("hello-")
    assert st["counters"]["succeeded"] >= 2 and st["consecutiveFailures"] == 0
    assert st["schedule"] == "every 2s"
    assert st["nextRunTime"] > st["lastScheduleTime"]
    job = e2e.job("hello")
    assert job is not None
    assert condition(st, "Ready")["status"] == "True"
    assert condition(st, "Ready")["observedGeneration"] == job["metadata"]["generation"]
    pod = e2e.pods("hello")[0]
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "openclaw-cron-operator"
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["uid"] == job["metadata"]["uid"] and owner["controller"] is True
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    table = e2e.kubectl("get", "ocj", "hello").stdout
    assert table.splitlines()[0].split()[:4] == ["NAME", "SCHEDULE", "SUSPEND", "STATE"]
    assert "every 2s" in table and "Succeeded" in table
    reasons = {e["reason"] for e in e2e.events("OpenClawCronJob") if e["involvedObject"]["name"] == "hello"}
    assert {"Started", "Succeeded"} <= reasons


def test_failed_command_records_exit_code_and_log_tail(e2e: E2E) -> None:
    e2e.apply(e2e.command_job("broken", "echo line1; echo 'fatal: disk full'; exit 3", every="1h"))
    e2e.wait_status("broken", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    e2e.annotate("broken", "first")
    st = e2e.wait_status("broken", lambda s: bool(runs(s, "Failed")), 60, "a failed run")
    rec = runs(st, "Failed")[0]
    assert rec["exitCode"] == 3 and rec["trigger"] == "Manual"
    assert "fatal: disk full" in (rec.get("message") or "")  # FallbackToLogsOnError
    assert st["consecutiveFailures"] == 1 and st["lastRunResult"] == "Failed"


def test_retry_after_delay_then_success(e2e: E2E) -> None:
    """Attempt 1 exits 1, attempt 2 (its own Pod, after the delay) succeeds."""
    script = 'echo "attempt $ATTEMPT"; [ "$ATTEMPT" -ge 2 ] || { echo "first try fails"; exit 1; }'
    e2e.apply(e2e.command_job("flaky", script, every="1h", env=ATTEMPT_ENV, retry={"limit": 2, "delaySeconds": 3}))
    e2e.wait_status("flaky", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    t0 = time.monotonic()
    e2e.annotate("flaky", "1")
    e2e.wait_status("flaky", lambda s: any(p["attempt"] == 2 for p in s.get("pending", [])), 60, "retry pending")
    st = e2e.wait_status("flaky", lambda s: bool(runs(s, "Succeeded")), 60, "retry succeeded")
    assert time.monotonic() - t0 >= 2  # the delay counts from a whole-second finish time
    assert runs(st, "Succeeded")[0]["attempts"] == 2
    names = sorted(p["metadata"]["name"] for p in e2e.pods("flaky"))
    assert len(names) == 2 and names[1].endswith("-2")


def test_timeout_becomes_timed_out(e2e: E2E) -> None:
    e2e.apply(e2e.command_job("slow", LONG.format(seconds=60), every="1h", timeoutSeconds=3))
    e2e.wait_status("slow", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    e2e.annotate("slow", "1")
    st = e2e.wait_status("slow", lambda s: bool(runs(s, "TimedOut")), 60, "timed out")
    assert runs(st, "TimedOut")[0]["reason"] == "DeadlineExceeded"
    assert e2e.pods("slow")[0]["spec"]["activeDeadlineSeconds"] == 3


def test_pod_deleted_while_running(e2e: E2E) -> None:
    e2e.apply(e2e.command_job("victim", LONG.format(seconds=120), every="1h"))
    e2e.wait_status("victim", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    e2e.annotate("victim", "1")
    st = e2e.wait_status("victim", lambda s: bool(s.get("active")), 60, "running")
    pod = st["active"][0]["podName"]
    wait_for(lambda: e2e.core.read_namespaced_pod(pod, e2e.ns).status.phase == "Running", 60, 0.25, "pod running")
    e2e.kubectl("delete", "pod", pod, "--wait=false")
    st = e2e.wait_status("victim", lambda s: bool(runs(s)) and not s.get("active"), 60, "recorded")
    assert runs(st)[0]["result"] == "Failed"
    assert runs(st)[0]["reason"] in ("PodDeleted", "Error")


def test_stuck_pending_fails_and_removes_pod(e2e: E2E) -> None:
    e2e.apply(e2e.command_job("stuck", "true", every="1h", image=MISSING_IMAGE))
    e2e.wait_status("stuck", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    e2e.annotate("stuck", "1")
    st = e2e.wait_status("stuck", lambda s: bool(runs(s, "Failed")), e2e.start_timeout + 60, "failed")
    rec = runs(st, "Failed")[0]
    assert rec["reason"] in ("ErrImagePull", "ImagePullBackOff"), rec
    assert MISSING_IMAGE in rec["message"] and "stuck Pending" in rec["message"]
    wait_for(lambda: not e2e.pods("stuck"), 60, 0.5, "the stuck pod is deleted")


@pytest.mark.parametrize("policy", ["Forbid", "Replace"])
def test_concurrency_policy(e2e: E2E, policy: str) -> None:
    name = f"overlap-{policy.lower()}"
    e2e.apply(e2e.command_job(name, LONG.format(seconds=30), concurrencyPolicy=policy))
    if policy == "Forbid":
        st = e2e.wait_status(name, lambda s: bool(runs(s, "Skipped")), 60, "a skipped run")
        assert runs(st, "Skipped")[0]["reason"] == "ConcurrencyForbid"
        assert len(st.get("active", [])) <= 1
    else:
        replaced = lambda s: any(r.get("reason") == "Replaced" for r in runs(s))  # noqa: E731
        st = e2e.wait_status(name, replaced, 60, "a replaced run")
        assert len(st.get("active", [])) <= 1


def test_suspend_and_resume(e2e: E2E) -> None:
    e2e.apply(e2e.command_job("pausable"))
    e2e.wait_status("pausable", lambda s: bool(runs(s, "Succeeded")), 60, "runs")
    e2e.patch_spec("pausable", {"suspend": True})
    st = e2e.wait_status("pausable", lambda s: s.get("state") == "Suspended" and not s.get("active"), 60, "suspended")
    assert "nextRunTime" not in st
    count = st["counters"]["runs"]
    pods = len(e2e.pods("pausable"))
    time.sleep(5)
    st = e2e.status("pausable")
    assert st["counters"]["runs"] == count and len(e2e.pods("pausable")) <= pods
    assert e2e.kubectl("get", "ocj", "pausable", "-o", "jsonpath={.spec.suspend}").stdout == "true"
    e2e.patch_spec("pausable", {"suspend": False})
    e2e.wait_status("pausable", lambda s: s["counters"]["runs"] > count, 60, "resumed")


def test_run_now_annotation(e2e: E2E) -> None:
    obj = e2e.command_job("manual")
    obj["spec"]["schedule"] = {"kind": "cron", "expr": "0 0 1 1 *"}
    e2e.apply(obj)
    e2e.wait_status("manual", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    e2e.annotate("manual", "2026-11-25T10:00:00Z")
    st = e2e.wait_status("manual", lambda s: bool(runs(s, "Succeeded")), 60, "manual run")
    assert runs(st)[0]["trigger"] == "Manual"
    assert st["lastManualRun"] == "2026-11-25T10:00:00Z"
    time.sleep(3)
    assert len(e2e.pods("manual")) == 1, "the same annotation value runs once"


def test_second_run_now_value_runs_once_more(e2e: E2E) -> None:
    obj = e2e.command_job("manual2")
    obj["spec"]["schedule"] = {"kind": "cron", "expr": "0 0 1 1 *"}
    e2e.apply(obj)
    e2e.wait_status("manual2", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    e2e.annotate("manual2", "first")
    e2e.wait_status("manual2", lambda s: len(runs(s, "Succeeded")) == 1, 60, "the first manual run")
    e2e.annotate("manual2", "second")
    e2e.wait_status("manual2", lambda s: len(runs(s, "Succeeded")) >= 2, 60, "a second manual run")
    time.sleep(1)
    st = e2e.status("manual2")
    e2e.kubectl("delete", PLURAL, "manual2", "--wait=false")  # stop a runaway at once
    assert st["counters"]["runs"] == 2 and len(runs(st)) == 2, st["counters"]
    assert st["lastManualRun"] == "second"


def test_delete_after_run_for_one_shot(e2e: E2E) -> None:
    obj = e2e.command_job("oneshot")
    obj["spec"]["schedule"] = {"kind": "at", "at": "3s"}
    e2e.apply(obj)
    wait_for(lambda: e2e.job("oneshot") is None, 60, 0.5, "deleted after its run")
    reasons = {e["reason"] for e in e2e.events("OpenClawCronJob") if e["involvedObject"]["name"] == "oneshot"}
    assert "Succeeded" in reasons


def test_invalid_spec_then_fixed(e2e: E2E) -> None:
    obj = e2e.command_job("fixme")
    obj["spec"]["schedule"] = {"kind": "cron", "expr": "61 * * * *"}  # passes the CRD schema, not the parser
    e2e.apply(obj)
    st = e2e.wait_status("fixme", lambda s: s.get("state") == "Invalid", 30, "invalid")
    ready = condition(st, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("spec.schedule.expr: ")
    wait_for(
        lambda: [e for e in e2e.events("OpenClawCronJob") if e["reason"] == "InvalidSpec" and e["type"] == "Warning"],
        30,
        0.5,
        "a Warning event",
    )
    assert e2e.pods("fixme") == []
    e2e.patch_spec("fixme", {"schedule": {"kind": "every", "every": "2s", "expr": None}})
    st = e2e.wait_status("fixme", lambda s: bool(runs(s, "Succeeded")), 60, "fixed job runs")
    assert condition(st, "Ready")["status"] == "True"


def test_history_pruning_keeps_limits(e2e: E2E) -> None:
    history = {"successfulPodsLimit": 2, "failedPodsLimit": 1, "statusLimit": 3}
    e2e.apply(e2e.command_job("pruned", concurrencyPolicy="Allow", history=history))
    st = e2e.wait_status("pruned", lambda s: s.get("counters", {}).get("succeeded", 0) >= 5, 90, "five runs")
    assert len(st["recentRuns"]) == 3
    e2e.patch_spec("pruned", {"suspend": True})
    wait_for(
        lambda: len([p for p in e2e.pods("pruned") if p["status"].get("phase") == "Succeeded"]) <= 2,
        30,
        0.5,
        "old pods pruned",
    )


def test_owned_pods_garbage_collected_with_job(e2e: E2E) -> None:
    """Deleting the job lets the cluster's garbage collector remove its Pods (ownerReferences)."""
    e2e.apply(e2e.command_job("owner", concurrencyPolicy="Allow"))
    e2e.wait_status("owner", lambda s: len(runs(s, "Succeeded")) >= 2, 60, "runs")
    assert e2e.pods("owner")
    e2e.kubectl("delete", PLURAL, "owner", "--timeout=60s")
    assert e2e.job("owner") is None
    wait_for(lambda: not e2e.pods("owner"), 60, 0.5, "owned pods garbage-collected")


def test_generation_and_observed_generation(e2e: E2E) -> None:
    """Spec changes bump metadata.generation; status writes and annotations do not."""
    obj = e2e.command_job("gen", every="1h")
    e2e.apply(obj)
    st = e2e.wait_status("gen", lambda s: s.get("observedGeneration") == 1, 30, "observedGeneration 1")
    assert condition(st, "Ready")["observedGeneration"] == 1
    e2e.patch_spec("gen", {"timeoutSeconds": 120})
    job = e2e.job("gen")
    assert job is not None and job["metadata"]["generation"] == 2
    st = e2e.wait_status(
        "gen",
        lambda s: s.get("observedGeneration") == 2 and condition(s, "Ready").get("observedGeneration") == 2,
        30,
        "observedGeneration 2",
    )
    e2e.annotate("gen", "go")
    e2e.wait_status("gen", lambda s: bool(runs(s, "Succeeded")), 60, "a manual run")
    job = e2e.job("gen")
    assert job is not None and job["metadata"]["generation"] == 2, "status and annotations keep the generation"
    assert e2e.pods("gen")[0]["spec"]["activeDeadlineSeconds"] == 120


def test_no_finalizer_delete_while_the_operator_is_stopped(e2e: E2E) -> None:
    """A job deleted while no operator runs goes at once; the restarted operator never runs it."""
    e2e.apply(e2e.command_job("orphaned", every="2s"))
    e2e.wait_status("orphaned", lambda s: bool(runs(s, "Succeeded")), 60, "a run")
    job = e2e.job("orphaned")
    assert job is not None and not job["metadata"].get("finalizers")
    assert e2e.operator is not None
    e2e.operator.stop()
    try:
        begun = time.monotonic()
        e2e.kubectl("delete", PLURAL, "orphaned", "--timeout=30s")
        assert time.monotonic() - begun < 20 and e2e.job("orphaned") is None
        wait_for(lambda: not e2e.pods("orphaned"), 60, 0.5, "its Pods garbage-collected")
    finally:
        e2e.start_operator()
    time.sleep(6)  # three of its slots
    assert not e2e.pods("orphaned"), "a Pod was created for a deleted job"


def test_old_finalizer_released_at_start(e2e: E2E) -> None:
    """Jobs of the first version carry cron.openclaw.io/finalizer; this operator removes it."""
    obj = e2e.command_job("legacy", every="1h")
    obj["metadata"]["finalizers"] = ["cron.openclaw.io/finalizer"]
    e2e.apply(obj)
    wait_for(lambda: not (e2e.job("legacy") or {"metadata": {}})["metadata"].get("finalizers"), 60, 0.5, "released")
    e2e.kubectl("delete", PLURAL, "legacy", "--timeout=30s")
    assert e2e.job("legacy") is None
