"""The reconciler: one job's world (resource + owned Pods + clock) → a plan.

Pure: no API calls, no clock reads. The scheduler (`scheduler/`) feeds it the live
resource, the run Pods from kopf's index and `now`, then applies the plan in a safe order:
create Pods → patch status → delete Pods → events. Every step is idempotent, so an
operator that stops anywhere in between finds the same world on restart:

- a Pod created but not yet in status is adopted (it is newer than `lastSlot`, or answers
  a pending retry or the current run-now value);
- a finished Pod still listed in `status.active` is recorded;
- Pods are pruned only after the status that records them was written.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from . import naming as n
from . import schedule as sched
from .api import (
    ActiveRun,
    BackfillStatus,
    Condition,
    Counters,
    OpenClawCronJobSpec,
    OpenClawCronJobStatus,
    PauseStatus,
    PendingRun,
    RunRecord,
    State,
    Trigger,
)
from .job import JobView
from .notify.message import Notification
from .notify.policy import decide
from .orchestration import backfill as bf
from .orchestration import conditions as cond
from .orchestration import dependencies as deps
from .orchestration import escalation, pause
from .orchestration.inputs import OrchestrationInputs
from .orchestration.verdict import Verdict
from .pods import PodView, Start
from .settings import Settings
from .status import MAX_MESSAGE_BYTES, Outcome, pod_outcome, record, set_condition, truncate
from .validation import FieldError, validate

#: Queue policy keeps at most this many waiting runs; later ones are skipped.
MAX_QUEUED = 10
#: A Running Pod this long past its deadline is ended by the operator (no kubelet enforced it).
DEADLINE_GRACE = timedelta(seconds=60)
DEFAULT_ALERT_THRESHOLD = 3
#: A slot whose condition inputs were not read yet waits this long at most (then it is Skipped).
UNCHECKED_WAIT = timedelta(seconds=60)
#: Backfill with concurrencyPolicy Allow starts at most this many runs per pass.
BACKFILL_BURST = 10
#: A slot that came due before its ConfigMap/Secret/HTTP conditions were read waits (Waiting) for
#: a pass that reads them: that pass comes at once, not at the wait's end (docs/wakes.md).
NOT_READ_RECHECK = timedelta(milliseconds=100)


@dataclass(frozen=True)
class Context:
    now: datetime
    settings: Settings
    #: Run Pods this job may still start under the global cap; None = unlimited.
    global_free: int | None = None
    #: Problems found outside the spec itself (e.g. the token Secret is missing).
    extra_errors: tuple[FieldError, ...] = ()
    #: Active Pods confirmed gone from the API (not just late in the watch stream).
    gone: frozenset[str] = frozenset()
    #: Pods of active runs that the API refused to create (pod name → the API's words).
    refused: Mapping[str, str] = field(default_factory=dict)
    #: Other jobs' status, ConfigMap/Secret keys and HTTP answers (orchestration.gather_inputs);
    #: None = not gathered: jobs without dependsOn or I/O conditions do not need it.
    orchestration: OrchestrationInputs | None = None
    #: Pods this operator created (or found existing at create) whose status write has not
    #: landed yet (held back, or lost to a conflict): adopted whatever their trigger.
    unrecorded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    status: dict[str, Any]
    starts: list[Start] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)  # (pod name, why)
    events: list[Event] = field(default_factory=list)
    finished: list[RunRecord] = field(default_factory=list)
    notifications: list[tuple[str, RunRecord]] = field(default_factory=list)  # (kind, record)
    wake_at: datetime | None = None
    delete_job: bool = False
    missed: int = 0
    skipped: int = 0
    spec: OpenClawCronJobSpec | None = None
    #: Ready-made messages to their own channels (escalation levels, resolved): submit as they are.
    messages: list[Notification] = field(default_factory=list)
    #: `wake_at` is only the safety-net resync (nothing else asked for a look before it).
    resync: bool = False


@functools.lru_cache(maxsize=4096)
def _checked_spec(
    spec_json: str,
    default_tz: str,
    created: datetime,
    name: str | None = None,
    hosts: tuple[str, ...] = (),
    graph: tuple[tuple[str, tuple[str, ...]], ...] | None = None,
) -> tuple[OpenClawCronJobSpec | None, tuple[FieldError, ...]]:
    """Parse and validate a spec once per distinct (spec, zone, creation time), not every pass.

    Validation reads the clock only for resources not yet created, so with `created` given
    the result depends on these arguments alone. The models are frozen, so sharing is safe.
    """
    raw = json.loads(spec_json)
    errors = validate(
        raw,
        default_tz=default_tz,
        created=created,
        name=name,
        namespace_jobs=dict(graph) if graph is not None else None,
        allowed_http_hosts=hosts,
    )
    return parse_spec(raw), tuple(errors)


def parse_spec(raw: dict[str, Any]) -> OpenClawCronJobSpec | None:
    try:
        return OpenClawCronJobSpec.model_validate(raw)
    except ValidationError:
        return None


def parse_status(raw: dict[str, Any]) -> OpenClawCronJobStatus:
    """Read our own status back; a status we cannot read starts over rather than crash."""
    try:
        return OpenClawCronJobStatus.model_validate(raw or {})
    except ValidationError:
        return OpenClawCronJobStatus()


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


class _Work:
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

    def start(self, st: Start, spec: OpenClawCronJobSpec) -> bool:
        """Start an attempt if the global cap allows; otherwise it waits as pending."""
        if self.known(st.run_id, st.attempt):
            return False  # the same attempt twice is one attempt (counted once)
        if self.free is not None and self.free <= 0:
            self.pending.append(
                PendingRun(
                    run_id=st.run_id,
                    trigger=st.trigger,
                    scheduled_time=n.rfc3339(st.scheduled),
                    attempt=st.attempt,
                    not_before=n.rfc3339(self.now),
                    reason="GlobalCap",
                    manual_value=st.manual_value,
                )
            )
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


def _adopt(w: _Work, pods: list[PodView]) -> None:
    """Take over Pods that exist but are not in status (the operator stopped after creating them,
    its status write was held back or lost to a conflict)."""
    known = {(a.run_id, a.attempt) for a in w.active}
    for pod in sorted(pods, key=lambda p: (p.scheduled, p.attempt)):
        key = (pod.run_id, pod.attempt)
        if key in known or pod.deleting or pod.run_id in w.recorded:
            continue
        pend = next((p for p in w.pending if (p.run_id, p.attempt) == key), None)
        new_slot = (
            pod.trigger in ("Schedule", "CatchUp", "Dependency")
            and pod.attempt == 1
            and (w.last_slot is None or pod.scheduled > w.last_slot)
        )
        # only the run answering the current annotation value can be unrecorded; older manual
        # Pods kept for history answer older values and were recorded when they finished
        new_manual = pod.trigger == "Manual" and pod.manual_value == w.job.run_now and pod.manual_value != w.last_manual
        # what this operator started and has not written yet (any trigger; e.g. a manual run whose
        # write met the conflict of the next run-now value)
        ours = pod.name in w.ctx.unrecorded and not any(p.run_id == pod.run_id for p in w.pending)
        if not (pend or new_slot or new_manual or ours):
            continue  # an already recorded run kept for history
        if pend:
            w.pending.remove(pend)
        if new_slot:
            w.last_slot = pod.scheduled
        if new_manual or (ours and pod.trigger == "Manual" and pod.manual_value == w.job.run_now):
            w.last_manual = pod.manual_value
        if pod.attempt == 1:
            w.counters["runs"] += 1
            w.last_schedule = max(w.last_schedule or "", n.rfc3339(pod.scheduled))
        w.active.append(
            ActiveRun(
                run_id=pod.run_id,
                pod_name=pod.name,
                attempt=pod.attempt,
                trigger=pod.trigger,
                scheduled_time=n.rfc3339(pod.scheduled),
                start_time=n.rfc3339(pod.created or w.now),
            )
        )
        known.add(key)


def _follow(w: _Work, pods: dict[tuple[str, int], PodView], spec: OpenClawCronJobSpec | None) -> None:
    """Settle every active attempt whose Pod finished, vanished, never started or overran."""
    settings = w.ctx.settings
    runner = spec is None or spec.payload.kind != "command"
    for act in list(w.active):
        pod = pods.get((act.run_id, act.attempt))
        outcome: Outcome | None = None
        if pod is None:
            if act.pod_name in w.ctx.refused:
                why = f"the API refused the pod: {w.ctx.refused[act.pod_name]}"
                outcome = Outcome("Failed", "PodCreateFailed", truncate(why, MAX_MESSAGE_BYTES), retryable=False)
            elif act.pod_name in w.ctx.gone:
                outcome = Outcome("Failed", "PodDeleted", f"pod {act.pod_name} was deleted before it finished")
        elif pod.finished:
            outcome = pod_outcome(pod, runner=runner)
        elif pod.deleting:
            continue  # wait until it is gone or reports a final phase
        elif (
            pod.phase == "Pending"
            and pod.created
            and w.now - pod.created > timedelta(seconds=settings.start_timeout_seconds)
        ):
            why = pod.waiting_reason or "StartTimeout"
            detail = pod.waiting_message or f"pod did not start within {settings.start_timeout_seconds}s"
            outcome = Outcome("Failed", why, truncate(f"pod {pod.name} stuck Pending: {why}: {detail}"))
            w.plan.deletes.append((pod.name, why))
        elif (
            spec
            and pod.phase == "Running"
            and pod.start_time
            and (w.now - pod.start_time > timedelta(seconds=spec.timeout_seconds) + DEADLINE_GRACE)
        ):
            outcome = Outcome(
                "TimedOut", "DeadlineExceeded", f"pod {pod.name} ran past timeoutSeconds ({spec.timeout_seconds}s)"
            )
            w.plan.deletes.append((pod.name, "DeadlineExceeded"))
        if outcome is None:
            continue
        w.active.remove(act)
        _settle(w, act, outcome, spec, pod)


def _settle(w: _Work, act: ActiveRun, outcome: Outcome, spec: OpenClawCronJobSpec | None, pod: PodView | None) -> None:
    """An attempt ended: retry it after the delay, or record the run."""
    scheduled = n.parse_time(act.scheduled_time)
    if outcome.result != "Succeeded" and outcome.retryable and spec is not None and act.attempt <= spec.retry.limit:
        delay = retry_delay(spec, act.attempt)
        w.pending.append(
            PendingRun(
                run_id=act.run_id,
                trigger=act.trigger,
                scheduled_time=act.scheduled_time,
                attempt=act.attempt + 1,
                not_before=n.rfc3339(ceil_second(w.now + delay)),
                reason="Retry",
            )
        )
        w.event(
            "Warning",
            "Retrying",
            f"run {act.run_id} attempt {act.attempt} {outcome.result.lower()}"
            f" ({outcome.reason}); attempt {act.attempt + 1} in {int(delay.total_seconds())}s",
        )
        return
    started = pod.start_time if pod and pod.start_time else n.parse_time(act.start_time) if act.start_time else None
    rec = record(
        run_id=act.run_id,
        trigger=act.trigger,
        scheduled=scheduled,
        start=started,
        attempts=act.attempt,
        outcome=outcome,
        pod_name=act.pod_name,
        now=w.now,
    )
    w.finish(rec, spec)


def _skip(
    w: _Work,
    run_id: str,
    trigger: Trigger,
    scheduled: datetime,
    reason: str,
    message: str,
    spec: OpenClawCronJobSpec | None,
) -> None:
    w.finish(
        RunRecord(
            run_id=run_id,
            trigger=trigger,
            scheduled_time=n.rfc3339(scheduled),
            attempts=0,
            result="Skipped",
            reason=reason,
            message=message,
        ),
        spec,
    )


def _replace_active(w: _Work, spec: OpenClawCronJobSpec, by: str) -> None:
    for act in list(w.active):
        w.active.remove(act)
        w.plan.deletes.append((act.pod_name, "Replaced"))
        _settle(
            w,
            act,
            Outcome("Failed", "Replaced", f"replaced by run {by} (concurrencyPolicy Replace)", False),
            spec,
            None,
        )


def _admit(w: _Work, spec: OpenClawCronJobSpec, st: Start) -> None:
    """Apply concurrencyPolicy to a new run (scheduled, catch-up or manual)."""
    if w.known(st.run_id, st.attempt):
        return  # already running or on record: not a new run
    policy = spec.concurrency_policy
    busy = bool(w.active)
    if not busy or policy == "Allow":
        w.start(st, spec)
    elif policy == "Replace":
        _replace_active(w, spec, st.run_id)
        w.start(st, spec)
    elif policy == "Queue" or st.trigger == "Manual":
        queued = [p for p in w.pending if p.reason == "Queued"]
        if len(queued) >= MAX_QUEUED:
            _skip(w, st.run_id, st.trigger, st.scheduled, "QueueFull", f"{MAX_QUEUED} runs already queued", spec)
        else:
            w.pending.append(
                PendingRun(
                    run_id=st.run_id,
                    trigger=st.trigger,
                    scheduled_time=n.rfc3339(st.scheduled),
                    attempt=1,
                    not_before=n.rfc3339(st.scheduled),
                    reason="Queued",
                    manual_value=st.manual_value,
                )
            )
    else:  # Forbid
        running = ", ".join(a.run_id for a in w.active)
        _skip(
            w,
            st.run_id,
            st.trigger,
            st.scheduled,
            "ConcurrencyForbid",
            f"run {running} is still active (concurrencyPolicy Forbid)",
            spec,
        )


def _drain_pending(w: _Work, spec: OpenClawCronJobSpec, suspended: bool) -> None:
    """Start retries whose delay passed and queued runs whose turn came."""
    for p in sorted(w.pending, key=lambda p: (p.not_before, p.scheduled_time)):
        if n.parse_time(p.not_before) > w.now:
            continue
        is_retry = p.attempt > 1
        if not is_retry and (w.active and spec.concurrency_policy != "Allow"):
            continue  # wait for the running one
        if not is_retry and suspended and p.trigger != "Manual":
            continue
        if p.reason == "Waiting":
            continue  # dependencies/conditions decide (_waiting)
        if w.free is not None and w.free <= 0:
            break
        w.pending.remove(p)
        w.start(
            Start(
                run_id=p.run_id,
                scheduled=n.parse_time(p.scheduled_time),
                attempt=p.attempt,
                trigger=p.trigger,
                manual_value=p.manual_value,
            ),
            spec,
        )


def _due(w: _Work, spec: OpenClawCronJobSpec, clock: sched.JobClock, schedule_changed: bool) -> None:
    """Run, skip or count as missed the slots that came due since the last one handled."""
    s = clock.schedule
    since = w.last_slot or w.job.created
    if schedule_changed and w.last_slot is not None:
        since = max(since, w.now)  # an edited schedule starts afresh: no catch-up storm
    decision = sched.catch_up(clock, since, w.now, s.starting_deadline_seconds)
    if decision.missed:
        w.counters["missed"] += decision.missed
        w.plan.missed += decision.missed
        last = decision.last_missed
        w.event(
            "Warning",
            "Missed",
            f"{decision.missed} scheduled run(s) missed"
            f" (latest {n.rfc3339(last) if last else 'unknown'}; catchUp {s.catch_up})",
        )
        if last is not None:
            w.records.append(
                RunRecord(
                    run_id=n.run_id(w.job.ref.name, last),
                    trigger="CatchUp",
                    scheduled_time=n.rfc3339(last),
                    attempts=0,
                    result="Missed",
                    reason="Missed",
                    message=f"{decision.missed} slot(s) not run (catchUp {s.catch_up},"
                    f" startingDeadlineSeconds {s.starting_deadline_seconds})",
                )
            )
        w.last_slot = max(w.last_slot or since, last or since)
    for slot, trigger in decision.run:
        previous = w.last_slot if w.last_slot is not None and w.last_slot < slot else w.job.created
        w.last_slot = max(w.last_slot or slot, slot)
        _gate(
            w, spec, Start(run_id=n.run_id(w.job.ref.name, slot), scheduled=slot, attempt=1, trigger=trigger), previous
        )


# -- orchestration (DESIGN §9; the rules are in orchestration/) ---------------------------


def _tz(spec: OpenClawCronJobSpec, default_tz: str) -> Any:
    return sched.zone(spec.schedule.tz if spec.schedule else None, default_tz)


def _verdict(w: _Work, spec: OpenClawCronJobSpec, slot: datetime, since: datetime | None) -> tuple[str, Verdict]:
    """(Skipped reason, verdict) of a slot: conditions first, then dependencies."""
    inputs = w.ctx.orchestration
    if spec.conditions:
        v = cond.evaluate(spec.conditions, slot, _tz(spec, w.ctx.settings.default_tz), inputs)
        if not v.met:
            return "ConditionNotMet", v
    if spec.depends_on is not None:
        start = deps.window_start(spec.depends_on, slot, since)
        d = deps.evaluate(spec.depends_on, start, w.now, inputs.jobs if inputs is not None else None)
        if not d.verdict.met:
            return "DependencyNotMet", d.verdict
    return "", Verdict(True)


def _gate(w: _Work, spec: OpenClawCronJobSpec, st: Start, since: datetime | None) -> None:
    """A scheduled slot runs when its conditions and dependencies are met, waits, or is Skipped."""
    if spec.depends_on is None and not spec.conditions:
        _admit(w, spec, st)
        return
    reason, v = _verdict(w, spec, st.scheduled, since)
    if v.met:
        _admit(w, spec, st)
        return
    wait = timedelta(seconds=spec.depends_on.wait_seconds) if spec.depends_on else timedelta(0)
    if v.unknown:
        wait = max(wait, UNCHECKED_WAIT)
    if v.final or st.scheduled + wait <= w.now:
        _skip(w, st.run_id, st.trigger, st.scheduled, reason, v.message, spec)
        return
    w.pending.append(
        PendingRun(
            run_id=st.run_id,
            trigger=st.trigger,
            scheduled_time=n.rfc3339(st.scheduled),
            attempt=1,
            not_before=n.rfc3339(ceil_second(st.scheduled + wait)),
            reason="Waiting",
            since=n.rfc3339(since) if since else None,
        )
    )


def _waiting(w: _Work, spec: OpenClawCronJobSpec, held: bool) -> None:
    """Slots waiting for dependencies: run once met, Skipped at the deadline (or when it cannot change)."""
    for p in [p for p in w.pending if p.reason == "Waiting"]:
        slot = n.parse_time(p.scheduled_time)
        since = n.parse_time(p.since) if p.since else None
        reason, v = _verdict(w, spec, slot, since)
        deadline = n.parse_time(p.not_before)
        if v.met and not held:
            w.pending.remove(p)
            _admit(w, spec, Start(run_id=p.run_id, scheduled=slot, attempt=1, trigger=p.trigger))
        elif not v.met and (v.final or deadline <= w.now):
            w.pending.remove(p)
            waited = int((w.now - slot).total_seconds())
            _skip(w, p.run_id, p.trigger, slot, reason, f"{v.message} (waited {waited}s)", spec)


def _condition_rechecks(w: _Work, spec: OpenClawCronJobSpec | None) -> list[datetime]:
    """A slot waiting only because its ConfigMap/Secret/HTTP conditions were not read yet: the next
    pass reads them (io_due: a slot waits), so it comes now. Once read they are final for the slot."""
    if spec is None or not any(c.expression is None for c in spec.conditions or ()):
        return []
    inputs = w.ctx.orchestration
    if inputs is not None and inputs.checked:
        return []
    return [w.now + NOT_READ_RECHECK] if any(p.reason == "Waiting" for p in w.pending) else []


def _dependency_trigger(w: _Work, spec: OpenClawCronJobSpec) -> None:
    """A job without a schedule runs once per satisfaction of its dependencies (trigger Dependency)."""
    dep = spec.depends_on
    inputs = w.ctx.orchestration
    if dep is None or inputs is None:
        return
    since = w.last_slot or w.job.created
    found = deps.evaluate(dep, since, w.now, inputs.jobs)
    if not found.verdict.met or found.satisfied_at is None or found.satisfied_at <= since:
        return
    slot = ceil_second(found.satisfied_at)
    w.last_slot = slot
    st = Start(run_id=n.run_id(w.job.ref.name, slot), scheduled=slot, attempt=1, trigger="Dependency")
    _gate(w, spec.model_copy(update={"depends_on": None}), st, since)


def _backfill(w: _Work, spec: OpenClawCronJobSpec, clock: sched.JobClock | None, state: Any) -> Any:
    """Start the next slots of the backfill request (one at a time unless concurrencyPolicy Allow)."""
    text = w.job.backfill
    if text:
        try:
            req: bf.BackfillRequest | None = bf.parse_request(text, w.now)
        except bf.BackfillError as exc:
            req = None
            rid = bf.request_id(text)
            if state is None or state.id != rid:
                state = bf.refused(rid, str(exc))
                w.event("Warning", "BackfillRefused", str(exc))
        if req is not None and (state is None or state.id != req.id):
            state = bf.begin(clock, req)
            if state.state == "Refused":
                w.event("Warning", "BackfillRefused", state.message or "refused")
            else:
                w.event(
                    "Normal", "Backfill", f"backfill {req.id}: {state.total} slot(s) from {state.from_} to {state.to}"
                )
    if state is None or state.state != "Running" or clock is None:
        return state
    allow = spec.concurrency_policy == "Allow"
    last_schedule = w.last_schedule
    for _ in range(BACKFILL_BURST if allow else 1):
        if state.next_slot is None or (w.active and not allow) or (w.free is not None and w.free <= 0):
            break
        slot = n.parse_time(state.next_slot)
        w.start(Start(run_id=n.run_id(w.job.ref.name, slot), scheduled=slot, attempt=1, trigger="Backfill"), spec)
        state = bf.advance(clock, state)
    w.last_schedule = max(last_schedule or "", w.last_schedule or "") or None
    if state.state == "Completed":
        w.event("Normal", "BackfillCompleted", f"backfill {state.id}: {state.started} run(s) started")
    return state


def _escalate(w: _Work, spec: OpenClawCronJobSpec | None, state: Any, threshold: int) -> tuple[Any, datetime | None]:
    """Escalation levels while the alert lasts, one resolved message after (orchestration.escalation)."""
    notify_spec = spec.notify if spec else None
    step = escalation.step(notify_spec, state, failing=w.consecutive >= threshold, now=w.now)
    for m in step.messages:
        kind = "alert" if m.kind == "escalation" else "recovery"
        reason = (
            f"escalation level {m.level}" if m.kind == "escalation" else f"resolved after escalation level {m.level}"
        )
        w.plan.messages.append(
            Notification(
                channels=m.channels,
                kind=kind,
                job=w.job.ref.name,
                namespace=w.job.ref.namespace,
                context={"consecutiveFailures": w.consecutive, "reason": reason},
                template=notify_spec.template if notify_spec else None,
            )
        )
        w.event("Warning" if m.kind == "escalation" else "Normal", "Escalation", f"{reason}: {', '.join(m.channels)}")
    return step.state, step.wake_at


def _prune(w: _Work, pods: list[PodView], spec: OpenClawCronJobSpec | None) -> None:
    """Delete finished Pods beyond the history limits (newest kept)."""
    hist = spec.history if spec else None
    keep_ok = hist.successful_pods_limit if hist else 3
    keep_failed = hist.failed_pods_limit if hist else 1
    active = {a.pod_name for a in w.active}
    deleting = {name for name, _ in w.plan.deletes}
    done = [p for p in pods if p.finished and not p.deleting and p.name not in active and p.name not in deleting]
    done.sort(key=lambda p: (p.scheduled, p.attempt), reverse=True)
    ok = [p for p in done if p.phase == "Succeeded"]
    failed = [p for p in done if p.phase != "Succeeded"]
    for p in ok[keep_ok:] + failed[keep_failed:]:
        w.plan.deletes.append((p.name, "HistoryLimit"))


def reconcile(job: JobView, pods: list[PodView], ctx: Context) -> Plan:
    """Decide what to start, stop, record and when to look again: the steps, in the order they run."""
    w = _Work(job, ctx, parse_status(job.status))
    _check_spec(w)  # 1. the spec, parsed and validated (cached per distinct spec)
    mine = [p for p in pods if p.owner_uid == job.ref.uid]
    _adopt(w, mine)  # 2. Pods that exist but are not on record yet
    _follow(w, {(p.run_id, p.attempt): p for p in mine}, w.spec)  # 3. attempts that ended
    _pause_or_resume(w)  # 4. the failure policy
    _start_runs(w)  # 5. retries, queued, due, dependency-triggered, backfill and manual runs
    _delete_after_run(w)  # 6. deleteAfterRun
    _prune(w, mine, w.spec)  # 7. finished Pods beyond the history limits
    _new_status(w)  # 8. state, conditions, escalation: the new status
    _next_look(w, mine)  # 9. when to look again
    return w.plan


def _check_spec(w: _Work) -> None:
    """Parse and validate the spec (with the namespace's dependency graph when it has dependsOn)."""
    job, ctx = w.job, w.ctx
    inputs = ctx.orchestration
    graph = (
        tuple(sorted(inputs.graph.items()))
        if inputs is not None and inputs.jobs and isinstance(job.spec.get("dependsOn"), dict)
        else None
    )
    w.spec, spec_errors = _checked_spec(
        json.dumps(job.spec, sort_keys=True),
        ctx.settings.default_tz,
        job.created,
        job.ref.name,
        tuple(ctx.settings.http_condition_hosts),
        graph,
    )
    w.errors = [*spec_errors, *ctx.extra_errors]
    w.valid = w.spec is not None and not w.errors
    w.suspended = bool(w.spec and w.spec.suspend)


def _pause_or_resume(w: _Work) -> None:
    """Pause after too many consecutive failures, resume on a new resume annotation (orchestration.pause)."""
    spec, status = w.spec, w.status
    if spec is None or not w.valid:
        return
    decision = pause.decide(
        spec.failure_policy,
        consecutive=w.consecutive,
        paused=status.paused,
        failures_at_resume=status.failures_at_resume,
        generation=w.job.generation,
        resume=w.job.resume,
        last_resume=status.last_resume,
        now=w.now,
    )
    w.paused, w.last_resume, w.failures_at_resume = decision.paused, decision.last_resume, decision.failures_at_resume
    if decision.change == "Paused":
        w.pause_message = decision.message
        w.event("Warning", "Paused", decision.message)
    elif decision.change == "Resumed":
        w.event("Normal", "Resumed", decision.message)


def _start_runs(w: _Work) -> None:
    """Every way a run starts, in order: waiting and pending ones, due slots, backfill, run-now."""
    spec, job = w.spec, w.job
    if spec is None or not w.valid:
        if job.run_now and job.run_now != w.last_manual:  # a run-now on an invalid spec is Skipped
            w.last_manual = job.run_now
            when = w.now.replace(microsecond=0)
            run_id = n.run_id(job.ref.name, when, n.manual_tag(job.run_now))
            _skip(w, run_id, "Manual", when, "InvalidSpec", "the spec is invalid; fix it first", spec)
        return
    held = w.held
    if spec.schedule is not None:
        w.clock = sched.JobClock(
            schedule=spec.schedule, created=job.created, uid=job.ref.uid, default_tz=w.ctx.settings.default_tz
        )
        w.described = sched.describe(spec.schedule, w.ctx.settings.default_tz)
    else:
        w.described = deps.describe(spec.depends_on) if spec.depends_on else None
    schedule_changed = w.status.schedule is not None and w.status.schedule != w.described
    _waiting(w, spec, held)
    _drain_pending(w, spec, held)
    if not held and w.clock is not None:
        _due(w, spec, w.clock, schedule_changed)
    elif not held and spec.depends_on is not None:
        _dependency_trigger(w, spec)
    elif w.last_slot is None:
        w.last_slot = job.created
    w.backfill = _backfill(w, spec, w.clock, w.status.backfill)
    if job.run_now and job.run_now != w.last_manual:  # a new annotation value is one manual run
        w.last_manual = job.run_now
        when = w.now.replace(microsecond=0)
        run_id = n.run_id(job.ref.name, when, n.manual_tag(job.run_now))
        _admit(w, spec, Start(run_id=run_id, scheduled=when, attempt=1, trigger="Manual", manual_value=job.run_now))
    w.completed = (
        w.clock is not None
        and w.clock.schedule.kind == "at"
        and w.last_slot is not None
        and sched.next_after(w.clock, w.last_slot) is None
        and not w.active
        and not w.pending
    )


def _delete_after_run(w: _Work) -> None:
    """A job with deleteAfterRun goes once a run succeeded."""
    if (
        w.spec is not None
        and w.spec.effective_delete_after_run
        and any(r.result == "Succeeded" for r in w.plan.finished)
    ):
        w.plan.delete_job = True


def _state(w: _Work) -> State:
    """The one-word state `kubectl get` shows."""
    if not w.valid:
        return "Invalid"
    if w.active:
        return "Running"
    if w.completed:
        return "Completed"
    if w.paused is not None:
        return "Paused"
    return "Suspended" if w.suspended else "Scheduled"


def _conditions(w: _Work, state: State, next_run: datetime | None, threshold: int) -> list[Condition]:
    """Ready, Healthy and Paused, each changed only when its status, reason or message changes."""
    status, now, gen, spec = w.status, w.now, w.job.generation, w.spec
    conds: list[Condition] = list(status.conditions)
    if w.valid:
        ready_reason = {"Completed": "Completed", "Suspended": "Suspended", "Paused": "Paused"}.get(state, "Scheduled")
        ready_msg = f"next run {n.rfc3339(next_run)}" if next_run else f"job is {state.lower()}"
        conds = set_condition(conds, "Ready", True, ready_reason, ready_msg, now=now, generation=gen)
    else:
        message = "; ".join(str(e) for e in w.errors) or "spec could not be read"
        old = next((c for c in status.conditions if c.type == "Ready"), None)
        if old is None or old.message != message or old.observed_generation != gen:
            w.event("Warning", "InvalidSpec", truncate(message, 1024) or message)
        conds = set_condition(
            conds, "Ready", False, "InvalidSpec", truncate(message, 4096) or message, now=now, generation=gen
        )
    if w.consecutive >= threshold:
        conds = set_condition(
            conds,
            "Healthy",
            False,
            "ConsecutiveFailures",
            f"{w.consecutive} consecutive failed runs (threshold {threshold})",
            now=now,
            generation=gen,
        )
    else:
        conds = set_condition(
            conds,
            "Healthy",
            True,
            "RunsSucceeding" if w.consecutive == 0 else "BelowThreshold",
            f"{w.consecutive} consecutive failed runs",
            now=now,
            generation=gen,
        )
    if w.paused is not None:
        conds = set_condition(
            conds,
            "Paused",
            True,
            "ConsecutiveFailures",
            w.pause_message
            or next((c.message for c in status.conditions if c.type == "Paused" and c.status == "True"), "")
            or f"paused after {w.paused.consecutive_failures} consecutive failed runs",
            now=now,
            generation=gen,
        )
    elif any(c.type == "Paused" for c in conds) or (spec and spec.failure_policy):
        limit_n = spec.failure_policy.pause_after_consecutive_failures if spec and spec.failure_policy else None
        conds = set_condition(
            conds,
            "Paused",
            False,
            "Resumed" if any(c.type == "Paused" for c in status.conditions) else "NotPaused",
            f"pauses after {limit_n} consecutive failed runs" if limit_n else "no failure policy",
            now=now,
            generation=gen,
        )
    return conds


def _new_status(w: _Work) -> None:
    """The new status: state, next run, counters, runs, conditions, and the escalation step."""
    spec, status = w.spec, w.status
    if w.clock is not None and not w.held and not w.completed:
        w.next_run = sched.next_after(w.clock, max(w.now, w.last_slot or w.now))
    state = _state(w)
    limit = spec.history.status_limit if spec else 10
    recent = (list(reversed(w.records)) + list(status.recent_runs))[:limit]
    threshold = spec.notify.alert_after_consecutive_failures if spec and spec.notify else DEFAULT_ALERT_THRESHOLD
    conds = _conditions(w, state, w.next_run, threshold)
    escalation_state, w.escalation_wake = _escalate(w, spec, status.escalation, threshold)
    new_status = OpenClawCronJobStatus(
        observed_generation=w.job.generation,
        conditions=conds,
        schedule=w.described,
        state=state,
        next_run_time=n.rfc3339(w.next_run) if w.next_run else None,
        last_schedule_time=w.last_schedule,
        last_successful_time=w.last_success,
        last_run_result=w.last_result,
        consecutive_failures=w.consecutive,
        counters=Counters(**w.counters),
        active=w.active,
        pending=w.pending,
        recent_runs=recent,
        last_manual_run=w.last_manual,
        last_slot=n.rfc3339(w.last_slot) if w.last_slot else None,
        alerting=w.alerting,
        paused=w.paused,
        last_resume=w.last_resume,
        failures_at_resume=w.failures_at_resume,
        backfill=w.backfill,
        escalation=escalation_state,
    )
    w.plan.status = new_status.model_dump(by_alias=True, exclude_none=True, mode="json")
    w.plan.spec = spec


def _next_look(w: _Work, pods: list[PodView]) -> None:
    """The earliest of: next slot, pending runs, condition re-reads, escalation, Pod deadlines, resync."""
    settings, spec = w.ctx.settings, w.spec
    resync_at = w.now + timedelta(seconds=settings.resync_seconds)
    wakes: list[datetime] = [resync_at]
    if w.next_run:
        wakes.append(w.next_run)
    wakes += [n.parse_time(p.not_before) for p in w.pending]
    wakes += _condition_rechecks(w, spec)
    if w.escalation_wake is not None:
        wakes.append(w.escalation_wake)
    by_key = {(p.run_id, p.attempt): p for p in pods}
    for act in w.active:
        pod = by_key.get((act.run_id, act.attempt))
        if pod and pod.phase == "Pending" and pod.created:
            wakes.append(pod.created + timedelta(seconds=settings.start_timeout_seconds, milliseconds=100))
        elif pod and pod.start_time and spec:
            wakes.append(pod.start_time + timedelta(seconds=spec.timeout_seconds) + DEADLINE_GRACE)
    w.plan.wake_at = min(wakes)
    w.plan.resync = all(when >= resync_at for when in wakes)
