"""Times and durations for people: one style for the kubectl plugin and the console.

kubectl's short age style (45s, 2m30s, 3h5m, 5d); below a second, two decimals.
"""

from __future__ import annotations

from datetime import datetime


def human_duration(seconds: float) -> str:
    """kubectl's short age style: 45s, 12m, 3h, 5d (two units while they help: 2m30s, 3h5m)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 10:
        return f"{m}m{s}s" if s else f"{m}m"
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 8:
        return f"{h}h{m}m" if m else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def run_duration(seconds: float | None, none: str = "<none>") -> str:
    """A run's duration: `human_duration`, with two decimals below a second (0.25s)."""
    if seconds is None:
        return none
    return human_duration(seconds) if seconds >= 1 else f"{seconds:.2f}s"


def relative(when: datetime | None, now: datetime, none: str = "<none>") -> str:
    """'in 5m' for the future, '5m ago' for the past, `none` for no time."""
    if when is None:
        return none
    delta = (when - now).total_seconds()
    return f"in {human_duration(delta)}" if delta >= 0 else f"{human_duration(-delta)} ago"
