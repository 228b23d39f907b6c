"""The real operator process (kopf) against the emulated API server and simulated kubelet.

Schedules are short (`every: 2s`) so no test waits minutes. Each test gets its own
cluster; the operator runs as a separate process with KUBECONFIG, as in production.
"""

from __future__ import annotations

import json
import time

import pytest
from scenarios import (
    API,
    NS,
    PLURAL,
    command_job,
    condition,
    job,
    job_pods,
    patch_spec,
    runs,
    start,
    status,
    wait_status,
)

from support import Cluster, Fault, wait_for


def test_command_job_runs_and_records_history(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="hello-", output="hello from the job\n")
    start(cluster, OPENCLAW_CRON_NORMAL_EVENTS="true")
    cluster.apply(command_job("hello"))
    st = wait_status(cluster, "hello", lambda s: len(runs(s, "Succeeded")) >= 2, 30, "two successful runs")
    rec = runs(st, "Succeeded")[0]
    assert rec["trigger"] == "Schedule" and rec["attempts"] == 1 and rec["exitCode"] == 0
    assert rec["podName"].startswith("hello-")
    assert st["counters"]["succeeded"] >= 2 and st["consecutiveFailures"] == 0
    assert st["schedule"] == "every 2s"
    assert condition(st, "Ready")["status"] == "True"
    assert condition(st, "Ready")["observedGeneration"] == job(cluster, "hello")["metadata"]["generation"]
    assert st["nextRunTime"] > st["lastScheduleTime"]
    pod = job_pods(cluster, "hello")[0]
    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "openclaw-cron-operator"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == job(cluster, "hello")["metadata"]["uid"]
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    # kubectl get ocj shows the printer columns
    table = cluster.kubectl("get", "ocj", "-n", NS).stdout
    header = table.splitlines()[0].split()
    assert header[:4] == ["NAME", "SCHEDULE", "SUSPEND", "STATE"]
    assert "every" in table and "Succeeded" in table
    events = cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"] if e["involvedObject"].get("kind") == "OpenClawCronJob"}
    assert {"Started", "Succeeded"} <= reasons


def test_failed_command_records_exit_code_and_log_tail(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="broken-", exit_code=3, output="line1\nfatal: disk full\n")
    start(cluster)
    cluster.apply(command_job("broken", every="1h", concurrencyPolicy="Allow"))
    cluster.kubectl("annotate", "ocj", "broken", "-n", NS, "cron.openclaw.io/run-now=first")
    st = wait_status(cluster, "broken", lambda s: bool(runs(s, "Failed")), 30, "a failed run")
    rec = runs(st, "Failed")[0]
    assert rec["exitCode"] == 3 and rec["trigger"] == "Manual"
    assert "fatal: disk full" in (rec.get("message") or "")
    assert st["consecutiveFailures"] == 1 and st["lastRunResult"] == "Failed"


def test_agent_turn_without_reachable_gateway_fails_and_retries(cluster: Cluster) -> None:
    """Runner Pods really run the runner; with no gateway they fail as retryable, then retry."""
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "openclaw-hooks", "namespace": NS},
            "stringData": {"token": "s3cr3t-token"},
        }
    )
    start(cluster)
    spec = {
        "schedule": {"kind": "every", "every": "1h"},
        "payload": {"kind": "agentTurn", "message": "hi"},
        "retry": {"limit": 1, "delaySeconds": 1},
    }
    cluster.apply(
        {"apiVersion": API, "kind": "OpenClawCronJob", "metadata": {"name": "agent", "namespace": NS}, "spec": spec}
    )
    cluster.kubectl("annotate", "ocj", "agent", "-n", NS, "cron.openclaw.io/run-now=go")
    st = wait_status(cluster, "agent", lambda s: bool(runs(s, "Failed")), 45, "the run failed after its retry")
    rec = runs(st, "Failed")[0]
    assert rec["attempts"] == 2
    assert rec["reason"] == "GatewayUnreachable"
    assert {p["metadata"]["labels"]["cron.openclaw.io/attempt"] for p in job_pods(cluster, "agent")} <= {"1", "2"}
    dump = json.dumps(job(cluster, "agent")) + cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout
    assert "s3cr3t-token" not in dump


def test_missing_token_secret_is_invalid_until_created(cluster: Cluster) -> None:
    start(cluster)
    cluster.apply(
        {
            "apiVersion": API,
            "kind": "OpenClawCronJob",
            "metadata": {"name": "nosecret", "namespace": NS},
            "spec": {"schedule": {"kind": "every", "every": "2s"}, "payload": {"kind": "systemEvent", "text": "ping"}},
        }
    )
    st = wait_status(cluster, "nosecret", lambda s: s.get("state") == "Invalid", 30, "invalid")
    assert condition(st, "Ready")["message"].startswith(
        'spec.gateway.tokenSecretRef: Secret "openclaw-hooks" not found'
    )
    assert job_pods(cluster, "nosecret") == []
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "openclaw-hooks", "namespace": NS},
            "stringData": {"token": "t"},
        }
    )
    wait_status(cluster, "nosecret", lambda s: s.get("state") in ("Scheduled", "Running"), 60, "recovered")


def test_invalid_spec_then_fixed(cluster: Cluster) -> None:
    start(cluster)
    obj = command_job("fixme")
    obj["spec"]["schedule"] = {"kind": "cron", "expr": "61 * * * *"}
    cluster.apply(obj)
    st = wait_status(cluster, "fixme", lambda s: s.get("state") == "Invalid", 30, "invalid")
    ready = condition(st, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("spec.schedule.expr: ")
    events = json.loads(cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout)["items"]
    warnings = [e for e in events if e["reason"] == "InvalidSpec" and e["type"] == "Warning"]
    assert len(warnings) == 1
    # another job keeps running meanwhile
    cluster.apply(command_job("healthy"))
    wait_status(cluster, "healthy", lambda s: bool(runs(s, "Succeeded")), 30, "other job runs")
    patch_spec(cluster, "fixme", {"schedule": {"kind": "every", "every": "2s", "expr": None}})
    st = wait_status(cluster, "fixme", lambda s: bool(runs(s, "Succeeded")), 30, "fixed job runs")
    assert condition(st, "Ready")["status"] == "True"


@pytest.mark.parametrize("policy", ["Allow", "Forbid", "Replace", "Queue"])
def test_concurrency_policy(cluster: Cluster, policy: str) -> None:
    name = f"overlap-{policy.lower()}"
    cluster.kubelet.script(name_prefix=name, run_seconds=5)
    start(cluster)
    cluster.apply(command_job(name, concurrencyPolicy=policy))
    if policy == "Allow":
        wait_status(cluster, name, lambda s: len(s.get("active", [])) >= 2, 30, "two overlapping runs")
    elif policy == "Forbid":
        st = wait_status(cluster, name, lambda s: bool(runs(s, "Skipped")), 30, "a skipped run")
        assert runs(st, "Skipped")[0]["reason"] == "ConcurrencyForbid"
        assert len(st.get("active", [])) <= 1
    elif policy == "Replace":
        st = wait_status(cluster, name, lambda s: any(r.get("reason") == "Replaced" for r in runs(s)), 30, "replaced")
        assert len(st.get("active", [])) == 1
    else:
        st = wait_status(
            cluster, name, lambda s: any(p["reason"] == "Queued" for p in s.get("pending", [])), 30, "a queued run"
        )
        assert len(st.get("active", [])) == 1
        first = st["active"][0]["runId"]
        st = wait_status(
            cluster,
            name,
            lambda s: bool(runs(s, "Succeeded")) and bool(s.get("active")),
            30,
            "the queued run starts after the first",
        )
        assert st["active"][0]["runId"] != first and runs(st, "Succeeded")[0]["runId"] == first


def test_global_cap_queues_runs(cluster: Cluster) -> None:
    for name in ("capa", "capb"):
        cluster.kubelet.script(name_prefix=name, run_seconds=4)
    start(cluster, "--standalone", "--max-concurrent-runs", "1")
    cluster.apply(command_job("capa", concurrencyPolicy="Allow"), command_job("capb", concurrencyPolicy="Allow"))
    deadline = time.monotonic() + 12
    peak = 0
    waited = False
    while time.monotonic() < deadline:
        running = [p for p in cluster.pods(NS) if p.get("status", {}).get("phase") in ("Pending", "Running")]
        peak = max(peak, len(running))
        waited = waited or any(
            p.get("reason") == "GlobalCap" for n in ("capa", "capb") for p in status(cluster, n).get("pending", [])
        )
        time.sleep(0.1)
    assert peak == 1
    assert waited


def test_retry_after_delay_then_success(cluster: Cluster) -> None:
    # attempt 1 fails, attempt 2 succeeds (pod names end in -2 for the second attempt)
    cluster.kubelet.script(name_prefix="flaky-", exit_code=1, output="first try fails\n")
    start(cluster)
    cluster.apply(command_job("flaky", every="1h", retry={"limit": 2, "delaySeconds": 2}))
    t0 = time.monotonic()
    cluster.kubectl("annotate", "ocj", "flaky", "-n", NS, "cron.openclaw.io/run-now=1")
    wait_status(cluster, "flaky", lambda s: any(p["attempt"] == 2 for p in s.get("pending", [])), 30, "retry pending")
    cluster.kubelet.script(name_prefix="flaky-", exit_code=0)
    st = wait_status(cluster, "flaky", lambda s: bool(runs(s, "Succeeded")), 30, "retry succeeded")
    assert time.monotonic() - t0 >= 2
    assert runs(st, "Succeeded")[0]["attempts"] == 2
    names = sorted(p["metadata"]["name"] for p in job_pods(cluster, "flaky"))
    assert len(names) == 2 and names[1].endswith("-2")


def test_timeout_becomes_timed_out(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="slow-", run_seconds=30)
    start(cluster)
    cluster.apply(command_job("slow", every="1h", timeoutSeconds=2))
    cluster.kubectl("annotate", "ocj", "slow", "-n", NS, "cron.openclaw.io/run-now=1")
    st = wait_status(cluster, "slow", lambda s: bool(runs(s, "TimedOut")), 30, "timed out")
    assert runs(st, "TimedOut")[0]["reason"] == "DeadlineExceeded"
    assert job_pods(cluster, "slow")[0]["spec"]["activeDeadlineSeconds"] == 2


def test_pod_deleted_while_running(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="victim-", run_seconds=30)
    start(cluster)
    cluster.apply(command_job("victim", every="1h"))
    cluster.kubectl("annotate", "ocj", "victim", "-n", NS, "cron.openclaw.io/run-now=1")
    st = wait_status(cluster, "victim", lambda s: bool(s.get("active")), 30, "running")
    cluster.kubectl("delete", "pod", st["active"][0]["podName"], "-n", NS, "--wait=false")
    st = wait_status(cluster, "victim", lambda s: bool(runs(s)) and not s.get("active"), 30, "recorded")
    assert runs(st)[0]["result"] in ("Failed",)
    assert runs(st)[0]["reason"] in ("PodDeleted", "Error")


def test_stuck_pending_fails_and_removes_pod(cluster: Cluster) -> None:
    cluster.kubelet.script(
        name_prefix="stuck-", stay_pending_reason="ErrImagePull", stay_pending_message="pull access denied for nope"
    )
    start(cluster)
    cluster.apply(command_job("stuck", every="1h"))
    cluster.kubectl("annotate", "ocj", "stuck", "-n", NS, "cron.openclaw.io/run-now=1")
    st = wait_status(cluster, "stuck", lambda s: bool(runs(s, "Failed")), 30, "failed")
    rec = runs(st, "Failed")[0]
    assert rec["reason"] == "ErrImagePull" and "pull access denied" in rec["message"]
    wait_for(lambda: not job_pods(cluster, "stuck"), 15, message="the stuck pod is deleted")


@pytest.mark.parametrize("catch_up", ["Latest", "None", "All"])
def test_catch_up_after_downtime(cluster: Cluster, catch_up: str) -> None:
    """12 s down with a 3 s schedule: All runs the missed slots, Latest/None only the current one."""
    name = f"down-{catch_up.lower()}"
    op = start(cluster)
    cluster.apply(
        command_job(name, concurrencyPolicy="Allow", schedule={"kind": "every", "every": "3s", "catchUp": catch_up})
    )
    wait_status(cluster, name, lambda s: bool(runs(s, "Succeeded")), 30, "first run")
    op.stop()
    before = status(cluster, name)["counters"]
    time.sleep(12)
    start(cluster)
    st = wait_status(cluster, name, lambda s: s["counters"]["runs"] > before["runs"], 30, "runs after restart")
    time.sleep(1)
    st = status(cluster, name)
    new_runs = st["counters"]["runs"] - before["runs"]
    missed = st["counters"]["missed"] - before["missed"]
    catchups = [r for r in runs(st) if r["trigger"] == "CatchUp" and r["result"] != "Missed"]
    catchups += [a for a in st.get("active", []) if a["trigger"] == "CatchUp"]
    events = json.loads(cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout)["items"]
    missed_events = [e for e in events if e["reason"] == "Missed" and e["involvedObject"]["name"] == name]
    if catch_up == "All":
        assert missed == 0 and len(catchups) >= 3 and not missed_events
    else:
        assert missed >= 2 and not catchups
        assert new_runs <= 2  # the current slot (and perhaps the next one), never a storm
        assert len(missed_events) == 1
        assert f"{missed} scheduled run(s) missed" in missed_events[0]["message"]


def test_suspend_and_resume(cluster: Cluster) -> None:
    start(cluster)
    cluster.apply(command_job("pausable"))
    wait_status(cluster, "pausable", lambda s: bool(runs(s, "Succeeded")), 30, "runs")
    patch_spec(cluster, "pausable", {"suspend": True})
    st = wait_status(cluster, "pausable", lambda s: s.get("state") == "Suspended", 30, "suspended")
    assert "nextRunTime" not in st
    count = len(job_pods(cluster, "pausable")) + st["counters"]["runs"]
    time.sleep(5)
    st = status(cluster, "pausable")
    assert len(job_pods(cluster, "pausable")) + st["counters"]["runs"] == count
    assert cluster.kubectl("get", "ocj", "pausable", "-n", NS, "-o", "jsonpath={.spec.suspend}").stdout == "true"
    patch_spec(cluster, "pausable", {"suspend": False})
    wait_status(cluster, "pausable", lambda s: s["counters"]["runs"] > st["counters"]["runs"], 30, "resumed")


def test_run_now_annotation(cluster: Cluster) -> None:
    start(cluster)
    obj = command_job("manual")
    obj["spec"]["schedule"] = {"kind": "cron", "expr": "0 0 1 1 *"}
    cluster.apply(obj)
    wait_status(cluster, "manual", lambda s: s.get("state") == "Scheduled", 30, "scheduled")
    cluster.kubectl("annotate", "ocj", "manual", "-n", NS, "cron.openclaw.io/run-now=2026-11-25T10:00:00Z")
    st = wait_status(cluster, "manual", lambda s: bool(runs(s, "Succeeded")), 30, "manual run")
    assert runs(st)[0]["trigger"] == "Manual"
    assert st["lastManualRun"] == "2026-11-25T10:00:00Z"
    time.sleep(3)
    assert len(job_pods(cluster, "manual")) == 1, "the same annotation value runs once"


def test_delete_after_run_for_one_shot(cluster: Cluster) -> None:
    start(cluster)
    obj = command_job("oneshot")
    obj["spec"]["schedule"] = {"kind": "at", "at": "3s"}
    cluster.apply(obj)
    wait_for(lambda: cluster.get(API, PLURAL, NS, "oneshot") is None, 40, message="deleted after its run")
    assert cluster.history(API, PLURAL, NS, "oneshot")[-1] is None


def test_history_pruning_keeps_limits(cluster: Cluster) -> None:
    start(cluster)
    cluster.apply(
        command_job("pruned", every="1s", history={"successfulPodsLimit": 2, "failedPodsLimit": 1, "statusLimit": 3})
    )
    st = wait_status(cluster, "pruned", lambda s: s.get("counters", {}).get("succeeded", 0) >= 6, 40, "six runs")
    assert len(st["recentRuns"]) == 3
    wait_for(
        lambda: len([p for p in job_pods(cluster, "pruned") if p["status"].get("phase") == "Succeeded"]) <= 2,
        10,
        message="old pods pruned",
    )


def test_restart_between_pod_create_and_status_write(cluster: Cluster) -> None:
    """The status write after creating a Pod fails; the retry adopts the Pod: no duplicate."""
    cluster.kubelet.script(name_prefix="crash-", run_seconds=1)
    cluster.inject(Fault(verb="patch", resource="openclawcronjobs/status", name_prefix="crash", code=500, times=3))
    start(cluster)
    cluster.apply(command_job("crash", every="1h"))
    cluster.kubectl("annotate", "ocj", "crash", "-n", NS, "cron.openclaw.io/run-now=1")
    st = wait_status(cluster, "crash", lambda s: bool(runs(s, "Succeeded")), 40, "the run is recorded")
    assert len(job_pods(cluster, "crash")) == 1
    assert st["counters"]["runs"] == 1 and len(runs(st)) == 1


def test_operator_down_during_run_records_once(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="longrun-", run_seconds=4)
    op = start(cluster)
    cluster.apply(command_job("longrun", every="1h"))
    cluster.kubectl("annotate", "ocj", "longrun", "-n", NS, "cron.openclaw.io/run-now=1")
    wait_status(cluster, "longrun", lambda s: bool(s.get("active")), 30, "running")
    op.stop()
    wait_for(
        lambda: all(p["status"].get("phase") == "Succeeded" for p in job_pods(cluster, "longrun")),
        20,
        message="the pod finished while the operator was down",
    )
    start(cluster)
    st = wait_status(cluster, "longrun", lambda s: bool(runs(s, "Succeeded")), 30, "recorded after restart")
    time.sleep(2)
    st = status(cluster, "longrun")
    assert len(runs(st)) == 1 and st["counters"]["runs"] == 1 and st["counters"]["succeeded"] == 1


def test_two_operators_never_double_a_run(cluster: Cluster) -> None:
    cluster.apply(
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "openclaw-cron-operator"}}
    )
    a = start(cluster, "--priority", "10")
    b = start(cluster, "--priority", "20")
    cluster.apply(command_job("ha", every="2s"))
    wait_status(cluster, "ha", lambda s: len(runs(s, "Succeeded")) >= 3, 40, "runs with two operators")
    b.stop()  # the active one goes away; the standby takes over
    before = status(cluster, "ha")["counters"]["runs"]
    st = wait_status(cluster, "ha", lambda s: s["counters"]["runs"] >= before + 2, 60, "standby took over")
    names = [p["metadata"]["name"] for p in job_pods(cluster, "ha")]
    assert len(names) == len(set(names))
    run_ids = [r["runId"] for r in runs(st)]
    assert len(run_ids) == len(set(run_ids)), f"a run was recorded twice: {run_ids}"
    assert a.running()


def test_pod_refused_by_the_api_is_recorded_once(cluster: Cluster) -> None:
    # a create carries its name in the body, not the path: refuse every Pod create of this test
    fault = cluster.inject(
        Fault(
            verb="create",
            resource="pods",
            namespace=NS,
            code=403,
            reason="Forbidden",
            message='pods "refused" is forbidden: exceeded quota',
            times=100,
        )
    )
    start(cluster)
    cluster.apply(command_job("refused", every="1h", retry={"limit": 2, "delaySeconds": 1}))
    cluster.kubectl("annotate", "ocj", "refused", "-n", NS, "cron.openclaw.io/run-now=1")
    st = wait_status(cluster, "refused", lambda s: bool(runs(s, "Failed")), 30, "the refused run is recorded")
    rec = runs(st, "Failed")[0]
    assert (rec["reason"], rec["attempts"]) == ("PodCreateFailed", 1)
    assert "exceeded quota" in rec["message"]
    time.sleep(2)
    st = status(cluster, "refused")
    assert len(runs(st)) == 1 and st["counters"]["failed"] == 1 and not st.get("active")
    assert job_pods(cluster, "refused") == []
    assert fault.hits <= 3, "a refused run is recorded, not re-created over and over"
