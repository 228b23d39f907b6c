"""Schedule math, pure and clock-free: every function takes the instants it needs.

INTERFACE STUB — being implemented; signatures are the contract other modules use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .api import Schedule, Trigger

#: catchUp All never starts more than this many runs at once.
CATCH_UP_ALL_CAP = 100
#: A due slot this close to `now` is on time (a normal run), not a catch-up.
ON_TIME_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class JobClock:
    """What fixes a job's slots besides its schedule: creation time, uid (stagger), default zone."""

    schedule: Schedule
    created: datetime
    uid: str
    default_tz: str = "UTC"


@dataclass(frozen=True)
class CatchUpDecision:
    """Which due slots to run now (oldest first, with their trigger) and how many were missed."""

    run: list[tuple[datetime, Trigger]] = field(default_factory=list)
    missed: int = 0
    last_missed: datetime | None = None


def parse_duration(text: str) -> timedelta:
    """'20m', '1h30m', '2s', '1.5h', '500ms', '1d', '1w' → timedelta; ValueError says what is wrong."""
    raise NotImplementedError


def parse_instant(text: str) -> datetime:
    """RFC 3339 → aware datetime; no offset means UTC. ValueError quotes the text."""
    raise NotImplementedError


def zone(name: str | None, default_tz: str = "UTC") -> ZoneInfo:
    """The IANA zone `name` (or the default); ValueError names the unknown zone."""
    raise NotImplementedError


def check_cron(expr: str) -> None:
    """Raise ValueError quoting croniter's complaint for a bad 5/6-field expression or macro."""
    raise NotImplementedError


def stagger(uid: str, stagger_seconds: int) -> timedelta:
    """Deterministic offset in [0, stagger_seconds) from the job's uid."""
    raise NotImplementedError


def next_after(clock: JobClock, after: datetime) -> datetime | None:
    """First due instant strictly after `after` (stagger included); None when there is none."""
    raise NotImplementedError


def next_n(clock: JobClock, after: datetime, count: int) -> list[datetime]:
    """The next `count` due instants after `after` (fewer for kind at)."""
    raise NotImplementedError


def catch_up(clock: JobClock, since: datetime, now: datetime, starting_deadline_seconds: int | None) -> CatchUpDecision:
    """Slots in (since, now]: which to run now and how many are missed, per catchUp and the deadline."""
    raise NotImplementedError


def describe(schedule: Schedule, default_tz: str = "UTC") -> str:
    """Human text for status.schedule, e.g. '0 7 * * * (America/Los_Angeles)', 'every 20m', 'at 2026-...Z'."""
    raise NotImplementedError
