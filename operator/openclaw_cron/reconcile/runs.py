"""A run's life in the reconciler: adopted, followed, settled (retried or recorded), admitted, pruned."""

from __future__ import annotations

from datetime import datetime, timedelta

from .. import naming as n
from ..api import (
    ActiveRun,
    OpenClawCronJobSpec,
    PendingRun,
    RunRecord,
    Trigger,
)
from ..pods import PodView, Start
from ..status import MAX_MESSAGE_BYTES, Outcome, pod_outcome, record, truncate
from .work import Work, ceil_second, retry_delay

#: Queue policy keeps at most this many waiting runs; later ones are skipped.
MAX_QUEUED = 10
#: A Running Pod this long past its deadline is ended by the operator (no kubelet enforced it).
DEADLINE_GRACE = timedelta(seconds=60)


def adopt(w: Work, pods: list[PodView]) -> None:
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


def follow(w: Work, pods: dict[tuple[str, int], PodView], spec: OpenClawCronJobSpec | None) -> None:
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
        settle(w, act, outcome, spec, pod)


def settle(w: Work, act: ActiveRun, outcome: Outcome, spec: OpenClawCronJobSpec | None, pod: PodView | None) -> None:
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


def skip(
    w: Work,
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


def replace_active(w: Work, spec: OpenClawCronJobSpec, by: str) -> None:
    for act in list(w.active):
        w.active.remove(act)
        w.plan.deletes.append((act.pod_name, "Replaced"))
        settle(
            w,
            act,
            Outcome("Failed", "Replaced", f"replaced by run {by} (concurrencyPolicy Replace)", False),
            spec,
            None,
        )


def admit(w: Work, spec: OpenClawCronJobSpec, st: Start) -> None:
    """Apply concurrencyPolicy to a new run (scheduled, catch-up or manual)."""
    if w.known(st.run_id, st.attempt):
        return  # already running or on record: not a new run
    policy = spec.concurrency_policy
    busy = bool(w.active)
    if not busy or policy == "Allow":
        w.start(st, spec)
    elif policy == "Replace":
        replace_active(w, spec, st.run_id)
        w.start(st, spec)
    elif policy == "Queue" or st.trigger == "Manual":
        queued = [p for p in w.pending if p.reason == "Queued"]
        if len(queued) >= MAX_QUEUED:
            skip(w, st.run_id, st.trigger, st.scheduled, "QueueFull", f"{MAX_QUEUED} runs already queued", spec)
        else:
            w.wait(st, "Queued", st.scheduled)
    else:  # Forbid
        running = ", ".join(a.run_id for a in w.active)
        skip(
            w,
            st.run_id,
            st.trigger,
            st.scheduled,
            "ConcurrencyForbid",
            f"run {running} is still active (concurrencyPolicy Forbid)",
            spec,
        )


def drain_pending(w: Work, spec: OpenClawCronJobSpec, suspended: bool) -> None:
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
            continue  # dependencies/conditions decide (waiting)
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


def prune(w: Work, pods: list[PodView], spec: OpenClawCronJobSpec | None) -> None:
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
