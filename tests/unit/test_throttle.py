"""The client's flow control: creates first in the rate limit's queue, and the adaptive create limit."""

from __future__ import annotations

import asyncio
import time

import pytest

from openclaw_cron.throttle import FIRST, NORMAL, AdaptiveLimit, TokenBucket


class Clock:
    """A clock the test moves by hand."""

    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_goes_at_once_then_each_request_waits_for_a_token() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=10, burst=3, clock=clock)
    for _ in range(3):
        await asyncio.wait_for(bucket.acquire(), 0.01)  # the burst: nobody waits
    fourth = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0.15)  # real time passes, the bucket's clock does not: no token accrues
    assert not fourth.done() and bucket.waiting() == 1
    clock.now += 0.11  # a token's worth at 10 qps (and a little: 100.1 - 100.0 is just under 0.1)
    await asyncio.wait_for(fourth, 1.0)
    clock.now += 10.0  # a hundred tokens' worth, capped at the burst
    for _ in range(3):
        await asyncio.wait_for(bucket.acquire(), 0.01)
    fifth = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0.05)
    assert not fifth.done()
    fifth.cancel()


async def test_acquire_paces_real_time() -> None:
    bucket = TokenBucket(qps=50, burst=1)
    begun = time.monotonic()
    for _ in range(6):
        await bucket.acquire()
    assert time.monotonic() - begun >= 5 / 50 * 0.9  # five waits of 20 ms after the first token


async def test_queued_creates_go_ahead_of_queued_bookkeeping() -> None:
    """With the bucket empty, tokens go by priority, then arrival; the rate stays qps."""
    bucket = TokenBucket(qps=200, burst=1)
    await bucket.acquire()  # the one token: everything after this waits
    order: list[str] = []

    async def take(name: str, priority: int) -> None:
        await bucket.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(take(f"status-{i}", NORMAL)) for i in range(3)]
    await asyncio.sleep(0)  # the status writes queue first
    tasks += [asyncio.create_task(take(f"create-{i}", FIRST)) for i in range(3)]
    await asyncio.gather(*tasks)
    assert order == ["create-0", "create-1", "create-2", "status-0", "status-1", "status-2"]


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    bucket = TokenBucket(qps=100, burst=1)
    await bucket.acquire()
    gone = asyncio.create_task(bucket.acquire(FIRST))
    stays = asyncio.create_task(bucket.acquire(NORMAL))
    await asyncio.sleep(0)
    assert bucket.waiting() == 2
    gone.cancel()
    await asyncio.wait_for(stays, 1.0)
    assert gone.cancelled() and bucket.waiting() == 0


async def test_without_a_rate_limit_nobody_waits() -> None:
    bucket = TokenBucket(qps=0, burst=1)
    for _ in range(100):
        await asyncio.wait_for(bucket.acquire(NORMAL), 0.1)
    assert bucket.waiting() == 0


def test_the_limit_grows_by_one_per_quick_answer_up_to_its_bound() -> None:
    limit = AdaptiveLimit(least=8, most=70, initial=64, clock=Clock())
    for _ in range(3):
        limit.observe(0.3)  # queued at the server, but answered within a second
    assert limit.limit == 67
    for _ in range(10):
        limit.observe(0.3)
    assert limit.limit == 70


def test_a_slow_answer_or_a_push_back_halves_it_once_per_second() -> None:
    clock = Clock()
    limit = AdaptiveLimit(least=8, most=256, initial=64, slow=1.0, clock=clock)
    limit.observe(2.5)  # slower than a second: the server is overwhelmed
    assert limit.limit == 32
    limit.observe(0.01, overloaded=True)  # the same episode (within a second): one signal
    assert limit.limit == 32
    clock.now += 1.5
    limit.observe(0.01, overloaded=True)  # a 429 later on
    assert limit.limit == 16
    for _ in range(3):
        clock.now += 2
        limit.observe(5.0)
    assert limit.limit == 8  # never below `least`


async def test_no_more_in_flight_than_the_limit() -> None:
    limit = AdaptiveLimit(least=2, most=2, initial=2)
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with limit.slot():
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(request() for _ in range(20)))
    assert peak == 2 and limit.in_flight == 0


async def test_a_pushed_back_request_frees_its_slot_and_halves_the_limit() -> None:
    limit = AdaptiveLimit(least=1, most=4, initial=4)
    with pytest.raises(RuntimeError):
        async with limit.slot() as answer:
            answer.overloaded()
            raise RuntimeError("429 Too Many Requests")
    assert limit.in_flight == 0 and limit.limit == 2
    async with asyncio.timeout(1):
        async with limit.slot():
            pass
    assert limit.limit == 3  # answered at once: one more


async def test_waiting_requests_get_freed_slots_in_arrival_order_and_a_cancelled_one_leaks_none() -> None:
    limit = AdaptiveLimit(least=1, most=1, initial=1, clock=Clock())
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abcd"}

    async def request(name: str) -> None:
        async with limit.slot():
            order.append(name)
            await gates[name].wait()

    tasks = {name: asyncio.create_task(request(name)) for name in "abcd"}
    await asyncio.sleep(0)
    assert order == ["a"] and limit.in_flight == 1
    tasks["b"].cancel()  # gone while waiting: skipped
    gates["a"].set()
    await asyncio.sleep(0)  # a's slot is handed to c (b is gone), c has not run yet:
    tasks["c"].cancel()  # cancelled holding a handed-over slot, it passes it on to d
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["a", "d"] and limit.in_flight == 1
    gates["d"].set()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert tasks["b"].cancelled() and tasks["c"].cancelled() and limit.in_flight == 0


async def test_a_warm_up_starts_the_limit_at_what_answered_never_lower_nor_past_its_bound() -> None:
    limit = AdaptiveLimit(least=2, most=6, initial=2, clock=Clock())
    gate = asyncio.Event()
    entered: list[int] = []

    async def request(i: int) -> None:
        async with limit.slot():
            entered.append(i)
            await gate.wait()

    tasks = [asyncio.create_task(request(i)) for i in range(8)]
    await asyncio.sleep(0)
    assert entered == [0, 1]  # the limit is 2: six wait
    limit.prime(4)
    await asyncio.sleep(0)
    assert entered == [0, 1, 2, 3] and limit.limit == 4  # waiters get the new slots at once
    limit.prime(3)
    assert limit.limit == 4  # a warm-up never lowers what the answers taught
    limit.prime(100)
    await asyncio.sleep(0)
    assert limit.limit == 6 and len(entered) == 6
    gate.set()
    await asyncio.gather(*tasks)
    assert limit.in_flight == 0
