"""The archive writer: batching, outages (nothing lost, `is_archived` only after the write), overflow.

The store is a real SQLite store; outages are injected by `Outage`, which refuses calls while
`down` is set and otherwise passes them to the real store. One test stops and restarts a real
PostgreSQL server under the writer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from openclaw_cron import metrics
from openclaw_cron.archive.model import Query, RunEntry
from openclaw_cron.archive.open import open_store
from openclaw_cron.archive.sqlite import SqliteStore
from openclaw_cron.archive.store import Store, StoreError, iterate
from openclaw_cron.archive.writer import ArchiveWriter, WriterSettings
from support.postgres import PostgresServer, pg_server

__all__ = ["pg_server"]  # the session's PostgreSQL server, a fixture

T0 = datetime(2026, 11, 1, tzinfo=UTC)
FAST = WriterSettings(batch_delay=0.05, retry_initial=0.01, retry_max=0.05, purge_interval=0)


def entry(run: int, *, job: str = "backup", attempt: int = 1, **fields: object) -> RunEntry:
    base = RunEntry(
        namespace="team-a",
        job=job,
        job_uid=f"uid-{job}",
        run_id=f"{job}-{run}",
        attempt=attempt,
        trigger="Schedule",
        result="Succeeded",
        scheduled_time=T0 + timedelta(minutes=run),
        log=f"log {run}\n",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


class Outage:
    """A real store behind a switch: while `down`, every call fails as an unreachable database would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = threading.Event()
        self.batches: list[int] = []
        self.refused = 0

    def _check(self) -> None:
        if self.down.is_set():
            self.refused += 1
            raise StoreError("archive database: connection refused (injected outage)")

    def put(self, entries: Sequence[RunEntry]) -> None:
        self._check()
        self.store.put(entries)
        self.batches.append(len(entries))

    def query(self, q: Query) -> tuple[list[RunEntry], str | None]:
        self._check()
        return self.store.query(q)

    def get(self, namespace: str, job: str, run_id: str, attempt: int | None = None) -> RunEntry | None:
        self._check()
        return self.store.get(namespace, job, run_id, attempt)

    def keys(self, job_uid: str) -> set[tuple[str, int]]:
        self._check()
        return self.store.keys(job_uid)

    def purge(self, now: datetime, max_age: timedelta, keep_per_job: int) -> int:
        self._check()
        return self.store.purge(now, max_age, keep_per_job)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "archive.db"))
    yield store
    store.close()


@pytest.fixture
def outage(sqlite: SqliteStore) -> Outage:
    return Outage(sqlite)


async def eventually(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def stored(store: Store) -> set[tuple[str, str, int]]:
    return {e.key() for e in iterate(store, Query(limit=1000))}


def metric(series: Any, *labels: str) -> float:
    """The current value of a counter or gauge (of one label set)."""
    target = series.labels(*labels) if labels else series
    return float(target._value.get())


async def test_a_burst_is_written_in_batches(outage: Outage) -> None:
    writer = ArchiveWriter(outage, replace(FAST, batch_size=200, batch_delay=1.0))
    entries = [entry(i) for i in range(450)]
    written_before = metric(metrics.ARCHIVE_WRITTEN)
    assert all(writer.submit(e) for e in entries)  # queued before the writer even runs
    assert writer.depth == 450 and not writer.is_archived(entries[0].key())
    await writer.start()
    await eventually(lambda: writer.depth == 0)
    assert outage.batches == [200, 200, 50]
    assert all(writer.is_archived(e.key()) for e in entries)
    assert stored(outage.store) == {e.key() for e in entries}
    assert metric(metrics.ARCHIVE_WRITTEN) - written_before == 450
    assert metric(metrics.ARCHIVE_QUEUE) == 0
    assert await writer.stop() == 0


async def test_entries_arriving_within_the_delay_share_one_transaction(outage: Outage) -> None:
    writer = ArchiveWriter(outage, replace(FAST, batch_delay=2.0))
    await writer.start()
    for i in range(5):
        writer.submit(entry(i))
        await asyncio.sleep(0.02)
    await eventually(lambda: writer.depth == 0)
    assert outage.batches == [5]
    await writer.stop()


async def test_store_down_then_back_loses_nothing(outage: Outage) -> None:
    writer = ArchiveWriter(outage, FAST)
    errors_before = metric(metrics.ARCHIVE_WRITE_ERRORS, "unavailable")
    outage.down.set()
    await writer.start()
    entries = [entry(i) for i in range(30)]
    for e in entries[:20]:
        assert writer.submit(e)
    await eventually(lambda: outage.refused >= 5)  # several tries, with backoff, all refused
    assert not any(writer.is_archived(e.key()) for e in entries)
    assert all(writer.is_pending(e.key()) for e in entries[:20])
    assert writer.depth == 20 and writer.failures >= 5
    for e in entries[20:]:
        assert writer.submit(e)  # still accepted while the store is down
    assert stored(outage.store) == set()
    outage.down.clear()
    await eventually(lambda: writer.depth == 0)
    assert all(writer.is_archived(e.key()) for e in entries)
    assert stored(outage.store) == {e.key() for e in entries}
    assert writer.failures == 0
    assert metric(metrics.ARCHIVE_WRITE_ERRORS, "unavailable") - errors_before >= 5
    await writer.stop()


async def test_a_full_queue_refuses_and_keeps_everything_it_accepted(outage: Outage) -> None:
    writer = ArchiveWriter(outage, replace(FAST, max_entries=5))
    refused_before = metric(metrics.ARCHIVE_REFUSED)
    outage.down.set()
    await writer.start()
    accepted = [entry(i) for i in range(5)]
    assert all(writer.submit(e) for e in accepted)
    assert writer.submit(entry(5)) is False  # the caller keeps this run's Pod
    assert metric(metrics.ARCHIVE_REFUSED) - refused_before == 1
    newer = replace(accepted[0], result="Failed", log="newer log")
    assert writer.submit(newer)  # a newer record of a queued key still replaces it
    assert writer.depth == 5
    outage.down.clear()
    await eventually(lambda: writer.depth == 0)
    assert stored(outage.store) == {e.key() for e in accepted}
    got = outage.store.get("team-a", "backup", "backup-0")
    assert got is not None and got.log == "newer log"
    assert writer.submit(entry(5))  # room again: the refused one goes in on its next submit
    await eventually(lambda: writer.is_archived(entry(5).key()))
    await writer.stop()


async def test_the_queue_is_bounded_by_bytes_too(outage: Outage) -> None:
    writer = ArchiveWriter(outage, replace(FAST, max_bytes=100_000))
    big = entry(1, log="x" * 150_000)
    assert writer.submit(big)  # one entry larger than the bound fits an empty queue
    assert writer.submit(entry(2)) is False
    await writer.start()
    await eventually(lambda: writer.is_archived(big.key()))
    assert writer.submit(entry(2))
    await writer.stop()


async def test_a_resubmit_during_the_write_is_written_after_it(outage: Outage, sqlite: SqliteStore) -> None:
    release = threading.Event()
    original_put = sqlite.put

    def slow_put(entries: Sequence[RunEntry]) -> None:
        release.wait(10)
        original_put(entries)

    sqlite.put = slow_put  # type: ignore[method-assign]
    writer = ArchiveWriter(outage, replace(FAST, batch_delay=1.0))  # the second write waits 1 s
    await writer.start()
    first = entry(1, message="first")
    writer.submit(first)
    await eventually(lambda: writer.is_pending(first.key()) and not writer._queue)  # in flight
    writer.submit(replace(first, message="second"))
    release.set()
    await eventually(lambda: len(outage.batches) >= 1)
    assert len(outage.batches) == 1 and not writer.is_archived(first.key())  # the newer one is not written yet
    await eventually(lambda: writer.is_archived(first.key()))
    got = sqlite.get("team-a", "backup", "backup-1")
    assert got is not None and got.message == "second"
    await writer.stop()


async def test_an_entry_no_store_can_hold_is_dropped_alone(outage: Outage) -> None:
    writer = ArchiveWriter(outage, FAST)
    invalid_before = metric(metrics.ARCHIVE_WRITE_ERRORS, "invalid")
    good = [entry(i) for i in range(4)]
    bad = entry(9, exit_code=2**40)
    for e in [*good[:2], bad, *good[2:]]:
        writer.submit(e)
    await writer.start()
    await eventually(lambda: writer.depth == 0)
    assert stored(outage.store) == {e.key() for e in good}
    assert all(writer.is_archived(e.key()) for e in good)
    assert not writer.is_archived(bad.key()) and not writer.is_pending(bad.key())
    assert metric(metrics.ARCHIVE_WRITE_ERRORS, "invalid") - invalid_before == 1
    await writer.stop()


async def test_stop_flushes_what_is_queued(outage: Outage) -> None:
    writer = ArchiveWriter(outage, replace(FAST, batch_delay=5.0))
    await writer.start()
    entries = [entry(i) for i in range(10)]
    for e in entries:
        writer.submit(e)
    assert await writer.stop(flush_timeout=10) == 0  # did not wait out the batch delay
    assert stored(outage.store) == {e.key() for e in entries}
    assert writer.submit(entry(11)) is False  # stopped: the caller keeps the Pod


async def test_stop_with_the_store_down_says_how_many_are_left(outage: Outage) -> None:
    writer = ArchiveWriter(outage, FAST)
    outage.down.set()
    await writer.start()
    for i in range(7):
        writer.submit(entry(i))
    assert await writer.stop(flush_timeout=0.3) == 7


async def test_known_is_what_the_store_has_plus_what_is_queued(outage: Outage) -> None:
    outage.store.put([entry(1), entry(2, attempt=2), entry(3, job="other")])
    writer = ArchiveWriter(outage, FAST)
    writer.submit(entry(4))
    assert await writer.known("uid-backup") == {("backup-1", 1), ("backup-2", 2), ("backup-4", 1)}
    outage.down.set()
    with pytest.raises(StoreError):
        await writer.known("uid-backup")


async def test_after_a_restart_the_backfill_submits_only_what_the_store_lacks(outage: Outage) -> None:
    outage.store.put([entry(1), entry(2)])  # archived by the previous operator process
    writer = ArchiveWriter(outage, FAST)
    from_status = [entry(1), entry(2), entry(3), entry(3, attempt=2)]
    assert not writer.is_archived(entry(1).key())
    assert await writer.backfill("uid-backup", from_status) == 2
    assert writer.is_archived(entry(1).key()) and writer.is_archived(entry(2).key())  # their Pods may go
    assert writer.is_pending(entry(3).key()) and writer.is_pending(entry(3, attempt=2).key())
    assert await writer.backfill("uid-backup", from_status) == 0  # queued ones are not submitted twice
    await writer.start()
    await eventually(lambda: writer.depth == 0)
    assert stored(outage.store) == {e.key() for e in from_status}
    await writer.stop()


async def test_purge_runs_by_itself(outage: Outage) -> None:
    now = T0 + timedelta(days=31)
    outage.store.put([entry(i * 24 * 60) for i in range(5)])  # daily from T0
    settings = replace(FAST, purge_interval=0.05, retention=timedelta(days=30), keep_per_job=2)
    writer = ArchiveWriter(outage, settings, now=lambda: now)
    purged_before = metric(metrics.ARCHIVE_PURGED)
    await writer.start()
    await eventually(lambda: metric(metrics.ARCHIVE_PURGED) - purged_before == 3)
    assert stored(outage.store) == {entry(3 * 24 * 60).key(), entry(4 * 24 * 60).key()}
    outage.down.set()
    assert await writer.purge() == 0  # a failed purge is counted, not raised
    await writer.stop()


async def test_a_real_postgres_outage_loses_nothing(pg_server: PostgresServer) -> None:
    store = open_store(pg_server.create_database())
    writer = ArchiveWriter(store, FAST)
    await writer.start()
    try:
        entries = [entry(i) for i in range(40)]
        for e in entries[:10]:
            writer.submit(e)
        await eventually(lambda: writer.depth == 0)
        await asyncio.to_thread(pg_server.stop)
        for e in entries[10:]:
            assert writer.submit(e)
        await eventually(lambda: writer.failures >= 3)
        assert not any(writer.is_archived(e.key()) for e in entries[10:])
        await asyncio.to_thread(pg_server.start)
        await eventually(lambda: writer.depth == 0)
        assert all(writer.is_archived(e.key()) for e in entries)
        assert stored(store) == {e.key() for e in entries}
    finally:
        await writer.stop(flush_timeout=1)
        store.close()
        if pg_server.pid() is None:
            pg_server.start()
