"""The small pure helpers of the kopf wiring."""

from __future__ import annotations

from openclaw_cron.handlers import _newer, status_patch


def test_status_patch_sends_changes_and_nulls_for_removed_keys() -> None:
    old = {"state": "Scheduled", "nextRunTime": "2026-01-01T00:00:00Z", "counters": {"runs": 1}}
    new = {"state": "Suspended", "counters": {"runs": 1}}
    assert status_patch(old, new) == {"state": "Suspended", "nextRunTime": None}
    assert status_patch(new, new) == {}


def test_newer_prefers_the_higher_resource_version() -> None:
    live = {"metadata": {"resourceVersion": "10"}}
    ours = {"metadata": {"resourceVersion": "12"}}
    assert _newer(live, ours) is ours
    assert _newer(ours, live) is ours
    assert _newer(live, None) is live
    assert _newer({"metadata": {"resourceVersion": "opaque"}}, ours)["metadata"]["resourceVersion"] == "opaque"


def test_only_a_quiet_pass_may_defer_its_status_write() -> None:
    from openclaw_cron.handlers import quiet
    from openclaw_cron.reconcile import Event, Plan

    assert quiet(Plan(status={}))
    assert not quiet(Plan(status={}, events=[Event("Warning", "Missed", "2 missed")]))
    assert not quiet(Plan(status={}, deletes=[("old-pod", "HistoryLimit")]))
    assert not quiet(Plan(status={}, missed=1))
    assert not quiet(Plan(status={}, delete_job=True))
