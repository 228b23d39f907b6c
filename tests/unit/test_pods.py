"""Run Pod rendering: names, labels, owner, security, the runner's environment."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from openclaw_cron import naming as n
from openclaw_cron.api import OpenClawCronJobSpec
from openclaw_cron.pods import JobRef, Start, pod_view, render_pod, runner_budget
from openclaw_cron.settings import Settings

WHEN = datetime(2026, 1, 12, 18, 0, tzinfo=UTC)
REF = JobRef("assistants", "morning-status", "uid-123")
SETTINGS = Settings(runner_image="example.org/ocj:1", gateway_url="http://gw:18789")


def _spec(**over: object) -> OpenClawCronJobSpec:
    raw: dict[str, object] = {
        "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "America/Los_Angeles"},
        "payload": {"kind": "agentTurn", "message": "Summarize", "model": "opus"},
        "agentId": "ops",
        "delivery": {"channel": "telegram", "to": "-100:topic:1"},
        "timeoutSeconds": 600,
    }
    raw.update(over)
    return OpenClawCronJobSpec.model_validate(raw)


def _env(pod: dict) -> dict[str, object]:  # type: ignore[type-arg]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_runner_pod_contract() -> None:
    pod = render_pod(REF, _spec(), Start("morning-status-1768240800", WHEN, 1, "Schedule"), SETTINGS)
    meta = pod["metadata"]
    assert meta["name"] == "morning-status-1768240800"
    assert meta["labels"] == {
        n.LABEL_JOB: "morning-status",
        n.LABEL_RUN_ID: "morning-status-1768240800",
        n.LABEL_ATTEMPT: "1",
        n.LABEL_TRIGGER: "Schedule",
        n.LABEL_MANAGED_BY: n.MANAGED_BY,
    }
    assert meta["annotations"][n.ANNOTATION_SCHEDULED_TIME] == "2026-01-12T18:00:00Z"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "cron.openclaw.io/v1alpha1",
            "kind": "OpenClawCronJob",
            "name": "morning-status",
            "uid": "uid-123",
            "controller": True,
        }
    ]
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == 600
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = spec["containers"][0]
    assert c["command"] == ["openclaw-cron-runner"] and c["image"] == "example.org/ocj:1"
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = _env(pod)
    assert env[n.ENV_HOOKS_TOKEN] == {"secretKeyRef": {"name": "openclaw-hooks", "key": "token"}}
    assert env[n.ENV_GATEWAY_URL] == "http://gw:18789"
    assert env[n.ENV_IDEMPOTENCY_KEY] == "ocj-uid-123-1768240800-1"
    assert env[n.ENV_TIMEOUT_SECONDS] == str(runner_budget(600)) == "590"
    request = json.loads(str(env[n.ENV_REQUEST]))
    assert request["payload"] == {"kind": "agentTurn", "message": "Summarize", "model": "opus"}
    assert request["delivery"]["channel"] == "telegram" and request["agentId"] == "ops"
    # The reply is read back under this key by the operator, which recomputes it (archive capture).
    assert env[n.ENV_SESSION_KEY] == n.session_key("uid-123", WHEN, 1) == "hook:ocj-uid-123-1768240800-1"
    for kind in ("agentTurn", "systemEvent"):
        payload = {"kind": kind, "message": "m", "text": "t"}
        off = render_pod(
            REF, _spec(payload=payload), Start("r", WHEN, 1, "Schedule"), replace(SETTINGS, session_keys=False)
        )
        assert n.ENV_SESSION_KEY not in _env(off)
    wake = render_pod(
        REF, _spec(payload={"kind": "systemEvent", "text": "t"}), Start("r", WHEN, 1, "Schedule"), SETTINGS
    )
    assert n.ENV_SESSION_KEY not in _env(wake), "only agent turns have a session of their own"


def test_pod_view_reads_node_and_image() -> None:
    pod = render_pod(REF, _spec(), Start("morning-status-1768240800", WHEN, 1, "Schedule"), SETTINGS)
    view = pod_view(pod)
    assert view is not None and (view.node, view.image) == (None, "example.org/ocj:1")
    pod["spec"]["nodeName"] = "node-a"
    pod["status"] = {
        "phase": "Succeeded",
        "containerStatuses": [
            {"name": "run", "image": "example.org/ocj@sha256:ab", "state": {"terminated": {"exitCode": 0}}}
        ],
    }
    view = pod_view(pod)
    assert view is not None and (view.node, view.image) == ("node-a", "example.org/ocj@sha256:ab")


def test_job_gateway_and_template_override_defaults() -> None:
    spec = _spec(
        gateway={"url": "http://other:1", "tokenSecretRef": {"name": "mine", "key": "k"}},
        template={
            "serviceAccountName": "runner",
            "nodeSelector": {"pool": "a"},
            "labels": {"team": "x"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "priorityClassName": "low",
        },
    )
    pod = render_pod(REF, spec, Start("r", WHEN, 2, "Retry"), SETTINGS)
    env = _env(pod)
    assert env[n.ENV_GATEWAY_URL] == "http://other:1"
    assert env[n.ENV_HOOKS_TOKEN] == {"secretKeyRef": {"name": "mine", "key": "k"}}
    assert pod["metadata"]["name"] == "morning-status-1768240800-2"
    assert pod["metadata"]["labels"]["team"] == "x"
    assert pod["spec"]["serviceAccountName"] == "runner"
    assert pod["spec"]["nodeSelector"] == {"pool": "a"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["spec"]["priorityClassName"] == "low"


def test_command_pod_uses_users_image_and_logs_fallback() -> None:
    spec = _spec(
        payload={
            "kind": "command",
            "image": "busybox:1.36",
            "command": ["sh", "-c"],
            "args": ["echo hi"],
            "env": [{"name": "A", "value": "1"}],
            "workingDir": "/work",
            "resources": {"limits": {"cpu": "1"}},
        },
        delivery=None,
    )
    pod = render_pod(REF, spec, Start("r", WHEN, 1, "Manual", manual_value="now"), SETTINGS)
    c = pod["spec"]["containers"][0]
    assert c["image"] == "busybox:1.36" and c["command"] == ["sh", "-c"] and c["args"] == ["echo hi"]
    assert c["env"] == [{"name": "A", "value": "1"}] and c["workingDir"] == "/work"
    assert c["resources"] == {"limits": {"cpu": "1"}}
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "automountServiceAccountToken" not in pod["spec"]
    assert pod["metadata"]["annotations"][n.ANNOTATION_RUN_NOW] == "now"


def test_long_job_names_stay_within_63_chars_and_unique() -> None:
    long_a = "a" * 70 + "-x"
    long_b = "a" * 70 + "-y"
    ref_a, ref_b = JobRef("ns", long_a, "u1"), JobRef("ns", long_b, "u2")
    pa = render_pod(ref_a, _spec(), Start(n.run_id(long_a, WHEN), WHEN, 10, "Retry"), SETTINGS)
    pb = render_pod(ref_b, _spec(), Start(n.run_id(long_b, WHEN), WHEN, 10, "Retry"), SETTINGS)
    for p in (pa, pb):
        assert len(p["metadata"]["name"]) <= 63
        assert all(len(v) <= 63 for v in p["metadata"]["labels"].values())
    assert pa["metadata"]["name"] != pb["metadata"]["name"]
    assert pa["metadata"]["annotations"][n.ANNOTATION_JOB_NAME] == long_a
