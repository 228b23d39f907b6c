"""The production archive: PostgreSQL through psycopg 3, for HA (several operator replicas).

A small pool of connections (autocommit, explicit transactions); a broken connection is dropped
and the next call reconnects, so a database that was down is used again as soon as it is back.
The DSN's password never appears in a message (`store.redact`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from .sql import Row, SqlStore, Tx
from .store import StoreError, redact

#: Seconds to wait for a connection before calling the store unavailable.
CONNECT_TIMEOUT = 5
#: Connections open at once (the writer, the purge and a few API queries).
MAX_CONNECTIONS = 4
#: Any fixed number: the advisory lock that serializes migrations between replicas.
_MIGRATION_LOCK = 0x6F63_6172  # "ocar"


class _PostgresTx(Tx):
    _converted: dict[str, str] = {}

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.conn = conn

    @classmethod
    def _sql(cls, sql: str) -> str:
        converted = cls._converted.get(sql)
        if converted is None:
            converted = cls._converted[sql] = sql.replace("?", "%s")
        return converted

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(self._sql(sql), params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(self._sql(sql), params).rowcount

    def execute_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), params)


class PostgresStore(SqlStore):
    """The archive in a PostgreSQL database named by a DSN."""

    dialect = "postgres"

    def __init__(self, dsn: str) -> None:
        self._shown = redact(dsn)
        if "connect_timeout" not in conninfo_to_dict(dsn):
            dsn = make_conninfo(dsn, connect_timeout=CONNECT_TIMEOUT)
        self._dsn = dsn
        self._idle: list[psycopg.Connection[Row]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._closed = False
        with self._transaction(write=True) as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            self._migrate(tx)

    def __repr__(self) -> str:
        return f"PostgresStore({self._shown!r})"

    def _error(self, e: Exception) -> StoreError:
        return StoreError(f"archive PostgreSQL database {self._shown}: {redact(str(e)).strip()}")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        if self._closed:
            raise StoreError("the archive store is closed")
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                try:
                    conn = psycopg.connect(self._dsn, autocommit=True)
                except psycopg.Error as e:
                    raise self._error(e) from e
            try:
                yield conn
            finally:
                if conn.closed or conn.broken or self._closed:
                    conn.close()
                else:
                    with self._lock:
                        self._idle.append(conn)

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        with self._connection() as conn:
            try:
                with conn.transaction():
                    yield _PostgresTx(conn)
            except psycopg.Error as e:
                raise self._error(e) from e

    def _time_param(self, when: datetime) -> datetime:
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def _time_value(self, value: Any) -> datetime:
        if not isinstance(value, datetime):
            raise TypeError(f"expected a timestamptz, got {value!r}")
        return value.astimezone(UTC)

    def micros_sql(self, column: str) -> str:
        return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"

    def _json_param(self, value: Mapping[str, Any]) -> Jsonb:
        return Jsonb(value)

    def _json_value(self, value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, dict) else {}

    def close(self) -> None:
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
