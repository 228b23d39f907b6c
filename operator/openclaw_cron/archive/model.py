"""The archive's shared vocabulary: one archived attempt and one history query.

Frozen dataclasses (not pydantic) so the store, the writer, the capture and the API can pass
them between threads and tasks cheaply and without validation on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The results an archived attempt can have (as in `status.recentRuns[].result`).
RESULTS = ("Succeeded", "Failed", "TimedOut", "Skipped", "Missed")


@dataclass(frozen=True)
class RunEntry:
    """One attempt of one run, as archived: the status record plus what status cannot hold."""

    namespace: str
    job: str
    job_uid: str
    run_id: str
    attempt: int
    trigger: str
    result: str  # Succeeded|Failed|TimedOut|Skipped|Missed
    scheduled_time: datetime  # tz-aware UTC
    start_time: datetime | None = None
    completion_time: datetime | None = None
    duration_seconds: float | None = None
    reason: str = ""
    message: str = ""
    output: str = ""  # short excerpt as in recentRuns
    exit_code: int | None = None
    pod_name: str = ""
    node: str = ""
    image: str = ""
    gateway_run_id: str = ""
    #: status, delivered, deliveryAttempted, replyDisposition, error
    delivery: Mapping[str, Any] = field(default_factory=dict, hash=False)
    reply: str = ""  # the agent's reply text ("" when none)
    reply_note: str = ""  # why no reply was captured, when none
    log: str = ""  # bounded log tail of the run Pod
    log_truncated: bool = False

    def key(self) -> tuple[str, str, int]:
        """The idempotency key: the same attempt archived twice is one row."""
        return (self.job_uid, self.run_id, self.attempt)

    def approx_bytes(self) -> int:
        """A cheap upper-ish estimate of the memory this entry holds (the writer bounds its queue by it)."""
        texts = (self.reason, self.message, self.output, self.reply, self.reply_note, self.log)
        return 512 + sum(len(t) for t in texts) + sum(len(str(v)) for v in self.delivery.values())


@dataclass(frozen=True)
class Query:
    """A history query; newest first, paged by an opaque keyset cursor."""

    namespace: str | None = None
    job: str | None = None
    since: datetime | None = None  # on scheduled_time, [since, until)
    until: datetime | None = None
    result: str | None = None
    trigger: str | None = None
    limit: int = 100
    cursor: str | None = None  # opaque keyset cursor, newest first


#: Columns of a CSV export of runs (the API's `?format=csv` and the plugin's `-o csv`).
CSV_FIELDS = (
    "namespace",
    "job",
    "runId",
    "attempt",
    "trigger",
    "result",
    "scheduledTime",
    "startTime",
    "completionTime",
    "durationSeconds",
    "exitCode",
    "reason",
    "message",
    "podName",
    "node",
    "delivered",
    "replyDisposition",
)
