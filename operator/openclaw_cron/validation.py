"""Spec validation with messages for users: which field, and why.

Works on the raw spec dict (camelCase, as the API server stores it) so that schema errors
carry the paths users wrote (`spec.payload.env[0].name`). The CRD's schema and CEL rules
refuse much of this at apply time already; this module is what the operator trusts, and
it also checks what CEL cannot (cron syntax, zones, durations, times).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from . import schedule as sched
from .api import OpenClawCronJobSpec
from .naming import rfc3339
from .orchestration import backfill, conditions, dependencies


@dataclass(frozen=True)
class FieldError:
    """One problem: a dotted camelCase path (`spec.schedule.expr`) and what is wrong there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML/JSON."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _path(loc: tuple[int | str, ...], root: str = "spec") -> str:
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:  # a map key such as a label name
            out += f"[{_show(part)}]"
    return out


#: Human wording for the patterns in api.py, keyed by the field's last path element.
_PATTERN_MESSAGES = {
    "name": 'must be a valid environment variable name (letters, digits, "-", "_" and "."; not starting with a digit)',
    "url": "must be an http:// or https:// URL",
    "serviceAccountName": 'must be a DNS-1123 label (lowercase letters, digits and "-", at most 63)',
}

_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
}


def _message(err: ErrorDetails) -> str:
    """Pydantic's complaint in the words users read in `kubectl describe`."""
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    last = err["loc"][-1] if err["loc"] else ""
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return f"unknown field {_show(last)}"
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, got {_show(value)}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}, got {_show(value)}"
    if kind == "string_pattern_mismatch":
        if last == "every" and isinstance(value, str):
            try:
                sched.parse_duration(value)
            except ValueError as exc:
                return str(exc)
        if isinstance(last, str) and last in _PATTERN_MESSAGES:
            return f"{_PATTERN_MESSAGES[last]}, got {_show(value)}"
        return f"must match {ctx['pattern']}, got {_show(value)}"
    if kind == "string_too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"must have at least {n} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx['max_length']} characters, got {len(str(value))}"
    if kind == "too_short":
        least = ctx["min_length"]
        return f"must have at least {least} item{'s' if least != 1 else ''}, got {ctx.get('actual_length', '?')}"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items, got {ctx.get('actual_length', '?')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, got {_show(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {_show(value)}"
    msg = err["msg"]
    return "must be" + msg[len("Input should be") :] if msg.startswith("Input should be") else msg


# --- cross-field rules ----------------------------------------------------------------------

_SCHEDULE_FIELDS = {"expr": "cron", "every": "every", "anchor": "every", "at": "at"}
_REQUIRED_SCHEDULE_FIELD = {"cron": "expr", "every": "every", "at": "at"}

#: Payload fields (camelCase) and the one kind each belongs to.
_PAYLOAD_FIELDS = {
    "message": "agentTurn",
    "model": "agentTurn",
    "thinking": "agentTurn",
    "name": "agentTurn",
    "timeoutSeconds": "agentTurn",
    "text": "systemEvent",
    "image": "command",
    "imagePullPolicy": "command",
    "command": "command",
    "args": "command",
    "env": "command",
    "envFrom": "command",
    "workingDir": "command",
    "resources": "command",
}
_REQUIRED_PAYLOAD_FIELD = {"agentTurn": "message", "systemEvent": "text", "command": "image"}
_SESSION_TARGET = {"systemEvent": "main", "agentTurn": "isolated"}

#: `every` shorter than this would give two runs the same Pod name (names carry Unix seconds).
_MIN_EVERY_SECONDS = 1


def _kind_fields(
    section: str, model: Any, kind: str, only_for: Mapping[str, str], required_for: Mapping[str, str]
) -> list[FieldError]:
    """Fields of `section` that belong to another kind, and the field this kind requires."""
    values = model.model_dump(by_alias=True, exclude_none=True)
    errors = [
        FieldError(f"spec.{section}.{name}", f"only allowed when {section}.kind is {owner}")
        for name, owner in only_for.items()
        if name in values and kind != owner
    ]
    required = required_for[kind]
    if required not in values:
        errors.append(FieldError(f"spec.{section}.{required}", f"required when {section}.kind is {kind}"))
    return errors


def _check_schedule(
    spec: OpenClawCronJobSpec, default_tz: str, now: datetime | None, created: datetime | None
) -> list[FieldError]:
    s = spec.schedule
    if s is None:  # only a dependency-triggered job may go without
        return [] if spec.depends_on is not None else [FieldError("spec.schedule", "required")]
    errors: list[FieldError] = _kind_fields("schedule", s, s.kind, _SCHEDULE_FIELDS, _REQUIRED_SCHEDULE_FIELD)

    def check(path: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValueError as exc:
            errors.append(FieldError(path, str(exc)))
            return None

    if s.expr is not None and s.kind == "cron":
        check("spec.schedule.expr", sched.check_cron, s.expr)
    if s.tz is not None:
        check("spec.schedule.tz", sched.zone, s.tz)
    elif s.kind == "cron":
        try:
            sched.zone(None, default_tz)
        except ValueError as exc:
            errors.append(FieldError("spec.schedule.tz", f"{exc} (the operator's default zone); set schedule.tz"))
    if s.every is not None and s.kind == "every":
        every = check("spec.schedule.every", sched.parse_duration, s.every)
        if every is not None and every.total_seconds() < _MIN_EVERY_SECONDS:
            errors.append(
                FieldError("spec.schedule.every", f"must be at least {_MIN_EVERY_SECONDS}s, got {_show(s.every)}")
            )
    if s.anchor is not None and s.kind == "every":
        check("spec.schedule.anchor", sched.parse_instant, s.anchor)
    if s.at is not None and s.kind == "at":
        errors.extend(_check_at(s.at, now, created))
    return errors


def _check_at(at: str, now: datetime | None, created: datetime | None) -> list[FieldError]:
    path = "spec.schedule.at"
    try:
        when = sched.parse_at(at, created or now or datetime.now(UTC))
    except ValueError as exc:
        return [FieldError(path, str(exc))]
    if sched.is_relative_at(at):
        return []
    # A one-shot time already past when the resource appeared can never run: say so instead
    # of silently "missing" it. (Once created, a passed `at` is the normal end of the job.)
    if created is not None:
        if when < _utc(created):
            return [
                FieldError(path, f"{_show(at)} is in the past (before the resource was created at {rfc3339(created)})")
            ]
    elif now is not None and when < _utc(now):
        return [FieldError(path, f"{_show(at)} is in the past (now is {rfc3339(now)})")]
    return []


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _check_payload(spec: OpenClawCronJobSpec) -> list[FieldError]:
    p = spec.payload
    errors: list[FieldError] = _kind_fields("payload", p, p.kind, _PAYLOAD_FIELDS, _REQUIRED_PAYLOAD_FIELD)
    target = _SESSION_TARGET.get(p.kind)
    if target is not None and spec.session_target is not None and spec.session_target != target:
        errors.append(
            FieldError(
                "spec.sessionTarget", f"must be {target} when payload.kind is {p.kind}, got {spec.session_target}"
            )
        )
    if p.timeout_seconds is not None and p.kind == "agentTurn" and p.timeout_seconds > spec.timeout_seconds:
        errors.append(
            FieldError(
                "spec.payload.timeoutSeconds",
                f"must be at most spec.timeoutSeconds ({spec.timeout_seconds}), got {p.timeout_seconds}",
            )
        )
    return errors


def _check_delivery(spec: OpenClawCronJobSpec) -> list[FieldError]:
    d = spec.delivery
    if d is None:
        return []
    if spec.payload.kind != "agentTurn":
        # Only an agent turn has an answer to deliver; a system event or a command has none.
        return [FieldError("spec.delivery", f"only allowed when payload.kind is agentTurn, got {spec.payload.kind}")]
    errors: list[FieldError] = []
    if d.channel == "last":
        errors.append(
            FieldError(
                "spec.delivery.channel",
                'channel "last" is not supported by the gateway\'s hooks API; name the channel (e.g. telegram)',
            )
        )
    if d.channel is not None and d.to is None:
        errors.append(FieldError("spec.delivery.to", "required when delivery.channel is set"))
    if d.account_id and (d.channel is None or d.to is None):
        errors.append(FieldError("spec.delivery.accountId", "needs delivery.channel and delivery.to"))
    return errors


def _check_retry(spec: OpenClawCronJobSpec) -> list[FieldError]:
    r = spec.retry
    if r.max_delay_seconds is None:
        return []
    if r.backoff != "Exponential":
        return [FieldError("spec.retry.maxDelaySeconds", "only allowed when retry.backoff is Exponential")]
    if r.max_delay_seconds < r.delay_seconds:
        return [
            FieldError(
                "spec.retry.maxDelaySeconds",
                f"must be at least retry.delaySeconds ({r.delay_seconds}), got {r.max_delay_seconds}",
            )
        ]
    return []


#: The operator setting that lists the hosts HTTP conditions may call.
HTTP_HOSTS_SETTING = "OPENCLAW_CRON_HTTP_CONDITION_HOSTS"


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """`host` is listed, or matches a `*.example.com` entry (a subdomain, not the domain itself)."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def _check_orchestration(
    spec: OpenClawCronJobSpec,
    name: str | None,
    namespace_jobs: Mapping[str, Sequence[str]] | None,
    allowed_http_hosts: Sequence[str],
) -> list[FieldError]:
    errors: list[FieldError] = []
    if spec.depends_on is not None:
        errors += [
            FieldError("spec.dependsOn.jobs", msg)
            for msg in dependencies.graph_errors(name or "", spec.depends_on, namespace_jobs)
        ]
    for i, cond in enumerate(spec.conditions or ()):
        at = f"spec.conditions[{i}]"
        given = cond.model_dump(by_alias=True, exclude_none=True)
        kinds = [k for k in ("expression", "configMapKeyRef", "secretKeyRef", "http") if k in given]
        if len(kinds) != 1:
            got = " and ".join(kinds) if kinds else "none"
            errors.append(
                FieldError(at, f"needs exactly one of expression, configMapKeyRef, secretKeyRef, http; got {got}")
            )
            continue
        if cond.expression is not None:
            problem = conditions.check_expression(cond.expression)
            if problem is not None:
                errors.append(
                    FieldError(f"{at}.expression", f"invalid CEL expression {_show(cond.expression)}: {problem}")
                )
        if cond.http is not None:
            host = urlsplit(cond.http.url).hostname or ""
            if not host_allowed(host, allowed_http_hosts):
                listed = ", ".join(allowed_http_hosts) if allowed_http_hosts else "none by default"
                errors.append(
                    FieldError(
                        f"{at}.http.url",
                        f"host {_show(host)} is not allowed: HTTP conditions are sent from the operator, so only hosts"
                        f" in the operator setting {HTTP_HOSTS_SETTING} may be checked (allowed: {listed})",
                    )
                )
    levels = spec.notify.escalation if spec.notify and spec.notify.escalation else []
    for i in range(1, len(levels)):
        before, here = levels[i - 1].after_seconds, levels[i].after_seconds
        if here <= before:
            errors.append(
                FieldError(
                    f"spec.notify.escalation[{i}].afterSeconds",
                    f"must be greater than escalation[{i - 1}].afterSeconds ({before}), got {here}",
                )
            )
    return errors


def validate_backfill(
    text: str,
    spec: dict[str, Any],
    *,
    created: datetime,
    uid: str = "",
    default_tz: str = "UTC",
    now: datetime | None = None,
) -> list[str]:
    """Problems with a backfill request (the annotation's JSON) for this job; [] when it can run."""
    try:
        req = backfill.parse_request(text, now)
    except backfill.BackfillError as exc:
        return [str(exc)]
    try:
        model = OpenClawCronJobSpec.model_validate(spec)
    except ValidationError:
        return ["the spec is invalid; fix it first"]
    if model.schedule is None:
        return ["the job has no schedule of its own, so no slots to backfill"]
    clock = sched.JobClock(schedule=model.schedule, created=created, uid=uid, default_tz=default_tz)
    try:
        backfill.slots(clock, req)
    except backfill.BackfillError as exc:
        return [str(exc)]
    return []


def validate(
    spec: dict[str, Any],
    *,
    default_tz: str = "UTC",
    now: datetime | None = None,
    created: datetime | None = None,
    name: str | None = None,
    namespace_jobs: Mapping[str, Sequence[str]] | None = None,
    allowed_http_hosts: Sequence[str] = (),
) -> list[FieldError]:
    """All problems with a raw spec, schema errors first; [] when it is valid.

    `created` (the resource's creationTimestamp) enables the "at in the past" rule; with only
    `now` (a resource not created yet) the same rule uses now. `name` (the job's) enables the
    self-reference rule of dependsOn, `namespace_jobs` (each job of the namespace → the jobs
    it depends on) the missing-job and cycle rules; `allowed_http_hosts` is the operator's list.
    """
    if isinstance(spec, Mapping) and not isinstance(spec, dict):
        spec = dict(spec)  # e.g. kopf's Spec view; strict validation wants a plain dict
    try:
        model = OpenClawCronJobSpec.model_validate(spec, strict=True, by_alias=True, by_name=False)
    except ValidationError as exc:
        return [
            # an unknown field is a problem of the object that holds it
            FieldError(_path(err["loc"][:-1] if err["type"] == "extra_forbidden" else err["loc"]), _message(err))
            for err in exc.errors()
        ]
    return [
        *_check_schedule(model, default_tz, now, created),
        *_check_payload(model),
        *_check_delivery(model),
        *_check_retry(model),
        *_check_orchestration(model, name, namespace_jobs, allowed_http_hosts),
    ]


# DNS-1123 subdomain, the rule for custom resource names. Pod names derived from the job
# name are shortened and hashed by naming.py, so the job name needs no 63-character limit;
# label values do (<= 63), and run ids (naming.run_id) are shortened to fit.
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_NAME = 253


def validate_metadata(name: str) -> list[FieldError]:
    """Problems with metadata.name (a DNS-1123 subdomain of at most 253 characters)."""
    path = "metadata.name"
    if not name:
        return [FieldError(path, "required")]
    if len(name) > _MAX_NAME:
        return [FieldError(path, f"must have at most {_MAX_NAME} characters, got {len(name)}")]
    if not _DNS1123_SUBDOMAIN.match(name):
        return [
            FieldError(
                path,
                f'{_show(name)} is not a DNS-1123 subdomain: lowercase letters, digits, "-" and ".",'
                " starting and ending with a letter or digit",
            )
        ]
    return []
