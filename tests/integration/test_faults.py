"""API faults against the real operator: jobs keep running, it recovers by itself, nothing lost or doubled.

Each scenario runs two `every: 2s` command jobs (one succeeds, one fails), lets them run,
injects one kind of fault (tests/support/faults.py) into every request of the operator (the
simulated kubelet and kubectl are exempt: they are the world, not the code under test), then
lifts it and measures the **recovery time**: from the end of the fault until a run whose Pod was
created after it has finished and is recorded in status. Bound: `RECOVERY_BOUND` seconds (one
schedule period, the run and a client backoff, with room for a loaded CI machine; the safety-net
resync is a day away, so recovery must come from events).

Then both jobs are suspended and, once quiet, the hidden invariant is checked against the API
server's own history of every Pod that ever existed (pruned ones included):

- no two Pods (uids) for one (run-id, attempt), and every run Pod finished;
- `counters.runs` = distinct runs with a Pod; `counters.succeeded`/`failed` = runs whose last
  attempt's Pod Succeeded/Failed; every run in `recentRuns` once, with its Pod's result;
- the operator's `openclaw_cron_runs_total` agrees with the counters (no run counted twice).

API errors must show in `openclaw_cron_api_errors_total{operation,code}` (the scheduler's HTTP
client counts every failed try). The operator runs with `OPENCLAW_CRON_API_TIMEOUT_SECONDS=2`, so a
5 s answer is past its client timeout.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from scenarios import NS, command_job, job_pods, patch_spec, start, status

from support import Cluster, OperatorProcess, wait_for

#: Seconds from the end of a fault until a new run is recorded, at most (measured: see RESULTS).
RECOVERY_BOUND = 20.0
JOBS = {"steady": 0, "flaky": 1}  # job name -> exit code of its runs
#: Measured figures per scenario, printed at the end of the session (`-s`) for the report.
RESULTS: list[str] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    cluster: Cluster
    operator: OperatorProcess
    metrics_port: int
    fault_started: float = 0.0
    fault_ended: float = 0.0
    known_pods: set[str] = field(default_factory=set)
    label: str = ""

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def finished(self, name: str) -> int:
        counters = status(self.cluster, name).get("counters") or {}
        return int(counters.get("succeeded", 0)) + int(counters.get("failed", 0))

    def begin_fault(self, label: str) -> None:
        self.label = label
        self.known_pods = {p["metadata"]["name"] for p in self.cluster.pods(NS)}
        self.fault_started = time.monotonic()

    def end_fault(self) -> None:
        self.cluster.faults.clear()
        self.fault_ended = time.monotonic()
        self.known_pods |= {p["metadata"]["name"] for p in self.cluster.pods(NS)}


@pytest.fixture
def rig(cluster: Cluster) -> Iterator[Rig]:
    for name, code in JOBS.items():
        cluster.kubelet.script(name_prefix=f"{name}-", exit_code=code, run_seconds=0.1)  # type: ignore[union-attr]
    port = _free_port()
    operator = start(cluster, OPENCLAW_CRON_METRICS_PORT=str(port), OPENCLAW_CRON_API_TIMEOUT_SECONDS="2")
    history = {"statusLimit": 50, "successfulPodsLimit": 2, "failedPodsLimit": 2}
    cluster.apply(*(command_job(name, every="2s", history=history) for name in JOBS))
    rig = Rig(cluster, operator, port)
    wait_for(lambda: all(rig.finished(n) >= 2 for n in JOBS), 40, 0.2, "two finished runs of each job before the fault")
    yield rig


# --- what is asserted in every scenario ------------------------------------------------------------


def pods_ever(cluster: Cluster, job: str) -> dict[str, list[dict[str, Any]]]:
    """Every Pod of `job` that ever existed (by name), each with all its stored versions."""

    def collect() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for (key, ns, name), stored in list(cluster.emulator._objects.items()):
            if key.plural != "pods" or key.group or ns != NS:
                continue
            versions = [json.loads(json.dumps(v.raw)) for v in stored.history if v is not None]
            if versions and versions[0]["metadata"].get("labels", {}).get("cron.openclaw.io/job") == job:
                found[name] = versions
        return found

    return cluster.call(collect)


def recovered(rig: Rig, bound: float = RECOVERY_BOUND) -> float:
    """Seconds from the end of the fault until every job has a run started after it finished in status."""

    def new_run_recorded(name: str) -> bool:
        recorded = {r.get("podName") for r in status(rig.cluster, name).get("recentRuns", [])}
        return any(
            p["metadata"]["name"] not in rig.known_pods and p["metadata"]["name"] in recorded
            for p in job_pods(rig.cluster, name)
        )

    for name in JOBS:
        left = max(0.1, bound - (time.monotonic() - rig.fault_ended))
        wait_for(
            lambda n=name: new_run_recorded(n), left, 0.1, f"{name}: a run started after the fault, within {bound}s"
        )
    seconds = time.monotonic() - rig.fault_ended
    RESULTS.append(
        f"{rig.label}: {len(rig.cluster.faults.hits)} requests hit over {rig.fault_ended - rig.fault_started:.1f}s,"
        f" recovered in {seconds:.1f}s, invariant NOT held"
    )
    return seconds


def quiesce(rig: Rig) -> None:
    """Suspend every job and wait until nothing runs and status stops changing."""
    for name in JOBS:
        patch_spec(rig.cluster, name, {"suspend": True})

    def quiet() -> bool:
        for name in JOBS:
            st = status(rig.cluster, name)
            if st.get("active") or st.get("pending") or st.get("state") != "Suspended":
                return False
            if any(
                p.get("status", {}).get("phase") not in ("Succeeded", "Failed") for p in job_pods(rig.cluster, name)
            ):
                return False
        return True

    wait_for(quiet, 30, 0.2, "every job suspended with nothing active")
    before = {n: status(rig.cluster, n).get("counters") for n in JOBS}
    time.sleep(2.5)  # later Pod events and status echoes change nothing either
    wait_for(quiet, 10, 0.2, "still quiet")
    assert {n: status(rig.cluster, n).get("counters") for n in JOBS} == before, "status kept changing while suspended"


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def assert_each_finished_pod_counted_once(rig: Rig) -> dict[str, int]:
    """The hidden invariant (module docstring); returns the runs seen per job."""
    quiesce(rig)
    text = rig.scrape()
    seen = {}
    for name, code in JOBS.items():
        pods = pods_ever(rig.cluster, name)
        uids: dict[tuple[str, str], set[str]] = {}
        last: dict[str, tuple[int, str]] = {}  # run id -> (attempt, final phase)
        for pod_name, versions in pods.items():
            labels = versions[0]["metadata"]["labels"]
            run_id, attempt = labels["cron.openclaw.io/run-id"], labels["cron.openclaw.io/attempt"]
            uids.setdefault((run_id, attempt), set()).update(v["metadata"]["uid"] for v in versions)
            phases = [v.get("status", {}).get("phase") for v in versions]
            final = next((p for p in reversed(phases) if p in ("Succeeded", "Failed")), None)
            assert final is not None, f"{pod_name} never finished: {phases}"
            if int(attempt) >= last.get(run_id, (0, ""))[0]:
                last[run_id] = (int(attempt), final)
        doubled = {key: ids for key, ids in uids.items() if len(ids) > 1}
        assert not doubled, f"{name}: more than one Pod for one (run, attempt): {doubled}"
        st = status(rig.cluster, name)
        counters = st["counters"]
        recorded = {r["runId"] for r in st.get("recentRuns", []) if r.get("podName")}
        want_succeeded = sum(1 for _, phase in last.values() if phase == "Succeeded")
        want_failed = sum(1 for _, phase in last.values() if phase == "Failed")
        assert (counters["runs"], counters["succeeded"], counters["failed"]) == (
            len(last),
            want_succeeded,
            want_failed,
        ), (
            f"{name}: counters {counters} vs {len(last)} runs with Pods ({want_succeeded} ok, {want_failed} failed);"
            f" runs with a Pod but not in recentRuns: {sorted(set(last) - recorded)};"
            f" in recentRuns without a Pod: {sorted(recorded - set(last))}"
        )
        assert (want_succeeded, want_failed) == ((len(last), 0) if code == 0 else (0, len(last)))
        recent = [r["runId"] for r in st.get("recentRuns", [])]
        assert len(recent) == len(set(recent)), f"{name}: a run recorded twice in recentRuns: {recent}"
        with_pods = [r for r in st["recentRuns"] if r.get("podName")]
        assert {r["runId"] for r in with_pods} == set(last), f"{name}: recentRuns {recent} vs Pods' runs {sorted(last)}"
        for rec in with_pods:
            assert rec["result"] == last[rec["runId"]][1], rec
        for result, count in (("Succeeded", want_succeeded), ("Failed", want_failed)):
            exported = metric(text, "openclaw_cron_runs_total", namespace=NS, job=name, result=result)
            assert exported == count, (
                f"{name}: openclaw_cron_runs_total{{result={result}}} = {exported}, status {count}"
            )
        seen[name] = len(last)
    return seen


def assert_errors_counted(rig: Rig, codes: set[str]) -> None:
    """The API errors the operator met are in its metrics."""
    text = rig.scrape()
    got = {
        line.split('code="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("openclaw_cron_api_errors_total{") and float(line.rsplit(" ", 1)[1]) > 0
    }
    assert got & codes, f"none of the injected {sorted(codes)} in openclaw_cron_api_errors_total (codes seen: {got})"


def record(rig: Rig, fault: str, seconds: float, runs: dict[str, int]) -> None:
    """The invariant held: say so (and how many runs it covered) in this scenario's line."""
    RESULTS[-1] = RESULTS[-1].replace("invariant NOT held", f"invariant held over runs {runs}")
    RESULTS[-1] = RESULTS[-1].replace(f"{rig.label}:", f"{fault}:", 1)


def retry_gaps(rig: Rig, codes: set[int]) -> list[float]:
    """Seconds from each failed operator write to the operator's next try of the same write.

    Only writes that name their object (patch, delete): a create's URL does not say which Pod.
    """
    calls = [
        c
        for c in list(rig.cluster.emulator.calls)
        if not c.user_agent.startswith(("kubectl", "simulated-kubelet")) and c.name and c.verb in ("patch", "delete")
    ]
    gaps = []
    for i, call in enumerate(calls):
        if call.code in codes:
            same = (call.verb, call.resource, call.namespace, call.name)
            later = next((c for c in calls[i + 1 :] if (c.verb, c.resource, c.namespace, c.name) == same), None)
            if later is not None:
                gaps.append(later.when - call.when)
    return gaps


def keep_running_during(rig: Rig, seconds: float) -> int:
    """Hold the fault `seconds`; returns how many runs finished meanwhile."""
    before = sum(rig.finished(n) for n in JOBS)
    time.sleep(seconds)
    return sum(rig.finished(n) for n in JOBS) - before


@pytest.fixture(scope="module", autouse=True)
def _print_results() -> Iterator[None]:
    yield
    if RESULTS:
        print("\nAPI fault scenarios:\n  " + "\n  ".join(RESULTS))


# --- the scenarios --------------------------------------------------------------------------------


def test_5xx_answers(rig: Rig) -> None:
    """Three requests answer 500, then half of them 503 for 8 s: jobs keep running through it."""
    rig.begin_fault("5xx_answers")
    rig.cluster.faults.add("error", code=500, times=3)  # the next three requests, whatever they are
    rig.cluster.faults.add("error", code=503, probability=0.5, times=None)
    during = keep_running_during(rig, 8)
    rig.end_fault()
    assert during >= 1, "no run finished while half the requests failed"
    assert 500 in {h.code for h in rig.cluster.faults.hits} and len(rig.cluster.faults.hits) >= 3
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, "5xx (3 x 500, then 50 % 503, 8 s)", seconds, runs)
    assert_errors_counted(rig, {"500", "503"})
    gaps = retry_gaps(rig, {500, 503})
    assert gaps, "no failed write was tried again"
    median = sorted(gaps)[len(gaps) // 2]
    assert median < 2.5, f"failed writes are not retried promptly (backoff from 0.2 s): {gaps}"
    if len(gaps) >= 3:  # full jitter: retries do not march in step
        assert len({round(gap, 2) for gap in gaps}) > 1, f"every retry waited the same: {gaps}"


def test_429_with_retry_after(rig: Rig) -> None:
    """Half the writes are throttled with Retry-After: 1 for 8 s; the operator waits and carries on."""
    rig.begin_fault("429_with_retry_after")
    for verb in ("create", "patch", "delete", "update"):
        rig.cluster.faults.add("error", verb=verb, code=429, retry_after=1, probability=0.5, times=None)
    during = keep_running_during(rig, 8)
    rig.end_fault()
    assert during >= 1, "no run finished while half the writes were throttled"
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, "429 Retry-After 1 (50 % of writes, 8 s)", seconds, runs)
    assert_errors_counted(rig, {"429"})
    gaps = retry_gaps(rig, {429})
    assert gaps, "no throttled write was tried again"
    assert min(gaps) >= 0.9, f"a throttled write was retried before its Retry-After of 1 s: {gaps}"


def test_slow_answers_past_the_client_timeout(rig: Rig) -> None:
    """Pod creates and status writes answer after 5 s (then apply, as a slow etcd does)."""
    rig.begin_fault("slow_answers_past_the_client_timeout")
    create = rig.cluster.faults.add("slow", verb="create", resource="pods", seconds=5, times=3)
    status_write = rig.cluster.faults.add("slow", verb="patch", resource="openclawcronjobs/status", seconds=5, times=3)
    wait_for(lambda: create.hits + status_write.hits >= 3, 20, 0.2, "the operator to meet slow answers")
    time.sleep(6)  # the late answers land
    rig.end_fault()
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, "slow answers 5 s (3 Pod creates, 3 status patches)", seconds, runs)
    assert_errors_counted(rig, {"TimeoutError"})


def test_dropped_watch_streams(rig: Rig) -> None:
    """For 8 s every watch is cut 1 s after it opens (no clean end): Pod outcomes still arrive."""
    rig.begin_fault("dropped_watch_streams")
    rule = rig.cluster.faults.add("drop-watch", seconds=1.0, times=None)
    rig.cluster.disconnect_watches()  # open watches reconnect, and meet the fault
    during = keep_running_during(rig, 8)
    rig.end_fault()
    assert rule.hits >= 2, "the operator's watches were not cut"
    assert during >= 1, "no run finished while watches kept dropping"
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, "watch streams cut after 1 s (8 s)", seconds, runs)


def test_410_gone_on_watch_resume(rig: Rig) -> None:
    """Watches end; every resume from a resourceVersion answers 410 Expired for 6 s: the operator re-lists."""
    rig.begin_fault("410_gone_on_watch_resume")
    rule = rig.cluster.faults.add("gone", times=None)
    rig.cluster.disconnect_watches()
    during = keep_running_during(rig, 6)
    rig.cluster.disconnect_watches()
    rig.end_fault()
    assert during >= 1, "no run finished while watch resumes were refused"
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, f"410 Gone on every watch resume (6 s, {rule.hits} refused)", seconds, runs)


def test_connection_resets(rig: Rig) -> None:
    """Resets before and after the write is applied: a Pod created whose answer was lost is not started twice."""
    rig.begin_fault("connection_resets")
    lost_create = rig.cluster.faults.add("reset", verb="create", resource="pods", after_apply=True, times=2)
    lost_status = rig.cluster.faults.add(
        "reset", verb="patch", resource="openclawcronjobs/status", after_apply=True, times=2
    )
    rig.cluster.faults.add("reset", probability=0.15, times=None)
    wait_for(lambda: lost_create.hits >= 2 and lost_status.hits >= 2, 30, 0.2, "resets after applied writes")
    time.sleep(2)
    rig.end_fault()
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, "connection resets (2 lost Pod creates, 2 lost status patches, 15 % of all)", seconds, runs)
    assert_errors_counted(rig, {"reset", "ClientConnectionError", "ServerDisconnectedError", "ClientOSError"})


def test_api_server_restart_keeps_state(rig: Rig) -> None:
    """The API server goes away for 3 s and comes back on the same port with the same objects."""
    rig.begin_fault("api_server_restart_keeps_state")
    rv = rig.cluster.emulator.resource_version
    down = rig.cluster.restart_api(down=3.0)
    rig.end_fault()
    assert down >= 3.0 and rig.cluster.emulator.resource_version >= rv
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, f"API server restart ({down:.1f}s down)", seconds, runs)
    assert rig.operator.running(), "the operator must ride out an API restart, not exit"
    assert_errors_counted(rig, {"ClientConnectorError", "ClientOSError", "ServerDisconnectedError"})


def test_seeded_mix_of_every_fault(rig: Rig) -> None:
    """All of it at once for 10 s (reproducible with FAULT_SEED): errors, throttling, stalls, resets, cuts."""
    rig.begin_fault("seeded_mix_of_every_fault")
    faults = rig.cluster.faults
    faults.add("error", code=503, probability=0.15, times=None)
    faults.add("error", verb="patch", code=429, retry_after=1, probability=0.15, times=None)
    faults.add("reset", probability=0.05, times=None)
    faults.add("reset", verb="create", resource="pods", after_apply=True, probability=0.2, times=None)
    faults.add("slow", seconds=3, probability=0.05, times=None)
    faults.add("drop-watch", seconds=2, probability=0.5, times=None)
    faults.add("gone", probability=0.3, times=None)
    rig.cluster.disconnect_watches()
    during = keep_running_during(rig, 10)
    rig.end_fault()
    assert during >= 1, "no run finished under the mix"
    actions = sorted({h.action for h in faults.hits})
    seconds = recovered(rig)
    runs = assert_each_finished_pod_counted_once(rig)
    record(rig, f"seeded mix for 10 s ({', '.join(actions)})", seconds, runs)
    assert_errors_counted(rig, {"503", "429", "ClientOSError", "ServerDisconnectedError", "TimeoutError"})
