"""The scale knobs, end to end: the client-side rate limit, the Events setting, a quiet restart."""

from __future__ import annotations

import json
import time

from scenarios import API, NS, PLURAL, command_job, runs, start, wait_status

from support import Cluster, wait_for

OPERATOR_AGENT = "openclaw-cron-operator/"


def _at(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _operator_calls(cluster: Cluster, verb: str, resource: str) -> list[float]:
    calls = cluster.call(lambda: list(cluster.emulator.calls))
    return sorted(
        c.when
        for c in calls
        if c.verb == verb and c.resource == resource and c.user_agent.startswith(OPERATOR_AGENT) and c.code < 400
    )


def test_pod_creates_respect_the_client_side_rate_limit(cluster: Cluster) -> None:
    """12 jobs due in the same second under qps 4 / burst 2: creates arrive no faster than that."""
    slot = int(time.time()) + 6
    jobs = [command_job(f"paced-{i:02d}", every="1h") for i in range(12)]
    for obj in jobs:
        obj["spec"]["schedule"]["anchor"] = _at(slot)
    cluster.apply(*jobs)
    start(cluster, OPENCLAW_CRON_KUBE_API_QPS="4", OPENCLAW_CRON_KUBE_API_BURST="2")
    wait_for(lambda: len(_operator_calls(cluster, "create", "pods")) >= 12, 60, message="12 pods created")
    # Every request (status writes, reads, Events) shares the bucket, so Pod creates alone are
    # at most as fast: any 2 + 4*t window holds no more than that many requests.
    creates = _operator_calls(cluster, "create", "pods")
    span = creates[-1] - creates[0]
    assert span >= (12 - 2) / 4 * 0.9, f"12 creates in {span:.2f}s exceed qps 4 burst 2"
    for job in jobs:  # and nothing was lost on the way
        wait_status(cluster, job["metadata"]["name"], lambda s: bool(runs(s, "Succeeded")), 60, "recorded")


def _event_reasons(cluster: Cluster, name: str) -> list[tuple[str, str]]:
    items = json.loads(cluster.kubectl("get", "events", "-n", NS, "-o", "json").stdout)["items"]
    return [(e["type"], e["reason"]) for e in items if e["involvedObject"].get("name") == name]


def test_normal_events_are_off_by_default_and_warnings_always_on(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="quietok-", output="fine\n")
    cluster.kubelet.script(name_prefix="quietbad-", exit_code=2, output="broken\n")
    start(cluster)
    cluster.apply(command_job("quietok", every="2s"), command_job("quietbad", every="2s"))
    wait_status(cluster, "quietok", lambda s: len(runs(s, "Succeeded")) >= 2, 30, "two runs")
    wait_status(cluster, "quietbad", lambda s: len(runs(s, "Failed")) >= 2, 30, "two failed runs")
    wait_for(lambda: _event_reasons(cluster, "quietbad"), 10, message="a Warning Event")
    assert all(kind == "Warning" for kind, _ in _event_reasons(cluster, "quietbad"))
    assert ("Warning", "Failed") in _event_reasons(cluster, "quietbad")
    # (a Warning such as Missed may appear for the good job too, on a loaded machine)
    assert [e for e in _event_reasons(cluster, "quietok") if e[0] == "Normal"] == []


def test_normal_events_when_enabled(cluster: Cluster) -> None:
    start(cluster, OPENCLAW_CRON_NORMAL_EVENTS="true")
    cluster.apply(command_job("loud", every="2s"))
    wait_status(cluster, "loud", lambda s: bool(runs(s, "Succeeded")), 30, "a run")
    wait_for(lambda: ("Normal", "Succeeded") in _event_reasons(cluster, "loud"), 10, message="Normal Events")
    assert ("Normal", "Started") in _event_reasons(cluster, "loud")


def _create_jobs(cluster: Cluster, count: int) -> None:
    items = []
    for i in range(count):
        obj = command_job(f"idle-{i:04d}", every="24h")
        obj["spec"]["schedule"]["anchor"] = _at(int(time.time()) + 3600 + i)
        items.append(obj)
    for k in range(0, count, 250):
        chunk = {"apiVersion": "v1", "kind": "List", "items": items[k : k + 250]}
        cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(chunk), timeout=120)


def test_restart_with_2000_jobs_writes_nothing_where_nothing_changed(cluster: Cluster) -> None:
    _create_jobs(cluster, 2000)
    op = start(cluster)
    wait_for(
        lambda: all((j.get("status") or {}).get("nextRunTime") for j in cluster.list(API, PLURAL, NS)),
        120,
        0.5,
        "every job scheduled",
    )
    time.sleep(2)
    op.stop()
    before = cluster.writes(user_agent=OPERATOR_AGENT)
    op2 = start(cluster)
    op2.wait_for_log("Initial authentication has finished", 30)
    # all 2000 jobs are listed and passed through within seconds; give it a generous quiet period
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert op2.running()
        time.sleep(0.5)
    after = cluster.writes(user_agent=OPERATOR_AGENT)
    assert after == before, f"the restart wrote: { {k: after[k] - before.get(k, 0) for k in after} }"
    kopf_writes = cluster.writes(user_agent="kopf/")
    assert not any(resource == PLURAL for _, resource in kopf_writes), kopf_writes
