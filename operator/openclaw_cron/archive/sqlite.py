"""The embedded archive: one SQLite file (stdlib sqlite3) in WAL mode, the chart puts it on a PVC.

One writer connection behind a lock (SQLite has one writer anyway) and a small pool of reader
connections, so history queries run beside writes. `:memory:` uses a single connection (each
connection would see its own empty database).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .sql import Row, SqlStore, Tx, from_micros, to_micros
from .store import StoreError

#: Seconds a statement waits for another process's lock before failing (then the writer retries).
BUSY_TIMEOUT = 10.0
#: Idle reader connections kept.
MAX_IDLE_READERS = 4


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def execute_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, params)


class SqliteStore(SqlStore):
    """The archive in one SQLite file (or in memory, for tests)."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._memory = path == ":memory:"
        self._write_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        if not self._memory:
            self._writer.execute("PRAGMA journal_mode=WAL")
        with self._transaction(write=True) as tx:
            self._migrate(tx)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise StoreError(f"archive SQLite database {self.path}: {e}") from e
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        if self._closed:
            raise StoreError("the archive store is closed")
        if write or self._memory:
            with self._write_lock:
                yield from self._in_transaction(self._writer, "BEGIN IMMEDIATE" if write else "BEGIN")
            return
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = self._connect()
        try:
            yield from self._in_transaction(conn, "BEGIN")
        finally:
            with self._readers_lock:
                if len(self._readers) < MAX_IDLE_READERS and not self._closed:
                    self._readers.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def _in_transaction(self, conn: sqlite3.Connection, begin: str) -> Iterator[Tx]:
        try:
            conn.execute(begin)
        except sqlite3.Error as e:
            raise StoreError(f"archive SQLite database {self.path}: {e}") from e
        try:
            yield _SqliteTx(conn)
        except BaseException as e:
            conn.rollback()
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"archive SQLite database {self.path}: {e}") from e
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            conn.rollback()
            raise StoreError(f"archive SQLite database {self.path}: {e}") from e

    def _time_param(self, when: datetime) -> int:
        return to_micros(when)

    def _time_value(self, value: Any) -> datetime:
        return from_micros(int(value))

    def micros_sql(self, column: str) -> str:
        return column  # stored as integer microseconds already

    def _json_param(self, value: Mapping[str, Any]) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def _json_value(self, value: Any) -> Mapping[str, Any]:
        if not value or value == "{}":
            return {}
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}

    def close(self) -> None:
        self._closed = True
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        with self._write_lock:
            self._writer.close()
