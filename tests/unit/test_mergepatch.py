"""`mergepatch.applied`: a status patch whose answer was lost is recognised in the fresh object."""

from __future__ import annotations

from typing import Any

import pytest

from openclaw_cron.mergepatch import applied

FRESH: dict[str, Any] = {
    "counters": {"runs": 3, "succeeded": 2, "failed": 1},
    "recentRuns": [{"runId": "a"}, {"runId": "b"}],
    "state": "Scheduled",
}


@pytest.mark.parametrize(
    "patch",
    [
        {},
        {"state": "Scheduled"},
        {"counters": {"runs": 3}},  # a nested object merges: other members stay
        {"recentRuns": [{"runId": "a"}, {"runId": "b"}]},
        {"active": None},  # removing what is already absent
        {"counters": {"skipped": None}},
    ],
)
def test_a_patch_already_in_the_object_is_applied(patch: dict[str, Any]) -> None:
    assert applied(FRESH, patch)


@pytest.mark.parametrize(
    "patch",
    [
        {"state": "Running"},
        {"counters": {"runs": 4}},
        {"recentRuns": [{"runId": "a"}]},  # arrays are replaced whole
        {"state": None},  # would remove a member
        {"active": []},  # would add one
        {"active": {"x": 1}},  # would add an object
        {"state": {"x": 1}},  # would replace a scalar by an object
        {"counters": {"missed": 0}},
    ],
)
def test_a_patch_that_would_change_the_object_is_not(patch: dict[str, Any]) -> None:
    assert not applied(FRESH, patch)


def test_falsy_values_are_compared_not_skipped() -> None:
    assert applied({"n": 0, "s": "", "b": False}, {"n": 0, "s": "", "b": False})
    assert not applied({}, {"n": 0})
