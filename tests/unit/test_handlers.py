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


def test_only_a_pass_that_just_started_pods_may_defer_its_status_write() -> None:
    from datetime import UTC, datetime

    from openclaw_cron.handlers import coalesce_start
    from openclaw_cron.pods import Start
    from openclaw_cron.reconcile import Event, Plan

    start = Start("job-1", datetime(2026, 1, 1, tzinfo=UTC), 1, "Schedule")
    assert coalesce_start(Plan(status={}, starts=[start]))
    assert not coalesce_start(Plan(status={}))
    assert not coalesce_start(Plan(status={}, starts=[start], events=[Event("Warning", "Missed", "2 missed")]))
    assert not coalesce_start(Plan(status={}, starts=[start], deletes=[("old-pod", "HistoryLimit")]))
    assert not coalesce_start(Plan(status={}, starts=[start], missed=1))
