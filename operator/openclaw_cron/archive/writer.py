"""The archive's asynchronous writer: a bounded in-memory queue drained in batches to the store.

Why it exists: the scheduler must never wait for the archive. `submit` only queues (no I/O, no
await); a background task writes batches in a thread and retries with backoff while the store is
down. Nothing the operator still needs is lost, because the queue never drops what it accepted:
when it is full, `submit` refuses (returns False) and the caller keeps the run's Pod (its log is
still there) and submits again later. A Pod is pruned only once `is_archived` says its attempt is
in the store. On start, `known` tells the backfill which `status.recentRuns` the store lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .. import metrics
from .model import RunEntry
from .store import InvalidEntry, Store, StoreError

log = logging.getLogger(__name__)

Key = tuple[str, str, int]


@dataclass(frozen=True)
class WriterSettings:
    """How much the writer holds, how it batches and retries, and what the purge keeps."""

    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    batch_size: int = 200
    batch_delay: float = 0.5
    retry_initial: float = 0.5
    retry_max: float = 30.0
    retention: timedelta = timedelta(days=30)
    keep_per_job: int = 10_000
    purge_interval: float = 3600.0
    #: Keys remembered as archived (is_archived) until `forget`; the oldest go beyond this. A
    #: Pod is pruned minutes after its archiving, so this covers bursts of thousands of runs.
    remembered: int = 20_000


class ArchiveWriter:
    """Queues finished attempts and writes them to a `Store` in the background."""

    def __init__(
        self,
        store: Store,
        settings: WriterSettings | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings or WriterSettings()
        self._now = now
        self._queue: OrderedDict[Key, RunEntry] = OrderedDict()
        self._in_flight: dict[Key, RunEntry] = {}
        self._bytes = 0
        self._archived: OrderedDict[Key, None] = OrderedDict()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self.failures = 0  # consecutive failed writes (0 while the store is healthy)

    # -- the caller's side (never blocks, never raises) ------------------------------------------

    def submit(self, entry: RunEntry) -> bool:
        """Queue `entry`; False when the queue is full (keep the Pod, submit again later) or stopped.

        Submitting a key already queued replaces the queued entry (the newest record wins).
        """
        try:
            key = entry.key()
            size = entry.approx_bytes()
            previous = self._queue.get(key)
            if previous is None:
                if self._stopping or self._full(size):
                    metrics.archive_refused()
                    return False
            else:
                self._bytes -= previous.approx_bytes()
            self._queue[key] = entry
            self._bytes += size
            self._archived.pop(key, None)
            self._report()
            self._wake.set()
            return True
        except Exception:  # a bug here must not break scheduling
            log.exception("archive: could not queue a run")
            return False

    def is_archived(self, key: Key) -> bool:
        """True once `key` was written to the store by this writer (and not resubmitted since)."""
        return key in self._archived

    def is_pending(self, key: Key) -> bool:
        """True while `key` is queued or being written."""
        return key in self._queue or key in self._in_flight

    def forget(self, key: Key) -> None:
        """Drop `key` from the archived set (its Pod is gone; nobody will ask again)."""
        self._archived.pop(key, None)

    @property
    def depth(self) -> int:
        """Entries accepted and not yet written."""
        return len(self._queue) + len(self._in_flight)

    async def known(self, job_uid: str) -> set[tuple[str, int]]:
        """(run_id, attempt) of `job_uid` already in the store or queued: what the backfill may skip.

        What the store holds also counts as archived from then on (`is_archived`), so after a
        restart the Pods of runs archived before it can be pruned without being archived again.
        Raises StoreError when the store is unavailable (the backfill tries again later).
        """
        stored = await asyncio.to_thread(self.store.keys, job_uid)
        for run_id, attempt in stored:
            self._remember((job_uid, run_id, attempt))
        pending = {(k[1], k[2]) for k in (*self._queue, *self._in_flight) if k[0] == job_uid}
        return stored | pending

    async def backfill(self, job_uid: str, entries: Iterable[RunEntry]) -> int:
        """Submit those of `entries` (one job's, e.g. from `status.recentRuns`) the store lacks; how many.

        Raises StoreError when the store is unavailable; an entry the full queue refuses is
        not counted (call again later).
        """
        have = await self.known(job_uid)
        return sum(1 for e in entries if (e.run_id, e.attempt) not in have and self.submit(e))

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background writer and the periodic purge."""
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="archive-writer"),
            asyncio.create_task(self._purge_loop(), name="archive-purge"),
        ]

    async def stop(self, flush_timeout: float = 10.0) -> int:
        """Stop accepting, write what is queued for up to `flush_timeout` seconds; how many were left.

        Those left are not lost to the user: their Pods were kept and `status.recentRuns` holds
        them, so the next start's backfill archives them. The store is not closed (its owner does).
        """
        self._stopping = True
        self._wake.set()
        writer = self._tasks[0] if self._tasks else None
        if writer is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), flush_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        left = self.depth
        if left:
            log.warning("archive: %d runs not written at shutdown (the next start backfills them from status)", left)
        return left

    # -- the background side ---------------------------------------------------------------------

    def _full(self, size: int) -> bool:
        if self.depth >= self.settings.max_entries:
            return True
        return self.depth > 0 and self._bytes + size > self.settings.max_bytes  # one big entry always fits

    def _report(self) -> None:
        metrics.archive_queue(self.depth, self._bytes)

    async def _write_loop(self) -> None:
        while True:
            try:
                if await self._write_once():
                    return
            except Exception:  # a bug must not end archiving for the operator's lifetime
                log.exception("archive: writer error")
                self.failures += 1
                await self._backoff()

    async def _write_once(self) -> bool:
        """Wait for entries and write one batch; True when stopping and nothing is left."""
        s = self.settings
        if not self._queue:
            if self._stopping:
                return True
            self._wake.clear()
            await self._wake.wait()
            return False
        # Let a burst gather into one batch (one transaction) instead of many.
        deadline = time.monotonic() + s.batch_delay
        while len(self._queue) < s.batch_size and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        batch = [self._queue.popitem(last=False) for _ in range(min(s.batch_size, len(self._queue)))]
        self._in_flight = dict(batch)
        if await self._write([entry for _, entry in batch]):
            self.failures = 0
            self._report()
            return False
        self.failures += 1
        # Put back in front what is still unwritten (a newer submit of the same key wins).
        for key, entry in reversed(batch):
            if self._in_flight.pop(key, None) is None:
                continue  # written or dropped while a bad batch was split
            if key in self._queue:
                self._bytes -= entry.approx_bytes()
            else:
                self._queue[key] = entry
                self._queue.move_to_end(key, last=False)
        self._report()
        await self._backoff()
        return False

    async def _write(self, entries: list[RunEntry]) -> bool:
        """One attempt at writing `entries`; entries no store can hold are split out and dropped."""
        try:
            await asyncio.to_thread(self.store.put, entries)
        except InvalidEntry as e:
            if len(entries) == 1:
                log.error("archive: dropping a run no store can hold (its Pod is kept): %s", e)
                metrics.archive_write_error("invalid")
                self._done(entries, archived=False)
                return True
            results = [await self._write([entry]) for entry in entries]
            return all(results)
        except Exception as e:
            metrics.archive_write_error("unavailable" if isinstance(e, StoreError) else "error")
            log.warning(
                "archive: writing %d runs failed (attempt %d), retrying: %s", len(entries), self.failures + 1, e
            )
            return False
        self._done(entries, archived=True)
        return True

    def _done(self, entries: list[RunEntry], archived: bool) -> None:
        for entry in entries:
            key = entry.key()
            self._in_flight.pop(key, None)
            self._bytes -= entry.approx_bytes()
            if archived and key not in self._queue:  # a newer submit of the key is still to write
                self._remember(key)
        if archived:
            metrics.archive_written(len(entries))

    def _remember(self, key: Key) -> None:
        self._archived[key] = None
        self._archived.move_to_end(key)
        while len(self._archived) > self.settings.remembered:
            self._archived.popitem(last=False)

    async def _backoff(self) -> None:
        s = self.settings
        delay = min(s.retry_max, s.retry_initial * 2 ** min(self.failures - 1, 30))
        delay *= random.uniform(0.5, 1.0)  # jitter: replicas and restarts do not retry in step
        if self._stopping:
            delay = min(delay, s.retry_initial)
        await asyncio.sleep(delay)

    async def _purge_loop(self) -> None:
        s = self.settings
        if s.purge_interval <= 0:
            return
        while True:
            await asyncio.sleep(s.purge_interval * random.uniform(0.9, 1.1))
            await self.purge()

    async def purge(self) -> int:
        """Apply retention now; errors are logged and counted (the next period tries again)."""
        s = self.settings
        try:
            deleted = await asyncio.to_thread(self.store.purge, self._now(), s.retention, s.keep_per_job)
        except Exception as e:
            metrics.archive_write_error("purge")
            log.warning("archive: purge failed: %s", e)
            return 0
        metrics.archive_purged(deleted)
        return deleted
