"""Python's full garbage collections, run in the gaps between slots instead of at random.

A full (generation 2) collection walks every tracked object and stops the event loop while it
does: with 10,000 jobs (their state, their metric series) one took 0.3-0.45 s, and every run
due during one started that much late. That was the whole tail of the schedule lag.

So automatic full collections are switched off, and the scheduling loop asks `due` whenever it
is about to sleep: a full collection runs when the next wake is further away than the last
collection took (with a margin), no pass is running, and enough time has passed since the last
one. Should the schedule leave no such gap for `max_interval`, it runs anyway. Young
collections (generations 0 and 1, where nearly all cyclic garbage dies) stay automatic, and
the objects alive once startup is done (modules, classes, the initial state) are frozen out of
every later walk.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

#: gen2 threshold that never triggers: automatic full collections are off.
NEVER = 1 << 30


@dataclass
class FullCollections:
    """When to run the next full collection (pure but for `collect`)."""

    #: No two full collections closer than this (seconds).
    min_interval: float = 30.0
    #: Run one at least this often, gap or no gap.
    max_interval: float = 300.0
    #: Seconds the last full collection took (a first guess until one ran).
    last_took: float = 0.1
    last_at: float = 0.0

    def budget(self) -> float:
        """The gap a collection needs: what the last took, with room to spare."""
        return 1.5 * self.last_took + 0.02

    def due(self, now: float, gap: float, busy: bool) -> bool:
        """Whether to collect now: `gap` seconds until the next wake, `busy` when passes run."""
        since = now - self.last_at
        if since < self.min_interval:
            return False
        if since >= self.max_interval:
            return True
        return not busy and gap >= self.budget()

    def collect(self, now: float) -> None:
        """Run a full collection, timing it for the next `budget`."""
        begun = time.perf_counter()
        gc.collect(2)
        self.last_took, self.last_at = time.perf_counter() - begun, now


def take_over(now: float) -> FullCollections:
    """Freeze what startup left alive and switch automatic full collections off."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    return FullCollections(last_at=now)
