"""The real runner (a subprocess, as in a run Pod) against a real OpenClaw gateway on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openclaw_gateway as harness
import pytest

from openclaw_cron.gateway import DEADLINE_EXCEEDED, RunnerResult
from openclaw_cron.naming import (
    ENV_ATTEMPT,
    ENV_GATEWAY_URL,
    ENV_HOOKS_TOKEN,
    ENV_IDEMPOTENCY_KEY,
    ENV_JOB,
    ENV_REQUEST,
    ENV_RESULT_PATH,
    ENV_RUN_ID,
    ENV_TIMEOUT_SECONDS,
)

pytestmark = pytest.mark.gateway


@dataclass
class Run:
    rc: int
    stdout: str
    result: dict[str, Any]
    seconds: float


def runner_env(gateway: harness.Gateway, result: Path, request: dict[str, Any], over: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env |= {
        ENV_GATEWAY_URL: gateway.url,
        ENV_HOOKS_TOKEN: gateway.hooks_token,
        ENV_REQUEST: json.dumps(request),
        ENV_JOB: "tests/gateway-tier",
        ENV_RUN_ID: "gateway-tier-1767254400",
        ENV_ATTEMPT: "1",
        ENV_IDEMPOTENCY_KEY: f"ocj-{uuid.uuid4()}-1767254400-1",
        ENV_TIMEOUT_SECONDS: "90",
        ENV_RESULT_PATH: str(result),
    }
    return env | over


def finish(gateway: harness.Gateway, proc: subprocess.Popen[str], result: Path, started: float) -> Run:
    stdout, stderr = proc.communicate(timeout=120)
    seconds = time.monotonic() - started
    raw = result.read_text()
    for text in (stdout, stderr, raw):
        assert gateway.hooks_token not in text and gateway.gateway_token not in text
    return Run(proc.returncode, stdout, json.loads(raw), seconds)


def start_runner(
    gateway: harness.Gateway, tmp_path: Path, request: dict[str, Any], env: dict[str, str] | None = None
) -> Callable[[], Run]:
    """Start the runner as a subprocess with the run Pod's environment; the returned call waits for it."""
    result = tmp_path / f"result-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "openclaw_cron.runner"],
        env=runner_env(gateway, result, request, env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return lambda: finish(gateway, proc, result, started)


def run_runner(
    gateway: harness.Gateway, tmp_path: Path, request: dict[str, Any], env: dict[str, str] | None = None
) -> Run:
    return start_runner(gateway, tmp_path, request, env)()


def agent(message: str, **extra: Any) -> dict[str, Any]:
    # next-heartbeat: a failed or undelivered turn then does not wake the main session at once,
    # which would start extra model calls in the background of the other tests.
    return {"payload": {"kind": "agentTurn", "message": message}, "wakeMode": "next-heartbeat", **extra}


def nonce() -> str:
    return uuid.uuid4().hex


def test_agent_turn_succeeds(openclaw: harness.Gateway, stub_model: harness.StubModel, tmp_path: Path) -> None:
    marker = nonce()
    run = run_runner(openclaw, tmp_path, agent(f"Report status {marker}"))
    assert run.rc == 0, run.result
    result = run.result
    assert (result["result"], result["reason"], result["httpStatus"]) == ("Succeeded", "Completed", 200)
    assert uuid.UUID(result["gatewayRunId"])
    assert result["completion"]["status"] == "ok"
    assert result["delivered"] is False and result["retryable"] is False
    assert stub_model.completions_with(marker) >= 1, "the turn must have reached the model"


def test_same_idempotency_key_replays_the_same_run(
    openclaw: harness.Gateway, stub_model: harness.StubModel, tmp_path: Path
) -> None:
    marker, key = nonce(), f"ocj-{uuid.uuid4()}-1767254400-1"
    first = run_runner(openclaw, tmp_path, agent(f"Once only {marker}"), env={ENV_IDEMPOTENCY_KEY: key})
    calls = stub_model.completions_with(marker)
    second = run_runner(openclaw, tmp_path, agent(f"Once only {marker}"), env={ENV_IDEMPOTENCY_KEY: key})
    assert first.rc == second.rc == 0
    assert first.result["gatewayRunId"] == second.result["gatewayRunId"]
    assert calls >= 1 and stub_model.completions_with(marker) == calls, "the replay must not call the model again"
    other = run_runner(openclaw, tmp_path, agent(f"Once only {marker}"))
    assert other.result["gatewayRunId"] != first.result["gatewayRunId"], "a new attempt key starts a new run"


def test_model_failure_is_failed(openclaw: harness.Gateway, tmp_path: Path) -> None:
    run = run_runner(openclaw, tmp_path, agent(f"{harness.FAIL_MARKER} {nonce()}"))
    assert run.rc == 1
    assert (run.result["result"], run.result["reason"], run.result["retryable"]) == ("Failed", "AgentError", True)
    assert run.result["completion"]["status"] == "error" and uuid.UUID(run.result["gatewayRunId"])


def test_announce_without_a_channel_is_delivery_failed(openclaw: harness.Gateway, tmp_path: Path) -> None:
    """No channel is configured, so an announced answer is not delivered: Failed unless bestEffort."""
    run = run_runner(openclaw, tmp_path, agent(f"Announce {nonce()}", delivery={"mode": "announce"}))
    assert run.rc == 1
    assert (run.result["result"], run.result["reason"]) == ("Failed", "DeliveryFailed")
    assert run.result["completion"]["status"] == "ok" and run.result["delivered"] is False


def test_system_event_is_queued(openclaw: harness.Gateway, tmp_path: Path) -> None:
    request = {"payload": {"kind": "systemEvent", "text": f"Calendar check {nonce()}"}, "wakeMode": "next-heartbeat"}
    run = run_runner(openclaw, tmp_path, request)
    assert run.rc == 0
    assert (run.result["result"], run.result["reason"], run.result["httpStatus"]) == ("Succeeded", "Queued", 200)
    assert "eventOutcome=queued" in run.result["message"]


def test_wrong_token_is_unauthorized(openclaw: harness.Gateway, tmp_path: Path) -> None:
    # One failure only: 20 a minute from one address make the gateway answer 429 to everyone here.
    run = run_runner(openclaw, tmp_path, agent("never runs"), env={ENV_HOOKS_TOKEN: "not-the-hooks-token"})
    assert run.rc == 1
    assert run.result["reason"] == "Unauthorized" and run.result["retryable"] is False
    assert run.result["httpStatus"] == 401 and run.seconds < 10


def test_stalled_model_times_out(openclaw: harness.Gateway, stub_model: harness.StubModel, tmp_path: Path) -> None:
    marker, budget = nonce(), 15
    done = start_runner(
        openclaw, tmp_path, agent(f"{harness.STALL_MARKER} {marker}"), {ENV_TIMEOUT_SECONDS: str(budget)}
    )
    try:
        deadline = time.monotonic() + budget
        while not stub_model.completions_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        reached_model = stub_model.completions_with(marker) > 0
        run = done()
    finally:
        stub_model.release()
    assert reached_model, "the turn must have been waiting on the stalled model"
    assert run.rc == 1
    message = f"no outcome within the attempt budget of {budget}s"
    assert run.result == RunnerResult("TimedOut", DEADLINE_EXCEEDED, message, retryable=True).wire()  # rest empty
    assert budget <= run.seconds < budget + 5
