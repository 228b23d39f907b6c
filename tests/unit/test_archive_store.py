"""The archive store: one suite, run against SQLite and against a real PostgreSQL server.

The PostgreSQL server is Debian's `postgresql` started by `support.postgres` on 127.0.0.1 in a
temporary directory (a fresh database per test); the suite skips it only when no server binary
is installed (`hack/install-system-deps.sh` installs one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from openclaw_cron.archive import schema
from openclaw_cron.archive.model import Query, RunEntry
from openclaw_cron.archive.open import open_store
from openclaw_cron.archive.sql import SqlStore
from openclaw_cron.archive.store import (
    MAX_QUERY_LIMIT,
    InvalidEntry,
    InvalidQuery,
    StoreError,
    iterate,
    redact,
)
from support.postgres import PostgresServer, free_port, pg_server

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CSV_HOSTILE = "a,b;\"quoted\" 'single'\r\nnew line\ttab =SUM(A1) +cmd|x -1 @at \\back\\slash"


__all__ = ["pg_server"]  # the session's PostgreSQL server, a fixture

Opener = Callable[[], SqlStore]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same database again on each call (to test re-opening); all are closed at the end."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'archive.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database()
    opened: list[SqlStore] = []

    def open_again() -> SqlStore:
        store = open_store(url)
        assert isinstance(store, SqlStore)
        opened.append(store)
        return store

    yield open_again
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> SqlStore:
    return opener()


def entry(
    run: int,
    *,
    job: str = "backup",
    namespace: str = "team-a",
    attempt: int = 1,
    minutes: float | None = None,
    **fields: object,
) -> RunEntry:
    """An entry of job `job`, scheduled `minutes` (default: `run` hours) after T0."""
    when = T0 + (timedelta(minutes=minutes) if minutes is not None else timedelta(hours=run))
    base = RunEntry(
        namespace=namespace,
        job=job,
        job_uid=f"uid-{namespace}-{job}",
        run_id=f"{job}-{run}",
        attempt=attempt,
        trigger="Schedule",
        result="Succeeded",
        scheduled_time=when,
        start_time=when + timedelta(seconds=1),
        completion_time=when + timedelta(seconds=3.5),
        duration_seconds=2.5,
        output=f"output of {run}",
        exit_code=0,
        pod_name=f"{job}-{run}-{attempt}",
        node="node-1",
        image="ghcr.io/openclaw/runner:1",
        log=f"log of run {run} attempt {attempt}\n",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def run_ids(entries: list[RunEntry]) -> list[tuple[str, int]]:
    return [(e.run_id, e.attempt) for e in entries]


def without_log(e: RunEntry) -> RunEntry:
    return replace(e, log="")


# -- writing -------------------------------------------------------------------------------------


def test_put_then_get_round_trips_every_field(store: SqlStore) -> None:
    e = entry(
        1,
        result="Failed",
        trigger="Manual",
        reason="Error",
        message="exit 3",
        exit_code=3,
        gateway_run_id="gw-1",
        delivery={"status": "failed", "delivered": False, "deliveryAttempted": True, "error": "smtp 550", "n": 2},
        reply="the agent said hi",
        reply_note="",
        log_truncated=True,
    )
    store.put([e])
    assert store.get("team-a", "backup", "backup-1") == e
    assert store.get("team-a", "backup", "backup-1", attempt=1) == e


def test_put_is_an_idempotent_upsert_by_key(store: SqlStore) -> None:
    batch = [entry(i) for i in range(5)]
    store.put(batch)
    store.put(batch)
    store.put(batch[:2])
    page, cursor = store.query(Query())
    assert len(page) == 5 and cursor is None
    assert store.keys("uid-team-a-backup") == {(f"backup-{i}", 1) for i in range(5)}

    # A later put of the same key wins ...
    store.put([replace(batch[0], result="Failed", message="changed", log="new log")])
    got = store.get("team-a", "backup", "backup-0")
    assert got is not None and (got.result, got.message, got.log) == ("Failed", "changed", "new log")
    # ... but a record rebuilt without log or reply (from status) does not erase the captured ones.
    store.put([replace(batch[1], reply="a reply", log_truncated=True)])
    store.put([replace(batch[1], log="", reply="", log_truncated=False, message="from status")])
    got = store.get("team-a", "backup", "backup-1")
    assert got is not None
    assert (got.log, got.reply, got.log_truncated, got.message) == (batch[1].log, "a reply", True, "from status")
    assert len(store.query(Query())[0]) == 5


def test_a_batch_is_one_transaction(store: SqlStore) -> None:
    bad = entry(2, exit_code=2**40)
    with pytest.raises(InvalidEntry, match="exit code"):
        store.put([entry(1), bad])
    assert store.query(Query()) == ([], None)
    with pytest.raises(InvalidEntry, match="attempt"):
        store.put([entry(1, attempt=0)])
    store.put([entry(1)])
    assert run_ids(store.query(Query())[0]) == [("backup-1", 1)]


def test_unicode_large_and_csv_hostile_texts_survive(store: SqlStore) -> None:
    big_log = ("línea ✓ 日本語 🚀 " + CSV_HOSTILE + "\n") * 40_000  # ~3.6 MB
    e = entry(1, log=big_log, reply="réponse 🤖\n" + CSV_HOSTILE, message=CSV_HOSTILE, output=CSV_HOSTILE)
    store.put([e])
    assert store.get("team-a", "backup", "backup-1") == e
    (listed,), _ = store.query(Query())
    assert listed == without_log(e)

    # NUL (PostgreSQL refuses it in text and jsonb) and lone surrogates (undecodable bytes) are replaced, not fatal.
    odd = entry(2, log="a\x00b\udcffc", reply="r\x00", delivery={"error": "e\x00", "nested": {"k\x00": ["v\x00"]}})
    store.put([odd])
    got = store.get("team-a", "backup", "backup-2")
    assert got is not None
    assert (got.log, got.reply) == ("a\ufffdb?c", "r\ufffd")
    assert got.delivery == {"error": "e\ufffd", "nested": {"k\ufffd": ["v\ufffd"]}}


def test_times_come_back_as_the_same_instant_in_utc(store: SqlStore) -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2026, 11, 2, 3, 4, 5, 678901, tzinfo=zone)
    store.put([entry(1, scheduled_time=local, start_time=local, completion_time=None, duration_seconds=None)])
    got = store.get("team-a", "backup", "backup-1")
    assert got is not None
    assert got.scheduled_time == local and got.scheduled_time.utcoffset() == timedelta(0)
    assert got.start_time == local and got.completion_time is None and got.duration_seconds is None


# -- reading -------------------------------------------------------------------------------------


@pytest.fixture
def history(store: SqlStore) -> list[RunEntry]:
    """Two jobs in two namespaces; results and triggers vary; newest first (times unique but for attempts)."""
    entries = [
        *(entry(i, result="Failed" if i % 3 == 0 else "Succeeded") for i in range(10)),
        entry(3, attempt=2, result="Succeeded", trigger="Retry"),
        *(entry(i, job="report", trigger="Manual" if i == 4 else "Schedule", minutes=i * 90 + 1) for i in range(6)),
        *(entry(i, namespace="team-b", result="TimedOut", minutes=i * 60 + 30) for i in range(4)),
    ]
    store.put(entries)
    return sorted(entries, key=lambda e: (e.scheduled_time, e.attempt), reverse=True)


def test_query_returns_newest_first_without_log(store: SqlStore, history: list[RunEntry]) -> None:
    page, cursor = store.query(Query(limit=MAX_QUERY_LIMIT))
    assert cursor is None
    assert [(e.namespace, *k) for e in page for k in [(e.run_id, e.attempt)]] == [
        (e.namespace, e.run_id, e.attempt) for e in history
    ]
    assert all(e.log == "" for e in page)
    assert page[0] == without_log(history[0])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (Query(namespace="team-b"), lambda e: e.namespace == "team-b"),
        (Query(namespace="team-a", job="report"), lambda e: e.namespace == "team-a" and e.job == "report"),
        (Query(job="backup"), lambda e: e.job == "backup"),
        (Query(result="Failed"), lambda e: e.result == "Failed"),
        (Query(result="timedout"), lambda e: e.result == "TimedOut"),
        (Query(trigger="retry"), lambda e: e.trigger == "Retry"),
        (Query(trigger="Manual", job="report"), lambda e: e.trigger == "Manual"),
        (Query(since=T0 + timedelta(hours=3)), lambda e: e.scheduled_time >= T0 + timedelta(hours=3)),
        (Query(until=T0 + timedelta(hours=3)), lambda e: e.scheduled_time < T0 + timedelta(hours=3)),
        (
            Query(namespace="team-a", job="backup", since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=6)),
            lambda e: (
                e.namespace == "team-a"
                and e.job == "backup"
                and T0 + timedelta(hours=2) <= e.scheduled_time < T0 + timedelta(hours=6)
            ),
        ),
        (Query(namespace="team-a", result="Failed", since=T0 + timedelta(hours=4)), None),
        (Query(namespace="nobody"), lambda e: False),
    ],
)
def test_every_filter(
    store: SqlStore,
    history: list[RunEntry],
    query: Query,
    expected: Callable[[RunEntry], bool] | None,
) -> None:
    if expected is None:

        def expected(e: RunEntry) -> bool:
            return e.namespace == "team-a" and e.result == "Failed" and e.scheduled_time >= T0 + timedelta(hours=4)

    page, cursor = store.query(query)
    want = [(e.namespace, e.job, e.run_id, e.attempt) for e in history if expected(e)]
    assert [(e.namespace, e.job, e.run_id, e.attempt) for e in page] == want
    assert cursor is None
    assert query.namespace == "nobody" or want  # every case but the empty one selects something


def test_since_is_inclusive_and_until_exclusive(store: SqlStore, history: list[RunEntry]) -> None:
    at = T0 + timedelta(hours=5)
    page, _ = store.query(Query(namespace="team-a", job="backup", since=at, until=at + timedelta(hours=1)))
    assert run_ids(page) == [("backup-5", 1)]
    page, _ = store.query(Query(namespace="team-a", job="backup", since=at, until=at))
    assert page == []


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_cursor_pages_through_everything_exactly_once(store: SqlStore, history: list[RunEntry], limit: int) -> None:
    seen: list[tuple[str, str, int]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = store.query(Query(limit=limit, cursor=cursor))
        pages += 1
        assert len(page) <= limit
        seen += [(e.namespace, e.run_id, e.attempt) for e in page]
        if cursor is None:
            break
        assert len(page) == limit
    assert seen == [(e.namespace, e.run_id, e.attempt) for e in history]
    assert pages == -(-len(history) // limit)


def test_cursor_keeps_the_filters_and_survives_new_writes(store: SqlStore, history: list[RunEntry]) -> None:
    q = Query(namespace="team-a", job="backup", limit=4)
    first, cursor = store.query(q)
    store.put([entry(99), entry(50, minutes=-60)])  # one newer than every page, one older
    rest = list(iterate(store, replace(q, cursor=cursor)))
    want = [e for e in history if e.namespace == "team-a" and e.job == "backup"]
    assert run_ids(first + rest) == [*run_ids(want), ("backup-50", 1)]


def test_entries_with_the_same_time_page_stably(store: SqlStore) -> None:
    store.put([entry(1, attempt=a, minutes=0) for a in range(1, 8)])
    seen = list(iterate(store, Query(limit=2)))
    assert sorted(run_ids(seen)) == [("backup-1", a) for a in range(1, 8)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (Query(cursor="not-a-cursor"), "cursor"),
        (Query(cursor="MTo="), "cursor"),
        (Query(limit=0), "limit"),
        (Query(limit=MAX_QUERY_LIMIT + 1), "limit"),
        (Query(result="Exploded"), "result: 'Exploded' is not one of Succeeded"),
        (Query(trigger="Cron"), "trigger"),
        (Query(since=datetime(2026, 11, 1)), "since: a time zone is required"),
        (Query(until=datetime(2026, 11, 1)), "until"),
    ],
)
def test_malformed_queries_are_refused_naming_the_parameter(store: SqlStore, query: Query, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        store.query(query)


def test_get_with_and_without_attempt(store: SqlStore, history: list[RunEntry]) -> None:
    latest = store.get("team-a", "backup", "backup-3")
    assert latest is not None and (latest.attempt, latest.result, latest.trigger) == (2, "Succeeded", "Retry")
    assert latest.log == "log of run 3 attempt 2\n"
    first = store.get("team-a", "backup", "backup-3", attempt=1)
    assert first is not None and (first.attempt, first.result) == (1, "Failed")
    assert first.log == "log of run 3 attempt 1\n"
    assert store.get("team-a", "backup", "backup-3", attempt=3) is None
    assert store.get("team-b", "report", "backup-3") is None
    assert store.get("team-a", "report", "backup-3") is None


def test_keys_are_per_job_uid(store: SqlStore, history: list[RunEntry]) -> None:
    assert store.keys("uid-team-a-report") == {(f"report-{i}", 1) for i in range(6)}
    assert ("backup-3", 2) in store.keys("uid-team-a-backup")
    assert store.keys("no-such-uid") == set()


def test_reads_run_beside_a_write_in_progress(store: SqlStore) -> None:
    store.put([entry(1)])
    seen: list[int] = []
    with store._transaction(write=True) as tx:  # a writer holds the write lock, mid-transaction
        tx.execute("DELETE FROM runs")
        reader = threading.Thread(target=lambda: seen.append(len(store.query(Query())[0])))
        reader.start()
        reader.join(timeout=5)
    assert seen == [1]  # the reader was not blocked and saw the committed state
    assert store.query(Query()) == ([], None)


# -- retention -----------------------------------------------------------------------------------


def text_rows(store: SqlStore) -> int:
    with store._transaction(write=False) as tx:
        return int(tx.rows("SELECT COUNT(*) FROM run_texts")[0][0])


def test_purge_by_age(store: SqlStore) -> None:
    store.put([entry(i, minutes=i * 24 * 60) for i in range(40)])  # one a day from T0
    now = T0 + timedelta(days=40)
    assert store.purge(now, timedelta(days=30), keep_per_job=0) == 10
    remaining = list(iterate(store, Query()))
    assert min(e.scheduled_time for e in remaining) == T0 + timedelta(days=10)
    assert len(remaining) == 30 == text_rows(store)  # the logs went with their runs
    assert store.purge(now, timedelta(days=30), keep_per_job=0) == 0


def test_purge_by_count_per_job(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("openclaw_cron.archive.sql.PURGE_CHUNK", 7)  # several chunks per job
    store.put([entry(i, minutes=i) for i in range(30)])
    store.put([entry(i, job="report", minutes=i) for i in range(5)])
    store.put([entry(i, namespace="team-b", minutes=i) for i in range(12)])
    now = T0 + timedelta(days=1)
    assert store.purge(now, timedelta(0), keep_per_job=10) == 20 + 2
    backup = store.query(Query(namespace="team-a", job="backup"))[0]
    assert run_ids(backup) == [(f"backup-{i}", 1) for i in range(29, 19, -1)]
    assert len(store.query(Query(job="report"))[0]) == 5
    assert len(store.query(Query(namespace="team-b"))[0]) == 10
    assert text_rows(store) == 25


def test_purge_by_age_and_count_together_and_disabled(store: SqlStore) -> None:
    store.put([entry(i, minutes=i * 60) for i in range(48)])  # hourly for two days
    now = T0 + timedelta(hours=48)
    assert store.purge(now, timedelta(0), keep_per_job=0) == 0
    assert store.purge(now, timedelta(hours=24), keep_per_job=10) == 24 + 14
    assert run_ids(store.query(Query())[0]) == [(f"backup-{i}", 1) for i in range(47, 37, -1)]


# -- schema --------------------------------------------------------------------------------------


def test_migrations_from_empty_and_on_reopen(opener: Opener) -> None:
    first = opener()
    newest = len(schema.MIGRATIONS[first.dialect])
    assert first.schema_version() == newest
    first.put([entry(1)])
    first.close()
    again = opener()  # the schema is there: nothing re-runs, the data is kept
    assert again.schema_version() == newest
    assert run_ids(again.query(Query())[0]) == [("backup-1", 1)]
    with again._transaction(write=False) as tx:
        assert tx.rows("SELECT COUNT(*) FROM schema_version")[0][0] == newest
    with again._transaction(write=True) as tx:  # a newer operator migrated this database
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (newest + 1, "later"))
    with pytest.raises(StoreError, match=f"version {newest + 1}, newer than this operator knows"):
        opener()


def test_the_indexes_of_the_design_exist(store: SqlStore) -> None:
    if store.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'runs'"
    with store._transaction(write=False) as tx:
        names = {row[0] for row in tx.rows(sql)}
    assert {"runs_job_time", "runs_result_time"} <= names


def test_a_closed_store_says_so(store: SqlStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.query(Query())


# -- URLs and secrets ----------------------------------------------------------------------------


def test_open_store_urls(tmp_path: Path) -> None:
    memory = open_store("sqlite://:memory:")
    memory.put([entry(1)])
    assert len(memory.query(Query())[0]) == 1
    memory.close()
    path = tmp_path / "sub.db"
    open_store(f"sqlite://{path}").close()
    assert path.exists()
    with pytest.raises(ValueError, match=r"'mysql://root:\*\*\*@db/x': expected sqlite:///path/file.db"):
        open_store("mysql://root:hunter2@db/x")
    with pytest.raises(StoreError, match="unable to open database file"):
        open_store(f"sqlite://{tmp_path}/missing-dir/x.db")


def test_dsn_passwords_never_appear_in_messages() -> None:
    assert redact("postgresql://app:s3cret@db:5432/archive?sslmode=require") == (
        "postgresql://app:***@db:5432/archive?sslmode=require"
    )
    assert redact("host=db user=app password=s3cret dbname=x") == "host=db user=app password=*** dbname=x"
    assert (
        redact("postgresql://db/x?password=s3cret&sslmode=require") == "postgresql://db/x?password=***&sslmode=require"
    )
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://app:s3cret@127.0.0.1:{free_port()}/archive")
    assert "s3cret" not in str(caught.value) and "app:***@127.0.0.1" in str(caught.value)


def test_postgres_down_is_a_store_error_and_back_is_usable(pg_server: PostgresServer) -> None:
    store = open_store(pg_server.create_database())
    try:
        store.put([entry(1)])
        pg_server.stop()
        with pytest.raises(StoreError):
            store.put([entry(2)])
        with pytest.raises(StoreError):
            store.query(Query())
        pg_server.start()
        store.put([entry(2)])  # the broken connections were dropped; a new one is opened
        assert run_ids(store.query(Query())[0]) == [("backup-2", 1), ("backup-1", 1)]
    finally:
        store.close()
        if pg_server.pid() is None:
            pg_server.start()


def test_a_later_migration_runs_on_an_existing_database(opener: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    first = opener()
    first.put([entry(1)])
    dialect, newest = first.dialect, len(schema.MIGRATIONS[first.dialect])
    first.close()
    extra = "CREATE INDEX runs_node ON runs (node); UPDATE runs SET node = 'migrated'"
    monkeypatch.setitem(schema.MIGRATIONS, dialect, (*schema.MIGRATIONS[dialect], extra))
    again = opener()
    assert again.schema_version() == newest + 1
    got = again.get("team-a", "backup", "backup-1")
    assert got is not None and got.node == "migrated"  # the data was kept and migrated once
    again.close()
    assert opener().get("team-a", "backup", "backup-1") == got


def test_replicas_opening_a_fresh_database_at_once_migrate_it_once(opener: Opener) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opener()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    store = opener()
    with store._transaction(write=False) as tx:
        versions = [row[0] for row in tx.rows("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(schema.MIGRATIONS[store.dialect]) + 1))
