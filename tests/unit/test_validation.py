"""Spec validation: every invalid spec below pins the exact messages a user would read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from openclaw_cron.validation import FieldError, validate, validate_metadata

DROP: Any = object()  # an override value that removes the key

CREATED = datetime(2026, 1, 10, 12, tzinfo=UTC)


def base_spec(**overrides: Any) -> dict[str, Any]:
    """A valid agentTurn spec; dict overrides merge one level deep, DROP removes a key."""
    spec: dict[str, Any] = {
        "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "America/Los_Angeles"},
        "payload": {"kind": "agentTurn", "message": "Summarize inbox + calendar for today."},
        "sessionTarget": "isolated",
    }
    for key, value in overrides.items():
        if value is DROP:
            spec.pop(key, None)
        elif isinstance(value, dict) and isinstance(spec.get(key), dict):
            merged = {**spec[key], **value}
            spec[key] = {k: v for k, v in merged.items() if v is not DROP}
        else:
            spec[key] = value
    return spec


CRON_OFF = {"expr": DROP, "tz": DROP}
SYSTEM_EVENT = {"kind": "systemEvent", "message": DROP, "text": "Check the queue"}
COMMAND = {"kind": "command", "message": DROP, "image": "busybox:1.36"}

# (id, spec, validate() keyword arguments, the exact messages)
INVALID: list[tuple[str, Any, dict[str, Any], list[str]]] = [
    # --- schema (pydantic) errors, with the paths users wrote ---
    (
        "schedule-kind-unknown",
        base_spec(schedule={"kind": "cronn"}),
        {},
        ["spec.schedule.kind: must be 'cron', 'every' or 'at', got \"cronn\""],
    ),
    ("unknown-field-nested", base_spec(schedule={"foo": 1}), {}, ['spec.schedule: unknown field "foo"']),
    ("unknown-field-top", base_spec(replicas=2), {}, ['spec: unknown field "replicas"']),
    (
        "snake-case-is-unknown",
        base_spec(schedule={"stagger_seconds": 3}),
        {},
        ['spec.schedule: unknown field "stagger_seconds"'],
    ),
    ("schedule-missing", base_spec(schedule=DROP), {}, ["spec.schedule: required"]),
    ("payload-kind-missing", base_spec(payload={"kind": DROP}), {}, ["spec.payload.kind: required"]),
    ("expr-not-string", base_spec(schedule={"expr": 5}), {}, ["spec.schedule.expr: must be a string, got 5"]),
    (
        "env-errors",
        base_spec(payload={**COMMAND, "env": [{"name": "1x", "value": "a"}, {"value": "v"}]}),
        {},
        [
            'spec.payload.env[0].name: must be a valid environment variable name (letters, digits, "-", "_" and ".";'
            ' not starting with a digit), got "1x"',
            "spec.payload.env[1].name: required",
        ],
    ),
    ("suspend-not-bool", base_spec(suspend="yes"), {}, ['spec.suspend: must be true or false, got "yes"']),
    ("retry-limit-too-big", base_spec(retry={"limit": 11}), {}, ["spec.retry.limit: must be at most 10, got 11"]),
    (
        "node-selector-value",
        base_spec(template={"nodeSelector": {"kubernetes.io/os": 3}}),
        {},
        ['spec.template.nodeSelector["kubernetes.io/os"]: must be a string, got 3'],
    ),
    (
        "too-many-notify-channels",
        base_spec(notify={"channels": ["ops"] * 17}),
        {},
        ["spec.notify.channels: must have at most 16 items, got 17"],
    ),
    (
        "gateway-url",
        base_spec(gateway={"url": "ftp://gw"}),
        {},
        ['spec.gateway.url: must be an http:// or https:// URL, got "ftp://gw"'],
    ),
    (
        "service-account-name",
        base_spec(template={"serviceAccountName": "Bad_SA"}),
        {},
        [
            "spec.template.serviceAccountName: must be a DNS-1123 label"
            ' (lowercase letters, digits and "-", at most 63), got "Bad_SA"'
        ],
    ),
    (
        "every-bad-unit-schema",
        base_spec(schedule={**CRON_OFF, "kind": "every", "every": "20x"}),
        {},
        [
            'spec.schedule.every: invalid duration "20x": expected a number and a unit (ms, s, m, h, d, w),'
            " e.g. 20m or 1h30m"
        ],
    ),
    ("message-empty", base_spec(payload={"message": ""}), {}, ["spec.payload.message: must not be empty"]),
    (
        "expr-too-long",
        base_spec(schedule={"expr": "*" * 300}),
        {},
        ["spec.schedule.expr: must have at most 256 characters, got 300"],
    ),
    ("timeout-zero", base_spec(timeoutSeconds=0), {}, ["spec.timeoutSeconds: must be at least 1, got 0"]),
    (
        "thinking-unknown",
        base_spec(payload={"thinking": "max"}),
        {},
        [
            "spec.payload.thinking: must be 'off', 'minimal', 'low', 'medium', 'high' or 'xhigh', got \"max\"",
        ],
    ),
    (
        "concurrency-policy",
        base_spec(concurrencyPolicy="Skip"),
        {},
        ["spec.concurrencyPolicy: must be 'Allow', 'Forbid', 'Replace' or 'Queue', got \"Skip\""],
    ),
    (
        "stagger-negative",
        base_spec(schedule={"staggerSeconds": -1}),
        {},
        ["spec.schedule.staggerSeconds: must be at least 0, got -1"],
    ),
    ("spec-not-object", ["x"], {}, ['spec: must be an object, got ["x"]']),
    # --- schedule ---
    (
        "cron-out-of-range",
        base_spec(schedule={"expr": "61 * * * *"}),
        {},
        ['spec.schedule.expr: invalid cron expression "61 * * * *": [61 * * * *] is not acceptable, out of range'],
    ),
    (
        "cron-seven-fields",
        base_spec(schedule={"expr": "0 0 7 * * * 2026"}),
        {},
        [
            'spec.schedule.expr: invalid cron expression "0 0 7 * * * 2026": 7 fields (with a year) are not supported;'
            " use 5 fields, or 6 with seconds first"
        ],
    ),
    (
        "cron-reboot",
        base_spec(schedule={"expr": "@reboot"}),
        {},
        [
            'spec.schedule.expr: invalid cron expression "@reboot": unsupported macro; use one of @yearly, @annually,'
            " @monthly, @weekly, @daily, @midnight, @hourly or 5 fields (6 with seconds first)"
        ],
    ),
    (
        "cron-never",
        base_spec(schedule={"expr": "0 0 30 2 *"}),
        {},
        ['spec.schedule.expr: invalid cron expression "0 0 30 2 *": never matches (failed to find next date)'],
    ),
    (
        "tz-unknown",
        base_spec(schedule={"tz": "Mars/Base"}),
        {},
        ['spec.schedule.tz: unknown time zone "Mars/Base"'],
    ),
    (
        "tz-path",
        base_spec(schedule={"tz": "../../etc/passwd"}),
        {},
        ['spec.schedule.tz: unknown time zone "../../etc/passwd"'],
    ),
    (
        "default-tz-broken",
        base_spec(schedule={"tz": DROP}),
        {"default_tz": "Moon/Crater"},
        ['spec.schedule.tz: unknown time zone "Moon/Crater" (the operator\'s default zone); set schedule.tz'],
    ),
    (
        "cron-expr-missing-and-every-set",
        base_spec(schedule={"expr": DROP, "every": "20m"}),
        {},
        [
            "spec.schedule.every: only allowed when schedule.kind is every",
            "spec.schedule.expr: required when schedule.kind is cron",
        ],
    ),
    (
        "every-missing",
        base_spec(schedule={**CRON_OFF, "kind": "every"}),
        {},
        ["spec.schedule.every: required when schedule.kind is every"],
    ),
    (
        "every-zero",
        base_spec(schedule={**CRON_OFF, "kind": "every", "every": "0s"}),
        {},
        ['spec.schedule.every: invalid duration "0s": must be greater than 0'],
    ),
    (
        "every-sub-second",
        base_spec(schedule={**CRON_OFF, "kind": "every", "every": "500ms"}),
        {},
        ['spec.schedule.every: must be at least 1s, got "500ms"'],
    ),
    (
        "anchor-bad",
        base_spec(schedule={**CRON_OFF, "kind": "every", "every": "1h", "anchor": "2026-01-01"}),
        {},
        ['spec.schedule.anchor: invalid time "2026-01-01": expected RFC 3339, e.g. 2026-01-12T18:00:00Z'],
    ),
    (
        "anchor-on-cron",
        base_spec(schedule={"anchor": "2026-01-01T00:00:00Z"}),
        {},
        ["spec.schedule.anchor: only allowed when schedule.kind is every"],
    ),
    (
        "at-unparseable",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "tomorrow"}),
        {},
        [
            'spec.schedule.at: invalid at "tomorrow": expected an RFC 3339 time (e.g. 2026-01-12T18:00:00Z)'
            " or a duration after creation (e.g. 20m)"
        ],
    ),
    (
        "at-bad-month",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "2026-13-01T00:00:00Z"}),
        {},
        ['spec.schedule.at: invalid time "2026-13-01T00:00:00Z": month must be in 1..12'],
    ),
    (
        "at-before-creation",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "2026-01-10T11:59:59Z"}),
        {"now": datetime(2026, 1, 20, tzinfo=UTC), "created": CREATED},
        [
            'spec.schedule.at: "2026-01-10T11:59:59Z" is in the past'
            " (before the resource was created at 2026-01-10T12:00:00Z)"
        ],
    ),
    (
        "at-in-the-past-not-created-yet",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "2026-01-10T13:00:00+02:00"}),
        {"now": CREATED},
        ['spec.schedule.at: "2026-01-10T13:00:00+02:00" is in the past (now is 2026-01-10T12:00:00Z)'],
    ),
    (
        "at-negative-duration",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "-5m"}),
        {},
        ['spec.schedule.at: invalid duration "-5m": must be greater than 0'],
    ),
    (
        "at-with-cron-fields",
        base_spec(schedule={"kind": "at", "at": "20m", "tz": DROP}),
        {},
        ["spec.schedule.expr: only allowed when schedule.kind is cron"],
    ),
    # --- payload and session target ---
    (
        "agent-turn-main-session",
        base_spec(sessionTarget="main"),
        {},
        ["spec.sessionTarget: must be isolated when payload.kind is agentTurn, got main"],
    ),
    (
        "system-event-isolated-with-message",
        base_spec(payload={**SYSTEM_EVENT, "message": "hi"}),
        {},
        [
            "spec.payload.message: only allowed when payload.kind is agentTurn",
            "spec.sessionTarget: must be main when payload.kind is systemEvent, got isolated",
        ],
    ),
    (
        "system-event-text-missing",
        base_spec(payload={**SYSTEM_EVENT, "text": DROP}, sessionTarget="main"),
        {},
        ["spec.payload.text: required when payload.kind is systemEvent"],
    ),
    (
        "command-with-agent-fields",
        base_spec(payload={"kind": "command", "model": "opus", "timeoutSeconds": 60}, sessionTarget=DROP),
        {},
        [
            "spec.payload.message: only allowed when payload.kind is agentTurn",
            "spec.payload.model: only allowed when payload.kind is agentTurn",
            "spec.payload.timeoutSeconds: only allowed when payload.kind is agentTurn",
            "spec.payload.image: required when payload.kind is command",
        ],
    ),
    (
        "agent-turn-with-command-fields",
        base_spec(
            payload={"image": "busybox", "args": ["-c"], "env": [{"name": "A", "value": "1"}], "workingDir": "/"}
        ),
        {},
        [
            "spec.payload.image: only allowed when payload.kind is command",
            "spec.payload.args: only allowed when payload.kind is command",
            "spec.payload.env: only allowed when payload.kind is command",
            "spec.payload.workingDir: only allowed when payload.kind is command",
        ],
    ),
    (
        "agent-turn-message-missing",
        base_spec(payload={"message": DROP}),
        {},
        ["spec.payload.message: required when payload.kind is agentTurn"],
    ),
    (
        "payload-timeout-over-spec-timeout",
        base_spec(payload={"timeoutSeconds": 7200}, timeoutSeconds=3600),
        {},
        ["spec.payload.timeoutSeconds: must be at most spec.timeoutSeconds (3600), got 7200"],
    ),
    # --- delivery ---
    (
        "delivery-channel-last",
        base_spec(delivery={"channel": "last", "to": "x"}),
        {},
        [
            'spec.delivery.channel: channel "last" is not supported by the gateway\'s hooks API;'
            " name the channel (e.g. telegram)"
        ],
    ),
    (
        "delivery-channel-without-to",
        base_spec(delivery={"channel": "telegram"}),
        {},
        ["spec.delivery.to: required when delivery.channel is set"],
    ),
    (
        "delivery-account-without-channel",
        base_spec(delivery={"accountId": "bot-2", "to": "123"}),
        {},
        ["spec.delivery.accountId: needs delivery.channel and delivery.to"],
    ),
    (
        "delivery-on-system-event",
        base_spec(payload=SYSTEM_EVENT, sessionTarget="main", delivery={"mode": "announce"}),
        {},
        ["spec.delivery: only allowed when payload.kind is agentTurn, got systemEvent"],
    ),
    (
        "delivery-on-command",
        base_spec(payload=COMMAND, sessionTarget=DROP, delivery={"channel": "telegram", "to": "1"}),
        {},
        ["spec.delivery: only allowed when payload.kind is agentTurn, got command"],
    ),
    # --- retry ---
    (
        "retry-max-below-delay",
        base_spec(retry={"limit": 3, "delaySeconds": 300, "backoff": "Exponential", "maxDelaySeconds": 100}),
        {},
        ["spec.retry.maxDelaySeconds: must be at least retry.delaySeconds (300), got 100"],
    ),
    (
        "retry-max-with-fixed",
        base_spec(retry={"limit": 3, "maxDelaySeconds": 600}),
        {},
        ["spec.retry.maxDelaySeconds: only allowed when retry.backoff is Exponential"],
    ),
    # --- several at once, in a stable order: schedule, payload, delivery, retry ---
    (
        "many",
        base_spec(
            schedule={"expr": "* * *", "tz": "Nowhere"},
            sessionTarget="main",
            delivery={"channel": "last"},
            retry={"backoff": "Exponential", "delaySeconds": 60, "maxDelaySeconds": 30},
        ),
        {},
        [
            'spec.schedule.expr: invalid cron expression "* * *": expected 5 fields (minute hour day-of-month month'
            " day-of-week) or 6 with seconds first, got 3",
            'spec.schedule.tz: unknown time zone "Nowhere"',
            "spec.sessionTarget: must be isolated when payload.kind is agentTurn, got main",
            'spec.delivery.channel: channel "last" is not supported by the gateway\'s hooks API;'
            " name the channel (e.g. telegram)",
            "spec.delivery.to: required when delivery.channel is set",
            "spec.retry.maxDelaySeconds: must be at least retry.delaySeconds (60), got 30",
        ],
    ),
]


def test_enough_invalid_cases() -> None:
    assert len(INVALID) >= 35
    assert len({case[0] for case in INVALID}) == len(INVALID)


@pytest.mark.parametrize(("spec", "kwargs", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_specs(spec: Any, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert [str(e) for e in validate(spec, **kwargs)] == expected


VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("agent-turn-cron", base_spec(), {}),
    (
        "design-example",
        base_spec(
            schedule={"staggerSeconds": 0, "startingDeadlineSeconds": 300, "catchUp": "Latest"},
            suspend=False,
            payload={"model": "opus", "thinking": "low", "timeoutSeconds": 600},
            wakeMode="now",
            agentId="ops",
            delivery={
                "mode": "announce",
                "channel": "telegram",
                "to": "-1001234567890:topic:123",
                "accountId": "",
                "bestEffort": False,
            },
            gateway={
                "url": "http://openclaw.openclaw.svc:18789",
                "tokenSecretRef": {"name": "openclaw-hooks", "key": "token"},
            },
            concurrencyPolicy="Forbid",
            retry={"limit": 3, "delaySeconds": 300, "backoff": "Fixed"},
            timeoutSeconds=3600,
            deleteAfterRun=False,
            history={"successfulPodsLimit": 3, "failedPodsLimit": 1, "statusLimit": 10},
        ),
        {},
    ),
    ("session-target-derived", base_spec(sessionTarget=DROP), {}),
    (
        "six-field-and-default-zone",
        base_spec(schedule={"expr": "30 0 7 * * *", "tz": DROP}),
        {"default_tz": "Europe/Berlin"},
    ),
    ("macro", base_spec(schedule={"expr": "@hourly"}), {}),
    (
        "system-event-every",
        base_spec(
            schedule={**CRON_OFF, "kind": "every", "every": "1h30m", "anchor": "2026-01-01T00:00:00+01:00"},
            payload=SYSTEM_EVENT,
            sessionTarget="main",
            wakeMode="next-heartbeat",
        ),
        {},
    ),
    ("every-one-second", base_spec(schedule={**CRON_OFF, "kind": "every", "every": "1s"}), {}),
    (
        "command-at-relative",
        base_spec(
            schedule={**CRON_OFF, "kind": "at", "at": "20m"},
            payload={
                **COMMAND,
                "command": ["sh", "-c"],
                "args": ["echo hi"],
                "env": [{"name": "A", "value": "1"}],
                "envFrom": [{"secretRef": {"name": "s"}}],
                "workingDir": "/tmp",
                "imagePullPolicy": "IfNotPresent",
                "resources": {"limits": {"cpu": "100m"}},
            },
            sessionTarget=DROP,
        ),
        {"now": CREATED, "created": CREATED},
    ),
    ("command-any-session-target", base_spec(payload=COMMAND, sessionTarget="main"), {}),
    (
        "at-absolute-future",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "2026-01-12T18:00:00Z"}),
        {"now": CREATED, "created": CREATED},
    ),
    (
        "at-passed-after-creation-is-fine",
        base_spec(schedule={**CRON_OFF, "kind": "at", "at": "2026-01-12T18:00:00Z"}),
        {"now": datetime(2026, 3, 1, tzinfo=UTC), "created": CREATED},
    ),
    ("at-past-without-times", base_spec(schedule={**CRON_OFF, "kind": "at", "at": "2020-01-01T00:00:00Z"}), {}),
    (
        "retry-exponential",
        base_spec(retry={"limit": 5, "delaySeconds": 10, "backoff": "Exponential", "maxDelaySeconds": 600}),
        {},
    ),
    ("delivery-channel-to", base_spec(delivery={"channel": "slack", "to": "#ops", "accountId": "work"}), {}),
    ("delivery-mode-none", base_spec(delivery={"mode": "none"}), {}),
    ("tz-on-every", base_spec(schedule={"kind": "every", "every": "5m", "expr": DROP, "tz": "Asia/Kolkata"}), {}),
]


@pytest.mark.parametrize(("spec", "kwargs"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_specs(spec: dict[str, Any], kwargs: dict[str, Any]) -> None:
    assert validate(spec, **kwargs) == []


def test_validate_accepts_a_read_only_mapping() -> None:
    from types import MappingProxyType

    assert validate(MappingProxyType(base_spec())) == []  # type: ignore[arg-type]


def test_field_error() -> None:
    err = FieldError("spec.schedule.expr", "required")
    assert str(err) == "spec.schedule.expr: required"
    with pytest.raises(dataclasses.FrozenInstanceError):
        err.path = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["morning-status", "a", "job.v2", "0-start-with-digit", "a" * 253, "x" * 64])
def test_metadata_name_valid(name: str) -> None:
    assert validate_metadata(name) == []


@pytest.mark.parametrize(
    ("name", "messages"),
    [
        ("", ["metadata.name: required"]),
        ("a" * 254, ["metadata.name: must have at most 253 characters, got 254"]),
        *[
            (
                bad,
                [
                    f'metadata.name: "{bad}" is not a DNS-1123 subdomain: lowercase letters, digits, "-" and ".",'
                    " starting and ending with a letter or digit"
                ],
            )
            for bad in ["Morning", "job_1", "-job", "job-", "a..b", "job.", "jöb"]
        ],
    ],
)
def test_metadata_name_invalid(name: str, messages: list[str]) -> None:
    assert [str(e) for e in validate_metadata(name)] == messages
