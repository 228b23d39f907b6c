"""Archive capture against a real OpenClaw gateway: the runner's session key, then the reply read back.

The runner runs as a subprocess with a run Pod's environment; the operator side (`capture`) reads
the reply over HTTP with the gateway's full-access token, as the operator does after an attempt.
A second gateway with a default hooks config (no `allowRequestSessionKey`) shows what a refusing
gateway answers and that the run still works, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import openclaw_gateway as harness
import pytest

from openclaw_cron import naming as n
from openclaw_cron.api import OpenClawCronJobSpec
from openclaw_cron.archive.capture import capture_reply, entry_for, read_reply
from openclaw_cron.pods import JobRef, PodView
from openclaw_cron.settings import Settings
from openclaw_cron.status import pod_outcome, record

pytestmark = pytest.mark.gateway

SCHEDULED = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def agent_request(message: str) -> dict[str, Any]:
    # deliver false (no channel here); next-heartbeat keeps the main session quiet.
    return {"payload": {"kind": "agentTurn", "message": message}, "wakeMode": "next-heartbeat"}


def run_attempt(gateway: harness.Gateway, tmp_path: Path, job: JobRef, message: str) -> str:
    """One attempt through the real runner, with the Pod env the operator renders; its result text."""
    result = tmp_path / f"result-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env |= {
        n.ENV_GATEWAY_URL: gateway.url,
        n.ENV_HOOKS_TOKEN: gateway.hooks_token,
        n.ENV_REQUEST: json.dumps(agent_request(message)),
        n.ENV_JOB: f"{job.namespace}/{job.name}",
        n.ENV_RUN_ID: n.run_id(job.name, SCHEDULED),
        n.ENV_ATTEMPT: "1",
        n.ENV_IDEMPOTENCY_KEY: n.idempotency_key(job.uid, SCHEDULED, 1),
        n.ENV_SESSION_KEY: n.session_key(job.uid, SCHEDULED, 1),
        n.ENV_TIMEOUT_SECONDS: "90",
        n.ENV_RESULT_PATH: str(result),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "openclaw_cron.runner"], env=env, capture_output=True, text=True, timeout=150
    )
    text = result.read_text()
    for out in (proc.stdout, proc.stderr, text):
        assert gateway.hooks_token not in out and gateway.gateway_token not in out
    assert proc.returncode == 0, text
    return text


def finished_pod(job: JobRef, message: str) -> PodView:
    return PodView(
        name=n.pod_name(job.name, SCHEDULED, 1),
        namespace=job.namespace,
        owner_uid=job.uid,
        run_id=n.run_id(job.name, SCHEDULED),
        attempt=1,
        trigger="Schedule",
        scheduled=SCHEDULED,
        created=SCHEDULED,
        phase="Succeeded",
        start_time=SCHEDULED,
        finish_time=SCHEDULED,
        exit_code=0,
        message=message,
        node="node-a",
        image="runner:test",
    )


def spec_for(gateway: harness.Gateway, agent_id: str | None = None) -> OpenClawCronJobSpec:
    raw: dict[str, Any] = {
        "schedule": {"kind": "cron", "expr": "0 8 * * *"},
        "payload": {"kind": "agentTurn", "message": "unused here"},
        "gateway": {"url": gateway.url},
    }
    if agent_id:
        raw["agentId"] = agent_id
    return OpenClawCronJobSpec.model_validate(raw)


def new_job() -> JobRef:
    return JobRef("tests", "capture", str(uuid.uuid4()))


@pytest.fixture(scope="module")
def refusing(stub_model: harness.StubModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Gateway]:
    """A gateway whose hooks config does not allow request session keys (the gateway's default)."""
    if os.environ.get("OPENCLAW_GATEWAY_TESTS") == "skip":
        pytest.skip("OPENCLAW_GATEWAY_TESTS=skip")
    gateway = harness.Gateway(
        base=tmp_path_factory.mktemp("openclaw-refusing"), model_url=stub_model.base_url, allow_session_keys=False
    )
    try:
        gateway.start().wait_ready(timeout=120)
    except RuntimeError as exc:
        gateway.stop()
        pytest.fail(f"the OpenClaw gateway did not start: {exc}")
    yield gateway
    gateway.stop()


async def test_reply_and_delivery_verdict_of_an_agent_turn_are_captured(
    openclaw: harness.Gateway, stub_model: harness.StubModel, tmp_path: Path
) -> None:
    job, marker = new_job(), uuid.uuid4().hex
    text = run_attempt(openclaw, tmp_path, job, f"Report status {harness.ECHO_MARKER}{marker}")
    result = json.loads(text)
    key = n.session_key(job.uid, SCHEDULED, 1)
    assert (result["result"], result["sessionKey"], result["sessionNote"]) == ("Succeeded", key, None)
    # The delivery verdict, as the gateway's completion gave it (deliver: false, no channel).
    assert (result["delivered"], result["deliveryAttempted"], result["replyDisposition"]) == (False, False, "visible")
    assert result["deliveryError"] is None and result["deliverySuppressionReason"] is None
    expected = f"{harness.REPLY} echo {marker}"

    token_file = tmp_path / "gateway-token"
    token_file.write_text(openclaw.gateway_token + "\n")
    settings = Settings(gateway_admin_token_files={openclaw.url: str(token_file)})
    pod = finished_pod(job, text)
    async with aiohttp.ClientSession() as http:
        # Without an agentId the bare key resolves to the gateway's default agent ("main" here).
        assert await read_reply(http, openclaw.url, openclaw.gateway_token, "", key, 10) == (expected, "")
        assert await read_reply(http, openclaw.url, openclaw.gateway_token, "main", key, 10) == (expected, "")
        reply, note = await capture_reply(http, settings, job, spec_for(openclaw), pod)
    assert (reply, note) == (expected, "")
    assert stub_model.completions_with(marker) == 1

    outcome = pod_outcome(pod, runner=True)
    rec = record(
        run_id=pod.run_id,
        trigger="Schedule",
        scheduled=SCHEDULED,
        start=SCHEDULED,
        attempts=1,
        outcome=outcome,
        pod_name=pod.name,
        now=SCHEDULED,
    )
    assert rec.wire()["delivery"] == {
        "status": "not-delivered",
        "delivered": False,
        "deliveryAttempted": False,
        "replyDisposition": "visible",
    }
    entry = entry_for(job, rec, pod, reply=reply, reply_note=note, log="", log_truncated=False)
    assert entry.reply == expected and entry.delivery == rec.wire()["delivery"]
    assert entry.gateway_run_id == result["gatewayRunId"]


async def test_the_hooks_token_cannot_read_the_reply(openclaw: harness.Gateway, tmp_path: Path) -> None:
    job = new_job()
    run_attempt(openclaw, tmp_path, job, "Report status")
    key = n.session_key(job.uid, SCHEDULED, 1)
    async with aiohttp.ClientSession() as http:
        assert await read_reply(http, openclaw.url, openclaw.hooks_token, "", key, 10) == (
            "",
            "the gateway refused the token for reading session history (401): the operator needs the "
            "gateway's full-access token (gateway.auth.token), not the hooks token",
        )
        # A wrong agent id: the session is not there.
        reply, note = await read_reply(http, openclaw.url, openclaw.gateway_token, "other", key, 10)
    assert reply == "" and note.startswith(f"the gateway has no session agent:other:{key} (404: Session not found")


async def test_a_gateway_that_refuses_session_keys_still_runs_the_turn_once(
    refusing: harness.Gateway, stub_model: harness.StubModel, tmp_path: Path
) -> None:
    job, marker = new_job(), uuid.uuid4().hex
    started = time.monotonic()
    text = run_attempt(refusing, tmp_path, job, f"Report status {marker}")
    result = json.loads(text)
    assert (result["result"], result["reason"], result["sessionKey"]) == ("Succeeded", "Completed", None)
    assert result["sessionNote"] == (
        "the gateway refused the per-attempt sessionKey (sessionKey is disabled for externally supplied hook "
        "payload values; set hooks.allowRequestSessionKey=true to enable); the turn ran without it, so its reply "
        'cannot be read back: set hooks.allowRequestSessionKey: true and keep "hook:" in '
        "hooks.allowedSessionKeyPrefixes"
    )
    assert stub_model.completions_with(marker) == 1, "the refused call started no run; the retry exactly one"
    token_file = tmp_path / "gateway-token"
    token_file.write_text(refusing.gateway_token)
    settings = Settings(gateway_admin_token_files={refusing.url: str(token_file)})
    async with aiohttp.ClientSession() as http:
        reply, note = await capture_reply(http, settings, job, spec_for(refusing), finished_pod(job, text))
    assert (reply, note) == ("", result["sessionNote"])
    print(f"\nrefused-then-plain attempt took {time.monotonic() - started:.1f}s")
