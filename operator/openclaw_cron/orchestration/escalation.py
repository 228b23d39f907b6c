"""Escalation: more channels the longer an alert lasts, and one resolved message at the end.

The alert starts when the failure streak reaches `notify.alertAfterConsecutiveFailures`
and ends at the first success. Its start and the highest level sent are kept in status,
so an operator restart neither re-sends a level nor loses the resolved message. When
several levels came due at once (the operator was down), only the highest is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .. import naming as n
from ..api import EscalationStatus, Notify


@dataclass(frozen=True)
class Message:
    kind: str  # "escalation" | "resolved"
    level: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    state: EscalationStatus | None
    messages: list[Message] = field(default_factory=list)
    #: When the next level comes due (to wake the job then).
    wake_at: datetime | None = None


def step(notify: Notify | None, state: EscalationStatus | None, *, failing: bool, now: datetime) -> Step:
    """Advance the escalation for this pass; `failing` = the alert threshold is reached now."""
    levels = (notify.escalation or []) if notify else []
    if not failing:
        if state is None or state.level == 0:
            return Step(None)
        channels: list[str] = []
        for lvl in levels[: state.level]:
            channels += [c for c in lvl.channels if c not in channels]
        return Step(None, [Message("resolved", state.level, tuple(channels))] if channels else [])
    if not levels:
        return Step(None)
    state = state or EscalationStatus(since=n.rfc3339(now), level=0)
    since = n.parse_time(state.since)
    due = [
        i for i, lvl in enumerate(levels, 1) if i > state.level and now >= since + timedelta(seconds=lvl.after_seconds)
    ]
    messages: list[Message] = []
    if due:
        top = max(due)
        messages.append(Message("escalation", top, tuple(levels[top - 1].channels)))
        state = state.model_copy(update={"level": top})
    later = [since + timedelta(seconds=lvl.after_seconds) for lvl in levels[state.level :]]
    return Step(state, messages, min(later) if later else None)
