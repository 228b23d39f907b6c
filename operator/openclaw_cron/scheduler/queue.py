"""The time-ordered queue of jobs: a heap of (due, token, uid) in which a newer token wins.

A job is queued once at its earliest due time; queueing it earlier leaves the older entry in
the heap, and the token it carries no longer matches, so it is skipped when popped. Idle jobs
cost one heap entry and nothing else.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from .state import JobState

#: The loop looks at the heap at least this often (seconds), whatever is queued.
MAX_SLEEP = 60.0


class DueQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = 0

    def push(self, st: JobState, due: float) -> bool:
        """Queue `st` at `due` (epoch seconds) unless it is queued at least as early; True if it now comes first."""
        if st.token > 0 and st.due <= due:
            return False
        self._tokens += 1
        st.token, st.due = self._tokens, due
        heapq.heappush(self._heap, (due, st.token, st.uid))
        return self._heap[0][1] == st.token

    def pop_due(self, now: float, jobs: Mapping[str, JobState]) -> Iterator[JobState]:
        """The jobs due by `now`, each taken off the queue (superseded and forgotten entries dropped)."""
        while self._heap and self._heap[0][0] <= now:
            _, token, uid = heapq.heappop(self._heap)
            st = jobs.get(uid)
            if st is None or st.token != token:
                continue
            st.token = 0
            yield st

    def count_before(self, bound: float, most: int) -> int:
        """Entries due before `bound`, counted up to `most` (superseded ones too: an estimate that
        costs what it counts, as the walk stops at the first later entry down each branch)."""
        heap, count, stack = self._heap, 0, [0] if self._heap else []
        while stack and count < most:
            i = stack.pop()
            if heap[i][0] < bound:
                count += 1
                stack.extend(c for c in (2 * i + 1, 2 * i + 2) if c < len(heap))
        return count

    def first_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def wait(self, now: float) -> float:
        """Seconds until the first queued job is due (at most MAX_SLEEP)."""
        return min(MAX_SLEEP, self._heap[0][0] - now) if self._heap else MAX_SLEEP
