"""Client-side flow control: the rate limit with Pod creates first, and the adaptive create limit.

A burst (a thousand jobs due in one second) is a thousand Pod creates followed by their status
writes, Events and reads. They share one rate limit (`--kube-api-qps/--kube-api-burst`, as
client-go's), but not one queue: when requests must wait for the bucket, creates go first, so a
run's Pod never waits behind another run's bookkeeping. Nothing is reordered inside one pass (a
pass still awaits its create before it writes the status that records it), and the total rate
is unchanged.

`AdaptiveLimit` bounds how many creates are in flight by how fast the server answers them
(a gradient limit, as in Netflix's concurrency-limits): while answers come about as fast as the
fastest seen, the limit grows; when they slow down (the server queues), it shrinks toward what
the server serves without queueing. The clock is injectable in both, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable

#: Priorities in the bucket's queue (lower goes first).
FIRST = 0
NORMAL = 1


class TokenBucket:
    """`qps` requests a second on average, bursts up to `burst`; waiters served by priority, then FIFO.

    `qps <= 0` disables it.
    """

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._clock = clock
        self._last = clock()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._releaser: asyncio.Task[None] | None = None

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now

    def delay(self) -> float:
        """Take a token; how long the caller must wait before using it (0 = now)."""
        if self.qps <= 0:
            return 0.0
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def waiting(self) -> int:
        """Requests queued for a token."""
        return sum(1 for *_, fut in self._waiters if not fut.done())

    async def acquire(self, priority: int = NORMAL) -> None:
        """Wait for a token: at once while the bucket has one and nobody queues, else in priority order."""
        if self.qps <= 0:
            return
        self._refill()
        if self._tokens >= 1.0 and not self._waiters:
            self._tokens -= 1.0
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), fut))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.create_task(self._release(), name="kube rate limit")
        await fut

    async def _release(self) -> None:
        """Hand out tokens as they accrue, to the first waiter by (priority, arrival)."""
        while self._waiters:
            self._refill()
            if self._tokens < 1.0:
                await asyncio.sleep((1.0 - self._tokens) / self.qps)
                continue
            _, _, fut = heapq.heappop(self._waiters)
            if fut.done():  # the waiter was cancelled: its token goes to the next
                continue
            self._tokens -= 1.0
            fut.set_result(None)


class AdaptiveLimit:
    """How many requests of one kind may be in flight, following the server's answer times.

    After each answer: `limit <- limit * clamp(best / recent, 0.5, 1) + sqrt(limit)`, within
    [`least`, `most`], where `best` is the fastest answer of the last one or two windows of
    `window` answers (the server's time without queueing; old ones age out, as the server may
    change) and `recent` a smoothed answer time. While answers stay near the best,
    the limit grows by about its square root; when queueing doubles them, it halves.
    """

    def __init__(
        self,
        least: int = 4,
        most: int = 64,
        initial: int = 16,
        *,
        window: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.least, self.most = least, most
        self.limit = float(min(most, max(least, initial)))
        self._clock = clock
        self._window = window
        self._best_before = math.inf  # of the previous window
        self._best_now = math.inf  # of the current one
        self._seen = 0
        self._recent: float | None = None
        self._in_flight = 0
        self._changed = asyncio.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def observe(self, seconds: float) -> None:
        """One answer took `seconds`: update the limit (the pure part, for tests)."""
        self._seen += 1
        if self._seen > self._window:
            self._best_before, self._best_now, self._seen = self._best_now, math.inf, 1
        self._best_now = min(self._best_now, seconds)
        best = min(self._best_before, self._best_now)
        self._recent = seconds if self._recent is None else 0.8 * self._recent + 0.2 * seconds
        ratio = min(1.0, max(0.5, best / self._recent)) if self._recent > 0 else 1.0
        self.limit = min(float(self.most), max(float(self.least), self.limit * ratio + math.sqrt(self.limit)))

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `limit` slots for one request; its answer time adjusts the limit."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < int(self.limit))
            self._in_flight += 1
        began = self._clock()
        ok = False
        try:
            yield
            ok = True
        finally:
            if ok:
                self.observe(self._clock() - began)
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()
