"""The scratch state of one pass (`Work`) and its bookkeeping: a run is started, counted and recorded once."""

from __future__ import annotations

from datetime import datetime, timedelta

from .. import naming as n
from .. import schedule as sched
from ..api import (
    ActiveRun,
    BackfillStatus,
    OpenClawCronJobSpec,
    OpenClawCronJobStatus,
    PauseStatus,
    PendingRun,
    RunRecord,
)
from ..job import JobView
from ..notify.policy import decide
from ..pods import Start
from ..validation import FieldError
from .plan import Context, Event, Plan


def ceil_second(when: datetime) -> datetime:
    """`when` rounded up to a whole second (status times have second precision)."""
    return when if when.microsecond == 0 else when.replace(microsecond=0) + timedelta(seconds=1)


def retry_delay(spec: OpenClawCronJobSpec, attempt: int) -> timedelta:
    """Delay before attempt `attempt + 1`: Fixed, or Exponential capped by maxDelaySeconds."""
    r = spec.retry
    seconds = r.delay_seconds if r.backoff == "Fixed" else r.delay_seconds * 2 ** (attempt - 1)
    if r.max_delay_seconds is not None:
        seconds = min(seconds, r.max_delay_seconds)
    return timedelta(seconds=seconds)


class Work:
    """Mutable scratch state for one reconcile pass."""

    def __init__(self, job: JobView, ctx: Context, status: OpenClawCronJobStatus) -> None:
        self.job = job
        self.ctx = ctx
        self.now = ctx.now
        # one entry per (run, attempt): a status written with a duplicate would settle it twice
        self.active: list[ActiveRun] = list({(a.run_id, a.attempt): a for a in status.active}.values())
        self.pending: list[PendingRun] = list(status.pending)
        self.records: list[RunRecord] = []
        self.counters = status.counters.model_dump()
        self.consecutive = status.consecutive_failures
        self.last_result = status.last_run_result
        self.last_success = status.last_successful_time
        self.last_schedule = status.last_schedule_time
        self.last_slot = n.parse_time(status.last_slot) if status.last_slot else None
        self.last_manual = status.last_manual_run
        self.alerting = status.alerting
        self.plan = Plan(status={})
        self.free = ctx.global_free
        #: Runs on record (history and missed slots): never started or counted again.
        self.recorded: set[str] = {r.run_id for r in status.recent_runs}
        self.status = status
        # what the steps of reconcile() find, for the steps after them
        self.spec: OpenClawCronJobSpec | None = None
        self.errors: list[FieldError] = []
        self.valid = False
        self.suspended = False
        self.clock: sched.JobClock | None = None
        self.described = status.schedule
        self.completed = False
        self.paused: PauseStatus | None = status.paused
        self.pause_message = ""
        self.last_resume = status.last_resume
        self.failures_at_resume = status.failures_at_resume
        self.backfill: BackfillStatus | None = status.backfill
        self.next_run: datetime | None = None
        self.escalation_wake: datetime | None = None

    @property
    def held(self) -> bool:
        """Suspended or paused: no scheduled runs start (manual runs and retries still do)."""
        return self.suspended or self.paused is not None

    # -- bookkeeping ----------------------------------------------------------------
    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(type_, reason, message))

    def finish(self, rec: RunRecord, spec: OpenClawCronJobSpec | None) -> None:
        if rec.run_id in self.recorded:
            return  # already counted: a run is recorded once, whichever path finds it
        self.recorded.add(rec.run_id)
        self.records.append(rec)
        self.plan.finished.append(rec)
        c = self.counters
        if rec.result == "Succeeded":
            c["succeeded"] += 1
            self.consecutive = 0
            self.last_success = rec.completion_time
            self.event("Normal", "Succeeded", f"run {rec.run_id} succeeded after {rec.attempts} attempt(s)")
        elif rec.result == "Skipped":
            c["skipped"] += 1
            self.plan.skipped += 1
            self.event("Normal", "Skipped", f"run {rec.run_id} skipped: {rec.message}")
        else:
            c["failed"] += 1
            self.consecutive += 1
            self.event(
                "Warning",
                rec.result,
                f"run {rec.run_id} {rec.result.lower()}: {rec.reason}: {rec.message or ''}".rstrip(": "),
            )
        if rec.result != "Skipped":
            self.last_result = rec.result
            kinds, self.alerting = decide(spec.notify if spec else None, rec.result, self.consecutive, self.alerting)
            self.plan.notifications.extend((k, rec) for k in kinds)

    def known(self, run_id: str, attempt: int) -> bool:
        """The attempt is active already, or its run is on record (bookkeeping is by run + attempt)."""
        return run_id in self.recorded or any((a.run_id, a.attempt) == (run_id, attempt) for a in self.active)

    def wait(self, st: Start, reason: str, not_before: datetime, since: datetime | None = None) -> None:
        """Keep a run pending until `not_before` (the global cap, the queue, its dependencies)."""
        self.pending.append(
            PendingRun(
                run_id=st.run_id,
                trigger=st.trigger,
                scheduled_time=n.rfc3339(st.scheduled),
                attempt=st.attempt,
                not_before=n.rfc3339(not_before),
                reason=reason,
                manual_value=st.manual_value,
                since=n.rfc3339(since) if since else None,
            )
        )

    def start(self, st: Start, spec: OpenClawCronJobSpec) -> bool:
        """Start an attempt if the global cap allows; otherwise it waits as pending."""
        if self.known(st.run_id, st.attempt):
            return False  # the same attempt twice is one attempt (counted once)
        if self.free is not None and self.free <= 0:
            self.wait(st, "GlobalCap", self.now)
            return False
        if self.free is not None:
            self.free -= 1
        self.plan.starts.append(st)
        pod = st.pod_name(self.job.ref.name)
        self.active.append(
            ActiveRun(
                run_id=st.run_id,
                pod_name=pod,
                attempt=st.attempt,
                trigger=st.trigger,
                scheduled_time=n.rfc3339(st.scheduled),
                start_time=n.rfc3339(self.now),
            )
        )
        if st.attempt == 1:
            self.counters["runs"] += 1
            self.last_schedule = n.rfc3339(st.scheduled)
        # the Started event is emitted by the scheduler once the Pod really exists
        return True
