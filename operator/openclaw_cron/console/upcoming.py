"""What will run: a job's due slots in a window after now, from the operator's own schedule math.

`schedule.between` walks the same slots `next_n` gives the scheduler, so cron (5/6 fields, macros), every (with
its anchor), at (absolute or after creation), the time zone (DST included) and the per-job
stagger come out exactly as the operator will run them. A job due every second has 86,400
slots a day: enumeration stops at `cap`, and the caller says so.
"""

from __future__ import annotations

from datetime import datetime

from .. import schedule as sched
from .jobs import JobRow

#: At most this many slots are enumerated per job and window.
CAP = 2000


def upcoming(row: JobRow, start: datetime, end: datetime, default_tz: str = "UTC", cap: int = CAP
             ) -> tuple[list[datetime], bool]:  # fmt: skip
    """The job's slots in (start, end), and whether there were more than `cap`.

    Nothing for a job that will not run on its own: suspended, paused, no schedule (dependency-only),
    or an invalid schedule.
    """
    if row.schedule is None or row.suspended or row.paused or row.created is None or end <= start:
        return [], False
    clock = sched.JobClock(schedule=row.schedule, created=row.created, uid=row.uid, default_tz=default_tz)
    try:
        slots = sched.between(clock, start, end, cap + 1)
    except ValueError:
        return [], False
    return slots[:cap], len(slots) > cap
