"""Prometheus metrics of the operator, in a dedicated registry served on /metrics.

Every series name starts with ``openclaw_cron_``. Cardinality is bounded by design:
per-job series carry only ``namespace`` and ``job`` plus, where it matters, ``result``
(Succeeded|Failed|TimedOut|Skipped|Missed) and ``trigger`` (Schedule|Manual|CatchUp|Retry)
— both fixed enums. No run id, pod name, error text or time ever becomes a label.
``forget_job`` deletes a job's series when the resource is deleted, so churn of jobs
does not grow the scrape forever.

Operator-level series have their own small fixed label sets: ``kind`` (a reconcile error
category chosen by the operator, capped at ``MAX_ERROR_KINDS`` distinct values) and
``channel``/``outcome`` for notifications (channel names come from the operator's own
channel config; outcome is ok|error|dropped).

The schedule-lag histogram is labelled by ``namespace`` only: lag is a property of the
operator (event loop, API latency, global concurrency cap), not of one job, and a
per-job histogram would cost 14 series per job for little insight.
"""

from __future__ import annotations

import gc
import threading
import time
from importlib import metadata
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)
from prometheus_client.metrics import MetricWrapperBase

PREFIX = "openclaw_cron_"
#: Distinct reconcile-error ``kind`` values kept; later ones are counted as "other".
MAX_ERROR_KINDS = 40

# `_created` samples would double every counter/histogram series for no dashboard use.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
prometheus_client.ProcessCollector(registry=REGISTRY)
prometheus_client.PlatformCollector(registry=REGISTRY)
prometheus_client.GCCollector(registry=REGISTRY)

#: Seconds from a slot's due time to its Pod being created (0.05 s .. 5 min).
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: Run durations span seconds (wake events) to hours (long agent turns, batch commands).
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)

BUILD_INFO = Info(
    PREFIX + "build", "Operator build; always present while the operator serves metrics.", registry=REGISTRY
)
RUNS_STARTED = Counter(
    PREFIX + "runs_started",
    "Runs started (first attempt Pod created).",
    ["namespace", "job", "trigger"],
    registry=REGISTRY,
)
RUNS = Counter(
    PREFIX + "runs",
    "Runs finished, by final result (after retries).",
    ["namespace", "job", "result", "trigger"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    PREFIX + "run_duration_seconds",
    "Wall-clock duration of finished runs, all attempts included.",
    ["namespace", "job", "result"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    PREFIX + "schedule_lag_seconds",
    "Delay from a run's due time to its Pod being created.",
    ["namespace"],
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
CONSECUTIVE_FAILURES = Gauge(
    PREFIX + "job_consecutive_failures",
    "Failed runs in a row (status.consecutiveFailures).",
    ["namespace", "job"],
    registry=REGISTRY,
)
NEXT_RUN = Gauge(
    PREFIX + "job_next_run_timestamp_seconds",
    "Unix time of the job's next due run; absent when there is none (suspended, done).",
    ["namespace", "job"],
    registry=REGISTRY,
)
ACTIVE = Gauge(
    PREFIX + "job_active_runs",
    "Run Pods of the job currently running.",
    ["namespace", "job"],
    registry=REGISTRY,
)
WAITING = Gauge(
    PREFIX + "job_waiting_runs",
    "Runs of the job owed but not started (queued, retry delay, global cap).",
    ["namespace", "job"],
    registry=REGISTRY,
)
MISSED = Counter(
    PREFIX + "missed_runs",
    "Due slots that were not run (downtime, suspend, deadline passed).",
    ["namespace", "job"],
    registry=REGISTRY,
)
SKIPPED = Counter(
    PREFIX + "skipped_runs",
    "Due runs skipped by the concurrency policy (Forbid).",
    ["namespace", "job"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    PREFIX + "reconcile_errors",
    "Unexpected errors while reconciling a job, by error category.",
    ["namespace", "kind"],
    registry=REGISTRY,
)
RESYNC_CORRECTIONS = Counter(
    PREFIX + "resync_corrections",
    "Safety-net passes (not woken by any event) that changed something, by kind: started, recorded,"
    " status. Nonzero means an event that should have woken a job was missed.",
    ["kind"],
    registry=REGISTRY,
)
GLOBAL_WAITING = Gauge(
    PREFIX + "global_waiting_runs",
    "Runs waiting for a slot under the global max-concurrent-runs cap.",
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    PREFIX + "notifications",
    "Notification deliveries by channel and outcome (ok, error, dropped).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
API_ERRORS = Counter(
    PREFIX + "api_errors",
    "Failed Kubernetes API calls (each retry counts), by operation and HTTP code or error type.",
    ["operation", "code"],
    registry=REGISTRY,
)
JOBS = Gauge(
    PREFIX + "jobs",
    "OpenClawCronJobs the scheduler holds.",
    registry=REGISTRY,
)
POD_CREATES = Gauge(
    PREFIX + "pod_creates_in_flight",
    "Pod creates sent and not yet answered (a burst's width at the API server).",
    registry=REGISTRY,
)
POD_CREATE_LIMIT = Gauge(
    PREFIX + "pod_create_limit",
    "How many Pod creates may be in flight: grows while the API server answers within a second, halves when not.",
    registry=REGISTRY,
)
BOOKKEEPING_WAITING = Gauge(
    PREFIX + "bookkeeping_waiting_jobs",
    "Jobs whose status writes wait for a burst's Pod creates to go out first (at most 10 s).",
    registry=REGISTRY,
)
GC_PAUSE = Histogram(
    PREFIX + "gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector by generation: every run due during one waits.",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)

#: Metrics carrying ``namespace`` and ``job`` labels: what ``forget_job`` clears.
_PER_JOB: tuple[MetricWrapperBase, ...] = (
    RUNS_STARTED,
    RUNS,
    RUN_DURATION,
    CONSECUTIVE_FAILURES,
    NEXT_RUN,
    ACTIVE,
    WAITING,
    MISSED,
    SKIPPED,
)

_lock = threading.Lock()
_error_kinds: set[str] = set()
_servers: list[WSGIServer] = []


def set_build_info(version: str) -> None:
    """Record the operator version (the series doubles as an 'operator is up' signal)."""
    BUILD_INFO.info({"version": version})


def _package_version() -> str:
    try:
        return metadata.version("openclaw-cron-operator")
    except metadata.PackageNotFoundError:
        return "unknown"


set_build_info(_package_version())


def run_started(namespace: str, job: str, trigger: str) -> None:
    RUNS_STARTED.labels(namespace, job, trigger).inc()


def run_finished(namespace: str, job: str, result: str, trigger: str, duration_seconds: float | None) -> None:
    """Count the final result; runs that never started (Skipped, Missed) have no duration."""
    RUNS.labels(namespace, job, result, trigger).inc()
    if duration_seconds is not None and duration_seconds >= 0:
        RUN_DURATION.labels(namespace, job, result).observe(duration_seconds)


def schedule_lag(namespace: str, job: str, seconds: float) -> None:
    """Observe start lag; ``job`` is accepted for symmetry but not a label (see module doc)."""
    del job
    SCHEDULE_LAG.labels(namespace).observe(max(0.0, seconds))


def set_job_state(
    namespace: str,
    job: str,
    *,
    consecutive_failures: int,
    next_run_timestamp: float | None,
    active: int,
    waiting: int,
) -> None:
    """Mirror the job's status; a missing next run removes the series instead of exporting 0."""
    CONSECUTIVE_FAILURES.labels(namespace, job).set(consecutive_failures)
    ACTIVE.labels(namespace, job).set(active)
    WAITING.labels(namespace, job).set(waiting)
    if next_run_timestamp is None:
        NEXT_RUN.remove_by_labels({"namespace": namespace, "job": job})
    else:
        NEXT_RUN.labels(namespace, job).set(next_run_timestamp)


def forget_job(namespace: str, job: str) -> None:
    """Drop every series of a deleted job so deleted jobs do not linger in scrapes."""
    for metric in _PER_JOB:
        metric.remove_by_labels({"namespace": namespace, "job": job})


def missed(namespace: str, job: str, count: int) -> None:
    if count > 0:
        MISSED.labels(namespace, job).inc(count)


def skipped(namespace: str, job: str, count: int) -> None:
    if count > 0:
        SKIPPED.labels(namespace, job).inc(count)


def _bounded(kind: str) -> str:
    """`kind` as a label value; unexpected values beyond the cap fold into 'other'."""
    with _lock:
        if kind not in _error_kinds:
            if len(_error_kinds) >= MAX_ERROR_KINDS:
                return "other"
            _error_kinds.add(kind)
    return kind


def reconcile_error(namespace: str, kind: str) -> None:
    """Count an error by category (bounded labels)."""
    RECONCILE_ERRORS.labels(namespace, _bounded(kind)).inc()


def resync_correction(kind: str) -> None:
    """A safety-net pass corrected something (`kind`: started | recorded | status)."""
    RESYNC_CORRECTIONS.labels(_bounded(kind)).inc()


def api_error(operation: str, code: str) -> None:
    """Count a failed API call by HTTP code or error type (bounded labels)."""
    API_ERRORS.labels(operation, _bounded(code)).inc()


def jobs(count: int) -> None:
    JOBS.set(count)


def pod_creates(in_flight: int, limit: int) -> None:
    POD_CREATES.set(in_flight)
    POD_CREATE_LIMIT.set(limit)


def bookkeeping_waiting(count: int) -> None:
    BOOKKEEPING_WAITING.set(count)


def notification_sent(channel: str, outcome: str) -> None:
    NOTIFICATIONS.labels(channel, outcome).inc()


def global_waiting(count: int) -> None:
    GLOBAL_WAITING.set(count)


# The run archive's writer (archive/writer.py): no labels but a fixed `kind` on errors.
ARCHIVE_QUEUE = Gauge(
    PREFIX + "archive_queue_runs", "Attempts accepted by the archive writer, not yet stored.", registry=REGISTRY
)
ARCHIVE_QUEUE_BYTES = Gauge(
    PREFIX + "archive_queue_bytes", "Approximate bytes held by the archive writer's queue.", registry=REGISTRY
)
ARCHIVE_WRITTEN = Counter(PREFIX + "archive_written_runs", "Attempts written to the archive store.", registry=REGISTRY)
ARCHIVE_WRITE_ERRORS = Counter(
    PREFIX + "archive_write_errors",
    "Failed archive writes and purges (each retry counts), by kind: unavailable|error|invalid|purge.",
    ["kind"],
    registry=REGISTRY,
)
ARCHIVE_REFUSED = Counter(
    PREFIX + "archive_refused_runs",
    "Attempts the full archive queue refused (their Pods are kept until a later submit succeeds).",
    registry=REGISTRY,
)
ARCHIVE_PURGED = Counter(
    PREFIX + "archive_purged_runs", "Archived attempts deleted by retention (age or count per job).", registry=REGISTRY
)


def archive_queue(depth: int, size: int) -> None:
    ARCHIVE_QUEUE.set(depth)
    ARCHIVE_QUEUE_BYTES.set(max(size, 0))


def archive_written(count: int) -> None:
    ARCHIVE_WRITTEN.inc(count)


def archive_write_error(kind: str) -> None:
    ARCHIVE_WRITE_ERRORS.labels(kind).inc()


def archive_refused() -> None:
    ARCHIVE_REFUSED.inc()


def archive_purged(count: int) -> None:
    ARCHIVE_PURGED.inc(count)


def start_http_server(port: int, addr: str = "0.0.0.0") -> None:
    """Serve ``REGISTRY`` on http://addr:port/metrics from a daemon thread."""
    server, _thread = prometheus_client.start_http_server(port, addr=addr, registry=REGISTRY)
    _servers.append(server)


def stop_http_servers() -> None:
    """Stop servers started by ``start_http_server`` (tests, clean shutdown)."""
    while _servers:
        server = _servers.pop()
        server.shutdown()
        server.server_close()


_gc_started = [0.0]


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        GC_PAUSE.labels(generation=str(info["generation"])).observe(time.perf_counter() - _gc_started[0])


def watch_gc() -> None:
    """Time every collection into ``gc_pause_seconds`` (a few microseconds per collection)."""
    if _gc_callback not in gc.callbacks:
        gc.callbacks.append(_gc_callback)


def exported_names() -> dict[str, str]:
    """Family name → type of every metric in ``REGISTRY`` (used by the dashboard tests)."""
    families: dict[str, str] = {}
    for family in REGISTRY.collect():
        families[family.name] = family.type
    return families


def sample_names() -> set[str]:
    """Every sample name a scrape can contain (``_total``, ``_bucket``, ... included)."""
    suffixes: dict[str, tuple[str, ...]] = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for name, kind in exported_names().items():
        names.update(name + suffix for suffix in suffixes.get(kind, ("",)))
    return names
