"""Schedule math: parsers, cron across DST, every/at, stagger, catch-up, describe.

Cron results are checked two independent ways: against croniter's own zone-aware iteration
where no UTC offset change is involved, and against a brute-force scan of every real
instant (reading the local clock and matching the fields by hand) around real 2026 DST
transitions, where croniter's own zone handling differs from the rules we want.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openclaw_cron.api import Schedule
from openclaw_cron.schedule import (
    CATCH_UP_ALL_CAP,
    CatchUpDecision,
    JobClock,
    catch_up,
    check_cron,
    describe,
    next_after,
    next_n,
    parse_at,
    parse_duration,
    parse_instant,
    stagger,
    zone,
)

ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Moscow",
    "Africa/Cairo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Chatham",
]
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def clock(uid: str = "uid-1", created: datetime = CREATED, default_tz: str = "UTC", **fields: Any) -> JobClock:
    return JobClock(schedule=Schedule.model_validate(fields), created=created, uid=uid, default_tz=default_tz)


def cron(expr: str, tz: str = "UTC", **fields: Any) -> JobClock:
    return clock(kind="cron", expr=expr, tz=tz, **fields)


def local(times: list[datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).isoformat() for t in times]


# --- parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20m", timedelta(minutes=20)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        (" 2s ", timedelta(seconds=2)),
        ("1.5h", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1w2d3h4m5s6ms", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5, milliseconds=6)),
        ("0.001s", timedelta(milliseconds=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


BAD_UNIT = "expected a number and a unit (ms, s, m, h, d, w), e.g. 20m or 1h30m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20x", f'invalid duration "20x": {BAD_UNIT}'),
        ("", f'invalid duration "": {BAD_UNIT}'),
        ("20", f'invalid duration "20": {BAD_UNIT}'),
        ("m", f'invalid duration "m": {BAD_UNIT}'),
        ("1H", f'invalid duration "1H": {BAD_UNIT}'),
        (".5h", f'invalid duration ".5h": {BAD_UNIT}'),
        ("0s", 'invalid duration "0s": must be greater than 0'),
        ("0h0m", 'invalid duration "0h0m": must be greater than 0'),
        ("-5m", 'invalid duration "-5m": must be greater than 0'),
        ("0.0000001s", 'invalid duration "0.0000001s": must be greater than 0'),
        ("99999999999w", 'invalid duration "99999999999w": too large'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-12T18:00:00Z", utc(2026, 1, 12, 18)),
        ("2026-01-12T18:00:00", utc(2026, 1, 12, 18)),
        ("2026-01-12t18:00:00z", utc(2026, 1, 12, 18)),
        ("2026-01-12 18:00:00Z", utc(2026, 1, 12, 18)),
        ("2026-01-12T20:00:00+02:00", utc(2026, 1, 12, 18)),
        ("2026-01-12T13:00:00-05:00", utc(2026, 1, 12, 18)),
        ("2026-01-12T18:00:00.250Z", utc(2026, 1, 12, 18, 0, 0, 250000)),
        ("2026-01-12T18:00:00.123456789Z", utc(2026, 1, 12, 18, 0, 0, 123456)),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    got = parse_instant(text)
    assert got == expected
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tomorrow", 'invalid time "tomorrow": expected RFC 3339, e.g. 2026-01-12T18:00:00Z'),
        ("2026-01-12", 'invalid time "2026-01-12": expected RFC 3339, e.g. 2026-01-12T18:00:00Z'),
        ("2026-01-12T18:00Z", 'invalid time "2026-01-12T18:00Z": expected RFC 3339, e.g. 2026-01-12T18:00:00Z'),
        ("2026-13-01T00:00:00Z", 'invalid time "2026-13-01T00:00:00Z": month must be in 1..12'),
        ("2026-02-30T00:00:00Z", 'invalid time "2026-02-30T00:00:00Z": day is out of range for month'),
        ("2026-01-01T24:00:00Z", 'invalid time "2026-01-01T24:00:00Z": hour must be in 0..23'),
    ],
)
def test_parse_instant_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_instant(text)
    assert str(exc.value) == message


def test_parse_at() -> None:
    assert parse_at("2026-01-12T18:00:00Z", CREATED) == utc(2026, 1, 12, 18)
    assert parse_at("20m", CREATED) == CREATED + timedelta(minutes=20)
    with pytest.raises(ValueError) as exc:
        parse_at("soon", CREATED)
    assert str(exc.value) == (
        'invalid at "soon": expected an RFC 3339 time (e.g. 2026-01-12T18:00:00Z)'
        " or a duration after creation (e.g. 20m)"
    )
    with pytest.raises(ValueError, match=r'^invalid time "2026-13-01T00:00:00Z": month must be in 1\.\.12$'):
        parse_at("2026-13-01T00:00:00Z", CREATED)


def test_zone() -> None:
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert zone(None, "Asia/Kolkata") == ZoneInfo("Asia/Kolkata")
    assert zone(None) == ZoneInfo("UTC")
    assert zone("Etc/GMT+5") == ZoneInfo("Etc/GMT+5")


@pytest.mark.parametrize(
    "name", ["Mars/Base", "", "../etc/passwd", "/etc/localtime", "Europe/../UTC", "UTC\x00", "Europe"]
)
def test_zone_errors(name: str) -> None:
    with pytest.raises(ValueError) as exc:
        zone(name)
    assert str(exc.value) == f"unknown time zone {json_quote(name)}"


def test_zone_default_is_checked_too() -> None:
    with pytest.raises(ValueError, match=r'^unknown time zone "Nowhere/Land"$'):
        zone(None, "Nowhere/Land")


def json_quote(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


@pytest.mark.parametrize(
    "expr",
    [
        "0 7 * * *",
        "*/5 * * * *",
        "0 9-17 * * mon-fri",
        "0 0 1,15 * *",
        "0 0 L * *",
        "0 0 * * 1#2",
        "30 0 7 * * *",
        "*/10 * * * * *",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@midnight",
        "@Daily",
        "  0 7 * * *  ",
        "0 0 29 2 *",
    ],
)
def test_check_cron_accepts(expr: str) -> None:
    check_cron(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", 'invalid cron expression "61 * * * *": [61 * * * *] is not acceptable, out of range'),
        ("*/0 * * * *", "invalid cron expression \"*/0 * * * *\": [*/0 * * * *] step '0' in field 0 is not acceptable"),
        ("a b c d e", 'invalid cron expression "a b c d e": [a b c d e] is not acceptable'),
        ("1-70 * * * *", 'invalid cron expression "1-70 * * * *": 1-70 * * * * is out of bands'),
        ("0 0 31 4 *", 'invalid cron expression "0 0 31 4 *": never matches (failed to find next date)'),
        (
            "* * * * * * 2026",
            'invalid cron expression "* * * * * * 2026": 7 fields (with a year) are not supported;'
            " use 5 fields, or 6 with seconds first",
        ),
        (
            "* * * *",
            'invalid cron expression "* * * *": expected 5 fields (minute hour day-of-month month day-of-week)'
            " or 6 with seconds first, got 4",
        ),
        (
            "",
            'invalid cron expression "": expected 5 fields (minute hour day-of-month month day-of-week)'
            " or 6 with seconds first, got 0",
        ),
        (
            "@reboot",
            'invalid cron expression "@reboot": unsupported macro; use one of @yearly, @annually, @monthly,'
            " @weekly, @daily, @midnight, @hourly or 5 fields (6 with seconds first)",
        ),
        ("H * * * *", 'invalid cron expression "H * * * *": hashed (H) and random (R) fields are not supported'),
        ("R * * * *", 'invalid cron expression "R * * * *": hashed (H) and random (R) fields are not supported'),
        (
            "0 H(0-3) * * *",
            'invalid cron expression "0 H(0-3) * * *": hashed (H) and random (R) fields are not supported',
        ),
    ],
)
def test_check_cron_errors(expr: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_cron(expr)
    assert str(exc.value) == message


def test_six_fields_are_seconds_first() -> None:
    # croniter's own 6-field form puts seconds last; OpenClaw's puts them first.
    assert next_n(cron("5 4 * * * *"), utc(2026, 1, 1), 2) == [utc(2026, 1, 1, 0, 4, 5), utc(2026, 1, 1, 1, 4, 5)]
    assert next_n(cron("*/20 * * * * *"), utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 0, 0, 20),
        utc(2026, 1, 1, 0, 0, 40),
        utc(2026, 1, 1, 0, 1, 0),
    ]


def test_macros() -> None:
    start = utc(2026, 1, 1, 0, 0, 1)
    assert next_after(cron("@hourly"), start) == utc(2026, 1, 1, 1)
    assert next_after(cron("@daily"), start) == utc(2026, 1, 2)
    assert next_after(cron("@midnight"), start) == utc(2026, 1, 2)
    assert next_after(cron("@weekly"), start) == utc(2026, 1, 4)  # a Sunday
    assert next_after(cron("@monthly"), start) == utc(2026, 2, 1)
    assert next_after(cron("@yearly"), start) == utc(2027, 1, 1)
    assert next_after(cron("@annually"), start) == utc(2027, 1, 1)


# --- cron against croniter (no offset change involved) ---------------------------------------

minute_field = st.one_of(
    st.just("*"),
    st.integers(0, 59).map(str),
    st.sampled_from(["*/5", "*/15", "0,30", "10-20", "5-50/7", "0-59/20"]),
)
hour_field = st.one_of(
    st.just("*"), st.integers(0, 23).map(str), st.sampled_from(["*/3", "1-3", "9-17", "0,12", "2,3"])
)
dom_field = st.one_of(st.just("*"), st.sampled_from(["1", "15", "1,15", "L", "10-20", "*/10", "31"]))
month_field = st.one_of(st.just("*"), st.sampled_from(["1", "3", "3-4", "10-11", "*/2", "jan,jul"]))
dow_field = st.one_of(st.just("*"), st.sampled_from(["0", "1-5", "sat,sun", "mon", "5"]))
cron5 = st.tuples(minute_field, hour_field, dom_field, month_field, dow_field).map(" ".join)
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC))


def offset_constant(tz: ZoneInfo, start: datetime, end: datetime) -> bool:
    t = start - timedelta(hours=3)
    first = t.astimezone(tz).utcoffset()
    while t <= end + timedelta(hours=3):
        if t.astimezone(tz).utcoffset() != first:
            return False
        t += timedelta(minutes=30)
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=cron5, tz=st.sampled_from(ZONES), after=instants)
def test_cron_next_matches_croniter_without_offset_change(expr: str, tz: str, after: datetime) -> None:
    mine = next_after(cron(expr, tz), after)
    assert mine is not None
    assert mine > after
    native = croniter(expr, after.astimezone(ZoneInfo(tz))).get_next(datetime).astimezone(UTC)
    if offset_constant(ZoneInfo(tz), after, max(mine, native)):
        assert mine == native
    # Always: the local reading of the result matches the expression.
    reading = mine.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    assert croniter.match(expr, reading)


@settings(max_examples=40, deadline=None)
@given(expr=cron5, tz=st.sampled_from(ZONES), after=instants)
def test_next_n_is_iterated_next_after(expr: str, tz: str, after: datetime) -> None:
    job = cron(expr, tz)
    got = next_n(job, after, 4)
    expected = []
    t = after
    for _ in range(4):
        nxt = next_after(job, t)
        assert nxt is not None
        expected.append(nxt)
        t = nxt
    assert got == expected
    assert got == sorted(set(got))


# --- cron against brute force around real transitions ---------------------------------------

TRANSITIONS_2026 = [
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Europe/Berlin", utc(2026, 3, 29, 1)),
    ("Europe/Berlin", utc(2026, 10, 25, 1)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("America/St_Johns", utc(2026, 3, 8, 5, 30)),
    ("America/St_Johns", utc(2026, 11, 1, 4, 30)),
]


def test_transition_table_is_real() -> None:
    for tz, when in TRANSITIONS_2026:
        z = ZoneInfo(tz)
        assert (when - timedelta(seconds=1)).astimezone(z).utcoffset() != when.astimezone(z).utcoffset()


@dataclass(frozen=True)
class SimpleCron:
    """An expression built from plain value sets, so the oracle can match it by hand."""

    seconds: frozenset[int] | None  # None: 5-field
    minutes: frozenset[int]
    hours: frozenset[int] | None  # None: "*"

    @property
    def expr(self) -> str:
        def fmt(values: frozenset[int] | None) -> str:
            return "*" if values is None else ",".join(map(str, sorted(values)))

        five = f"{fmt(self.minutes)} {fmt(self.hours)} * * *"
        return five if self.seconds is None else f"{fmt(self.seconds)} {five}"

    def slots(self, tz: str, start: datetime, end: datetime) -> list[datetime]:
        """Every real instant in (start, end] whose local reading matches; repeats only for hour "*"."""
        z = ZoneInfo(tz)
        step = timedelta(seconds=1 if self.seconds is not None else 60)
        out = []
        t = start + step
        while t <= end:
            r = t.astimezone(z)
            if (
                r.minute in self.minutes
                and (self.hours is None or r.hour in self.hours)
                and (r.second in self.seconds if self.seconds is not None else r.second == 0)
                and (r.fold == 0 or self.hours is None)
            ):
                out.append(t)
            t += step
        return out


simple_crons = st.builds(
    SimpleCron,
    seconds=st.none(),
    minutes=st.frozensets(st.integers(0, 59), min_size=1, max_size=6),
    hours=st.one_of(st.none(), st.frozensets(st.integers(0, 4), min_size=1, max_size=3)),
)
second_crons = st.builds(
    SimpleCron,
    seconds=st.frozensets(st.integers(0, 59), min_size=1, max_size=3),
    minutes=st.frozensets(st.sampled_from([0, 15, 29, 30, 31, 45, 59]), min_size=1, max_size=3),
    hours=st.one_of(st.none(), st.frozensets(st.integers(0, 3), min_size=1, max_size=2)),
)


def check_against_brute_force(job_expr: SimpleCron, tz: str, start: datetime, end: datetime) -> None:
    expected = job_expr.slots(tz, start, end)
    job = cron(job_expr.expr, tz, catchUp="All")
    got = [t for t in next_n(job, start, len(expected) + 1) if t <= end]
    assert local(got, tz) == local(expected, tz)
    decision = catch_up(job, start, end, None)
    assert decision.missed + len(decision.run) == len(expected)
    assert [t for t, _ in decision.run] == expected[-CATCH_UP_ALL_CAP:]


@settings(max_examples=40, deadline=None)
@given(job_expr=simple_crons, transition=st.sampled_from(TRANSITIONS_2026), shift=st.integers(-240, 240))
def test_cron_matches_brute_force_around_dst(
    job_expr: SimpleCron, transition: tuple[str, datetime], shift: int
) -> None:
    tz, when = transition
    start = when + timedelta(minutes=shift) - timedelta(hours=6)
    check_against_brute_force(job_expr, tz, start, start + timedelta(hours=12))


@settings(max_examples=15, deadline=None)
@given(job_expr=second_crons, transition=st.sampled_from(TRANSITIONS_2026), shift=st.integers(-30, 30))
def test_six_field_cron_matches_brute_force_around_dst(
    job_expr: SimpleCron, transition: tuple[str, datetime], shift: int
) -> None:
    tz, when = transition
    start = when + timedelta(minutes=shift) - timedelta(hours=2)
    check_against_brute_force(job_expr, tz, start, start + timedelta(hours=4))


# --- cron across DST: explicit cases on the real 2026 dates -----------------------------------


def test_new_york_spring_forward_skips_the_missing_time() -> None:
    job = cron("30 2 * * *", "America/New_York")
    assert local(next_n(job, utc(2026, 3, 7), 3), "America/New_York") == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-09T02:30:00-04:00",  # 2026-03-08 02:30 does not exist: no run that day
        "2026-03-10T02:30:00-04:00",
    ]


def test_new_york_fall_back_runs_once_at_the_first_occurrence() -> None:
    job = cron("30 1 * * *", "America/New_York")
    assert local(next_n(job, utc(2026, 10, 31), 3), "America/New_York") == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    # Even when asked from inside the repeated hour, the second 01:30 is not a slot.
    assert next_after(job, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        ("America/New_York", utc(2026, 3, 8, 3)),
        ("America/New_York", utc(2026, 11, 1, 2)),
        ("Europe/Berlin", utc(2026, 3, 28, 20)),
        ("Europe/Berlin", utc(2026, 10, 24, 20)),
        ("Asia/Shanghai", utc(2026, 3, 8, 3)),
    ],
)
@pytest.mark.parametrize("expr", ["30 * * * *", "@hourly", "0 */1 * * *"])
def test_hourly_stays_hourly_in_real_time(tz: str, start: datetime, expr: str) -> None:
    got = next_n(cron(expr, tz), start, 10)
    assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(hours=1)] * 9


def test_new_york_hourly_runs_both_repeated_hours() -> None:
    got = next_n(cron("30 * * * *", "America/New_York"), utc(2026, 11, 1, 4), 4)
    assert local(got, "America/New_York") == [
        "2026-11-01T00:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:30:00-05:00",
    ]


def test_fixed_hour_with_minute_steps_runs_the_repeated_hour_once() -> None:
    got = next_n(cron("*/20 1 * * *", "America/New_York"), utc(2026, 11, 1, 4), 4)
    assert local(got, "America/New_York") == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:20:00-04:00",
        "2026-11-01T01:40:00-04:00",
        "2026-11-02T01:00:00-05:00",
    ]


def test_berlin_transitions() -> None:
    job = cron("30 2 * * *", "Europe/Berlin")
    assert local(next_n(job, utc(2026, 3, 28), 2), "Europe/Berlin") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert local(next_n(job, utc(2026, 10, 24, 12), 2), "Europe/Berlin") == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_lord_howe_half_hour_shift() -> None:
    tz = "Australia/Lord_Howe"
    # Spring forward 2026-10-04 02:00 → 02:30: 02:15 does not exist that day.
    assert local(next_n(cron("15 2 * * *", tz), utc(2026, 10, 2, 12), 2), tz) == [
        "2026-10-03T02:15:00+10:30",
        "2026-10-05T02:15:00+11:00",
    ]
    # Fall back 2026-04-05 02:00 → 01:30: 01:45 happens twice, runs once.
    assert local(next_n(cron("45 1 * * *", tz), utc(2026, 4, 4, 12), 2), tz) == [
        "2026-04-05T01:45:00+11:00",
        "2026-04-06T01:45:00+10:30",
    ]
    # Hour-wildcard expressions fire at every matching reading; with a 30-minute shift the
    # real spacing is 30 or 90 minutes around the change, never a lost or doubled hour.
    assert local(next_n(cron("30 * * * *", tz), utc(2026, 4, 4, 13), 4), tz) == [
        "2026-04-05T00:30:00+11:00",
        "2026-04-05T01:30:00+11:00",
        "2026-04-05T01:30:00+10:30",
        "2026-04-05T02:30:00+10:30",
    ]
    assert local(next_n(cron("0 * * * *", tz), utc(2026, 10, 3, 13), 4), tz) == [
        "2026-10-04T00:00:00+10:30",
        "2026-10-04T01:00:00+10:30",
        "2026-10-04T03:00:00+11:00",  # 02:00 does not exist
        "2026-10-04T04:00:00+11:00",
    ]


def test_shanghai_has_no_dst() -> None:
    got = next_n(cron("30 2 * * *", "Asia/Shanghai"), utc(2026, 3, 7), 3)
    assert got == [utc(2026, 3, 7, 18, 30), utc(2026, 3, 8, 18, 30), utc(2026, 3, 9, 18, 30)]


def test_default_zone_applies_when_tz_unset() -> None:
    job = clock(kind="cron", expr="0 7 * * *", default_tz="Asia/Kolkata")
    assert next_after(job, utc(2026, 1, 1)) == utc(2026, 1, 1, 1, 30)


def test_cron_stagger_shifts_every_slot() -> None:
    job = cron("0 * * * *", staggerSeconds=600)
    offset = stagger("uid-1", 600)
    assert offset > timedelta(0)
    got = next_n(job, utc(2026, 1, 1), 3)
    assert got == [utc(2026, 1, 1, h) + offset for h in (0, 1, 2)]
    # strictly after: from a staggered slot, the next one
    assert next_after(job, got[0]) == got[1]


def test_results_are_aware_utc() -> None:
    got = next_after(cron("0 7 * * *", "America/Los_Angeles"), utc(2026, 1, 1))
    assert got == utc(2026, 1, 1, 15)
    assert got is not None and got.tzinfo is UTC


def test_naive_inputs_are_utc() -> None:
    assert next_after(cron("0 7 * * *"), datetime(2026, 1, 1)) == utc(2026, 1, 1, 7)


# --- every and at --------------------------------------------------------------------------------


def test_every_counts_from_creation() -> None:
    job = clock(kind="every", every="20m")
    assert next_n(job, CREATED - timedelta(hours=1), 3) == [CREATED + timedelta(minutes=20 * k) for k in range(3)]
    assert next_after(job, CREATED) == CREATED + timedelta(minutes=20)
    assert next_after(job, CREATED + timedelta(minutes=20)) == CREATED + timedelta(minutes=40)
    assert next_after(job, CREATED + timedelta(minutes=59, seconds=59)) == CREATED + timedelta(hours=1)


def test_every_with_anchor() -> None:
    job = clock(kind="every", every="1.5h", anchor="2026-03-01T00:10:00Z")
    assert next_after(job, utc(2026, 1, 1)) == utc(2026, 3, 1, 0, 10)  # future anchor: first run there
    assert next_after(job, utc(2026, 3, 2, 12)) == utc(2026, 3, 2, 12, 10)
    assert next_n(job, utc(2026, 3, 1, 0, 10), 2) == [utc(2026, 3, 1, 1, 40), utc(2026, 3, 1, 3, 10)]


def test_every_ignores_dst() -> None:
    job = clock(kind="every", every="1h", anchor="2026-11-01T00:00:00Z")
    got = next_n(job, utc(2026, 11, 1, 3), 5)
    assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(hours=1)] * 4


def test_every_with_stagger() -> None:
    job = clock(kind="every", every="10m", staggerSeconds=60, uid="abc")
    offset = stagger("abc", 60)
    assert next_after(job, CREATED) == CREATED + offset if offset else CREATED + timedelta(minutes=10)
    assert next_after(job, CREATED + offset) == CREATED + timedelta(minutes=10) + offset


def test_at_absolute() -> None:
    job = clock(kind="at", at="2026-01-12T18:00:00Z", staggerSeconds=3600)
    assert next_after(job, CREATED) == utc(2026, 1, 12, 18)  # no stagger on a fixed instant
    assert next_after(job, utc(2026, 1, 12, 18)) is None
    assert next_n(job, CREATED, 5) == [utc(2026, 1, 12, 18)]


def test_at_relative_to_creation() -> None:
    job = clock(kind="at", at="20m")
    assert next_after(job, CREATED) == CREATED + timedelta(minutes=20)
    assert next_after(job, CREATED + timedelta(hours=1)) is None


def test_invalid_schedule_raises() -> None:
    with pytest.raises(ValueError, match=r'^invalid cron expression "nope"'):
        next_after(clock(kind="cron", expr="nope"), CREATED)
    with pytest.raises(ValueError, match=r"^schedule\.every is required when kind is every$"):
        next_after(clock(kind="every"), CREATED)


def test_next_n_zero() -> None:
    assert next_n(cron("* * * * *"), CREATED, 0) == []


# --- stagger -------------------------------------------------------------------------------------


@given(uid=st.text(min_size=1, max_size=40), seconds=st.integers(1, 86400))
def test_stagger_is_deterministic_and_bounded(uid: str, seconds: int) -> None:
    offset = stagger(uid, seconds)
    assert offset == stagger(uid, seconds)
    assert timedelta(0) <= offset < timedelta(seconds=seconds)
    assert offset.microseconds == 0


def test_stagger_zero_and_spread() -> None:
    assert stagger("anything", 0) == timedelta(0)
    values = {stagger(f"uid-{i}", 3600) for i in range(200)}
    assert len(values) > 150  # spreads, not constant


# --- catch-up --------------------------------------------------------------------------------------


def test_catch_up_nothing_due() -> None:
    job = cron("0 * * * *")
    assert catch_up(job, utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 59), None) == CatchUpDecision()
    assert catch_up(job, utc(2026, 1, 1, 5), utc(2026, 1, 1, 1), None) == CatchUpDecision()
    # since itself is excluded, now included
    assert catch_up(job, utc(2026, 1, 1, 1), utc(2026, 1, 1, 1), None) == CatchUpDecision()
    assert catch_up(job, utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 1), None).run == [(utc(2026, 1, 1, 1), "Schedule")]


@pytest.mark.parametrize("policy", ["None", "Latest", "All"])
def test_catch_up_on_time_slot_runs_as_schedule(policy: str) -> None:
    job = cron("*/10 * * * *", catchUp=policy)
    d = catch_up(job, utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 10, 29), 60)
    assert d == CatchUpDecision(run=[(utc(2026, 1, 1, 0, 10), "Schedule")], missed=0, last_missed=None)


def test_catch_up_none_after_downtime() -> None:
    job = cron("*/10 * * * *", catchUp="None")
    # late by 31s: not on time any more
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 0, 31), None)
    assert d == CatchUpDecision(run=[], missed=6, last_missed=utc(2026, 1, 1, 1))
    # on time: runs the newest, the older ones are missed
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 0, 30), None)
    assert d == CatchUpDecision(run=[(utc(2026, 1, 1, 1), "Schedule")], missed=5, last_missed=utc(2026, 1, 1, 0, 50))


def test_catch_up_latest() -> None:
    job = cron("*/10 * * * *", catchUp="Latest")
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 5), None)
    assert d == CatchUpDecision(run=[(utc(2026, 1, 1, 1), "CatchUp")], missed=5, last_missed=utc(2026, 1, 1, 0, 50))
    # with a deadline the newest slot is still eligible (300s late, deadline 300)
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 5), 300)
    assert d.run == [(utc(2026, 1, 1, 1), "CatchUp")]
    # ... and not at 301s
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 5, 1), 300)
    assert d == CatchUpDecision(run=[], missed=6, last_missed=utc(2026, 1, 1, 1))


def test_catch_up_deadline_binds_the_on_time_slot_too() -> None:
    job = cron("*/10 * * * *", catchUp="None")
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 0, 10, 5), 0)
    assert d == CatchUpDecision(run=[], missed=1, last_missed=utc(2026, 1, 1, 0, 10))


def test_catch_up_all_runs_eligible_oldest_first() -> None:
    job = cron("*/10 * * * *", catchUp="All")
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 0, 10), None)
    assert d.run == [(utc(2026, 1, 1, 0, m), "CatchUp") for m in (10, 20, 30, 40, 50)] + [
        (utc(2026, 1, 1, 1), "Schedule")
    ]
    assert (d.missed, d.last_missed) == (0, None)
    # deadline 1500s: only slots at most 25 minutes old
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 1, 0, 10), 1500)
    assert d.run == [
        (utc(2026, 1, 1, 0, 40), "CatchUp"),
        (utc(2026, 1, 1, 0, 50), "CatchUp"),
        (utc(2026, 1, 1, 1), "Schedule"),
    ]
    assert (d.missed, d.last_missed) == (3, utc(2026, 1, 1, 0, 30))


def test_catch_up_all_is_capped_keeping_the_newest() -> None:
    job = cron("* * * * *", catchUp="All")
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 2, 0, 0, 40), None)  # 1440 slots
    assert len(d.run) == CATCH_UP_ALL_CAP
    assert d.run[0] == (utc(2026, 1, 2) - timedelta(minutes=CATCH_UP_ALL_CAP - 1), "CatchUp")
    assert d.run[-1] == (utc(2026, 1, 2), "CatchUp")
    assert d.missed == 1440 - CATCH_UP_ALL_CAP
    assert d.last_missed == utc(2026, 1, 2) - timedelta(minutes=CATCH_UP_ALL_CAP)


def test_catch_up_huge_gap_every_second_for_30_days() -> None:
    job = clock(kind="every", every="1s", catchUp="Latest", anchor="2026-01-01T00:00:00Z")
    now = utc(2026, 1, 31, 0, 0, 0, 500000)
    d = catch_up(job, utc(2026, 1, 1), now, None)
    assert d == CatchUpDecision(
        run=[(utc(2026, 1, 31), "Schedule")], missed=30 * 86400 - 1, last_missed=utc(2026, 1, 30, 23, 59, 59)
    )
    d = catch_up(
        clock(kind="every", every="1s", catchUp="All", anchor="2026-01-01T00:00:00Z"), utc(2026, 1, 1), now, 60
    )
    # now is half a second past the newest slot: 60 slots are at most 60s old
    assert [t for t, _ in d.run] == [utc(2026, 1, 31) - timedelta(seconds=s) for s in range(59, -1, -1)]
    assert d.missed == 30 * 86400 - 60


def test_catch_up_huge_gap_per_second_cron_for_a_week_across_dst() -> None:
    # Every second, every real instant: DST changes nothing about the count.
    job = cron("* * * * * *", "America/New_York", catchUp="All")
    since, now = utc(2026, 3, 4), utc(2026, 3, 11)
    d = catch_up(job, since, now, None)
    assert d.missed + len(d.run) == 7 * 86400
    assert len(d.run) == CATCH_UP_ALL_CAP
    assert d.last_missed == now - timedelta(seconds=CATCH_UP_ALL_CAP)
    # Every second of the 02:00 hour: 2026-03-08 has none.
    d = catch_up(cron("* * 2 * * *", "America/New_York", catchUp="None"), since, now, None)
    assert (d.run, d.missed) == ([], 6 * 3600)
    assert d.last_missed == datetime(2026, 3, 10, 2, 59, 59, tzinfo=ZoneInfo("America/New_York"))
    # Every second of the 01:00 hour across fall back: the repeated hour runs once.
    d = catch_up(cron("* * 1 * * *", "America/New_York", catchUp="None"), utc(2026, 10, 29), utc(2026, 11, 5), None)
    assert d.missed == 7 * 3600


def test_catch_up_huge_gap_sparse_days() -> None:
    # weekdays at 09:00 and 17:30 for two years of downtime: counted per day, not iterated
    job = cron("0,30 9,17 * * mon-fri", "Europe/Berlin", catchUp="Latest")
    d = catch_up(job, utc(2024, 1, 1), utc(2026, 1, 1), None)
    weekdays = sum(1 for i in range(731) if (datetime(2024, 1, 1) + timedelta(days=i)).weekday() < 5)
    assert d.missed + len(d.run) == weekdays * 4
    assert d.run == [(datetime(2025, 12, 31, 17, 30, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC), "CatchUp")]


def test_catch_up_counts_match_enumeration() -> None:
    job = cron("*/7 1-3 * * *", "America/New_York", catchUp="None")
    since, now = utc(2026, 10, 25), utc(2026, 11, 8)
    d = catch_up(job, since, now, None)
    slots = next_n(job, since, 1000)
    assert d.missed == len([s for s in slots if s <= now])


def test_catch_up_with_stagger() -> None:
    job = cron("0 * * * *", staggerSeconds=3600, uid="u", catchUp="All")
    offset = stagger("u", 3600)
    d = catch_up(job, utc(2026, 1, 1), utc(2026, 1, 1, 3) + offset, None)
    assert [t for t, _ in d.run] == [utc(2026, 1, 1, h) + offset for h in (0, 1, 2, 3)]


def test_catch_up_at() -> None:
    job = clock(kind="at", at="2026-01-12T18:00:00Z", catchUp="Latest")
    assert catch_up(job, CREATED, utc(2026, 1, 12, 18, 0, 1), None).run == [(utc(2026, 1, 12, 18), "Schedule")]
    assert catch_up(job, CREATED, utc(2026, 1, 13), 600) == CatchUpDecision(missed=1, last_missed=utc(2026, 1, 12, 18))
    assert catch_up(job, utc(2026, 1, 12, 18), utc(2026, 1, 13), None) == CatchUpDecision()


# --- describe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"kind": "cron", "expr": "0 7 * * *", "tz": "America/Los_Angeles"}, "0 7 * * * (America/Los_Angeles)"),
        ({"kind": "cron", "expr": "@daily"}, "@daily (Europe/Berlin)"),
        ({"kind": "every", "every": "20m"}, "every 20m"),
        ({"kind": "every", "every": "20m", "anchor": "2026-01-01T00:00:00Z"}, "every 20m from 2026-01-01T00:00:00Z"),
        ({"kind": "at", "at": "2026-01-12T18:00:00Z"}, "at 2026-01-12T18:00:00Z"),
        ({"kind": "at", "at": "20m"}, "at +20m after creation"),
        ({"kind": "every", "every": "1h", "staggerSeconds": 30}, "every 1h, stagger 30s"),
        ({"kind": "cron", "expr": "0 * * * *", "tz": "UTC", "staggerSeconds": 90}, "0 * * * * (UTC), stagger 90s"),
    ],
)
def test_describe(fields: dict[str, Any], text: str) -> None:
    assert describe(Schedule.model_validate(fields), "Europe/Berlin") == text
