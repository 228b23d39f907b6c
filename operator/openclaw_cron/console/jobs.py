"""The jobs as the console shows them: a row per OpenClawCronJob, and its spec in words.

The jobs come from the operator's own view (the scheduler's copies of the objects, fed by its
watch): no extra API reads per page. Pure functions over the plain object dicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import naming as n
from ..api import Schedule
from ..schedule import describe, is_relative_at

#: The operator's jobs: all of them (namespace None) or one namespace's, as plain objects.
JobSource = Callable[[str | None], Iterable[Mapping[str, Any]]]

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_NUM = re.compile(r"^\d+$")


@dataclass(frozen=True)
class JobRow:
    """What the overview and the timeline need of one job."""

    namespace: str
    name: str
    uid: str
    created: datetime | None
    state: str
    schedule_words: str
    schedule: Schedule | None
    suspended: bool
    paused: bool
    next_run: datetime | None
    last_result: str
    consecutive_failures: int
    active: list[Mapping[str, Any]] = field(default_factory=list)
    depends_on: tuple[str, ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict, hash=False)


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return n.parse_time(str(text))
    except ValueError:
        return None


def job_row(body: Mapping[str, Any], default_tz: str = "UTC") -> JobRow:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    schedule: Schedule | None = None
    try:
        schedule = Schedule.model_validate(spec["schedule"]) if spec.get("schedule") else None
    except (ValueError, TypeError):
        schedule = None
    deps = tuple(str(j) for j in ((spec.get("dependsOn") or {}).get("jobs") or ()))
    if schedule is not None:
        words = schedule_words(schedule, default_tz)
    elif deps:
        mode = (spec.get("dependsOn") or {}).get("mode") or "All"
        words = f"after {' and '.join(deps) if mode == 'All' else ' or '.join(deps)} succeed" + (
            " (in order)" if mode == "Sequential" else ""
        )
    else:
        words = str(status.get("schedule") or "—")
    return JobRow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        created=_time(meta.get("creationTimestamp")),
        state=str(status.get("state") or "Pending"),
        schedule_words=words,
        schedule=schedule,
        suspended=bool(spec.get("suspend")),
        paused=status.get("state") == "Paused" or bool(status.get("paused")),
        next_run=_time(status.get("nextRunTime")),
        last_result=str(status.get("lastRunResult") or ""),
        consecutive_failures=int(status.get("consecutiveFailures") or 0),
        active=list(status.get("active") or []),
        depends_on=deps,
        body=body,
    )


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _cron_words(expr: str) -> str | None:
    """Common cron shapes in words; None when the expression is better shown as it is."""
    macros = {"@hourly": "every hour", "@daily": "every day at 00:00", "@midnight": "every day at 00:00",
              "@weekly": "every Sunday at 00:00", "@monthly": "on day 1 of every month at 00:00",
              "@yearly": "every 1 January at 00:00", "@annually": "every 1 January at 00:00"}  # fmt: skip
    text = expr.strip()
    if text in macros:
        return macros[text]
    fields = text.split()
    seconds = None
    if len(fields) == 6:
        seconds, fields = fields[0], fields[1:]
    if len(fields) != 5:
        return None
    minute, hour, dom, month, dow = fields
    if seconds is not None:
        if seconds.startswith("*/") and _NUM.match(seconds[2:]) and fields == ["*"] * 5:
            return f"every {_plural(int(seconds[2:]), 'second')}"
        if not (_NUM.match(seconds) and int(seconds) == 0):
            return None
    if dom != "*" or month != "*":
        return None
    if minute.startswith("*/") and _NUM.match(minute[2:]) and hour == "*" and dow == "*":
        return f"every {_plural(int(minute[2:]), 'minute')}"
    if minute == "*" and hour == "*" and dow == "*":
        return "every minute"
    if _NUM.match(minute) and hour == "*" and dow == "*":
        return f"every hour at :{int(minute):02d}"
    if _NUM.match(minute) and _NUM.match(hour):
        at = f"{int(hour):02d}:{int(minute):02d}"
        if dow == "*":
            return f"every day at {at}"
        if dow in ("1-5", "MON-FRI", "mon-fri"):
            return f"weekdays at {at}"
        if dow in ("0,6", "6,0", "SAT,SUN", "sat,sun"):
            return f"weekends at {at}"
        if _NUM.match(dow) and int(dow) <= 7:
            return f"every {_DAYS[int(dow) % 7]} at {at}"
    return None


def schedule_words(schedule: Schedule, default_tz: str = "UTC") -> str:
    """The schedule for a person: "every day at 07:00 (America/Los_Angeles)", "every 20m"."""
    if schedule.kind == "cron":
        words = _cron_words(schedule.expr or "")
        if words is None:
            return describe(schedule, default_tz)
        text = f"{words} ({schedule.tz or default_tz})"
    elif schedule.kind == "every":
        text = f"every {(schedule.every or '').strip()}"
        if schedule.anchor:
            text += f" from {schedule.anchor.strip()}"
    else:
        at = (schedule.at or "").strip()
        text = f"once, {at} after creation" if is_relative_at(at) else f"once at {at}"
    if schedule.stagger_seconds > 0 and schedule.kind != "at":
        text += f", up to {schedule.stagger_seconds}s later (stagger)"
    return text


def spec_words(body: Mapping[str, Any], default_tz: str = "UTC") -> list[tuple[str, str]]:
    """(label, text) pairs describing a job's spec; never a Secret's value (only its name and key)."""
    spec = body.get("spec") or {}
    row = job_row(body, default_tz)
    out: list[tuple[str, str]] = [("Schedule", row.schedule_words)]
    payload = spec.get("payload") or {}
    kind = payload.get("kind")
    if kind == "agentTurn":
        what = f"agent turn: {payload.get('message', '')!s}"
        if payload.get("model"):
            what += f" (model {payload['model']})"
    elif kind == "systemEvent":
        what = f"system event: {payload.get('text', '')!s}"
    elif kind == "command":
        cmd = " ".join(str(c) for c in [*(payload.get("command") or []), *(payload.get("args") or [])])
        what = f"command in {payload.get('image') or 'the runner image'}: {cmd}"
        names = [str(e.get("name")) for e in payload.get("env") or [] if isinstance(e, Mapping)]
        if names:
            what += f"; env {', '.join(names)}"  # names only: values may be secrets
    else:
        what = str(kind or "—")
    out.append(("Payload", what))
    delivery = spec.get("delivery") or {}
    if delivery:
        text = str(delivery.get("mode") or "announce")
        if delivery.get("channel"):
            text += f" to {delivery['channel']} {delivery.get('to', '')}".rstrip()
        if delivery.get("bestEffort"):
            text += " (best effort)"
        out.append(("Delivery", text))
    dep = spec.get("dependsOn") or {}
    if dep:
        text = f"{dep.get('mode') or 'All'} of {', '.join(str(j) for j in dep.get('jobs') or [])}"
        if dep.get("windowSeconds"):
            text += f", within {dep['windowSeconds']}s"
        out.append(("Depends on", text))
    conditions = spec.get("conditions") or []
    for c in conditions if isinstance(conditions, list) else []:
        if not isinstance(c, Mapping):
            continue
        if c.get("expression"):
            out.append(("Condition", f"expression {c['expression']}"))
        for key in ("configMapKeyRef", "secretKeyRef"):
            ref = c.get(key)
            if isinstance(ref, Mapping):
                kind_name = "ConfigMap" if key == "configMapKeyRef" else "Secret"
                if ref.get("equals") is None:
                    test = " exists"
                elif key == "secretKeyRef":
                    test = " equals the expected value"  # a Secret's value is never shown
                else:
                    test = f" equals {ref.get('equals')!s}"
                out.append(("Condition", f"{kind_name} {ref.get('name')} key {ref.get('key')}{test}"))
        if isinstance(c.get("http"), Mapping):
            http = c["http"]
            out.append(("Condition", f"HTTP {http.get('url')} answers {http.get('expectStatus', 200)}"))
    retry = spec.get("retry") or {}
    if retry.get("limit"):
        out.append(("Retry", f"up to {retry['limit']} more attempts, {retry.get('delaySeconds', 60)}s apart"))
    out.append(("Concurrency", str(spec.get("concurrencyPolicy") or "Forbid")))
    out.append(("Suspended", "yes" if spec.get("suspend") else "no"))
    return out
