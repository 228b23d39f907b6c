"""`kubectl openclaw next`: the next due times of a job or of a cron expression."""

from __future__ import annotations

from datetime import datetime

from .. import naming as n
from ..api import Schedule
from ..humanize import relative
from .cluster import Ctx
from .common import EXIT_FAILURE, EXIT_OK, CliError, dump, parse_time, table


def _zone_label(tz: str) -> str:
    return f"LOCAL ({tz})"


def next_times(
    schedule: Schedule, created: datetime, uid: str, default_tz: str, after: datetime, count: int
) -> list[datetime]:
    from .. import schedule as sched

    clock = sched.JobClock(schedule=schedule, created=created, uid=uid, default_tz=default_tz)
    return sched.next_n(clock, after, count)


def print_times(ctx: Ctx, times: list[datetime], tz_name: str, now: datetime) -> None:
    from .. import schedule as sched

    if ctx.args.output in ("json", "yaml"):
        ctx.out.write(dump([n.rfc3339(t) for t in times], ctx.args.output))
        return
    if not times:
        print("No upcoming runs.", file=ctx.err)
        return
    tz = sched.zone(tz_name)
    headers = ["NEXT RUN (UTC)", "IN"]
    if tz_name != "UTC":
        headers.insert(1, _zone_label(tz_name))
    rows = []
    for t in times:
        row = [n.rfc3339(t), relative(t, now)]
        if tz_name != "UTC":
            row.insert(1, t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"))
        rows.append(row)
    ctx.out.write(table(headers, rows))


def cmd_next(ctx: Ctx) -> int:
    from .. import schedule as sched

    a = ctx.args
    now = ctx.now()
    if a.expr is not None:
        if a.name:
            raise CliError("next: give either NAME or --expr, not both")
        try:
            schedule = Schedule(kind="cron", expr=a.expr, tz=a.tz)
            sched.check_cron(a.expr)
            sched.zone(a.tz, a.default_tz)
            times = next_times(schedule, now, "", a.default_tz, now, a.count)
        except ValueError as exc:
            raise CliError(f"next: {exc}") from None
        print_times(ctx, times, a.tz or a.default_tz, now)
        return EXIT_OK
    if not a.name:
        raise CliError("next: NAME or --expr is required")
    job = ctx.cluster.get(a.name)
    spec = job.get("spec") or {}
    meta = job.get("metadata") or {}
    try:
        schedule = Schedule.model_validate(spec.get("schedule") or {})
        created = parse_time(meta.get("creationTimestamp")) or now
        times = next_times(schedule, created, str(meta.get("uid", "")), a.default_tz, now, a.count)
    except ValueError as exc:
        print(f"error: {a.name}: the schedule is invalid: {exc}", file=ctx.err)
        return EXIT_FAILURE
    if spec.get("suspend"):
        print(f"warning: {a.name} is suspended; these are the times it would run once resumed", file=ctx.err)
    tz_name = schedule.tz or a.default_tz if schedule.kind == "cron" else a.tz or "UTC"
    print_times(ctx, times, tz_name, now)
    return EXIT_OK
