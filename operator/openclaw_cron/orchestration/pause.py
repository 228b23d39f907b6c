"""Pause on failure: stop scheduling after N failed runs in a row, until resumed.

Written in status only (`state: Paused`, a `Paused` condition), never in the spec, so a
GitOps tool sees no drift. A new value of the annotation `cron.openclaw.io/resume` or any
spec change (a new generation) resumes; the streak then counts afresh from the resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import naming as n
from ..api import FailurePolicy, PauseStatus


@dataclass(frozen=True)
class PauseDecision:
    paused: PauseStatus | None
    last_resume: str | None
    #: Failures already counted when the job was last resumed (the new streak starts after them).
    failures_at_resume: int
    #: "Paused" | "Resumed" | None: what happened in this pass (for the Event).
    change: str | None = None
    message: str = ""


def decide(
    policy: FailurePolicy | None,
    *,
    consecutive: int,
    paused: PauseStatus | None,
    failures_at_resume: int,
    generation: int,
    resume: str | None,
    last_resume: str | None,
    now: datetime,
) -> PauseDecision:
    """Pause, stay, or resume; `consecutive` is the failure streak after this pass's runs."""
    base = failures_at_resume if consecutive >= failures_at_resume else 0
    if consecutive == 0:
        base = 0
    if paused is not None:
        why = None
        if resume and resume != last_resume:
            why = f"resumed by annotation {n.ANNOTATION_RESUME}={resume}"
        elif paused.observed_generation is not None and generation != paused.observed_generation:
            why = f"resumed by a spec change (generation {generation})"
        elif policy is None or policy.pause_after_consecutive_failures is None:
            why = "resumed: spec.failurePolicy.pauseAfterConsecutiveFailures is no longer set"
        if why is None:
            return PauseDecision(paused, last_resume, base)
        return PauseDecision(None, resume or last_resume, consecutive, "Resumed", why)
    limit = policy.pause_after_consecutive_failures if policy else None
    if limit is not None and consecutive - base >= limit:
        message = (
            f"paused after {consecutive - base} consecutive failed runs"
            f" (failurePolicy.pauseAfterConsecutiveFailures {limit});"
            f" resume with `kubectl openclaw resume` or any spec change"
        )
        state = PauseStatus(since=n.rfc3339(now), consecutive_failures=consecutive, observed_generation=generation)
        return PauseDecision(state, resume or last_resume, base, "Paused", message)
    return PauseDecision(None, resume or last_resume, base)
