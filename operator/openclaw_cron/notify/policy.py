"""When a finished run sends messages: failure, success, one alert, one recovery (pure).

Escalation levels (more channels the longer an alert lasts) are decided with the other
orchestration rules in ``orchestration/escalation.py``; the reconciler turns them into
Notifications.
"""

from __future__ import annotations

from ..api import Notify, RunRecord
from .message import Notification

FAILED_RESULTS = frozenset({"Failed", "TimedOut"})


def decide(notify: Notify | None, result: str, consecutive_failures: int, alerting: bool) -> tuple[list[str], bool]:
    """Which messages a finished run causes, and the job's new ``alerting`` flag.

    Built against message storms: a job failing every minute sends per-run "failure"
    messages only while its failure streak is below ``alertAfterConsecutiveFailures``;
    reaching it sends ONE "alert" (instead of a failure message) and sets alerting; while
    alerting, further failures are silent; the first success then sends ONE "recovery"
    (if onRecovery) and clears alerting. onFailure governs both "failure" and "alert";
    without it (or without channels) no alert is raised, so no recovery follows either.
    Results that are neither success nor failure (Skipped, Missed) change nothing.
    """
    if notify is None or not notify.channels:
        return [], False
    kinds: list[str] = []
    if result in FAILED_RESULTS:
        if alerting:
            return [], True
        if not notify.on_failure:
            return [], False
        if consecutive_failures >= notify.alert_after_consecutive_failures:
            return ["alert"], True
        return ["failure"], False
    if result == "Succeeded":
        if alerting:
            if notify.on_recovery:
                kinds.append("recovery")
        elif notify.on_success:
            kinds.append("success")
        return kinds, False
    return [], alerting


def notifications_for(
    notify: Notify | None,
    namespace: str,
    job: str,
    record: RunRecord,
    consecutive_failures: int,
    alerting: bool,
) -> tuple[list[Notification], bool]:
    """``decide`` plus message building, in one call.

    The operator core takes the two steps apart (the reconciler decides, the scheduler
    builds with ``Notification.for_run``); this is the same pair for other callers.
    """
    kinds, new_alerting = decide(notify, record.result, consecutive_failures, alerting)
    if notify is None:
        return [], new_alerting
    return [Notification.for_run(notify, k, namespace, job, record, consecutive_failures) for k in kinds], new_alerting
