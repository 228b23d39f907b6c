"""The runner against a scripted hooks server: every outcome, the exact request, the exact result.

Most outcomes run the installed console script as a real subprocess (what a run Pod does); pure
pieces (request building, result size, parsing) are tested in-process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hooks_server import HooksServer, Reply

from openclaw_cron import gateway, runner
from openclaw_cron.api import Delivery, OpenClawCronJobSpec, Payload
from openclaw_cron.gateway import ResultKind, RunnerResult
from openclaw_cron.naming import (
    ENV_ATTEMPT,
    ENV_GATEWAY_URL,
    ENV_HOOKS_TOKEN,
    ENV_IDEMPOTENCY_KEY,
    ENV_JOB,
    ENV_REQUEST,
    ENV_RESULT_PATH,
    ENV_RUN_ID,
    ENV_SESSION_KEY,
    ENV_TIMEOUT_SECONDS,
)

TOKEN = "hooks-token-7f3c9a1e5b"
KEY = "ocj-0b6f3c1e-uid-1767254400-1"
AGENT = {"payload": {"kind": "agentTurn", "message": "Summarize the inbox."}, "agentId": None, "wakeMode": "now"}
WAKE = {"payload": {"kind": "systemEvent", "text": "Check the calendar."}, "agentId": "ops", "wakeMode": "now"}
SCRIPT = Path(sys.executable).with_name("openclaw-cron-runner")


def ok_completion(**extra: Any) -> dict[str, Any]:
    return {"ok": True, "runId": "gw-run-1", "completion": {"status": "ok", "replyDisposition": "visible", **extra}}


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    raw: str
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw)
        return data


@pytest.fixture
def hooks() -> Iterator[HooksServer]:
    with HooksServer() as server:
        yield server


def contract_env(
    url: str, result_path: Path, request: dict[str, Any], overrides: dict[str, str | None] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env.update(
        {
            ENV_GATEWAY_URL: url,
            ENV_HOOKS_TOKEN: TOKEN,
            ENV_REQUEST: json.dumps(request),
            ENV_JOB: "assistants/morning-status",
            ENV_RUN_ID: "morning-status-1767254400",
            ENV_ATTEMPT: "1",
            ENV_IDEMPOTENCY_KEY: KEY,
            ENV_TIMEOUT_SECONDS: "30",
            ENV_RESULT_PATH: str(result_path),
        }
    )
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_runner(
    url: str,
    tmp_path: Path,
    request: dict[str, Any] = AGENT,
    *,
    module: bool = False,
    env: dict[str, str | None] | None = None,
) -> Outcome:
    """Run the runner as a subprocess, like a run Pod does."""
    path = tmp_path / "termination-log"
    command = [sys.executable, "-m", "openclaw_cron.runner"] if module else [str(SCRIPT)]
    started = time.monotonic()
    proc = subprocess.run(
        command, env=contract_env(url, path, request, env), capture_output=True, text=True, timeout=60
    )
    seconds = time.monotonic() - started
    raw = path.read_text() if path.exists() else ""
    for text in (proc.stdout, proc.stderr, raw):
        assert TOKEN not in text
    return Outcome(proc.returncode, proc.stdout, proc.stderr, raw, seconds)


def expected(result: ResultKind, reason: str, message: str, **fields: Any) -> dict[str, Any]:
    """The termination message of a non-retryable outcome: every field not named is empty."""
    return RunnerResult(result, reason, message).wire() | fields


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- agentTurn outcomes -------------------------------------------------------------------------


def test_agent_ok_sends_exact_request_and_writes_result(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, ok_completion(delivered=False, deliveryAttempted=False)))
    out = run_runner(hooks.url, tmp_path)
    assert out.rc == 0, out.stderr
    assert out.result == expected(
        "Succeeded",
        "Completed",
        "agent turn gw-run-1 completed",
        httpStatus=200,
        gatewayRunId="gw-run-1",
        completion={"status": "ok", "replyDisposition": "visible", "delivered": False, "deliveryAttempted": False},
        delivered=False,
        deliveryAttempted=False,
        replyDisposition="visible",
    )
    [seen] = hooks.seen
    assert seen.path == "/hooks/agent"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["idempotency-key"] == KEY
    assert seen.headers["content-type"] == "application/json"
    assert seen.json == {
        "message": "Summarize the inbox.",
        "name": "morning-status",
        "wakeMode": "now",
        "deliver": False,
        "timeoutSeconds": 30,
        "waitForCompletion": True,
    }
    assert out.stdout.count("\n") == 1
    assert out.stdout.startswith("Succeeded (Completed): agent turn gw-run-1 completed")
    assert "assistants/morning-status" in out.stdout and "attempt 1" in out.stdout


def test_agent_request_carries_every_option(hooks: HooksServer, tmp_path: Path) -> None:
    request = {
        "payload": {
            "kind": "agentTurn",
            "message": "Post the status.",
            "name": "Morning status",
            "model": "opus",
            "thinking": "low",
            "timeoutSeconds": 120,
        },
        "agentId": "ops",
        "wakeMode": "next-heartbeat",
        "delivery": {"mode": "announce", "channel": "telegram", "to": "-100123:topic:7", "accountId": "main"},
        "sessionTarget": "isolated",
    }
    hooks.script(Reply(200, ok_completion(delivered=True, deliveryAttempted=True)))
    out = run_runner(hooks.url, tmp_path, request, module=True)
    assert out.rc == 0 and out.result["reason"] == "Completed" and out.result["delivered"] is True
    assert hooks.seen[0].json == {
        "message": "Post the status.",
        "name": "Morning status",
        "agentId": "ops",
        "wakeMode": "next-heartbeat",
        "deliver": True,
        "channel": "telegram",
        "to": "-100123:topic:7",
        "accountId": "main",
        "model": "opus",
        "thinking": "low",
        "timeoutSeconds": 120,
        "waitForCompletion": True,
    }


def test_delivery_mode_none_does_not_deliver() -> None:
    call = gateway.agent_call(
        Payload(kind="agentTurn", message="m"),
        name="j",
        agent_id=None,
        wake_mode="now",
        delivery=Delivery(mode="none", channel="telegram", to="x"),
        default_timeout_seconds=7,
    )
    assert call.body["deliver"] is False and "channel" not in call.body and call.body["timeoutSeconds"] == 7


def test_agent_error_is_failed_and_retryable(hooks: HooksServer, tmp_path: Path) -> None:
    completion = {"status": "error", "replyDisposition": "empty", "error": "model refused: context too long"}
    hooks.script(Reply(200, {"ok": True, "runId": "gw-run-2", "completion": completion}))
    out = run_runner(hooks.url, tmp_path)
    assert out.rc == 1
    assert out.result == expected(
        "Failed",
        "AgentError",
        "agent turn gw-run-2 failed in the gateway: model refused: context too long",
        retryable=True,
        httpStatus=200,
        gatewayRunId="gw-run-2",
        completion=completion,
        replyDisposition="empty",
    )


def test_agent_skipped_is_succeeded_with_reason_skipped(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, {"ok": True, "runId": "gw-run-3", "completion": {"status": "skipped"}}))
    out = run_runner(hooks.url, tmp_path)
    assert out.rc == 0
    assert out.result == expected(
        "Succeeded",
        "Skipped",
        "gateway skipped agent turn gw-run-3",
        httpStatus=200,
        gatewayRunId="gw-run-3",
        completion={"status": "skipped"},
    )


ANNOUNCE = {**AGENT, "delivery": {"mode": "announce", "channel": "slack", "to": "#ops", "bestEffort": False}}


def test_delivery_failed_without_best_effort_fails(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, ok_completion(delivered=False, deliveryAttempted=True, deliveryError="delivery-failed")))
    out = run_runner(hooks.url, tmp_path, ANNOUNCE)
    assert out.rc == 1
    assert out.result == expected(
        "Failed",
        "DeliveryFailed",
        "agent turn gw-run-1 completed but delivery failed (delivery-failed)",
        retryable=True,
        httpStatus=200,
        gatewayRunId="gw-run-1",
        completion={
            "status": "ok",
            "replyDisposition": "visible",
            "delivered": False,
            "deliveryAttempted": True,
            "deliveryError": "delivery-failed",
        },
        delivered=False,
        deliveryAttempted=True,
        replyDisposition="visible",
        deliveryError="delivery-failed",
    )


def test_delivery_failed_with_best_effort_succeeds(hooks: HooksServer, tmp_path: Path) -> None:
    request = {**ANNOUNCE, "delivery": {**ANNOUNCE["delivery"], "bestEffort": True}}  # type: ignore[dict-item]
    hooks.script(Reply(200, ok_completion(delivered=False, deliveryAttempted=True)))
    out = run_runner(hooks.url, tmp_path, request)
    assert out.rc == 0
    assert out.result["result"] == "Succeeded" and out.result["reason"] == "Completed"
    assert out.result["message"] == (
        "agent turn gw-run-1 completed; delivery was attempted and did not succeed (bestEffort)"
    )
    assert out.result["delivered"] is False


@pytest.mark.parametrize(
    ("deliver", "completion", "problem"),
    [
        (True, {"status": "ok", "delivered": False, "deliveryAttempted": False}, "not delivered"),
        (True, {"status": "ok", "delivered": True, "deliveryAttempted": True}, None),
        (True, {"status": "ok", "delivered": False, "deliverySuppressionReason": "empty"}, None),
        (False, {"status": "ok", "delivered": False, "deliveryAttempted": False}, None),
        (False, {"status": "ok", "deliveryAttempted": True}, "attempted"),
    ],
)
def test_delivery_rules(deliver: bool, completion: dict[str, Any], problem: str | None) -> None:
    call = gateway.HookCall(gateway.AGENT_PATH, {}, deliver=deliver)
    answer = gateway.HttpAnswer(200, json.dumps({"ok": True, "runId": "r", "completion": completion}).encode())
    result = gateway.interpret(call, answer)
    if problem is None:
        assert (result.result, result.reason) == ("Succeeded", "Completed")
    else:
        assert (result.result, result.reason) == ("Failed", "DeliveryFailed") and problem in result.message


def test_error_at_the_gateway_timeout_is_timed_out() -> None:
    call = gateway.HookCall(gateway.AGENT_PATH, {}, timeout_seconds=5)
    answer = gateway.HttpAnswer(200, b'{"ok":true,"runId":"r","completion":{"status":"error"}}')
    assert gateway.interpret(call, answer, elapsed=4.0).reason == "AgentError"
    late = gateway.interpret(call, answer, elapsed=5.2)
    assert (late.result, late.reason, late.retryable) == ("TimedOut", "AgentTimeout", True)


# --- HTTP errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "reason", "retryable", "message"),
    [
        (400, {"ok": False, "error": "channel must name a concrete channel"}, "InvalidRequest", False,
         "gateway refused the agent turn request (400): channel must name a concrete channel"),
        (401, "Unauthorized", "Unauthorized", False,
         "gateway refused the hooks token (401): check the token Secret matches hooks.token"),
        (403, "Forbidden", "Unauthorized", False,
         "gateway refused the hooks token (403): check the token Secret matches hooks.token"),
        (413, {"ok": False, "error": "payload too large"}, "InvalidRequest", False,
         "gateway refused the agent turn request (413): payload too large"),
        (500, {"ok": False, "error": "boom"}, "GatewayError", True, "gateway error (500): boom"),
        (502, {"ok": False, "error": "hook agent run failed before entering the agent runner"}, "GatewayError", True,
         "gateway error (502): hook agent run failed before entering the agent runner"),
    ],
)  # fmt: skip
def test_http_errors(
    hooks: HooksServer, tmp_path: Path, status: int, body: Any, reason: str, retryable: bool, message: str
) -> None:
    hooks.script(Reply(status, body), Reply(200, ok_completion()))
    out = run_runner(hooks.url, tmp_path)
    assert out.rc == 1
    assert out.result == expected("Failed", reason, message, retryable=retryable, httpStatus=status)
    assert len(hooks.seen) == 1, "the runner must not retry on its own (the operator's retry policy decides)"


def test_429_waits_for_retry_after_then_succeeds(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(429, "Too Many Requests", {"Retry-After": "1"}), Reply(200, ok_completion(delivered=False)))
    out = run_runner(hooks.url, tmp_path)
    assert out.rc == 0
    assert out.result["result"] == "Succeeded"
    assert out.result["message"] == "agent turn gw-run-1 completed (after 1 rate-limited tries)"
    assert len(hooks.seen) == 2 and out.seconds >= 1.0
    assert hooks.seen[0].raw == hooks.seen[1].raw
    assert {s.headers["idempotency-key"] for s in hooks.seen} == {KEY}


def test_429_beyond_the_budget_fails_without_waiting(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(429, "Too Many Requests", {"Retry-After": "60"}))
    out = run_runner(hooks.url, tmp_path, env={ENV_TIMEOUT_SECONDS: "5"})
    assert out.rc == 1 and out.seconds < 5
    assert out.result == expected(
        "Failed",
        "RateLimited",
        "gateway is rate limiting this client (429): Too Many Requests; Retry-After 60s exceeds the budget",
        retryable=True,
        httpStatus=429,
    )


def test_redirect_is_not_followed(hooks: HooksServer, tmp_path: Path) -> None:
    with HooksServer() as elsewhere:
        hooks.script(Reply(307, "", {"Location": f"{elsewhere.url}/hooks/agent"}))
        out = run_runner(hooks.url, tmp_path)
        assert elsewhere.seen == [], "the token must never be replayed to another address"
    assert out.rc == 1 and out.result["reason"] == "GatewayError" and out.result["retryable"] is False
    assert elsewhere.url in out.result["message"]


def test_connection_refused_is_unreachable_and_retryable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    out = run_runner(url, tmp_path)
    assert out.rc == 1
    result = out.result
    assert result["message"].startswith(f"cannot reach the gateway at {url}: ConnectionRefusedError")
    assert result == expected("Failed", "GatewayUnreachable", result["message"], retryable=True)


def test_budget_exceeded_is_timed_out(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, ok_completion(), delay=30))
    out = run_runner(hooks.url, tmp_path, env={ENV_TIMEOUT_SECONDS: "1.5"})
    assert out.rc == 1
    assert out.result == expected(
        "TimedOut", "DeadlineExceeded", "no outcome within the attempt budget of 1.5s", retryable=True
    )
    assert 1.5 <= out.seconds < 5
    assert hooks.seen[0].json["timeoutSeconds"] == 1


# --- systemEvent --------------------------------------------------------------------------------


def test_wake_queued(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, {"ok": True, "mode": "now", "eventOutcome": "queued"}))
    out = run_runner(hooks.url, tmp_path, WAKE)
    assert out.rc == 0
    assert out.result == expected(
        "Succeeded", "Queued", "system event queued (mode now); eventOutcome=queued", httpStatus=200
    )
    [seen] = hooks.seen
    assert seen.path == "/hooks/wake"
    assert seen.json == {"text": "Check the calendar.", "mode": "now", "agentId": "ops"}
    assert seen.headers["authorization"] == f"Bearer {TOKEN}" and seen.headers["idempotency-key"] == KEY


def test_base_url_path_prefix_is_kept(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, {"ok": True, "mode": "next-heartbeat", "eventOutcome": "coalesced"}))
    out = run_runner(hooks.url + "/openclaw/", tmp_path, {**WAKE, "wakeMode": "next-heartbeat"})
    assert out.rc == 0 and out.result["reason"] == "Coalesced"
    assert hooks.seen[0].path == "/openclaw/hooks/wake" and hooks.seen[0].json["mode"] == "next-heartbeat"


# --- the token never leaks ----------------------------------------------------------------------


def test_token_echoed_by_the_gateway_is_scrubbed(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(400, {"ok": False, "error": f"bad header Authorization: Bearer {TOKEN}"}))
    out = run_runner(hooks.url, tmp_path)  # run_runner asserts the token is absent everywhere
    assert out.rc == 1
    assert (
        out.result["message"]
        == "gateway refused the agent turn request (400): bad header Authorization: Bearer [redacted]"
    )


def test_token_in_a_completion_is_scrubbed(hooks: HooksServer, tmp_path: Path) -> None:
    completion = {"status": "error", "error": f"upstream said {TOKEN}", "text": f"echo {TOKEN}"}
    hooks.script(Reply(200, {"ok": True, "runId": f"run-{TOKEN}", "completion": completion}))
    out = run_runner(hooks.url, tmp_path)
    assert out.rc == 1
    assert out.result["completion"]["error"] == "upstream said [redacted]"
    assert out.result["output"] == "echo [redacted]" and out.result["gatewayRunId"] == "run-[redacted]"


def test_token_in_an_unexpected_exception_is_scrubbed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(*args: Any, **kwargs: Any) -> gateway.HttpAnswer:
        raise RuntimeError(f"oops with {TOKEN}")

    monkeypatch.setattr(gateway, "send", explode)
    for name, value in contract_env("http://127.0.0.1:1", tmp_path / "r.json", AGENT).items():
        monkeypatch.setenv(name, value)
    assert runner.main([]) == 1
    captured = capsys.readouterr()
    text = (tmp_path / "r.json").read_text()
    assert TOKEN not in captured.out + captured.err + text
    assert json.loads(text)["reason"] == "InternalError"
    assert json.loads(text)["message"] == "RuntimeError: oops with [redacted]"


# --- the environment contract -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({ENV_GATEWAY_URL: None}, ENV_GATEWAY_URL),
        ({ENV_GATEWAY_URL: "ftp://x"}, ENV_GATEWAY_URL),
        ({ENV_HOOKS_TOKEN: ""}, ENV_HOOKS_TOKEN),
        ({ENV_REQUEST: None}, ENV_REQUEST),
        ({ENV_REQUEST: "{not json"}, ENV_REQUEST),
        ({ENV_REQUEST: '{"payload": {"kind": "agentTurn"}, "wakeMode": "later"}'}, ENV_REQUEST),
        ({ENV_REQUEST: '{"payload": {"kind": "command", "image": "busybox"}}'}, ENV_REQUEST),
        ({ENV_REQUEST: '{"payload": {"kind": "systemEvent"}}'}, ENV_REQUEST),
        ({ENV_JOB: "no-namespace"}, ENV_JOB),
        ({ENV_RUN_ID: None}, ENV_RUN_ID),
        ({ENV_ATTEMPT: "first"}, ENV_ATTEMPT),
        ({ENV_ATTEMPT: "0"}, ENV_ATTEMPT),
        ({ENV_IDEMPOTENCY_KEY: None}, ENV_IDEMPOTENCY_KEY),
        ({ENV_IDEMPOTENCY_KEY: "k" * 257}, ENV_IDEMPOTENCY_KEY),
        ({ENV_TIMEOUT_SECONDS: "soon"}, ENV_TIMEOUT_SECONDS),
        ({ENV_TIMEOUT_SECONDS: "-3"}, ENV_TIMEOUT_SECONDS),
        ({ENV_TIMEOUT_SECONDS: "nan"}, ENV_TIMEOUT_SECONDS),
        ({ENV_SESSION_KEY: "agent:main:x"}, ENV_SESSION_KEY),
        ({ENV_SESSION_KEY: "hook:Upper"}, ENV_SESSION_KEY),
        ({ENV_SESSION_KEY: "hook:" + "k" * 252}, ENV_SESSION_KEY),
    ],
)
def test_bad_environment_is_invalid_request(overrides: dict[str, str | None], named: str, tmp_path: Path) -> None:
    env = contract_env("http://127.0.0.1:1", tmp_path / "r.json", AGENT, overrides)
    with pytest.raises(runner.EnvError, match=named):
        runner.read_env(env)


def test_bad_environment_subprocess_writes_result(hooks: HooksServer, tmp_path: Path) -> None:
    out = run_runner(hooks.url, tmp_path, env={ENV_REQUEST: '{"payload": {"kind": "agentTurn"}}'})
    assert out.rc == 1 and hooks.seen == []
    assert out.result == expected(
        "Failed", "InvalidRequest", f"{ENV_REQUEST}: payload.message is required for agentTurn"
    )
    assert out.stdout.startswith(f"Failed (InvalidRequest): {ENV_REQUEST}: payload.message is required")


def test_run_request_from_spec_round_trips_through_the_env(tmp_path: Path) -> None:
    spec = OpenClawCronJobSpec.model_validate(
        {
            "schedule": {"kind": "cron", "expr": "0 7 * * *"},
            "payload": {"kind": "agentTurn", "message": "hi", "model": "opus"},
            "agentId": "ops",
            "delivery": {"mode": "announce", "channel": "telegram", "to": "42", "bestEffort": True},
        }
    )
    value = runner.RunRequest.from_spec(spec).to_env()
    assert json.loads(value) == {
        "payload": {"kind": "agentTurn", "message": "hi", "model": "opus"},
        "agentId": "ops",
        "wakeMode": "now",
        "delivery": {"mode": "announce", "channel": "telegram", "to": "42", "bestEffort": True},
        "sessionTarget": None,
    }
    cfg = runner.read_env(contract_env("http://gw:18789", tmp_path / "r", json.loads(value)))
    call = runner.hook_call(cfg)
    assert call.deliver and call.best_effort and call.body["channel"] == "telegram"


# --- the result document ------------------------------------------------------------------------


def test_result_fits_in_4_kib_and_stays_valid_json() -> None:
    huge = runner.RunnerResult(
        "Failed",
        "AgentError",
        message='"quoted"\n\x01 ünïcödé ' * 2000,
        retryable=True,
        completion={
            "status": "error",
            "error": "e" * 5000,
            "nested": {"x": 1},
            **{f"k{i}": "v" * 150 for i in range(30)},
        },
        output="ö" * 5000,
        gateway_run_id="r",
    )
    text = runner.encode_result(huge)
    data = json.loads(text)
    assert runner.MAX_RESULT_BYTES - 16 <= len(text.encode()) <= runner.MAX_RESULT_BYTES
    assert len(data["output"].encode()) <= 1024 and data["output"].endswith("…")
    assert data["message"].startswith('"quoted"\n\x01 ünïcödé') and data["message"].endswith("…")
    assert data["completion"]["status"] == "error" and "nested" not in data["completion"]
    assert len(json.dumps(data["completion"], ensure_ascii=False).encode()) <= 1024
    assert runner.parse_result(text) == runner.RunnerResult(
        "Failed",
        "AgentError",
        data["message"],
        retryable=True,
        completion=data["completion"],
        output=data["output"],
        gateway_run_id="r",
    )


def test_small_result_is_untouched() -> None:
    result = runner.RunnerResult("Succeeded", "Completed", "ok", http_status=200, completion={"status": "ok"})
    assert json.loads(runner.encode_result(result)) == result.wire()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '{"result": "Exploded", "reason": "X"}',
        '{"result": "Succeeded"}',
        '{"result": "Succeeded", "reason": 3}',
        "Error: container killed\n",
        "null",
    ],
)
def test_parse_result_rejects_garbage(text: str) -> None:
    assert runner.parse_result(text) is None


def test_parse_result_tolerates_odd_fields_and_extra_lines() -> None:
    text = (
        'some log line\n{"result":"TimedOut","reason":"DeadlineExceeded","message":7,"retryable":"yes",'
        '"httpStatus":true,"gatewayRunId":null,"completion":[],"delivered":"no","output":"x","extra":1}\n'
    )
    assert runner.parse_result(text) == runner.RunnerResult("TimedOut", "DeadlineExceeded", "", output="x")


def test_parse_result_reads_what_the_runner_wrote(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, ok_completion(delivered=True)))
    out = run_runner(hooks.url, tmp_path)
    parsed = runner.parse_result(out.raw)
    assert parsed is not None and parsed.succeeded and parsed.gateway_run_id == "gw-run-1"
    assert parsed.wire() == out.result


# --- the per-attempt session key ------------------------------------------------------------------

SESSION = "hook:ocj-0b6f3c1e-uid-1767254400-1"
REFUSED = (
    "sessionKey is disabled for externally supplied hook payload values; set hooks.allowRequestSessionKey=true "
    "to enable"
)  # a real 2026.9.6 gateway's words


def test_agent_turn_runs_in_its_session(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, ok_completion(delivered=False, deliveryAttempted=False)))
    out = run_runner(hooks.url, tmp_path, env={ENV_SESSION_KEY: SESSION})
    assert out.rc == 0, out.stderr
    [seen] = hooks.seen
    assert seen.json["sessionKey"] == SESSION and seen.json["sessionMode"] == "persistent"
    assert out.result["sessionKey"] == SESSION and out.result["sessionNote"] is None


@pytest.mark.parametrize("refusal", [REFUSED, "sessionKey must start with one of: hook:"])
def test_refused_session_key_runs_without_it_under_the_same_idempotency_key(
    refusal: str, hooks: HooksServer, tmp_path: Path
) -> None:
    hooks.script(
        Reply(400, {"ok": False, "error": refusal}), Reply(200, ok_completion(delivered=False, deliveryAttempted=False))
    )
    out = run_runner(hooks.url, tmp_path, env={ENV_SESSION_KEY: SESSION})
    assert out.rc == 0 and out.result["reason"] == "Completed"
    first, second = hooks.seen
    assert first.json["sessionKey"] == SESSION
    assert "sessionKey" not in second.json and "sessionMode" not in second.json
    assert first.json | {"sessionKey": None, "sessionMode": None} == second.json | {
        "sessionKey": None,
        "sessionMode": None,
    }
    # The refusal started no gateway run, so the same key still means "at most one run".
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == KEY
    assert out.result["sessionKey"] is None
    assert out.result["sessionNote"] == (
        f"the gateway refused the per-attempt sessionKey ({refusal}); the turn ran without it, so its reply "
        'cannot be read back: set hooks.allowRequestSessionKey: true and keep "hook:" in '
        "hooks.allowedSessionKeyPrefixes"
    )


def test_other_400s_are_not_retried_without_the_key(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(400, {"ok": False, "error": 'unknown agentId "nosuch"'}))
    out = run_runner(hooks.url, tmp_path, env={ENV_SESSION_KEY: SESSION})
    assert out.result["reason"] == "InvalidRequest" and len(hooks.seen) == 1


def test_wake_has_no_session_key(hooks: HooksServer, tmp_path: Path) -> None:
    hooks.script(Reply(200, {"ok": True, "mode": "now", "eventOutcome": "queued"}))
    out = run_runner(hooks.url, tmp_path, WAKE, env={ENV_SESSION_KEY: SESSION})
    assert out.rc == 0 and "sessionKey" not in hooks.seen[0].json


def test_delivery_verdict_survives_the_termination_message() -> None:
    result = gateway.RunnerResult(
        "Succeeded",
        "Completed",
        "ok",
        delivered=False,
        delivery_attempted=True,
        reply_disposition="visible",
        delivery_error="delivery-failed",
        delivery_suppression_reason="silent",
        session_key=SESSION,
        session_note="n",
    )
    assert runner.parse_result(runner.encode_result(result)) == result
