"""Client-side flow control: the rate limit with Pod creates first, and the adaptive create limit.

A burst (a thousand jobs due in one second) is a thousand Pod creates followed by their status
writes, Events and reads. They share one rate limit (`--kube-api-qps/--kube-api-burst`, as
client-go's), but not one queue: when requests must wait for the bucket, creates go first, so a
run's Pod never waits behind another run's bookkeeping. Nothing is reordered inside one pass (a
pass still awaits its create before it writes the status that records it), and the total rate
is unchanged.

`AdaptiveLimit` bounds how many creates are in flight by how the server answers them: while it
answers within a second the limit grows (to 256), and when it answers slower or pushes back
(429, 5xx, timeouts) the limit halves (to 8). It starts at 64, the fixed number it replaces,
and a warm-up before a burst (`Kube.warm_up`) starts it at the connections it opened in time.
A latency-gradient limit was tried first and dropped: it read the queueing that every client
causes at a shared server as its own and gave the burst away (17 s instead of 5 s, docs/bench.md).
The clock is injectable in both, for tests.
"""

from __future__ import annotations

import asyncio
import collections
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


class Answer:
    """What one request under an `AdaptiveLimit` learned; `overloaded()` when the server said so."""

    def __init__(self) -> None:
        self.overload = False

    def overloaded(self) -> None:
        """The server pushed back (429, 5xx, no answer in time): the limit halves."""
        self.overload = True


class AdaptiveLimit:
    """How many requests of one kind may be in flight, following how the server answers them.

    Additive increase, multiplicative decrease (as TCP, and client-go's flow control in spirit):
    every answer within `slow` seconds raises the limit by one, up to `most`; an answer slower
    than that, or a push-back (`Answer.overloaded`), halves it, down to `least`, at most once
    per `slow` seconds (a burst of failures is one signal, not many). So a server that answers
    a burst quickly gets it all at once, and one that queues or refuses gets fewer at a time.
    """

    def __init__(
        self,
        least: int = 8,
        most: int = 256,
        initial: int = 64,
        *,
        slow: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.least, self.most = least, most
        self.limit = min(most, max(least, initial))
        self.slow = slow
        self._clock = clock
        self._last_cut = -math.inf
        self._in_flight = 0
        #: Requests waiting for a slot, in arrival order; a freed slot is handed to the first.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def observe(self, seconds: float, overloaded: bool = False) -> None:
        """One answer took `seconds` (the pure part, for tests)."""
        if overloaded or seconds > self.slow:
            now = self._clock()
            if now - self._last_cut >= self.slow:
                self.limit, self._last_cut = max(self.least, self.limit // 2), now
        else:
            self.limit = min(self.most, self.limit + 1)

    def prime(self, answered: int) -> None:
        """`answered` requests at once were answered before a burst was due (its warm-up): the
        limit starts the burst there rather than climbing to it one answer at a time. Never lower."""
        self.limit = max(self.limit, min(self.most, answered))
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free slots to the first waiters (one wake-up each, not a stampede of all of them)."""
        while self._waiters and self._in_flight < self.limit:
            turn = self._waiters.popleft()
            if not turn.done():  # (a cancelled waiter is skipped)
                self._in_flight += 1
                turn.set_result(None)

    async def _take(self) -> None:
        if self._in_flight < self.limit and not self._waiters:
            self._in_flight += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a slot just as it was cancelled: pass it on
                self._in_flight -= 1
                self._hand_over()
            raise

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Answer]:
        """Hold one of the `limit` slots for one request; how it was answered adjusts the limit."""
        await self._take()
        began = self._clock()
        answer = Answer()
        try:
            yield answer
        finally:
            self.observe(self._clock() - began, answer.overload)
            self._in_flight -= 1
            self._hand_over()
