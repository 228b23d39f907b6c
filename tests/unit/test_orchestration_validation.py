"""Orchestration specs users get wrong (DESIGN §9): each pins the exact message they read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from openclaw_cron.validation import validate, validate_backfill

CREATED = datetime(2026, 1, 10, 12, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
AGENT = {"kind": "agentTurn", "message": "hi"}
DAILY = {"kind": "cron", "expr": "0 2 * * *", "tz": "UTC"}
#: The namespace: each job -> the jobs it depends on.
NAMESPACE = {"import": [], "process": ["import"], "report": ["process"], "a": ["b"], "b": ["c"], "c": []}
HOST_RULE = (
    "is not allowed: HTTP conditions are sent from the operator, so only hosts in the operator setting"
    " OPENCLAW_CRON_HTTP_CONDITION_HOSTS may be checked"
)


def spec(**extra: Any) -> dict[str, Any]:
    return {"schedule": DAILY, "payload": AGENT, **extra}


def cond(**c: Any) -> dict[str, Any]:
    return spec(conditions=[c])


# (id, spec, validate() keyword arguments, the exact messages)
INVALID: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("no-schedule-no-deps", {"payload": AGENT}, {}, ["spec.schedule: required"]),
    ("self-reference", spec(dependsOn={"jobs": ["report"]}), {"name": "report"},
     ["spec.dependsOn.jobs: 'report' depends on itself"]),
    ("duplicate", spec(dependsOn={"jobs": ["import", "import"]}), {"name": "x"},
     ["spec.dependsOn.jobs: lists 'import' more than once"]),
    ("unknown-job", spec(dependsOn={"jobs": ["imprt"]}), {"name": "process", "namespace_jobs": NAMESPACE},
     ["spec.dependsOn.jobs: no OpenClawCronJob 'imprt' in this namespace"]),
    ("unknown-jobs", spec(dependsOn={"jobs": ["x", "import", "y"]}), {"name": "n", "namespace_jobs": NAMESPACE},
     ["spec.dependsOn.jobs: no OpenClawCronJob 'x', 'y' in this namespace"]),
    ("cycle-2", spec(dependsOn={"jobs": ["report"]}), {"name": "process", "namespace_jobs": NAMESPACE},
     ["spec.dependsOn.jobs: dependency cycle process -> report -> process"]),
    ("cycle-3", spec(dependsOn={"jobs": ["a"]}), {"name": "c", "namespace_jobs": NAMESPACE},
     ["spec.dependsOn.jobs: dependency cycle c -> a -> b -> c"]),
    ("cycle-4", spec(dependsOn={"jobs": ["report"]}), {"name": "import", "namespace_jobs": NAMESPACE},
     ["spec.dependsOn.jobs: dependency cycle import -> report -> process -> import"]),
    ("deps-empty", spec(dependsOn={"jobs": []}), {}, ["spec.dependsOn.jobs: must have at least 1 item, got 0"]),
    ("deps-mode", spec(dependsOn={"jobs": ["a"], "mode": "Each"}), {},
     ["spec.dependsOn.mode: must be 'All', 'Any' or 'Sequential', got \"Each\""]),
    ("deps-wait-negative", spec(dependsOn={"jobs": ["a"], "waitSeconds": -1}), {},
     ["spec.dependsOn.waitSeconds: must be at least 0, got -1"]),
    ("deps-wait-too-long", spec(dependsOn={"jobs": ["a"], "waitSeconds": 86401}), {},
     ["spec.dependsOn.waitSeconds: must be at most 86400, got 86401"]),
    ("deps-window-zero", spec(dependsOn={"jobs": ["a"], "windowSeconds": 0}), {},
     ["spec.dependsOn.windowSeconds: must be at least 1, got 0"]),
    ("cel-syntax", cond(expression="dayOfWeek == "), {},
     ["spec.conditions[0].expression: invalid CEL expression \"dayOfWeek == \": Failed to parse expression"
      " 'dayOfWeek == ': ERROR: <input>:1:14: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(',"
      " '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n"
      "| dayOfWeek == \n| .............^"]),
    ("cel-unknown-variable", cond(expression="weekday == 6"), {},
     ["spec.conditions[0].expression: invalid CEL expression \"weekday == 6\": Undefined variable or function:"
      " 'weekday'. Check that the variable is defined in the context or that the function name is spelled"
      " correctly."]),
    ("cel-not-bool", cond(expression="hour + 1"), {},
     ["spec.conditions[0].expression: invalid CEL expression \"hour + 1\": must evaluate to true or false,"
      " got int 1"]),
    ("cel-type-error", cond(expression="hour < 'two'"), {},
     ["spec.conditions[0].expression: invalid CEL expression \"hour < 'two'\": No such overload: the operation"
      " is not defined for the given operand types. CEL does not coerce between types, so common causes are"
      " mixing int with uint or double (1 + 2u, 1 + 2.5), indexing into a string, or calling a function with"
      " the wrong argument types. Convert explicitly with int(x), uint(x), double(x) or string(x), or check"
      " the CEL specification."]),
    ("cel-empty", cond(expression=""), {}, ["spec.conditions[0].expression: must not be empty"]),
    ("condition-none", cond(name="x"), {},
     ["spec.conditions[0]: needs exactly one of expression, configMapKeyRef, secretKeyRef, http; got none"]),
    ("condition-two", cond(expression="true", configMapKeyRef={"name": "f", "key": "k"}), {},
     ["spec.conditions[0]: needs exactly one of expression, configMapKeyRef, secretKeyRef, http;"
      " got expression and configMapKeyRef"]),
    ("configmap-no-key", cond(configMapKeyRef={"name": "flags"}), {},
     ["spec.conditions[0].configMapKeyRef.key: required"]),
    ("secret-unknown-field", cond(secretKeyRef={"name": "s", "key": "k", "value": "x"}), {},
     ['spec.conditions[0].secretKeyRef: unknown field "value"']),
    ("http-host-default", cond(http={"url": "https://example.com/health"}), {},
     [f'spec.conditions[0].http.url: host "example.com" {HOST_RULE} (allowed: none by default)']),
    ("http-host-not-listed", cond(http={"url": "http://evil.test:8080/"}),
     {"allowed_http_hosts": ["status.internal", "*.svc.cluster.local"]},
     [f'spec.conditions[0].http.url: host "evil.test" {HOST_RULE} (allowed: status.internal, *.svc.cluster.local)']),
    ("http-wildcard-is-not-the-domain", cond(http={"url": "http://svc.cluster.local/"}),
     {"allowed_http_hosts": ["*.svc.cluster.local"]},
     [f'spec.conditions[0].http.url: host "svc.cluster.local" {HOST_RULE} (allowed: *.svc.cluster.local)']),
    ("http-bad-url", cond(http={"url": "ftp://x/"}), {},
     ["spec.conditions[0].http.url: must be an http:// or https:// URL, got \"ftp://x/\""]),
    ("http-status-range", cond(http={"url": "http://h/", "expectStatus": 99}), {"allowed_http_hosts": ["h"]},
     ["spec.conditions[0].http.expectStatus: must be at least 100, got 99"]),
    ("pause-zero", spec(failurePolicy={"pauseAfterConsecutiveFailures": 0}), {},
     ["spec.failurePolicy.pauseAfterConsecutiveFailures: must be at least 1, got 0"]),
    ("escalation-not-increasing",
     spec(notify={"channels": ["ops"], "escalation": [{"afterSeconds": 600, "channels": ["a"]},
                                                       {"afterSeconds": 600, "channels": ["b"]}]}), {},
     ["spec.notify.escalation[1].afterSeconds: must be greater than escalation[0].afterSeconds (600), got 600"]),
    ("escalation-no-channels", spec(notify={"escalation": [{"afterSeconds": 60, "channels": []}]}), {},
     ["spec.notify.escalation[0].channels: must have at least 1 item, got 0"]),
    ("escalation-no-delay", spec(notify={"escalation": [{"channels": ["a"]}]}), {},
     ["spec.notify.escalation[0].afterSeconds: required"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "raw", "kwargs", "messages"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_orchestration_specs(
    case: str, raw: dict[str, Any], kwargs: dict[str, Any], messages: list[str]
) -> None:
    assert [str(e) for e in validate(raw, created=CREATED, **kwargs)] == messages


def test_at_least_25_invalid_cases() -> None:
    assert len(INVALID) >= 25


VALID = [
    ({"payload": AGENT, "dependsOn": {"jobs": ["import"]}}, {"name": "process", "namespace_jobs": NAMESPACE}),
    (spec(dependsOn={"jobs": ["import", "process"], "mode": "Sequential"}), {"name": "report2",
                                                                             "namespace_jobs": NAMESPACE}),
    (cond(expression="dayOfWeek in [0, 6] && hour < 12"), {}),
    (cond(http={"url": "http://api.svc.cluster.local/ready"}), {"allowed_http_hosts": ["*.svc.cluster.local"]}),
    (cond(http={"url": "http://Status.Internal./x"}), {"allowed_http_hosts": ["status.internal"]}),
    (spec(dependsOn={"jobs": ["not-checked-offline"]}), {"name": "x"}),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "kwargs"), VALID)
def test_valid_orchestration_specs(raw: dict[str, Any], kwargs: dict[str, Any]) -> None:
    assert validate(raw, created=CREATED, **kwargs) == []


B = "annotation cron.openclaw.io/backfill"
BACKFILL_INVALID = [
    ("not json", [f"{B}: not JSON (Expecting value: line 1 column 1 (char 0))"]),
    ('["x"]', [f'{B}: must be a JSON object {{"from": ..., "to": ..., "max": ..., "id": ...}}']),
    ('{"from": "2026-02-01T00:00:00Z"}', [f"{B}: to is required (an RFC 3339 time)"]),
    ('{"from": "2026-02-10T00:00:00Z", "to": "2026-02-01T00:00:00Z"}',
     [f"{B}: from (2026-02-10T00:00:00Z) is after to (2026-02-01T00:00:00Z)"]),
    ('{"from": "2026-02-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}',
     [f"{B}: to (2026-04-01T00:00:00Z) is in the future (now is 2026-03-01T12:00:00Z)"]),
    ('{"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}',
     [f"{B}: the range 2025-01-01T00:00:00Z .. 2026-01-01T00:00:00Z has more than max=100 slots;"
      " narrow it or raise max (at most 1000)"]),
    ('{"from": "2026-02-01T00:00:00Z", "to": "2026-02-21T00:00:00Z", "max": 10}',
     [f"{B}: the range 2026-02-01T00:00:00Z .. 2026-02-21T00:00:00Z has more than max=10 slots;"
      " narrow it or raise max (at most 1000)"]),
    ('{"from": "2026-02-01T00:00:00Z", "to": "2026-02-02T00:00:00Z", "max": 5000}',
     [f"{B}: max must be an integer from 1 to 1000, got 5000"]),
    ('{"from": "2026-02-01T00:00:00Z", "to": "2026-02-02T00:00:00Z", "until": 1}', [f"{B}: unknown field 'until'"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "messages"), BACKFILL_INVALID)
def test_invalid_backfill_requests(text: str, messages: list[str]) -> None:
    assert validate_backfill(text, spec(), created=CREATED, now=NOW) == messages


def test_backfill_of_20_daily_slots_is_fine() -> None:
    text = '{"from": "2026-02-01T00:00:00Z", "to": "2026-02-20T23:00:00Z", "id": "feb"}'
    assert validate_backfill(text, spec(), created=CREATED, now=NOW) == []
    assert validate_backfill(text, {"payload": AGENT, "dependsOn": {"jobs": ["a"]}}, created=CREATED, now=NOW) == [
        "the job has no schedule of its own, so no slots to backfill"
    ]


def test_examples_form_a_valid_dependency_graph() -> None:
    """The examples apply together: every dependency exists in their namespace, no cycle."""
    from pathlib import Path

    import yaml

    examples = Path(__file__).resolve().parents[2] / "manifests" / "examples"
    jobs = [
        d
        for p in sorted(examples.glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if d and d.get("kind") == "OpenClawCronJob"
    ]
    graph = {j["metadata"]["name"]: (j["spec"].get("dependsOn") or {}).get("jobs", []) for j in jobs}
    assert {"nightly-process", "nightly-report", "morning-load", "weekend-digest"} <= set(graph)
    for j in jobs:
        name = j["metadata"]["name"]
        assert validate(j["spec"], created=CREATED, name=name, namespace_jobs=graph) == [], name


def test_plugin_validate_names_a_self_reference() -> None:
    from openclaw_cron.cli import validate_text

    text = (
        "apiVersion: cron.openclaw.io/v1alpha1\nkind: OpenClawCronJob\nmetadata: {name: report}\n"
        "spec: {dependsOn: {jobs: [report]}, payload: {kind: agentTurn, message: hi}}\n"
    )
    assert validate_text("report.yaml", text) == (
        ["report.yaml: report: spec.dependsOn.jobs: 'report' depends on itself"],
        [],
    )
