"""Creates first: while a burst's Pod creates are out, bookkeeping passes wait for them (bounded),
and a pass whose create is at the API server no longer counts against the passes at once.

A thousand jobs due in one second are a thousand creates, and soon after, as their Pods
progress, a thousand passes that record what happened (status patches, Events, deletions). A
server busy with a burst serves the requests in flight in turn, the kubelet's among them: every
bookkeeping request the operator sends then takes a turn from its creates. So while at least
`threshold` passes are creating Pods, a pass that would only write bookkeeping (no run to
start) returns without writing anything, and runs again once the creates are out, or after
`max_wait` seconds at most, or at the time its own plan asks (a slot due). Nothing is lost:
the pass is recomputed from the world when it runs (the reconciler is pure, and the Pods are
the record), so a postponed run end is recorded once, later, and never before its Pod exists.
Writes per run do not grow (a pass that waits often coalesces two writes into one).

The passes at once (`maxParallelReconciles`) bound the operator's own work: a pass waiting for
its create's answer does none, so it gives its slot back (`PassSlot.give_back`) as the create
goes on the wire (`Kube.create_pod`'s `sent`; sooner, the next pass's work would run ahead of
the write). Creates at the server are then bounded by the client's adaptive limit (throttle.py),
which follows how fast the server answers, not by how many passes may compute at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

from .. import metrics

#: Passes creating Pods at once from which it is a burst (a steady 17 runs/s rarely has 2).
BURST_CREATES = 16
#: The longest a pass's bookkeeping waits for a burst (seconds).
MAX_WAIT = 10.0


class CreatesFirst:
    """Counts the passes creating Pods; holds back the others' writes while it is a burst."""

    def __init__(
        self,
        wake: Callable[[str], None],
        *,
        threshold: int = BURST_CREATES,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wake = wake
        self.threshold = threshold
        self.max_wait = max_wait
        self._clock = clock
        self.creating = 0
        #: Jobs whose bookkeeping waits: uid → since when (monotonic).
        self.waiting: dict[str, float] = {}

    @contextlib.contextmanager
    def creates(self) -> Iterator[None]:
        """Around one pass's Pod creates; when the last of a burst ends, the waiting passes run."""
        self.creating += 1
        try:
            yield
        finally:
            self.creating -= 1
            if not self.creating and self.waiting:
                self.release()

    def postpone(self, uid: str) -> float | None:
        """Whether a bookkeeping pass of job `uid` waits: seconds it may still wait, or None (write now)."""
        if self.creating < self.threshold and uid not in self.waiting:
            return None
        now = self._clock()
        left = self.waiting.setdefault(uid, now) + self.max_wait - now
        if left <= 0 or self.creating == 0:
            self.forget(uid)
            return None
        metrics.bookkeeping_waiting(len(self.waiting))
        return left

    def forget(self, uid: str) -> None:
        """Job `uid` waits no more (it writes now, or it is gone)."""
        if self.waiting.pop(uid, None) is not None:
            metrics.bookkeeping_waiting(len(self.waiting))

    def release(self) -> None:
        """The burst's creates are out: every waiting pass runs now."""
        uids, self.waiting = list(self.waiting), {}
        metrics.bookkeeping_waiting(0)
        for uid in uids:
            self.wake(uid)


class PassSlot:
    """One pass's slot among the passes at once: taken on entry, given back once (early or at exit)."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def __aenter__(self) -> PassSlot:
        await self._slots.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.give_back()

    def give_back(self) -> None:
        """The pass does no more work that the bound is for (its create is at the server)."""
        if self._held:
            self._held = False
            self._slots.release()
