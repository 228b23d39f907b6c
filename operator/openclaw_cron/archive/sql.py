"""What both SQL stores share: the statements, row mapping, text cleaning and the keyset cursor.

The statements are written once with `?` placeholders and the subset of SQL that SQLite and
PostgreSQL both speak (ON CONFLICT upserts, RETURNING, row-value comparisons); a dialect only
supplies connections, transactions and the conversion of times and JSON.
"""

from __future__ import annotations

import base64
import binascii
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from ..api import RunResult, Trigger
from . import schema
from .model import Query, RunEntry
from .store import MAX_QUERY_LIMIT, InvalidEntry, InvalidQuery, StoreError

log = logging.getLogger(__name__)

Row = tuple[Any, ...]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Rows deleted per transaction when purging, so a big purge never holds the writer for long.
PURGE_CHUNK = 5000

_RESULTS = {r.lower(): r for r in get_args(RunResult)}
_TRIGGERS = {t.lower(): t for t in get_args(Trigger)}

# Column order of `runs` as read and written (after `id`); `trigger_type` is RunEntry.trigger.
_RUN_COLUMNS = (
    "namespace",
    "job",
    "job_uid",
    "run_id",
    "attempt",
    "trigger_type",
    "result",
    "scheduled_time",
    "start_time",
    "completion_time",
    "duration_seconds",
    "reason",
    "message",
    "output",
    "exit_code",
    "pod_name",
    "node",
    "image",
    "gateway_run_id",
    "delivery",
    "reply_note",
)
_KEY = ("job_uid", "run_id", "attempt")
_UPSERT_RUN = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' for _ in _RUN_COLUMNS)}) "
    "ON CONFLICT (job_uid, run_id, attempt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS if c not in _KEY)
)
_UPSERT_TEXTS = (
    "INSERT INTO run_texts (run_pk, log_truncated, reply, log) "
    "SELECT id, ?, ?, ? FROM runs WHERE job_uid = ? AND run_id = ? AND attempt = ? "
    "ON CONFLICT (run_pk) DO UPDATE SET "
    "reply = CASE WHEN excluded.reply <> '' THEN excluded.reply ELSE run_texts.reply END, "
    "log_truncated = CASE WHEN excluded.log <> '' THEN excluded.log_truncated ELSE run_texts.log_truncated END, "
    "log = CASE WHEN excluded.log <> '' THEN excluded.log ELSE run_texts.log END"
)
_SELECT = (
    "SELECT r.id, "
    + ", ".join(f"r.{c}" for c in _RUN_COLUMNS)
    + ", t.log_truncated, t.reply{log} FROM runs r LEFT JOIN run_texts t ON t.run_pk = r.id"
)


def clean_text(text: str) -> str:
    """`text` as every store can hold it: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode(errors="replace").decode()
    return text


def clean_json(value: Any) -> Any:
    """A JSON-able copy of `value` with every string cleaned (a `\\u0000` escape breaks jsonb too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value))


def to_micros(when: datetime) -> int:
    """Microseconds since the epoch; a naive time is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def encode_cursor(scheduled_micros: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"1:{scheduled_micros}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, micros, row_id = raw.split(":")
        if version != "1":
            raise ValueError(version)
        return int(micros), int(row_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidQuery(f"cursor: {cursor[:40]!r} is not a cursor this archive returned") from None


def canonical(kind: str, value: str, known: dict[str, str]) -> str:
    """The stored spelling of a result or trigger, matched case-insensitively."""
    try:
        return known[value.lower()]
    except KeyError:
        raise InvalidQuery(f"{kind}: {value!r} is not one of {', '.join(known.values())}") from None


_INT32 = range(-(2**31), 2**31)


def _check(entry: RunEntry) -> None:
    if entry.attempt < 1 or entry.attempt not in _INT32:
        raise InvalidEntry(f"{entry.key()}: attempt {entry.attempt} is out of range")
    if entry.exit_code is not None and entry.exit_code not in _INT32:
        raise InvalidEntry(f"{entry.key()}: exit code {entry.exit_code} is out of range")
    if not isinstance(entry.scheduled_time, datetime):
        raise InvalidEntry(f"{entry.key()}: scheduled_time {entry.scheduled_time!r} is not a datetime")


def _aware(name: str, when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        raise InvalidQuery(f"{name}: a time zone is required")
    return when


class Tx(ABC):
    """One transaction on one connection, with `?` placeholders."""

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""

    @abstractmethod
    def execute_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per parameter set (PostgreSQL pipelines them: one round trip)."""


class SqlStore(ABC):
    """The archive over a SQL database; subclasses bring connections and type conversions."""

    dialect: str

    # -- what a dialect supplies -------------------------------------------------------------

    @abstractmethod
    def _transaction(self, write: bool) -> AbstractContextManager[Tx]:
        """A transaction (committed when the block ends, rolled back on error); StoreError when unavailable."""

    @abstractmethod
    def _time_param(self, when: datetime) -> Any: ...

    @abstractmethod
    def _time_value(self, value: Any) -> datetime: ...

    @abstractmethod
    def _json_param(self, value: Mapping[str, Any]) -> Any: ...

    @abstractmethod
    def _json_value(self, value: Any) -> Mapping[str, Any]: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- migrations ----------------------------------------------------------------------------

    def _migrate(self, tx: Tx) -> None:
        """Bring the schema to the newest version; refuse one newer than this code knows."""
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        migrations = schema.MIGRATIONS[self.dialect]
        (current,) = tx.rows("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
        if current > len(migrations):
            raise StoreError(
                f"the archive's schema is at version {current}, newer than this operator knows "
                f"({len(migrations)}): run a newer operator, or point it at another database"
            )
        for number in range(current + 1, len(migrations) + 1):
            for statement in schema.statements(migrations[number - 1]):
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (number, datetime.now(UTC).isoformat()),
            )
            log.info("archive schema migrated to version %d (%s)", number, self.dialect)

    def schema_version(self) -> int:
        with self._transaction(write=False) as tx:
            return int(tx.rows("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    # -- the Store interface -------------------------------------------------------------------

    def put(self, entries: Sequence[RunEntry]) -> None:
        if not entries:
            return
        with self._transaction(write=True) as tx:
            tx.execute_many(_UPSERT_RUN, [self._run_params(e) for e in entries])
            tx.execute_many(
                _UPSERT_TEXTS,
                [
                    (
                        e.log_truncated,
                        clean_text(e.reply),
                        clean_text(e.log),
                        clean_text(e.job_uid),
                        clean_text(e.run_id),
                        e.attempt,
                    )
                    for e in entries
                ],
            )

    def query(self, q: Query) -> tuple[list[RunEntry], str | None]:
        if not 1 <= q.limit <= MAX_QUERY_LIMIT:
            raise InvalidQuery(f"limit: {q.limit} is not between 1 and {MAX_QUERY_LIMIT}")
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("namespace", q.namespace), ("job", q.job)):
            if value is not None:
                where.append(f"r.{column} = ?")
                params.append(value)
        if q.result is not None:
            where.append("r.result = ?")
            params.append(canonical("result", q.result, _RESULTS))
        if q.trigger is not None:
            where.append("r.trigger_type = ?")
            params.append(canonical("trigger", q.trigger, _TRIGGERS))
        since, until = _aware("since", q.since), _aware("until", q.until)
        if since is not None:
            where.append("r.scheduled_time >= ?")
            params.append(self._time_param(since))
        if until is not None:
            where.append("r.scheduled_time < ?")
            params.append(self._time_param(until))
        if q.cursor is not None:
            micros, row_id = decode_cursor(q.cursor)
            where.append("(r.scheduled_time, r.id) < (?, ?)")
            params += [self._time_param(from_micros(micros)), row_id]
        sql = _SELECT.format(log="")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.scheduled_time DESC, r.id DESC LIMIT ?"
        params.append(q.limit + 1)
        with self._transaction(write=False) as tx:
            rows = tx.rows(sql, params)
        entries = [self._entry(row) for row in rows[: q.limit]]
        cursor = None
        if len(rows) > q.limit:
            last = rows[q.limit - 1]
            cursor = encode_cursor(to_micros(self._time_value(last[8])), int(last[0]))
        return entries, cursor

    def get(self, namespace: str, job: str, run_id: str, attempt: int | None = None) -> RunEntry | None:
        sql = _SELECT.format(log=", t.log") + " WHERE r.namespace = ? AND r.job = ? AND r.run_id = ?"
        params: list[Any] = [namespace, job, run_id]
        if attempt is not None:
            sql += " AND r.attempt = ?"
            params.append(attempt)
        sql += " ORDER BY r.attempt DESC, r.id DESC LIMIT 1"
        with self._transaction(write=False) as tx:
            rows = tx.rows(sql, params)
        return self._entry(rows[0]) if rows else None

    def keys(self, job_uid: str) -> set[tuple[str, int]]:
        with self._transaction(write=False) as tx:
            rows = tx.rows("SELECT run_id, attempt FROM runs WHERE job_uid = ?", (job_uid,))
        return {(str(run_id), int(attempt)) for run_id, attempt in rows}

    def purge(self, now: datetime, max_age: timedelta, keep_per_job: int) -> int:
        deleted = 0
        if max_age > timedelta(0):
            cutoff = self._time_param(now - max_age)
            deleted += self._delete_chunks("scheduled_time < ?", (cutoff,))
        if keep_per_job > 0:
            with self._transaction(write=False) as tx:
                crowded = tx.rows(
                    "SELECT namespace, job FROM runs GROUP BY namespace, job HAVING COUNT(*) > ?", (keep_per_job,)
                )
            for namespace, job in crowded:
                with self._transaction(write=False) as tx:
                    edge = tx.rows(
                        "SELECT scheduled_time, id FROM runs WHERE namespace = ? AND job = ? "
                        "ORDER BY scheduled_time DESC, id DESC LIMIT 1 OFFSET ?",
                        (namespace, job, keep_per_job - 1),
                    )
                if edge:
                    deleted += self._delete_chunks(
                        "namespace = ? AND job = ? AND (scheduled_time, id) < (?, ?)", (namespace, job, *edge[0])
                    )
        if deleted:
            log.info("archive purge removed %d runs", deleted)
        return deleted

    # -- reads for aggregating callers (the console) --------------------------------------------

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read-only statement (portable SQL, `?` placeholders), e.g. a GROUP BY."""
        with self._transaction(write=False) as tx:
            return tx.rows(sql, params)

    def time_param(self, when: datetime) -> Any:
        """`when` as this dialect stores a time (a parameter for `read`)."""
        return self._time_param(when)

    def time_value(self, value: Any) -> datetime:
        """A time column's value as a UTC datetime."""
        return self._time_value(value)

    @abstractmethod
    def micros_sql(self, column: str) -> str:
        """An SQL expression for the time `column` as integer microseconds since the epoch."""

    # -- helpers -------------------------------------------------------------------------------

    def _delete_chunks(self, condition: str, params: Sequence[Any]) -> int:
        total = 0
        sql = f"DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE {condition} LIMIT {PURGE_CHUNK})"
        while True:
            with self._transaction(write=True) as tx:
                count = tx.execute(sql, params)
            total += count
            if count < PURGE_CHUNK:
                return total

    def _optional_time(self, when: datetime | None) -> Any:
        return None if when is None else self._time_param(when)

    def _run_params(self, e: RunEntry) -> tuple[Any, ...]:
        _check(e)
        return (
            clean_text(e.namespace),
            clean_text(e.job),
            clean_text(e.job_uid),
            clean_text(e.run_id),
            e.attempt,
            clean_text(e.trigger),
            clean_text(e.result),
            self._time_param(e.scheduled_time),
            self._optional_time(e.start_time),
            self._optional_time(e.completion_time),
            e.duration_seconds,
            clean_text(e.reason),
            clean_text(e.message),
            clean_text(e.output),
            e.exit_code,
            clean_text(e.pod_name),
            clean_text(e.node),
            clean_text(e.image),
            clean_text(e.gateway_run_id),
            self._json_param(clean_json(dict(e.delivery))),
            clean_text(e.reply_note),
        )

    def _entry(self, row: Row) -> RunEntry:
        (
            _id,
            namespace,
            job,
            job_uid,
            run_id,
            attempt,
            trigger,
            result,
            scheduled,
            start,
            completion,
            duration,
            reason,
            message,
            output,
            exit_code,
            pod_name,
            node,
            image,
            gateway_run_id,
            delivery,
            reply_note,
            log_truncated,
            reply,
            *rest,
        ) = row
        return RunEntry(
            namespace=namespace,
            job=job,
            job_uid=job_uid,
            run_id=run_id,
            attempt=int(attempt),
            trigger=trigger,
            result=result,
            scheduled_time=self._time_value(scheduled),
            start_time=None if start is None else self._time_value(start),
            completion_time=None if completion is None else self._time_value(completion),
            duration_seconds=None if duration is None else float(duration),
            reason=reason,
            message=message,
            output=output,
            exit_code=None if exit_code is None else int(exit_code),
            pod_name=pod_name,
            node=node,
            image=image,
            gateway_run_id=gateway_run_id,
            delivery=self._json_value(delivery),
            reply=reply or "",
            reply_note=reply_note,
            log=(rest[0] or "") if rest else "",
            log_truncated=bool(log_truncated),
        )
