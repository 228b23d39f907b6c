"""The archive's storage interface: what every driver implements, and the errors it raises.

Opening a store from a URL (which needs the drivers) lives in open.py, so this interface never
imports its own implementations.

Methods are synchronous (sqlite3 and psycopg are blocking); async callers run them in a thread,
so a slow store never holds the event loop.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from .model import Query, RunEntry

#: The most entries one query returns (a page); more is paged with the cursor.
MAX_QUERY_LIMIT = 1000


class StoreError(Exception):
    """The store could not do the operation (down, unreachable, locked, misconfigured); worth retrying."""


class InvalidEntry(ValueError):
    """An entry no store can hold (a number out of range); retrying cannot help."""


class InvalidQuery(ValueError):
    """A query the caller got wrong (bad cursor, limit, filter value); the message names the parameter."""


class Store(Protocol):
    """A run archive. Writes are idempotent by `RunEntry.key()`; reads are newest first."""

    def put(self, entries: Sequence[RunEntry]) -> None:
        """Upsert `entries` in one transaction: all or nothing.

        A later put of the same key wins, except that an empty `log` or `reply` never erases a
        stored one (a record rebuilt from `status.recentRuns` must not drop a captured log).
        Raises StoreError when the store is unavailable, InvalidEntry (and writes nothing) when
        an entry cannot be stored.
        """
        ...

    def query(self, q: Query) -> tuple[list[RunEntry], str | None]:
        """One page of entries matching `q`, newest scheduled first, WITHOUT `log`; and the next cursor.

        Raises InvalidQuery for a malformed cursor, limit or filter.
        """
        ...

    def get(self, namespace: str, job: str, run_id: str, attempt: int | None = None) -> RunEntry | None:
        """One entry with its log; the latest attempt when `attempt` is None."""
        ...

    def keys(self, job_uid: str) -> set[tuple[str, int]]:
        """The (run_id, attempt) pairs archived for a job uid (for the startup backfill)."""
        ...

    def purge(self, now: datetime, max_age: timedelta, keep_per_job: int) -> int:
        """Delete entries scheduled before `now - max_age` and all but the newest `keep_per_job` per job.

        A job is its namespace and name (as history shows it, across re-creations of the resource).

        A `max_age` or `keep_per_job` of zero or less disables that rule. Returns how many went.
        """
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


def iterate(store: Store, q: Query) -> Iterator[RunEntry]:
    """Every entry matching `q`, page after page (for exports and summaries)."""
    cursor = q.cursor
    while True:
        page, cursor = store.query(dataclasses.replace(q, cursor=cursor))
        yield from page
        if cursor is None:
            return


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, for logs and error messages."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            user = parts.username or ""
            url = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    # key=value DSNs and query parameters: password=..., also inside the URL's query string.
    return re.sub(r"(password\s*=\s*)('[^']*'|[^\s&]+)", r"\1***", url, flags=re.IGNORECASE)
