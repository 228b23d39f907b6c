"""The archive's schema: numbered migrations, one list per dialect, kept side by side.

Migration N is `MIGRATIONS[dialect][N - 1]`; the `schema_version` table records which ran. Never
edit a released migration: append one. Both dialects keep the same tables and columns; only the
types differ (SQLite keeps times as integer microseconds since the epoch, UTC; PostgreSQL as
timestamptz).

Why two tables: `runs` stays narrow (what history queries scan), `run_texts` holds the large
texts (reply, log) and is read by primary key only for the rows a page returns, so a table of a
million runs with logs stays fast to query.
"""

from __future__ import annotations

_SQLITE_1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    job TEXT NOT NULL,
    job_uid TEXT NOT NULL,
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    trigger_type TEXT NOT NULL,
    result TEXT NOT NULL,
    scheduled_time INTEGER NOT NULL,
    start_time INTEGER,
    completion_time INTEGER,
    duration_seconds REAL,
    reason TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    pod_name TEXT NOT NULL DEFAULT '',
    node TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL DEFAULT '',
    gateway_run_id TEXT NOT NULL DEFAULT '',
    delivery TEXT NOT NULL DEFAULT '{}',
    reply_note TEXT NOT NULL DEFAULT '',
    UNIQUE (job_uid, run_id, attempt)
);
CREATE TABLE run_texts (
    run_pk INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    log_truncated INTEGER NOT NULL DEFAULT 0,
    reply TEXT NOT NULL DEFAULT '',
    log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_job_time ON runs (namespace, job, scheduled_time);
CREATE INDEX runs_result_time ON runs (result, scheduled_time);
CREATE INDEX runs_namespace_time ON runs (namespace, scheduled_time);
CREATE INDEX runs_time ON runs (scheduled_time);
CREATE INDEX runs_job_run ON runs (namespace, job, run_id)
"""

_POSTGRES_1 = """
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace TEXT NOT NULL,
    job TEXT NOT NULL,
    job_uid TEXT NOT NULL,
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    trigger_type TEXT NOT NULL,
    result TEXT NOT NULL,
    scheduled_time TIMESTAMPTZ NOT NULL,
    start_time TIMESTAMPTZ,
    completion_time TIMESTAMPTZ,
    duration_seconds DOUBLE PRECISION,
    reason TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    pod_name TEXT NOT NULL DEFAULT '',
    node TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL DEFAULT '',
    gateway_run_id TEXT NOT NULL DEFAULT '',
    delivery JSONB NOT NULL DEFAULT '{}',
    reply_note TEXT NOT NULL DEFAULT '',
    UNIQUE (job_uid, run_id, attempt)
);
CREATE TABLE run_texts (
    run_pk BIGINT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    log_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    reply TEXT NOT NULL DEFAULT '',
    log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_job_time ON runs (namespace, job, scheduled_time, id);
CREATE INDEX runs_result_time ON runs (result, scheduled_time, id);
CREATE INDEX runs_namespace_time ON runs (namespace, scheduled_time, id);
CREATE INDEX runs_time ON runs (scheduled_time, id);
CREATE INDEX runs_job_run ON runs (namespace, job, run_id)
"""

# 2: the console's aggregations (console/queries.py) read a namespace's runs in a time window
# grouped by job and result; this index covers them, so they never visit the table.
_CONSOLE_2 = """
CREATE INDEX runs_console ON runs (namespace, scheduled_time, job, run_id, attempt, result, duration_seconds)
"""

#: dialect -> migrations in order; migration N is index N - 1.
MIGRATIONS: dict[str, tuple[str, ...]] = {
    "sqlite": (_SQLITE_1, _CONSOLE_2),
    "postgres": (_POSTGRES_1, _CONSOLE_2),
}


def statements(script: str) -> list[str]:
    """The statements of a migration (no `;` inside literals in these scripts), run one by one in one transaction."""
    return [s.strip() for s in script.split(";") if s.strip()]
