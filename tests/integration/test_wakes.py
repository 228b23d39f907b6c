"""Issue 18 against the real operator process: every wake from an event, every run counted once.

The operator runs with a resync of a day (support.cluster.RESYNC_SECONDS), so nothing here can
pass by waiting for the safety net; the end-of-test check (conftest) also asserts that no
safety-net pass corrected anything. One test keeps the safety net's own behaviour.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from scenarios import (
    API,
    CORRECTION_LOG,
    NS,
    PLURAL,
    command_job,
    condition,
    corrections,
    job_pods,
    runs,
    start,
    status,
    wait_status,
)

from openclaw_cron import naming as n
from support import Cluster, wait_for

#: A slot far away: these jobs run only when told to (run-now, a dependency, a backfill).
LATER = "1h"


def after(name: str, *deps: str) -> dict[str, Any]:
    """A job with no schedule of its own that runs on each success of `deps`."""
    body = command_job(name)
    del body["spec"]["schedule"]
    body["spec"]["dependsOn"] = {"jobs": list(deps)}
    return body


def run_now(cluster: Cluster, name: str, value: str) -> None:
    cluster.kubectl("annotate", "--overwrite", PLURAL, name, f"{n.ANNOTATION_RUN_NOW}={value}")


def finished_pods(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    return [p for p in job_pods(cluster, name) if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]


def test_a_three_link_chain_is_recorded_link_by_link(cluster: Cluster) -> None:
    """A → B → C: each link starts and is recorded within seconds of the one before (issue 18, 1)."""
    assert cluster.kubelet is not None
    cluster.kubelet.script(name_prefix="", run_seconds=0.5)
    start(cluster)
    cluster.apply(command_job("a", every=LATER), after("b", "a"), after("c", "b"))
    for name in "abc":
        wait_status(cluster, name, lambda s: condition(s, "Ready").get("status") == "True", what=f"{name} ready")
    run_now(cluster, "a", "go")
    done: dict[str, dict[str, Any]] = {}
    for name in "abc":
        st = wait_status(cluster, name, lambda s: bool(runs(s, "Succeeded")), timeout=20, what=f"{name} recorded")
        assert st["state"] != "Running" and not st.get("active"), st
        done[name] = runs(st, "Succeeded")[0]
    assert (done["b"]["trigger"], done["c"]["trigger"]) == ("Dependency", "Dependency")
    for up, down in (("a", "b"), ("b", "c")):
        gap = n.parse_time(done[down]["completionTime"]) - n.parse_time(done[up]["completionTime"])
        assert timedelta(0) <= gap <= timedelta(seconds=5), (up, down, gap)
    for name in "abc":  # once each, whatever path found the run
        assert status(cluster, name)["counters"]["runs"] == 1 == status(cluster, name)["counters"]["succeeded"]


@pytest.mark.parametrize("instant", [False, True], ids=["kubelet-0.5s", "kubelet-instant"])
def test_two_run_now_values_within_one_second_are_two_runs(cluster: Cluster, instant: bool) -> None:
    """Two new values 0.3 s apart: two runs, counters equal to the finished Pods (issue 18, 2)."""
    assert cluster.kubelet is not None
    if instant:  # the stand-in kubelet finishes each Pod as soon as it sees it
        cluster.kubelet.script(name_prefix="", run_seconds=0.0, start_delay=0.0)
    else:
        cluster.kubelet.script(name_prefix="", run_seconds=0.5)
    start(cluster)
    cluster.apply(command_job("arch", every=LATER, concurrencyPolicy="Allow"))
    wait_status(cluster, "arch", lambda s: condition(s, "Ready").get("status") == "True", what="ready")
    import kubernetes  # the official client: both writes land within the same second

    client = cluster.api_client()
    api = kubernetes.client.CustomObjectsApi(client)
    group, version = API.split("/")
    time.sleep(1.05 - time.time() % 1)  # at the start of a second, so both values fall in it
    for value in ("2026-12-01T10:00:00.100Z", "2026-12-01T10:00:00.400Z"):
        patch = {"metadata": {"annotations": {n.ANNOTATION_RUN_NOW: value}}}
        api.patch_namespaced_custom_object(group, version, NS, PLURAL, "arch", patch)
        time.sleep(0.3)
    client.close()
    st = wait_status(cluster, "arch", lambda s: len(runs(s)) >= 2 and not s.get("active"), 20)
    wait_for(lambda: len(finished_pods(cluster, "arch")) == 2, 10, 0.1, "two finished Pods")
    time.sleep(2)  # later passes (Pod events, the status echo) must not count anything again
    st = status(cluster, "arch")
    pods = finished_pods(cluster, "arch")
    assert len({p["metadata"]["labels"][n.LABEL_RUN_ID] for p in pods}) == 2
    assert [r["trigger"] for r in runs(st)] == ["Manual", "Manual"]
    assert len({r["runId"] for r in runs(st)}) == 2
    c = st["counters"]
    assert (c["runs"], c["succeeded"], c["failed"]) == (len(pods), len(pods), 0) == (2, 2, 0)
    assert not st.get("active") and st["state"] != "Running"


@pytest.mark.parametrize("order", ["dependent-first", "upstream-first"])
def test_a_dependent_applied_before_its_upstream_recovers_at_once(cluster: Cluster, order: str) -> None:
    """GitOps applies a folder in any order: B names A before A exists (issue 18, 3)."""
    start(cluster)
    b = after("b", "a")
    if order == "dependent-first":
        cluster.apply(b)
        st = wait_status(cluster, "b", lambda s: condition(s, "Ready").get("status") == "False", what="b invalid")
        assert "no OpenClawCronJob 'a' in this namespace" in condition(st, "Ready")["message"]
        cluster.apply(command_job("a", every=LATER))
    else:
        cluster.apply(command_job("a", every=LATER), b)
    st = wait_status(cluster, "b", lambda s: condition(s, "Ready").get("status") == "True", 10, "b valid")
    assert st["state"] == "Scheduled"
    cluster.kubectl("delete", PLURAL, "a")  # and a deleted upstream is noticed at once too
    st = wait_status(cluster, "b", lambda s: condition(s, "Ready").get("status") == "False", 10, "b invalid again")
    assert "no OpenClawCronJob 'a'" in condition(st, "Ready")["message"]


@pytest.mark.parametrize("first", ["x", "y"])
def test_a_cycle_completed_in_either_order_loses_the_stale_message(cluster: Cluster, first: str) -> None:
    start(cluster)
    x, y = command_job("x", every=LATER), command_job("y", every=LATER)
    x["spec"]["dependsOn"] = {"jobs": ["y"]}
    y["spec"]["dependsOn"] = {"jobs": ["x"]}
    bodies = {"x": x, "y": y}
    second = "y" if first == "x" else "x"
    cluster.apply(bodies[first])
    st = wait_status(cluster, first, lambda s: condition(s, "Ready").get("status") == "False", what="first invalid")
    assert f"no OpenClawCronJob '{second}'" in condition(st, "Ready")["message"]
    cluster.apply(bodies[second])
    for name in (first, second):
        st = wait_status(
            cluster, name, lambda s: "dependency cycle" in condition(s, "Ready").get("message", ""), 10, f"{name} cycle"
        )
        assert "no OpenClawCronJob" not in condition(st, "Ready")["message"]


def test_backfill_final_status_has_no_next_slot(cluster: Cluster) -> None:
    """Every slot started: `state: Completed`, `started == total`, no `nextSlot` (issue 18, 4)."""
    start(cluster)
    body = command_job("nightly")
    body["spec"]["schedule"] = {"kind": "cron", "expr": "0 2 * * *", "tz": "UTC"}
    cluster.apply(body)
    wait_status(cluster, "nightly", lambda s: condition(s, "Ready").get("status") == "True", what="ready")
    request = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T23:00:00Z", "id": "bf-three"}
    cluster.kubectl("annotate", "--overwrite", PLURAL, "nightly", f"cron.openclaw.io/backfill={json.dumps(request)}")
    st = wait_status(
        cluster,
        "nightly",
        lambda s: (s.get("backfill") or {}).get("state") == "Completed" and len(runs(s)) >= 3 and not s.get("active"),
        30,
        "backfill completed",
    )
    assert st["backfill"] == {**request, "total": 3, "started": 3, "state": "Completed"}
    assert "nextSlot" not in st["backfill"]
    assert sorted(r["scheduledTime"] for r in runs(st)) == [f"2026-11-0{d}T02:00:00Z" for d in (1, 2, 3)]
    assert {r["trigger"] for r in runs(st)} == {"Backfill"} and st["counters"]["runs"] == 3


@pytest.mark.safety_net
def test_the_safety_net_records_what_a_lost_watch_hid_and_counts_it(cluster: Cluster) -> None:
    """The one test of the safety net itself: a short resync, the Pod watch down while a run ends.

    No event can wake the job (the Pod informer's watch is refused), so the run is recorded by
    the safety-net pass, which reads its active Pod from the API, counts the correction and logs it.
    """
    assert cluster.kubelet is not None
    cluster.kubelet.script(name_prefix="", run_seconds=3.0)
    operator = start(cluster, OPENCLAW_CRON_RESYNC_SECONDS="2")
    cluster.apply(command_job("net", every=LATER))
    wait_status(cluster, "net", lambda s: condition(s, "Ready").get("status") == "True", what="ready")
    run_now(cluster, "net", "once")
    wait_for(lambda: any((p.get("status") or {}).get("phase") == "Running" for p in job_pods(cluster, "net")), 10)
    wait_status(cluster, "net", lambda s: bool(s.get("active")), 10, "run on record as active")
    cluster.faults.add("error", verb="watch", resource="pods", times=None, code=503)
    cluster.disconnect_watches()  # the open stream goes too; reconnecting is refused
    st = wait_status(cluster, "net", lambda s: bool(runs(s, "Succeeded")), 20, "recorded by the safety net")
    assert st["counters"]["runs"] == 1 == st["counters"]["succeeded"] and not st.get("active")
    port = operator.metrics_port  # type: ignore[attr-defined]
    wait_for(lambda: corrections(port) >= 1, 5, 0.2, "a correction counted")
    operator.wait_for_log(CORRECTION_LOG, 5)
    line = next(line for line in operator.logs().splitlines() if CORRECTION_LOG in line)
    assert f"{NS}/net" in line and "recorded" in line, line
    assert cluster.get(API, PLURAL, NS, "net") is not None
