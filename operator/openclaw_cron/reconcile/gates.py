"""Orchestration in the reconciler (DESIGN §9; the rules are in orchestration/): a slot runs, waits or is Skipped."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import naming as n
from .. import schedule as sched
from ..api import (
    OpenClawCronJobSpec,
)
from ..orchestration import conditions as cond
from ..orchestration import dependencies as deps
from ..orchestration.verdict import Verdict
from ..pods import Start
from .runs import admit, skip
from .work import Work, ceil_second

#: A slot whose condition inputs were not read yet waits this long at most (then it is Skipped).
UNCHECKED_WAIT = timedelta(seconds=60)


#: A slot that came due before its ConfigMap/Secret/HTTP conditions were read waits (Waiting) for
#: a pass that reads them: that pass comes at once, not at the wait's end (docs/wakes.md).
NOT_READ_RECHECK = timedelta(milliseconds=100)


def zone_of(spec: OpenClawCronJobSpec, default_tz: str) -> Any:
    return sched.zone(spec.schedule.tz if spec.schedule else None, default_tz)


def verdict(w: Work, spec: OpenClawCronJobSpec, slot: datetime, since: datetime | None) -> tuple[str, Verdict]:
    """(Skipped reason, verdict) of a slot: conditions first, then dependencies."""
    inputs = w.ctx.orchestration
    if spec.conditions:
        v = cond.evaluate(spec.conditions, slot, zone_of(spec, w.ctx.settings.default_tz), inputs)
        if not v.met:
            return "ConditionNotMet", v
    if spec.depends_on is not None:
        start = deps.window_start(spec.depends_on, slot, since)
        d = deps.evaluate(spec.depends_on, start, w.now, inputs.jobs if inputs is not None else None)
        if not d.verdict.met:
            return "DependencyNotMet", d.verdict
    return "", Verdict(True)


def gate(w: Work, spec: OpenClawCronJobSpec, st: Start, since: datetime | None) -> None:
    """A scheduled slot runs when its conditions and dependencies are met, waits, or is Skipped."""
    if spec.depends_on is None and not spec.conditions:
        admit(w, spec, st)
        return
    reason, v = verdict(w, spec, st.scheduled, since)
    if v.met:
        admit(w, spec, st)
        return
    wait = timedelta(seconds=spec.depends_on.wait_seconds) if spec.depends_on else timedelta(0)
    if v.unknown:
        wait = max(wait, UNCHECKED_WAIT)
    if v.final or st.scheduled + wait <= w.now:
        skip(w, st.run_id, st.trigger, st.scheduled, reason, v.message, spec)
        return
    w.wait(st, "Waiting", ceil_second(st.scheduled + wait), since)


def waiting(w: Work, spec: OpenClawCronJobSpec, held: bool) -> None:
    """Slots waiting for dependencies: run once met, Skipped at the deadline (or when it cannot change)."""
    for p in [p for p in w.pending if p.reason == "Waiting"]:
        slot = n.parse_time(p.scheduled_time)
        since = n.parse_time(p.since) if p.since else None
        reason, v = verdict(w, spec, slot, since)
        deadline = n.parse_time(p.not_before)
        if v.met and not held:
            w.pending.remove(p)
            admit(w, spec, Start(run_id=p.run_id, scheduled=slot, attempt=1, trigger=p.trigger))
        elif not v.met and (v.final or deadline <= w.now):
            w.pending.remove(p)
            waited = int((w.now - slot).total_seconds())
            skip(w, p.run_id, p.trigger, slot, reason, f"{v.message} (waited {waited}s)", spec)


def condition_rechecks(w: Work, spec: OpenClawCronJobSpec | None) -> list[datetime]:
    """A slot waiting only because its ConfigMap/Secret/HTTP conditions were not read yet: the next
    pass reads them (io_due: a slot waits), so it comes now. Once read they are final for the slot."""
    if spec is None or not any(c.expression is None for c in spec.conditions or ()):
        return []
    inputs = w.ctx.orchestration
    if inputs is not None and inputs.checked:
        return []
    return [w.now + NOT_READ_RECHECK] if any(p.reason == "Waiting" for p in w.pending) else []
