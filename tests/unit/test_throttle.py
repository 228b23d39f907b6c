"""The client's flow control: creates first in the rate limit's queue, and the adaptive create limit."""

from __future__ import annotations

import asyncio

import pytest

from openclaw_cron.throttle import FIRST, NORMAL, AdaptiveLimit, TokenBucket


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


def test_the_limit_grows_while_answers_stay_fast() -> None:
    limit = AdaptiveLimit(least=4, most=64, initial=8)
    for _ in range(50):
        limit.observe(0.004)
    assert limit.limit == 64  # no queueing seen: up to the bound


def test_the_limit_shrinks_when_the_server_queues() -> None:
    limit = AdaptiveLimit(least=4, most=64, initial=64)
    limit.observe(0.004)  # the server's time without queueing
    for _ in range(30):
        limit.observe(0.1)  # 25x slower: requests wait in the server's queue
    assert limit.limit < 20
    for _ in range(2 * 200):
        limit.observe(0.1)  # two windows on, the old best aged out: slow is the new normal, so it grows again
    assert limit.limit == 64


def test_the_limit_stays_within_its_bounds() -> None:
    limit = AdaptiveLimit(least=4, most=16, initial=100)
    assert limit.limit == 16
    limit.observe(0.001)
    for _ in range(100):
        limit.observe(10.0)
    assert limit.limit >= 4


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


async def test_a_failed_request_frees_its_slot_without_moving_the_limit() -> None:
    limit = AdaptiveLimit(least=1, most=1, initial=1)
    with pytest.raises(RuntimeError):
        async with limit.slot():
            raise RuntimeError("refused")
    assert limit.in_flight == 0 and limit.limit == 1
    async with asyncio.timeout(1):
        async with limit.slot():
            pass
