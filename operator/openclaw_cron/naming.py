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


def run_id(job_name: str, scheduled: datetime) -> str:
    """Run identity: job name (shortened) + scheduled Unix time; also a label value (≤ 63)."""
    stamp = str(int(scheduled.timestamp()))
    return f"{_short(job_name, MAX_NAME - len(stamp) - 1)}-{stamp}"


def pod_name(job_name: str, scheduled: datetime, attempt: int) -> str:
    """Pod name for one attempt of one run: `<job>-<unix>` then `-<attempt>` for retries."""
    stamp = str(int(scheduled.timestamp()))
    suffix = stamp if attempt <= 1 else f"{stamp}-{attempt}"
    return f"{_short(job_name, MAX_NAME - len(suffix) - 1)}-{suffix}"


def idempotency_key(job_uid: str, scheduled: datetime, attempt: int) -> str:
    """Gateway Idempotency-Key: one scheduled run attempt never starts two gateway runs."""
    return f"ocj-{job_uid}-{int(scheduled.timestamp())}-{attempt}"


#: The prefix the gateway must allow (`hooks.allowedSessionKeyPrefixes`) for per-attempt keys.
SESSION_KEY_PREFIX = "hook:"


def session_key(job_uid: str, scheduled: datetime, attempt: int) -> str:
    """The agent turn's session key: fresh per attempt (a session keeps its context), lowercase
    (the gateway lowercases keys), and recomputable by the operator to read the reply back."""
    return f"{SESSION_KEY_PREFIX}{idempotency_key(job_uid, scheduled, attempt)}".lower()


def rfc3339(when: datetime) -> str:
    """UTC RFC 3339 with a Z, second precision, as Kubernetes writes times (naive means UTC)."""
    if when.tzinfo is not None and when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="seconds")[:19] + "Z"  # twice as fast as strftime, on every pass


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time written by `rfc3339` (or any ISO 8601 with offset)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
