"""Backfill: one run per slot of a past range, asked for through an annotation.

`cron.openclaw.io/backfill: {"from": ..., "to": ..., "max": 100, "id": "..."}`. The request
id makes it idempotent: the status keeps the id and a cursor (the next slot to start), so
asking again with the same id, or an operator restart, never runs a slot twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import naming as n
from .. import schedule as sched
from ..api import BackfillStatus

DEFAULT_MAX = 100
#: No request may ask for more runs than this, whatever its max says.
HARD_MAX = 1000


@dataclass(frozen=True)
class BackfillRequest:
    id: str
    start: datetime
    end: datetime
    max: int


class BackfillError(ValueError):
    """The annotation cannot be acted on; the message says why."""


def parse_request(text: str, now: datetime | None = None) -> BackfillRequest:
    """The annotation's JSON, checked: both ends RFC 3339, from ≤ to, to not in the future, 1 ≤ max ≤ 1000."""
    where = f"annotation {n.ANNOTATION_BACKFILL}"
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BackfillError(f"{where}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BackfillError(f'{where}: must be a JSON object {{"from": ..., "to": ..., "max": ..., "id": ...}}')
    unknown = sorted(set(raw) - {"from", "to", "max", "id"})
    if unknown:
        raise BackfillError(f"{where}: unknown field {unknown[0]!r}")
    ends: list[datetime] = []
    for key in ("from", "to"):
        value = raw.get(key)
        if not isinstance(value, str):
            raise BackfillError(f"{where}: {key} is required (an RFC 3339 time)")
        try:
            ends.append(sched.parse_instant(value))
        except ValueError as exc:
            raise BackfillError(f"{where}: {key}: {exc}") from None
    start, end = ends
    if end < start:
        raise BackfillError(f"{where}: from ({n.rfc3339(start)}) is after to ({n.rfc3339(end)})")
    if now is not None and end > now:
        raise BackfillError(f"{where}: to ({n.rfc3339(end)}) is in the future (now is {n.rfc3339(now)})")
    limit = raw.get("max", DEFAULT_MAX)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= HARD_MAX:
        raise BackfillError(f"{where}: max must be an integer from 1 to {HARD_MAX}, got {json.dumps(limit)}")
    rid = raw.get("id")
    if rid is None:
        rid = request_id(text)
    if not isinstance(rid, str) or not rid or len(rid) > 64:
        raise BackfillError(f"{where}: id must be a non-empty string of at most 64 characters")
    return BackfillRequest(rid, start, end, limit)


def slots(clock: sched.JobClock, req: BackfillRequest) -> list[datetime]:
    """The range's slots, oldest first; more than `req.max` raises (the request is refused, not cut)."""
    out: list[datetime] = []
    at = sched.next_after(clock, req.start - _EPSILON)
    while at is not None and at <= req.end:
        out.append(at)
        if len(out) > req.max:
            raise BackfillError(
                f"annotation {n.ANNOTATION_BACKFILL}: the range {n.rfc3339(req.start)} .. {n.rfc3339(req.end)}"
                f" has more than max={req.max} slots; narrow it or raise max (at most {HARD_MAX})"
            )
        at = sched.next_after(clock, at)
    return out


def begin(clock: sched.JobClock | None, req: BackfillRequest) -> BackfillStatus:
    """The status of a new request: Running with a cursor at the first slot, or Refused/Completed."""
    common = {"id": req.id, "from": n.rfc3339(req.start), "to": n.rfc3339(req.end)}
    if clock is None:
        return BackfillStatus.model_validate(
            {**common, "state": "Refused", "message": "the job has no schedule of its own, so no slots to backfill"}
        )
    try:
        found = slots(clock, req)
    except BackfillError as exc:
        return BackfillStatus.model_validate({**common, "state": "Refused", "message": str(exc)})
    return BackfillStatus.model_validate(
        {
            **common,
            "total": len(found),
            "nextSlot": n.rfc3339(found[0]) if found else None,
            "state": "Running" if found else "Completed",
            "message": None if found else "no slots in the range",
        }
    )


def advance(clock: sched.JobClock, state: BackfillStatus) -> BackfillStatus:
    """The status after the cursor's slot was started."""
    assert state.next_slot is not None
    end = n.parse_time(state.to)
    nxt = sched.next_after(clock, n.parse_time(state.next_slot))
    more = nxt is not None and nxt <= end and state.started + 1 < state.total
    return state.model_copy(
        update={
            "started": state.started + 1,
            "next_slot": n.rfc3339(nxt) if more and nxt else None,
            "state": "Running" if more else "Completed",
        }
    )


_EPSILON = timedelta(microseconds=1)


def request_id(text: str) -> str:
    """The id of a request that names none (or that cannot be read): a hash of its text."""
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"]:
        return str(raw["id"])[:64]
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def refused(rid: str, message: str) -> BackfillStatus:
    return BackfillStatus.model_validate({"id": rid, "from": "", "to": "", "state": "Refused", "message": message})
