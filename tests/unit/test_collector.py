"""Full garbage collections in the gaps between slots (collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from openclaw_cron.collector import NEVER, FullCollections, take_over


def test_collects_only_in_a_gap_long_enough_and_not_too_often() -> None:
    gcs = FullCollections(min_interval=30, max_interval=300, last_took=0.2, last_at=1000.0)
    assert gcs.budget() == pytest.approx(0.32)
    assert not gcs.due(1010.0, gap=5.0, busy=False)  # too soon after the last one
    assert not gcs.due(1040.0, gap=0.3, busy=False)  # the next wake comes before it would end
    assert not gcs.due(1040.0, gap=5.0, busy=True)  # passes are running (their Pod creates wait)
    assert gcs.due(1040.0, gap=0.4, busy=False)
    assert gcs.due(1300.0, gap=0.0, busy=True)  # no gap for max_interval: now, whatever is due


def test_a_collection_sizes_the_next_gap() -> None:
    gcs = FullCollections(last_took=10.0, last_at=0.0)
    gcs.collect(100.0)
    assert gcs.last_took < 10.0 and gcs.budget() < 15.0  # measured, not the first guess
    assert gcs.last_at == 100.0
    assert not gcs.due(110.0, gap=60.0, busy=False)  # and the interval starts again


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_take_over_freezes_startup_objects_and_turns_automatic_full_collections_off() -> None:
    young, middle, _ = gc.get_threshold()
    gcs = take_over(50.0)
    assert gc.get_threshold() == (young, middle, NEVER)
    assert gc.get_freeze_count() > 1000  # the modules and classes loaded so far
    assert gcs.last_at == 50.0  # the first full collection waits min_interval from here
