"""Run conditions: CEL over the slot's local time, ConfigMap/Secret keys, HTTP status.

All conditions must hold at the slot; the first that does not names itself in the
Skipped record. CEL programs are compiled once per expression.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import cel

from ..api import RunCondition
from .verdict import MET, Verdict

if TYPE_CHECKING:
    from .inputs import OrchestrationInputs

#: The variables an expression may use, with the sample values `check_expression` tries.
TIME_FIELDS = ("year", "month", "dayOfMonth", "dayOfWeek", "dayOfYear", "hour", "minute")
_SAMPLE = {"year": 2026, "month": 1, "dayOfMonth": 1, "dayOfWeek": 4, "dayOfYear": 1, "hour": 0, "minute": 0}


def time_fields(slot: datetime, tz: ZoneInfo) -> dict[str, int]:
    """The slot's local wall-clock reading; dayOfWeek counts from Sunday = 0, as in cron."""
    local = slot.astimezone(tz)
    return {
        "year": local.year,
        "month": local.month,
        "dayOfMonth": local.day,
        "dayOfWeek": local.isoweekday() % 7,
        "dayOfYear": local.timetuple().tm_yday,
        "hour": local.hour,
        "minute": local.minute,
    }


@functools.lru_cache(maxsize=1024)
def _program(expr: str) -> Any:
    return cel.compile(expr)


def check_expression(expr: str) -> str | None:
    """None when `expr` compiles and gives a bool over the time fields; else the CEL error text."""
    try:
        value = _program(expr).execute(dict(_SAMPLE))
    except (ValueError, RuntimeError, TypeError) as exc:
        return str(exc).strip()
    if not isinstance(value, bool):
        return f"must evaluate to true or false, got {type(value).__name__} {value!r}"
    return None


def label(cond: RunCondition, index: int) -> str:
    """How a condition is named in messages: its name, else `conditions[i]` and its kind."""
    if cond.name:
        return f"condition {cond.name!r}"
    kind = (
        "expression"
        if cond.expression is not None
        else "configMapKeyRef"
        if cond.config_map_key_ref
        else "secretKeyRef"
        if cond.secret_key_ref
        else "http"
    )
    return f"conditions[{index}] ({kind})"


def needs_io(conditions: Sequence[RunCondition] | None) -> bool:
    return any(c.expression is None for c in conditions or ())


def evaluate(
    conditions: Sequence[RunCondition] | None,
    slot: datetime,
    tz: ZoneInfo,
    inputs: OrchestrationInputs | None,
) -> Verdict:
    """Met when every condition holds at `slot`; otherwise the first that does not, named."""
    fields: dict[str, int] | None = None
    for i, cond in enumerate(conditions or ()):
        what = label(cond, i)
        if cond.expression is not None:
            fields = fields or time_fields(slot, tz)
            try:
                ok = _program(cond.expression).execute(dict(fields)) is True
            except (ValueError, RuntimeError, TypeError) as exc:
                return Verdict(False, f"{what}: {str(exc).strip()}", final=True)
            if not ok:
                shown = ", ".join(f"{k}={v}" for k, v in fields.items())
                return Verdict(False, f"{what} {cond.expression!r} is false at {shown}", final=True)
            continue
        if inputs is None or not inputs.checked:
            return Verdict(False, f"{what}: not checked yet", unknown=True)
        if cond.config_map_key_ref or cond.secret_key_ref:
            ref = cond.config_map_key_ref or cond.secret_key_ref
            assert ref is not None
            kind = "ConfigMap" if cond.config_map_key_ref else "Secret"
            value = inputs.keys.get((kind, ref.name, ref.key))
            if value is None:
                return Verdict(False, f"{what}: {kind} {ref.name} has no key {ref.key!r}", final=True)
            if ref.equals is not None and value != ref.equals:
                # a Secret's value is never shown
                got = "" if kind == "Secret" else f" (it is {value[:64]!r})"
                return Verdict(
                    False, f"{what}: {kind} {ref.name} key {ref.key!r} is not {ref.equals!r}{got}", final=True
                )
        elif cond.http is not None:
            answer = inputs.http.get(cond.http.url)
            if answer is None:
                return Verdict(False, f"{what}: {cond.http.url} not checked yet", unknown=True)
            if answer != cond.http.expect_status:
                got = f"HTTP {answer}" if isinstance(answer, int) else answer
                return Verdict(
                    False, f"{what}: {cond.http.url} answered {got}, expected {cond.http.expect_status}", final=True
                )
    return MET
