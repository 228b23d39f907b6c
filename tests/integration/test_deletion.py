"""Deleting a job, its namespace or the install never waits for the operator (no finalizer).

What a finalizer protected must hold without one: run Pods go with their job through the
garbage collector (controller ownerReference), the operator forgets a deleted job (state,
metric series, pending work) from the DELETED event or, when it was down, from the next full
listing, and a job deleted while its run is in flight never gets a new Pod afterwards.
"""

from __future__ import annotations

import itertools
import socket
import time
import urllib.request

from scenarios import API, NS, PLURAL, command_job, job_pods, runs, start, wait_status

from support import Cluster, wait_for

LEGACY_FINALIZER = "cron.openclaw.io/finalizer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _job_series(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#") and f'job="{name}"' in line]


def test_a_job_carries_no_finalizer(cluster: Cluster) -> None:
    start(cluster)
    cluster.apply(command_job("plain", every="1h"))
    wait_status(cluster, "plain", lambda s: bool(s.get("nextRunTime")), 20, "scheduled")
    assert not (cluster.get(API, PLURAL, NS, "plain") or {})["metadata"].get("finalizers")


def test_delete_with_the_operator_stopped_is_immediate_and_forgotten_on_restart(cluster: Cluster) -> None:
    port = _free_port()
    cluster.kubelet.script(name_prefix="gone-", run_seconds=0.5)
    op = start(cluster, OPENCLAW_CRON_METRICS_PORT=str(port))
    cluster.apply(command_job("gone", every="1s"), command_job("stays", every="1h"))
    wait_status(cluster, "gone", lambda s: len(runs(s, "Succeeded")) >= 1, 30, "a run of the doomed job")
    wait_for(lambda: _job_series(_metrics(port), "gone"), 10, message="metric series of the job")
    op.stop()

    begun = time.monotonic()
    cluster.kubectl("delete", "ocj", "gone", "-n", NS, "--timeout=20s")
    assert time.monotonic() - begun < 10, "kubectl delete waited for an operator"
    assert cluster.get(API, PLURAL, NS, "gone") is None
    wait_for(lambda: not job_pods(cluster, "gone"), 20, message="its run Pods garbage-collected")

    port2 = _free_port()
    op2 = start(cluster, OPENCLAW_CRON_METRICS_PORT=str(port2))
    wait_status(cluster, "stays", lambda s: bool(s.get("nextRunTime")), 20, "the other job is served")
    time.sleep(3)  # the deleted job's slot (every 1s) came around several times meanwhile
    assert not job_pods(cluster, "gone"), "a Pod was created for a deleted job"
    assert _job_series(_metrics(port2), "gone") == []
    assert _job_series(_metrics(port2), "stays")
    assert "Traceback" not in op2.logs() and " ERROR " not in op2.logs()


def test_namespace_deleted_with_jobs_and_pods_while_the_operator_is_down(cluster: Cluster) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    cluster.kubelet.script(name_prefix="nsjob-", run_seconds=30)
    op = start(cluster)
    obj = command_job("nsjob", every="1h")
    obj["metadata"]["namespace"] = "team"
    cluster.apply(obj)
    cluster.kubectl("annotate", "ocj", "nsjob", "-n", "team", "cron.openclaw.io/run-now=1")
    wait_for(lambda: cluster.pods("team"), 30, message="a run Pod in the namespace")
    op.stop()

    cluster.kubectl("delete", "namespace", "team", "--timeout=40s")
    wait_for(lambda: cluster.get("v1", "namespaces", None, "team") is None, 40, message="the namespace gone")
    assert cluster.list(API, PLURAL, "team") == []
    assert cluster.pods("team") == []

    op2 = start(cluster)
    time.sleep(2)
    assert op2.running() and "Traceback" not in op2.logs()


def test_deleting_a_job_while_its_run_pod_runs(cluster: Cluster) -> None:
    cluster.kubelet.script(name_prefix="inflight-", run_seconds=30)
    op = start(cluster)
    cluster.apply(command_job("inflight", every="2s"))
    wait_status(cluster, "inflight", lambda s: bool(s.get("active")), 30, "a run in flight")
    uid = (cluster.get(API, PLURAL, NS, "inflight") or {})["metadata"]["uid"]
    cluster.kubectl("delete", "ocj", "inflight", "-n", NS, "--timeout=20s")
    wait_for(lambda: not job_pods(cluster, "inflight"), 30, message="the running Pod garbage-collected")
    time.sleep(5)  # several of its 2 s slots pass
    assert not job_pods(cluster, "inflight"), "a new Pod was created after the job was deleted"
    # nothing recorded into the deleted object (no write to a job of that uid after the delete)
    versions = cluster.history(API, PLURAL, NS, "inflight")
    assert versions[-1] is None
    assert all(v is None or v["metadata"]["uid"] == uid for v in versions)
    assert op.running() and "Traceback" not in op.logs()


def test_upgrade_releases_the_old_finalizer(cluster: Cluster) -> None:
    """Jobs created by the first version carry its finalizer; this version releases them."""
    for name in ("old-a", "old-b"):
        obj = command_job(name, every="1h")
        obj["metadata"]["finalizers"] = [LEGACY_FINALIZER, "example.com/keep"]
        cluster.apply(obj)
    stuck = command_job("old-deleting", every="1h")
    stuck["metadata"]["finalizers"] = [LEGACY_FINALIZER]
    cluster.apply(stuck)
    cluster.kubectl("delete", "ocj", "old-deleting", "-n", NS, "--wait=false")
    assert (cluster.get(API, PLURAL, NS, "old-deleting") or {})["metadata"].get("deletionTimestamp")

    start(cluster)
    for name in ("old-a", "old-b"):
        wait_for(
            lambda name=name: (
                (cluster.get(API, PLURAL, NS, name) or {})["metadata"].get("finalizers") == ["example.com/keep"]
            ),
            20,
            message=f"{name} released (other finalizers kept)",
        )
    wait_for(lambda: cluster.get(API, PLURAL, NS, "old-deleting") is None, 20, message="the stuck job deleted")
    # the release is one metadata write per job: exactly one version drops the old finalizer
    assert not job_pods(cluster, "old-deleting")
    versions = [v for v in cluster.history(API, PLURAL, NS, "old-a") if v]
    held = [LEGACY_FINALIZER in v["metadata"].get("finalizers", []) for v in versions]
    assert held[0] and sum(1 for a, b in itertools.pairwise(held) if a and not b) == 1
    assert not any(held[held.index(False) :])
