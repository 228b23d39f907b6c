"""Schedule math, pure and clock-free: every function takes the instants it needs.

Slots (due instants) per schedule kind:

- ``cron``: the instants whose local wall-clock reading in the job's zone matches the
  expression. croniter is only ever asked about *naive wall time* (pure calendar math);
  the mapping to real instants is done here, segment by segment of constant UTC offset,
  because croniter's own zone handling shifts a non-existent time to the end of the gap
  and runs an ambiguous time twice. The rules:

  * a local time that does not exist (spring forward) is skipped;
  * an ambiguous local time (fall back) runs once, at its first occurrence, ...
  * ... except when the hour field matches every hour (``30 * * * *``, ``*/5 * * * *``,
    ``@hourly``, 6-field per-second ones): those describe a frequency, so they fire at
    every real instant whose reading matches, including the repeated hour. They stay
    hourly in real time across New York's or Berlin's transitions.

- ``every``: ``anchor + k * interval`` for k >= 0 (anchor defaults to creation time).
- ``at``: one instant, absolute or ``created + duration``.

Stagger (whole seconds, from the uid) shifts every cron/every slot; ``at`` is exact.
All results are aware UTC datetimes. Naive inputs are taken as UTC.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

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


# --- parsing -----------------------------------------------------------------------------

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_DAY = 86400

_UNIT_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_UNIT_US["w"] = 7 * _UNIT_US["d"]
_DURATION_RE = re.compile(r"^\s*([+-])?\s*((?:[0-9]+(?:\.[0-9]+)?\s*(?:ms|s|m|h|d|w)\s*)+)$", re.ASCII)
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)", re.ASCII)
_MAX_US = timedelta.max // _US

_INSTANT_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)([Zz]|[+-]\d{2}:\d{2})?$", re.ASCII)
_ZONE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$", re.ASCII)


def _q(text: str) -> str:
    """Quote user text the way messages show it: JSON string syntax, so odd characters stay visible."""
    return json.dumps(text, ensure_ascii=False)


def parse_duration(text: str) -> timedelta:
    """'20m', '1h30m', '2s', '1.5h', '500ms', '1d', '1w' → timedelta; ValueError says what is wrong."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(
            f"invalid duration {_q(text)}: expected a number and a unit (ms, s, m, h, d, w), e.g. 20m or 1h30m"
        )
    total = sum((Fraction(num) * _UNIT_US[unit] for num, unit in _DURATION_PART_RE.findall(m.group(2))), Fraction(0))
    micros = round(total)
    if m.group(1) == "-" or micros <= 0:
        raise ValueError(f"invalid duration {_q(text)}: must be greater than 0")
    if micros > _MAX_US:
        raise ValueError(f"invalid duration {_q(text)}: too large")
    return timedelta(microseconds=micros)


def parse_instant(text: str) -> datetime:
    """RFC 3339 → aware datetime; no offset means UTC. ValueError quotes the text."""
    m = _INSTANT_RE.match(text.strip())
    if not m:
        raise ValueError(f"invalid time {_q(text)}: expected RFC 3339, e.g. 2026-01-12T18:00:00Z")
    day, clock, offset = m.groups()
    if "." in clock:  # fromisoformat wants at most 6 fractional digits
        whole, frac = clock.split(".")
        clock = f"{whole}.{frac[:6]}"
    if offset is None or offset in "Zz":
        offset = "+00:00"
    try:
        when = datetime.fromisoformat(f"{day}T{clock}{offset}")
    except ValueError as exc:
        raise ValueError(f"invalid time {_q(text)}: {exc}") from None
    return when.astimezone(UTC)


def parse_at(text: str, created: datetime) -> datetime:
    """Kind at's instant: RFC 3339 (absolute) or a duration after `created`."""
    if _DURATION_RE.match(text):
        return _aware(created) + parse_duration(text)
    try:
        return parse_instant(text)
    except ValueError as exc:
        if _INSTANT_RE.match(text.strip()):
            raise  # looked like a time: the parser's complaint is the useful one
        raise ValueError(
            f"invalid at {_q(text)}: expected an RFC 3339 time (e.g. 2026-01-12T18:00:00Z)"
            " or a duration after creation (e.g. 20m)"
        ) from exc


def is_relative_at(text: str) -> bool:
    """Whether an `at` value is a duration after creation rather than an instant."""
    return bool(_DURATION_RE.match(text))


def zone(name: str | None, default_tz: str = "UTC") -> ZoneInfo:
    """The IANA zone `name` (or the default); ValueError names the unknown zone."""
    key = default_tz if name is None else name
    # ZoneInfo opens files by key: refuse anything that is not a plain zone name first.
    if not _ZONE_RE.match(key):
        raise ValueError(f"unknown time zone {_q(key)}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        raise ValueError(f"unknown time zone {_q(key)}") from None


# --- cron --------------------------------------------------------------------------------

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS_RE = re.compile(r"\S+", re.ASCII)  # what croniter itself splits on
_HASHED_RE = re.compile(r"^[hr](?:$|[(/])", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class _Cron:
    """A checked expression plus what counting needs (field sets, day-only expression)."""

    text: str  # as croniter takes it (seconds first when 6 fields, with second_at_beginning)
    seconds_first: bool
    every_hour: bool  # hour field matches all 24 hours: fires on every real matching instant
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]
    day_text: str | None  # "0 0 dom month dow"; None when every day matches

    def iterator(self, start: datetime) -> croniter:
        return croniter(self.text, start, second_at_beginning=self.seconds_first)

    @property
    def per_day(self) -> int:
        return len(self.hours) * len(self.minutes) * len(self.seconds)

    def tod_below(self, sec: int) -> int:
        """How many matching times of day lie in [00:00:00, sec)."""
        h0, rem = divmod(sec, 3600)
        n = bisect_left(self.hours, h0) * len(self.minutes) * len(self.seconds)
        if h0 < 24 and h0 in self.hours:
            m0, s0 = divmod(rem, 60)
            n += bisect_left(self.minutes, m0) * len(self.seconds)
            if m0 in self.minutes:
                n += bisect_left(self.seconds, s0)
        return n

    def matching_days(self, first: int, last: int) -> int:
        """How many days (naive epoch day numbers, inclusive) match the day fields."""
        if last < first:
            return 0
        if self.day_text is None:
            return last - first + 1
        it = croniter(self.day_text, _EPOCH_NAIVE + timedelta(days=first, seconds=-1))
        end = _EPOCH_NAIVE + timedelta(days=last)
        n = 0
        try:
            while it.get_next(datetime) <= end:
                n += 1
        except (CroniterBadDateError, OverflowError):
            pass
        return n

    def count_wall(self, lo: int, hi: int) -> int:
        """Matching wall times in [lo, hi] (naive epoch seconds) by days and field sizes, not by iterating."""
        if hi < lo:
            return 0
        d_lo, s_lo = divmod(lo, _DAY)
        d_hi, s_hi = divmod(hi, _DAY)
        if d_lo == d_hi:
            return self.tod_below(s_hi + 1) - self.tod_below(s_lo) if self.matching_days(d_lo, d_lo) else 0
        n = 0
        if self.matching_days(d_lo, d_lo):
            n += self.per_day - self.tod_below(s_lo)
        if self.matching_days(d_hi, d_hi):
            n += self.tod_below(s_hi + 1)
        return n + self.matching_days(d_lo + 1, d_hi - 1) * self.per_day


def _values(expanded: list[int | str], top: int) -> tuple[int, ...]:
    if "*" in expanded:
        return tuple(range(top))
    return tuple(sorted({int(v) for v in expanded}))


@lru_cache(maxsize=1024)
def _compile(expr: str) -> _Cron:
    text = expr.strip()
    q = _q(expr)
    if text.startswith("@"):
        macro = _MACROS.get(text.lower())
        if macro is None:
            raise ValueError(
                f"invalid cron expression {q}: unsupported macro; use one of {', '.join(_MACROS)}"
                " or 5 fields (6 with seconds first)"
            )
        fields = macro.split()
    else:
        fields = _FIELDS_RE.findall(text)
    if len(fields) == 7:
        raise ValueError(
            f"invalid cron expression {q}: 7 fields (with a year) are not supported;"
            " use 5 fields, or 6 with seconds first"
        )
    if len(fields) not in (5, 6):
        raise ValueError(
            f"invalid cron expression {q}: expected 5 fields (minute hour day-of-month month day-of-week)"
            f" or 6 with seconds first, got {len(fields)}"
        )
    if any(_HASHED_RE.match(f) for f in fields):
        raise ValueError(f"invalid cron expression {q}: hashed (H) and random (R) fields are not supported")
    seconds_first = len(fields) == 6
    if not text.startswith("@"):
        text = " ".join(fields)
    try:
        expanded, _nth = croniter.expand(text, second_at_beginning=seconds_first)
        croniter(text, datetime(2000, 1, 1), second_at_beginning=seconds_first).get_next(datetime)
    except CroniterBadDateError as exc:
        raise ValueError(f"invalid cron expression {q}: never matches ({exc})") from None
    except (CroniterError, ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise ValueError(f"invalid cron expression {q}: {exc}") from None
    dom, month, dow = (fields[1:] if seconds_first else fields)[2:]
    hours = _values(expanded[1], 24)
    day_all = all(f in ("*", "?") for f in (dom, month, dow))
    return _Cron(
        text=text,
        seconds_first=seconds_first,
        every_hour=len(hours) == 24,
        hours=hours,
        minutes=_values(expanded[0], 60),
        seconds=_values(expanded[5], 60) if seconds_first else (0,),
        day_text=None if day_all else f"0 0 {dom} {month} {dow}",
    )


def check_cron(expr: str) -> None:
    """Raise ValueError quoting croniter's complaint for a bad 5/6-field expression or macro."""
    _compile(expr)


# --- instants and offsets ------------------------------------------------------------------


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _to_us(when: datetime) -> int:
    return (_aware(when) - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


#: Offsets are probed this far apart when looking for transitions. Two transitions inside
#: one step that cancel out would be missed; tzdata has none (they are months apart).
_PROBE = 6 * 3600


class _Zone:
    """A zone seen as integer epoch seconds → offset seconds, with transition search."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def local(self, t: int) -> datetime:
        return datetime.fromtimestamp(t, self.tz)

    def offset(self, t: int) -> int:
        off = self.local(t).utcoffset()
        assert off is not None
        return int(off.total_seconds())

    def fold(self, t: int) -> int:
        return self.local(t).fold

    def _bisect(self, lo: int, hi: int, past_lo: Callable[[int], bool]) -> int:
        """Smallest x in (lo, hi] with past_lo(x), given past_lo(hi) and not past_lo(lo)."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if past_lo(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def first_change(self, lo: int, hi: int, off: int) -> int | None:
        """First x in (lo, hi] whose offset differs from `off` (the offset at lo)."""
        p = lo
        while p < hi:
            q = min(p + _PROBE, hi)
            if self.offset(q) != off:
                return self._bisect(p, q, lambda x: self.offset(x) != off)
            p = q
        return None

    def last_change(self, lo: int, hi: int, off: int) -> int | None:
        """Last x in (lo, hi] where the offset becomes `off` (the offset at hi), i.e. hi's segment start."""
        q = hi
        while q > lo:
            p = max(q - _PROBE, lo)
            if self.offset(p) != off:
                return self._bisect(p, q, lambda x: self.offset(x) == off)
            q = p
        return None

    def fold_end(self, t: int) -> int:
        """First instant after t (t in a repeated hour) that is no longer a repeat."""
        return self._bisect(t, t + _DAY, lambda x: self.fold(x) == 0)

    def fold_start(self, t: int) -> int:
        """First instant of the repeated period containing t."""
        return self._bisect(t - _DAY, t, lambda x: self.fold(x) == 1)


def _wall(t: int, off: int) -> datetime:
    return _EPOCH_NAIVE + timedelta(seconds=t + off)


def _unwall(w: datetime, off: int) -> int:
    return (w - _EPOCH_NAIVE) // timedelta(seconds=1) - off


_MAX_STEPS = 10_000  # transitions crossed in one search; ~50 years of DST is 100


class _CronSlots:
    """Cron slots as integer epoch seconds (stagger excluded): next, previous, count."""

    def __init__(self, cron: _Cron, tz: ZoneInfo) -> None:
        self.cron = cron
        self.zone = _Zone(tz)

    def next(self, t: int) -> int | None:
        """First slot > t."""
        x = t + 1
        for _ in range(_MAX_STEPS):
            off = self.zone.offset(x)
            try:
                w = self.cron.iterator(_wall(x - 1, off)).get_next(datetime)
            except (CroniterBadDateError, OverflowError):
                return None
            c = _unwall(w, off)
            change = self.zone.first_change(x, c, off)
            if change is not None:  # the candidate lies past a transition: redo in the next segment
                x = change
            elif not self.cron.every_hour and self.zone.fold(c):
                x = self.zone.fold_end(c)  # repeated local time: it already ran at its first occurrence
            else:
                return c
        return None

    def prev(self, t: int) -> int | None:
        """Last slot <= t."""
        y = t
        for _ in range(_MAX_STEPS):
            off = self.zone.offset(y)
            try:
                w = self.cron.iterator(_wall(y + 1, off)).get_prev(datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                return None
            c = _unwall(w, off)
            change = self.zone.last_change(c, y, off)
            if change is not None:
                y = change - 1
            elif not self.cron.every_hour and self.zone.fold(c):
                y = self.zone.fold_start(c) - 1
            else:
                return c
        return None

    def count(self, lo: int, hi: int) -> int:
        """Exact number of slots in (lo, hi]: per constant-offset segment, counted from field sizes."""
        total = 0
        x = lo + 1
        while x <= hi:
            off = self.zone.offset(x)
            change = self.zone.first_change(x, hi, off)
            end = hi if change is None else change - 1
            start = x
            if not self.cron.every_hour and self.zone.fold(x):
                start = self.zone.fold_end(x)
            total += self.cron.count_wall(start + off, end + off)
            x = end + 1
        return total


class _Slots:
    """One job's slots in microseconds since the epoch: next after, last at-or-before, count in (lo, hi]."""

    def __init__(self, clock: JobClock) -> None:
        s = clock.schedule
        self.kind = s.kind
        self.stagger_us = stagger(clock.uid, s.stagger_seconds) // _US if s.kind != "at" else 0
        if s.kind == "cron":
            if not s.expr:
                raise ValueError("schedule.expr is required when kind is cron")
            self.cron = _CronSlots(_compile(s.expr), zone(s.tz, clock.default_tz))
        elif s.kind == "every":
            if not s.every:
                raise ValueError("schedule.every is required when kind is every")
            self.interval = parse_duration(s.every) // _US
            self.anchor = _to_us(parse_instant(s.anchor) if s.anchor else clock.created)
        else:
            if not s.at:
                raise ValueError("schedule.at is required when kind is at")
            self.at = _to_us(parse_at(s.at, clock.created))

    def next(self, after: int) -> int | None:
        b = after - self.stagger_us
        if self.kind == "cron":
            c = self.cron.next(b // 1_000_000)
            return None if c is None else c * 1_000_000 + self.stagger_us
        if self.kind == "every":
            k = max(0, (b - self.anchor) // self.interval + 1)
            return self.anchor + k * self.interval + self.stagger_us
        return self.at if self.at > after else None

    def prev(self, upto: int) -> int | None:
        b = upto - self.stagger_us
        if self.kind == "cron":
            c = self.cron.prev(b // 1_000_000)
            return None if c is None else c * 1_000_000 + self.stagger_us
        if self.kind == "every":
            if b < self.anchor:
                return None
            return self.anchor + (b - self.anchor) // self.interval * self.interval + self.stagger_us
        return self.at if self.at <= upto else None

    def count(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return 0
        a, b = lo - self.stagger_us, hi - self.stagger_us
        if self.kind == "cron":
            return self.cron.count(a // 1_000_000, b // 1_000_000)
        if self.kind == "every":
            if b < self.anchor:
                return 0
            k_max = (b - self.anchor) // self.interval
            k_min = max(0, (a - self.anchor) // self.interval + 1)
            return max(0, k_max - k_min + 1)
        return 1 if lo < self.at <= hi else 0


# --- public API ------------------------------------------------------------------------------


def stagger(uid: str, stagger_seconds: int) -> timedelta:
    """Deterministic offset in [0, stagger_seconds) from the job's uid."""
    if stagger_seconds <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % stagger_seconds)


def next_after(clock: JobClock, after: datetime) -> datetime | None:
    """First due instant strictly after `after` (stagger included); None when there is none.

    ValueError when the schedule itself is invalid (see `validation.validate`).
    """
    us = _Slots(clock).next(_to_us(after))
    return None if us is None else _from_us(us)


def next_n(clock: JobClock, after: datetime, count: int) -> list[datetime]:
    """The next `count` due instants after `after` (fewer for kind at)."""
    slots = _Slots(clock)
    out: list[datetime] = []
    t = _to_us(after)
    while len(out) < count:
        nxt = slots.next(t)
        if nxt is None:
            break
        out.append(_from_us(nxt))
        t = nxt
    return out


def between(clock: JobClock, after: datetime, before: datetime, cap: int) -> list[datetime]:
    """The due instants in (after, before), at most `cap` of them (the console's upcoming slots)."""
    slots = _Slots(clock)
    out: list[datetime] = []
    t, end = _to_us(after), _to_us(before)
    while len(out) < cap:
        nxt = slots.next(t)
        if nxt is None or nxt >= end:
            break
        out.append(_from_us(nxt))
        t = nxt
    return out


def catch_up(clock: JobClock, since: datetime, now: datetime, starting_deadline_seconds: int | None) -> CatchUpDecision:
    """Slots in (since, now]: which to run now and how many are missed, per catchUp and the deadline.

    A slot is eligible when starting_deadline_seconds is None or now - slot <= deadline; the
    deadline binds every policy, the on-time slot included. The newest slot is "on time" when
    now - slot <= ON_TIME_GRACE. None runs only an eligible on-time slot; Latest runs the newest
    slot if eligible (trigger Schedule when on time, else CatchUp); All runs the newest
    CATCH_UP_ALL_CAP eligible slots oldest first (CatchUp, the on-time one Schedule). What runs
    is always the newest slots, so the newest missed slot is the one just before them. Only the
    slots that may run are enumerated (backwards); the rest are counted exactly by arithmetic
    (every) or per day and field sizes (cron), so a month of per-second slots is cheap.
    """
    slots = _Slots(clock)
    lo, hi = _to_us(since), _to_us(now)
    newest: list[int] = []  # newest first, at most CAP + 1 of them
    t: int | None = hi
    while t is not None and len(newest) <= CATCH_UP_ALL_CAP:
        t = slots.prev(t)
        if t is None or t <= lo:
            break
        newest.append(t)
        t -= 1
    if not newest:
        return CatchUpDecision()
    total = len(newest) if len(newest) <= CATCH_UP_ALL_CAP else slots.count(lo, hi)

    grace_us = ON_TIME_GRACE // _US
    deadline_us = None if starting_deadline_seconds is None else starting_deadline_seconds * 1_000_000
    eligible = [s for s in newest if deadline_us is None or hi - s <= deadline_us]
    on_time = bool(eligible) and eligible[0] == newest[0] and hi - newest[0] <= grace_us
    policy = clock.schedule.catch_up
    if policy == "None":
        chosen = eligible[:1] if on_time else []
    elif policy == "Latest":
        chosen = eligible[:1]
    else:
        chosen = eligible[:CATCH_UP_ALL_CAP]

    run: list[tuple[datetime, Trigger]] = [
        (_from_us(s), "Schedule" if on_time and i == 0 else "CatchUp") for i, s in enumerate(chosen)
    ]
    run.reverse()
    last_missed = _from_us(newest[len(chosen)]) if len(newest) > len(chosen) else None
    return CatchUpDecision(run=run, missed=total - len(chosen), last_missed=last_missed)


def describe(schedule: Schedule, default_tz: str = "UTC") -> str:
    """Human text for status.schedule, e.g. '0 7 * * * (America/Los_Angeles)', 'every 20m', 'at 2026-...Z'."""
    if schedule.kind == "cron":
        text = f"{(schedule.expr or '').strip()} ({schedule.tz or default_tz})"
    elif schedule.kind == "every":
        text = f"every {(schedule.every or '').strip()}"
        if schedule.anchor:
            text += f" from {schedule.anchor.strip()}"
    else:
        at = (schedule.at or "").strip()
        text = f"at +{at} after creation" if is_relative_at(at) else f"at {at}"
    if schedule.stagger_seconds > 0 and schedule.kind != "at":
        text += f", stagger {schedule.stagger_seconds}s"
    return text
