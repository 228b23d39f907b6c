"""`reconcile()`: the steps of a pass in the order they run, each a short function below it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from .. import naming as n
from .. import schedule as sched
from ..job import JobView
from ..orchestration import dependencies as deps
from ..orchestration import pause
from ..pods import PodView, Start
from .gates import condition_rechecks, waiting
from .plan import Context, Plan
from .report import new_status
from .runs import DEADLINE_GRACE, admit, adopt, drain_pending, follow, prune, skip
from .slots import backfill, dependency_trigger, due
from .spec import checked_spec, parse_status
from .work import Work


def reconcile(job: JobView, pods: list[PodView], ctx: Context) -> Plan:
    """Decide what to start, stop, record and when to look again: the steps, in the order they run."""
    w = Work(job, ctx, parse_status(job.status))
    check_spec(w)  # 1. the spec, parsed and validated (cached per distinct spec)
    mine = [p for p in pods if p.owner_uid == job.ref.uid]
    adopt(w, mine)  # 2. Pods that exist but are not on record yet
    follow(w, {(p.run_id, p.attempt): p for p in mine}, w.spec)  # 3. attempts that ended
    pause_or_resume(w)  # 4. the failure policy
    start_runs(w)  # 5. retries, queued, due, dependency-triggered, backfill and manual runs
    delete_after_run(w)  # 6. deleteAfterRun
    prune(w, mine, w.spec)  # 7. finished Pods beyond the history limits
    new_status(w)  # 8. state, conditions, escalation: the new status
    next_look(w, mine)  # 9. when to look again
    return w.plan


def check_spec(w: Work) -> None:
    """Parse and validate the spec (with the namespace's dependency graph when it has dependsOn)."""
    job, ctx = w.job, w.ctx
    inputs = ctx.orchestration
    graph = (
        tuple(sorted(inputs.graph.items()))
        if inputs is not None and inputs.jobs and isinstance(job.spec.get("dependsOn"), dict)
        else None
    )
    w.spec, spec_errors = checked_spec(
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


def pause_or_resume(w: Work) -> None:
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


def start_runs(w: Work) -> None:
    """Every way a run starts, in order: waiting and pending ones, due slots, backfill, run-now."""
    spec, job = w.spec, w.job
    if spec is None or not w.valid:
        if job.run_now and job.run_now != w.last_manual:  # a run-now on an invalid spec is Skipped
            w.last_manual = job.run_now
            when = w.now.replace(microsecond=0)
            run_id = n.run_id(job.ref.name, when, n.manual_tag(job.run_now))
            skip(w, run_id, "Manual", when, "InvalidSpec", "the spec is invalid; fix it first", spec)
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
    waiting(w, spec, held)
    drain_pending(w, spec, held)
    if not held and w.clock is not None:
        due(w, spec, w.clock, schedule_changed)
    elif not held and spec.depends_on is not None:
        dependency_trigger(w, spec)
    elif w.last_slot is None:
        w.last_slot = job.created
    w.backfill = backfill(w, spec, w.clock, w.status.backfill)
    if job.run_now and job.run_now != w.last_manual:  # a new annotation value is one manual run
        w.last_manual = job.run_now
        when = w.now.replace(microsecond=0)
        run_id = n.run_id(job.ref.name, when, n.manual_tag(job.run_now))
        admit(w, spec, Start(run_id=run_id, scheduled=when, attempt=1, trigger="Manual", manual_value=job.run_now))
    w.completed = (
        w.clock is not None
        and w.clock.schedule.kind == "at"
        and w.last_slot is not None
        and sched.next_after(w.clock, w.last_slot) is None
        and not w.active
        and not w.pending
    )


def delete_after_run(w: Work) -> None:
    """A job with deleteAfterRun goes once a run succeeded."""
    if (
        w.spec is not None
        and w.spec.effective_delete_after_run
        and any(r.result == "Succeeded" for r in w.plan.finished)
    ):
        w.plan.delete_job = True


def next_look(w: Work, pods: list[PodView]) -> None:
    """The earliest of: next slot, pending runs, condition re-reads, escalation, Pod deadlines, resync."""
    settings, spec = w.ctx.settings, w.spec
    resync_at = w.now + timedelta(seconds=settings.resync_seconds)
    wakes: list[datetime] = [resync_at]
    if w.next_run:
        wakes.append(w.next_run)
    wakes += [n.parse_time(p.not_before) for p in w.pending]
    wakes += condition_rechecks(w, spec)
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
