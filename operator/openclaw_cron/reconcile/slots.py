"""Where new runs come from: due schedule slots (with catch-up), a dependency satisfied, a backfill request."""

from __future__ import annotations

from typing import Any

from .. import naming as n
from .. import schedule as sched
from ..api import (
    OpenClawCronJobSpec,
    RunRecord,
)
from ..orchestration import backfill as bf
from ..orchestration import dependencies as deps
from ..pods import Start
from .gates import gate
from .work import Work, ceil_second

#: Backfill with concurrencyPolicy Allow starts at most this many runs per pass.
BACKFILL_BURST = 10


def due(w: Work, spec: OpenClawCronJobSpec, clock: sched.JobClock, schedule_changed: bool) -> None:
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
        gate(
            w, spec, Start(run_id=n.run_id(w.job.ref.name, slot), scheduled=slot, attempt=1, trigger=trigger), previous
        )


def dependency_trigger(w: Work, spec: OpenClawCronJobSpec) -> None:
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
    gate(w, spec.model_copy(update={"depends_on": None}), st, since)


def backfill(w: Work, spec: OpenClawCronJobSpec, clock: sched.JobClock | None, state: Any) -> Any:
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
