"""The new status: the one-word state, the Ready/Healthy/Paused conditions, the escalation step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import naming as n
from .. import schedule as sched
from ..api import (
    Condition,
    Counters,
    OpenClawCronJobSpec,
    OpenClawCronJobStatus,
    State,
)
from ..notify.message import Notification
from ..orchestration import escalation
from ..status import set_condition, truncate
from .work import Work

DEFAULT_ALERT_THRESHOLD = 3


def escalate(w: Work, spec: OpenClawCronJobSpec | None, state: Any, threshold: int) -> tuple[Any, datetime | None]:
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


def state_of(w: Work) -> State:
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


def conditions(w: Work, state: State, next_run: datetime | None, threshold: int) -> list[Condition]:
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


def new_status(w: Work) -> None:
    """The new status: state, next run, counters, runs, conditions, and the escalation step."""
    spec, status = w.spec, w.status
    if w.clock is not None and not w.held and not w.completed:
        w.next_run = sched.next_after(w.clock, max(w.now, w.last_slot or w.now))
    state = state_of(w)
    limit = spec.history.status_limit if spec else 10
    recent = (list(reversed(w.records)) + list(status.recent_runs))[:limit]
    threshold = spec.notify.alert_after_consecutive_failures if spec and spec.notify else DEFAULT_ALERT_THRESHOLD
    conds = conditions(w, state, w.next_run, threshold)
    escalation_state, w.escalation_wake = escalate(w, spec, status.escalation, threshold)
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
