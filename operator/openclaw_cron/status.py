"""Status bookkeeping: outcomes of attempts, run records, counters, conditions.

Pure functions over the pydantic status models; the reconciler composes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import naming as n
from .api import MAX_OUTPUT_BYTES, Condition, DeliveryStatus, RunRecord, RunResult
from .pods import PodView
from .runner import RunnerResult, parse_result

#: Messages in status are bounded too, like outputs.
MAX_MESSAGE_BYTES = 1024
#: Reasons after which another attempt cannot help.
NON_RETRYABLE_REASONS = frozenset({"InvalidRequest", "Unauthorized", "Replaced", "InvalidSpec"})


def truncate(text: str | None, limit: int = MAX_OUTPUT_BYTES) -> str | None:
    """Cut `text` to at most `limit` UTF-8 bytes, keeping the end (where errors usually are)."""
    if text is None:
        return None
    data = text.encode()
    if len(data) <= limit:
        return text
    marker = "…"
    tail = data[-(limit - len(marker.encode())) :].decode(errors="ignore")
    return marker + tail


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended."""

    result: RunResult
    reason: str | None = None
    message: str | None = None
    retryable: bool = True
    exit_code: int | None = None
    output: str | None = None
    gateway_run_id: str | None = None
    delivery: DeliveryStatus | None = None
    finished: datetime | None = None


def delivery_status(res: RunnerResult) -> DeliveryStatus | None:
    """The runner's delivery verdict as `recentRuns[].delivery`; None when the gateway gave none."""
    verdict = (res.delivered, res.delivery_attempted, res.reply_disposition, res.delivery_suppression_reason)
    if all(v is None for v in verdict) and res.reason != "DeliveryFailed":
        return None
    error: str | None = None
    if res.delivered:
        status = "delivered"
    elif res.delivery_suppression_reason:
        status, error = "suppressed", res.delivery_suppression_reason
    elif res.delivery_error or res.delivery_attempted or res.reason == "DeliveryFailed":
        status = "failed"
        error = res.delivery_error or (truncate(res.message, 256) if res.reason == "DeliveryFailed" else None)
    else:
        status = "not-delivered"
    return DeliveryStatus(
        status=status,
        delivered=res.delivered,
        delivery_attempted=res.delivery_attempted,
        reply_disposition=res.reply_disposition,
        error=error,
    )


def pod_outcome(pod: PodView, *, runner: bool) -> Outcome:
    """The outcome of a finished run Pod, from the runner's JSON or the container's exit."""
    if pod.reason == "DeadlineExceeded":
        return Outcome(
            "TimedOut",
            "DeadlineExceeded",
            pod.message or "the run exceeded timeoutSeconds",
            True,
            pod.exit_code,
            finished=pod.finish_time,
        )
    res = parse_result(pod.message or "") if runner else None
    if res is not None:
        return Outcome(
            result=res.result,
            reason=res.reason,
            message=truncate(res.message or None, MAX_MESSAGE_BYTES),
            retryable=res.retryable and res.reason not in NON_RETRYABLE_REASONS,
            exit_code=pod.exit_code,
            output=truncate(res.output),
            gateway_run_id=res.gateway_run_id,
            delivery=delivery_status(res),
            finished=pod.finish_time,
        )
    if pod.phase == "Succeeded":
        return Outcome(
            "Succeeded", None, None, False, pod.exit_code, output=truncate(pod.message), finished=pod.finish_time
        )
    reason = pod.reason or ("Error" if pod.exit_code else "Failed")
    message = pod.message or (f"exit code {pod.exit_code}" if pod.exit_code is not None else None)
    return Outcome(
        "Failed",
        reason,
        truncate(message, MAX_MESSAGE_BYTES),
        True,
        pod.exit_code,
        output=truncate(pod.message),
        finished=pod.finish_time,
    )


def record(
    *,
    run_id: str,
    trigger: str,
    scheduled: datetime,
    start: datetime | None,
    attempts: int,
    outcome: Outcome,
    pod_name: str | None,
    now: datetime,
) -> RunRecord:
    """A history entry for a finished run (its last attempt's outcome)."""
    done = outcome.finished or now
    return RunRecord(
        run_id=run_id,
        trigger=trigger,
        scheduled_time=n.rfc3339(scheduled),
        start_time=n.rfc3339(start) if start else None,
        completion_time=n.rfc3339(done),
        duration_seconds=round(max(0.0, (done - start).total_seconds()), 3) if start else None,
        attempts=attempts,
        result=outcome.result,
        reason=outcome.reason,
        message=outcome.message,
        output=outcome.output,
        exit_code=outcome.exit_code,
        pod_name=pod_name,
        gateway_run_id=outcome.gateway_run_id,
        delivery=outcome.delivery,
    )


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Conditions with `type_` set; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old and old.status == value and old.last_transition_time else n.rfc3339(now)
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]
