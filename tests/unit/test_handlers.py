"""The scheduler's pure helpers: status patches, freshness, coalescing, prune batching."""

from __future__ import annotations

from datetime import UTC, datetime

from openclaw_cron.pods import PodView
from openclaw_cron.reconcile import Event, Plan
from openclaw_cron.scheduler.state import compact, newer
from openclaw_cron.scheduler.writes import prune_batches, quiet, status_patch


def test_status_patch_sends_changes_and_nulls_for_removed_keys() -> None:
    old = {"state": "Running", "active": [{"runId": "a"}], "counters": {"runs": 1}}
    new = {"state": "Scheduled", "counters": {"runs": 1}}
    assert status_patch(old, new) == {"state": "Scheduled", "active": None}
    assert status_patch(new, new) == {}


def test_newer_prefers_the_higher_resource_version() -> None:
    a = {"metadata": {"resourceVersion": "10"}}
    b = {"metadata": {"resourceVersion": "12"}}
    assert newer(a, b) is b
    assert newer(b, a) is b
    assert newer(a, None) is a
    assert newer({"metadata": {}}, b) == {"metadata": {}}


def test_only_a_quiet_pass_may_defer_its_status_write() -> None:
    assert quiet(Plan(status={}))
    assert not quiet(Plan(status={}, events=[Event("Normal", "Started", "x")]))
    assert not quiet(Plan(status={}, deletes=[("p", "Replaced")]))
    assert quiet(Plan(status={}, deletes=[("p", "HistoryLimit")]))  # pruning is batched, never urgent
    assert not quiet(Plan(status={}, missed=1))


def test_compact_keeps_what_a_pass_needs_and_drops_the_rest() -> None:
    body = {
        "apiVersion": "cron.openclaw.io/v1alpha1",
        "kind": "OpenClawCronJob",
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "5",
            "generation": 2,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}] * 50,
            "annotations": {"cron.openclaw.io/run-now": "1", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"suspend": False},
        "status": {"state": "Scheduled"},
    }
    small = compact(body)
    assert "managedFields" not in small["metadata"]
    assert small["metadata"]["annotations"] == {"cron.openclaw.io/run-now": "1"}
    assert (small["spec"], small["status"], small["kind"]) == (body["spec"], body["status"], "OpenClawCronJob")


def _pod(name: str, run: str) -> PodView:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return PodView(
        name=name, namespace="ns", owner_uid="u", run_id=run, attempt=1, trigger="Schedule",
        scheduled=t, created=t, phase="Succeeded",
    )  # fmt: skip


def test_prune_waits_for_a_batch_or_the_oldest_deadline() -> None:
    pods = [_pod("a", "r1"), _pod("b", "r2"), _pod("c", "r3")]
    assert prune_batches({"a": 100.0, "b": 101.0}, pods, now=110.0, batch=3, max_delay=60.0) == []
    assert prune_batches({"a": 100.0, "b": 101.0}, pods, now=161.0, batch=3, max_delay=60.0) == [[pods[0], pods[1]]]
    assert prune_batches({"a": 1.0, "b": 1.0, "c": 1.0}, pods, now=2.0, batch=3, max_delay=60.0) == [pods]
    # a job with no run coming soon (suspended, daily) prunes at once: no batch would fill
    assert prune_batches({"a": 100.0}, pods, now=101.0, batch=3, max_delay=60.0, idle=True) == [[pods[0]]]


def test_prune_never_selects_a_pod_that_must_stay() -> None:
    # run r1 has two attempts; only the first is due: a selector on r1 would take both
    first, second, other = _pod("r1-a1", "r1"), _pod("r1-a2", "r1"), _pod("r2", "r2")
    groups = prune_batches({"r1-a1": 0.0, "r2": 0.0}, [first, second, other], now=0.0, batch=1, max_delay=60.0)
    assert groups == [[other], [first]]


def _pod_body(name: str, owner: str, phase: str = "Running") -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {"cron.openclaw.io/run-id": f"{name}-run", "cron.openclaw.io/attempt": "1"},
            "annotations": {"cron.openclaw.io/scheduled-time": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"kind": "OpenClawCronJob", "uid": owner, "controller": True, "name": "j"}],
        },
        "status": {"phase": phase},
    }


def test_pod_store_follows_puts_removes_and_owner_changes() -> None:
    from openclaw_cron.pods import PodStore

    store = PodStore()
    assert store.put(_pod_body("a", "u1")) == "u1"  # the job to wake
    store.put(_pod_body("b", "u1"))
    store.put(_pod_body("c", "u2"))
    assert sorted(p.name for p in store.get("u1")) == ["a", "b"]
    assert store.put(_pod_body("a", "u1", phase="Succeeded")) == "u1"  # an update replaces, never duplicates
    assert sorted((p.name, p.phase) for p in store.get("u1")) == [("a", "Succeeded"), ("b", "Running")]
    noise = _pod_body("a", "u1", phase="Succeeded")
    noise["metadata"]["labels"]["team"] = "x"  # type: ignore[index]
    assert store.put(noise) is None  # nothing the reconciler reads changed: nobody to wake
    assert store.remove("ns", "b") == "u1"
    assert store.remove("ns", "nope") is None
    assert [p.name for p in store.get("u1")] == ["a"]
    assert store.put({"metadata": {"name": "c", "namespace": "ns"}}) == "u2"  # no longer ours: dropped, u2 woken
    assert store.get("u2") == []
    assert store.put({"metadata": {"name": "z", "namespace": "ns"}}) is None  # never ours: nothing
    assert sorted(len(list(v)) for v in store.values()) == [1]
