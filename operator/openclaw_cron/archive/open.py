"""Choosing and opening an archive store from a URL: the one module that knows every driver."""

from __future__ import annotations

from .postgres import PostgresStore
from .sqlite import SqliteStore
from .store import Store, redact


def open_store(url: str) -> Store:
    """Open (and migrate) the store `url` names.

    `sqlite:///abs/path/file.db` (everything after `sqlite://` is the path; `sqlite://:memory:`
    is a private in-memory database), or a PostgreSQL DSN `postgresql://user:pw@host/db?...`.
    """
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if path in ("/:memory:", ""):
            path = ":memory:"
        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ValueError(f"archive store URL {redact(url)!r}: expected sqlite:///path/file.db or postgresql://...")
