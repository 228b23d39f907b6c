"""Names, labels and keys shared by the operator, its run Pods and the runner.

Everything here is deterministic: the same job, scheduled instant and attempt always
give the same Pod name and idempotency key, which is what makes a restarted or second
operator replica unable to double a run (`AlreadyExists` means "already started").
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from .api import GROUP

MANAGED_BY = "openclaw-cron-operator"

LABEL_JOB = f"{GROUP}/job"
LABEL_RUN_ID = f"{GROUP}/run-id"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_TRIGGER = f"{GROUP}/trigger"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_SCHEDULED_TIME = f"{GROUP}/scheduled-time"
ANNOTATION_RUN_NOW = f"{GROUP}/run-now"
ANNOTATION_RESUME = f"{GROUP}/resume"  # a new value resumes a paused job (orchestration/pause.py)
ANNOTATION_BACKFILL = f"{GROUP}/backfill"  # a backfill request (orchestration/backfill.py)
ANNOTATION_JOB_NAME = f"{GROUP}/job-name"  # the full name when the label had to be shortened

#: Environment contract between a run Pod and `openclaw-cron-runner`.
ENV_GATEWAY_URL = "OPENCLAW_GATEWAY_URL"
ENV_HOOKS_TOKEN = "OPENCLAW_HOOKS_TOKEN"  # from a secretKeyRef, never a literal
ENV_REQUEST = "OPENCLAW_CRON_REQUEST"  # JSON, see runner.RunRequest
ENV_JOB = "OPENCLAW_CRON_JOB"  # namespace/name
ENV_RUN_ID = "OPENCLAW_CRON_RUN_ID"
ENV_ATTEMPT = "OPENCLAW_CRON_ATTEMPT"
ENV_IDEMPOTENCY_KEY = "OPENCLAW_CRON_IDEMPOTENCY_KEY"
ENV_TIMEOUT_SECONDS = "OPENCLAW_CRON_TIMEOUT_SECONDS"
ENV_RESULT_PATH = "OPENCLAW_CRON_RESULT_PATH"  # default /dev/termination-log
ENV_SESSION_KEY = "OPENCLAW_CRON_SESSION_KEY"  # agentTurn only; unset = the gateway picks a session

MAX_NAME = 63
_HASH_LEN = 8


def _short(name: str, room: int) -> str:
    """`name` cut to `room` chars; a hash suffix keeps long names unique."""
    if len(name) <= room:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LEN]
    return f"{name[: room - _HASH_LEN - 1].rstrip('-')}-{digest}"


def job_label(job_name: str) -> str:
    """Label value for the job (label values are limited to 63 characters)."""
    return _short(job_name, MAX_NAME)


#: A manual run's tag starts with this letter (a scheduled run id ends in digits only).
_TAG_PREFIX = "m"


def manual_tag(value: str) -> str:
    """The tag of the manual run answering run-now annotation `value`: `m` + a short hash of it.

    Deterministic per value (a restart computes the same Pod name, so it never doubles the run)
    and different per value (two values within one second are two runs).
    """
    return _TAG_PREFIX + hashlib.sha256(value.encode()).hexdigest()[: _HASH_LEN - 1]


def run_tag(run: str) -> str | None:
    """The manual tag a run id ends with, None for a scheduled (or dependency, backfill) run."""
    last = run.rpartition("-")[2]
    return last if last.startswith(_TAG_PREFIX) and len(last) == _HASH_LEN else None


def _stamp(scheduled: datetime, tag: str | None) -> str:
    stamp = str(int(scheduled.timestamp()))
    return f"{stamp}-{tag}" if tag else stamp


def run_id(job_name: str, scheduled: datetime, tag: str | None = None) -> str:
    """Run identity: job name (shortened) + scheduled Unix time (+ a manual run's tag); a label value (≤ 63)."""
    stamp = _stamp(scheduled, tag)
    return f"{_short(job_name, MAX_NAME - len(stamp) - 1)}-{stamp}"


def pod_name(job_name: str, scheduled: datetime, attempt: int, tag: str | None = None) -> str:
    """Pod name for one attempt of one run: `<job>-<unix>[-<tag>]` then `-<attempt>` for retries."""
    stamp = _stamp(scheduled, tag)
    suffix = stamp if attempt <= 1 else f"{stamp}-{attempt}"
    return f"{_short(job_name, MAX_NAME - len(suffix) - 1)}-{suffix}"


def idempotency_key(job_uid: str, scheduled: datetime, attempt: int, tag: str | None = None) -> str:
    """Gateway Idempotency-Key: one run attempt never starts two gateway runs."""
    return f"ocj-{job_uid}-{_stamp(scheduled, tag)}-{attempt}"


#: The prefix the gateway must allow (`hooks.allowedSessionKeyPrefixes`) for per-attempt keys.
SESSION_KEY_PREFIX = "hook:"


def session_key(job_uid: str, scheduled: datetime, attempt: int, tag: str | None = None) -> str:
    """The agent turn's session key: fresh per attempt (a session keeps its context), lowercase
    (the gateway lowercases keys), and recomputable by the operator to read the reply back."""
    return f"{SESSION_KEY_PREFIX}{idempotency_key(job_uid, scheduled, attempt, tag)}".lower()


def rfc3339(when: datetime) -> str:
    """UTC RFC 3339 with a Z, second precision, as Kubernetes writes times (naive means UTC)."""
    if when.tzinfo is not None and when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="seconds")[:19] + "Z"  # twice as fast as strftime, on every pass


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time written by `rfc3339` (or any ISO 8601 with offset)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
