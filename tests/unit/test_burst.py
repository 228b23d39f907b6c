"""Creates first (issue 21): bookkeeping waits while a burst's creates are out, bounded; a pass
gives its slot back once its create is at the server. The wiring is tested end to end in
tests/integration/test_scale.py; these are the rules."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from test_reconcile import T0, World, spec

from openclaw_cron import metrics
from openclaw_cron.reconcile import Plan
from openclaw_cron.scheduler.burst import CreatesFirst, PassSlot
from openclaw_cron.scheduler.queue import DueQueue
from openclaw_cron.scheduler.state import JobState
from openclaw_cron.scheduler.writes import bookkeeping

COMMAND = {"kind": "command", "image": "busybox:1.36", "command": ["true"]}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gauge() -> float:
    value = metrics.REGISTRY.get_sample_value("openclaw_cron_bookkeeping_waiting_jobs")
    assert value is not None
    return value


def test_bookkeeping_waits_only_in_a_burst_and_runs_once_its_creates_are_out() -> None:
    woken: list[str] = []
    burst = CreatesFirst(woken.append, threshold=3, max_wait=10.0, clock=Clock())
    with burst.creates(), burst.creates():
        assert burst.postpone("a") is None  # two creates out: not a burst, write now
        with burst.creates():
            assert burst.postpone("a") == 10.0 and burst.postpone("b") == 10.0
            assert gauge() == 2
        # below the threshold again, but not out: who waits goes on waiting, a newcomer does not
        assert burst.postpone("a") == 10.0 and burst.postpone("c") is None
        assert woken == []
    assert sorted(woken) == ["a", "b"] and burst.waiting == {} and gauge() == 0  # woken once each
    assert burst.postpone("a") is None


def test_bookkeeping_waits_at_most_max_wait_whatever_the_burst() -> None:
    clock = Clock()
    woken: list[str] = []
    burst = CreatesFirst(woken.append, threshold=1, max_wait=10.0, clock=clock)
    with burst.creates():
        assert burst.postpone("a") == 10.0
        clock.now += 4.0
        assert burst.postpone("a") == 6.0  # the wait counts from the first time, not the last
        clock.now += 6.0
        assert burst.postpone("a") is None and "a" not in burst.waiting
    assert woken == []  # it wrote already: nothing to wake


def test_a_deleted_job_waits_no_more() -> None:
    woken: list[str] = []
    burst = CreatesFirst(woken.append, threshold=1, clock=Clock())
    with burst.creates():
        assert burst.postpone("gone") is not None and burst.postpone("kept") is not None
        burst.forget("gone")
        assert gauge() == 1
    assert woken == ["kept"]


def test_a_failed_create_still_ends_its_part_of_the_burst() -> None:
    woken: list[str] = []
    burst = CreatesFirst(woken.append, threshold=1, clock=Clock())
    try:
        with burst.creates():
            assert burst.postpone("a") is not None
            raise OSError("reset")
    except OSError:
        pass
    assert burst.creating == 0 and woken == ["a"]


def test_what_counts_as_bookkeeping() -> None:
    w = World(spec(payload=COMMAND))
    rest = w.step(T0 + timedelta(seconds=1))
    started = w.step(T0 + timedelta(seconds=60))
    assert started.starts and not bookkeeping(rest.status, started)  # a start is never held back
    w.finish(w.status["active"][0]["podName"], ok=True, at=T0 + timedelta(seconds=61))
    before = w.status
    recorded = w.step(T0 + timedelta(seconds=62))
    assert recorded.finished and bookkeeping(before, recorded)
    assert not bookkeeping(w.status, Plan(status=w.status))  # a no-op pass writes nothing to hold
    assert bookkeeping(w.status, Plan(status={**w.status, "nextRunTime": None}))  # a status change is one


async def test_a_pass_slot_is_given_back_once_early_or_at_the_end() -> None:
    slots = asyncio.Semaphore(1)
    async with PassSlot(slots) as slot:
        assert slots.locked()
        slot.give_back()
        assert not slots.locked()
        async with PassSlot(slots):  # another pass runs while this one waits for its create
            assert slots.locked()
        slot.give_back()  # a second give-back (a pass with two creates) releases nothing
    assert not slots.locked()
    async with slots:  # and the semaphore is exactly as it was: one slot
        assert slots.locked()


def test_the_queue_counts_the_jobs_due_in_a_second_up_to_a_bound() -> None:
    """What the loop asks a second before a quiet spell ends: is the next due second a burst?"""
    queue = DueQueue()
    assert queue.first_due() is None and queue.count_before(1e12, most=10) == 0
    jobs = {f"j{i}": JobState(uid=f"j{i}", body={}) for i in range(300)}
    for i, st in enumerate(jobs.values()):  # 100 due at 60.x, 200 spread over the next minutes
        queue.push(st, 60.0 + (i % 100) / 200 if i < 100 else 61.0 + i)
    assert queue.first_due() == 60.0
    assert queue.count_before(61.0, most=1000) == 100
    assert queue.count_before(61.0, most=40) == 40
    assert queue.count_before(60.0, most=1000) == 0
    queue.push(jobs["j150"], 60.2)  # a job woken into that second counts too
    assert queue.count_before(61.0, most=1000) == 101
