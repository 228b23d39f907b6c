"""Archive capture: the reply read from a (local, real aiohttp) gateway stand-in, log tails, entries.

The history endpoint's shape is the one a real 2026.9.6 gateway answered (see the gateway tier,
tests/gateway/test_capture_gateway.py, which runs the same functions against the real thing).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from openclaw_cron import naming as n
from openclaw_cron.api import DeliveryStatus, OpenClawCronJobSpec, RunRecord
from openclaw_cron.archive import capture
from openclaw_cron.archive.capture import (
    MAX_REPLY_BYTES,
    admin_token,
    capture_reply,
    entry_for,
    history_session_key,
    log_tail,
    read_reply,
    reply_from_history,
)
from openclaw_cron.gateway import RunnerResult
from openclaw_cron.pods import JobRef, PodView
from openclaw_cron.runner import encode_result
from openclaw_cron.settings import Settings
from openclaw_cron.status import delivery_status

TOKEN = "gw-full-access-token-5d1c"
HOOKS_TOKEN = "hooks-token-not-for-history"
KEY = "hook:ocj-uid-1-1767254400-1"
REPLY = "Stub model reply: all systems nominal."
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
JOB = JobRef("assistants", "morning-status", "0b6f3c1e-uid")


def assistant(text: str | None = None, **extra: Any) -> dict[str, Any]:
    content = [{"type": "text", "text": text}] if text is not None else []
    return {"role": "assistant", "content": content, "stopReason": "stop", **extra}


def history(*messages: dict[str, Any]) -> dict[str, Any]:
    # A real gateway sends both `items` and `messages` (the same list).
    return {"sessionKey": f"agent:main:{KEY}", "items": list(messages), "messages": list(messages), "hasMore": False}


@dataclass
class FakeGateway:
    """A real HTTP server on 127.0.0.1 that answers the session history route as scripted."""

    url: str = ""
    seen: list[web.Request] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    answer: Callable[[web.Request], web.StreamResponse] | None = None
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            return self.answer(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": {"message": "Unauthorized", "type": "unauthorized"}}, status=401)
        key = request.match_info["key"]
        if key not in self.sessions:
            body = {"ok": False, "error": {"type": "not_found", "message": f"Session not found: {key}"}}
            return web.json_response(body, status=404)
        return web.json_response(self.sessions[key])


@pytest.fixture
async def gw() -> AsyncIterator[FakeGateway]:
    fake = FakeGateway()
    app = web.Application()
    app.router.add_get("/sessions/{key}/history", fake.handle)
    app.router.add_get("/elsewhere", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- which session ------------------------------------------------------------------------------


def test_session_key_is_per_attempt_lowercase_and_deterministic() -> None:
    key = n.session_key("0B6F3C1E-UID", T0, 2)
    assert key == "hook:ocj-0b6f3c1e-uid-1767254400-2"
    assert key == n.session_key("0B6F3C1E-UID", T0, 2)
    assert key != n.session_key("0B6F3C1E-UID", T0, 3) != n.session_key("other", T0, 2)


def test_history_key_names_the_agent_or_leaves_the_default_to_the_gateway() -> None:
    assert history_session_key("Ops", KEY) == f"agent:ops:{KEY}"
    # A bare key is resolved by the gateway to its own default agent ("main" or agents.list's default).
    assert history_session_key("", KEY) == KEY
    assert history_session_key(None, KEY) == KEY


# --- the reply in a history answer --------------------------------------------------------------


def test_reply_is_the_last_assistant_message_text() -> None:
    data = history(
        {"role": "user", "content": "Job ID: … Report status"},
        assistant(None, content=[{"type": "toolCall", "name": "exec"}], stopReason="toolUse"),
        {"role": "toolResult", "content": [{"type": "text", "text": "uptime 3d"}]},
        assistant(
            None, content=[{"type": "text", "text": "All"}, {"type": "image"}, {"type": "text", "text": "good."}]
        ),
    )
    assert reply_from_history(data) == ("All\ngood.", "")


def test_reply_as_a_plain_string_content() -> None:
    assert reply_from_history(history({"role": "assistant", "content": REPLY})) == (REPLY, "")


NO_ASSISTANT = "the session holds no assistant message: the turn produced no reply"


@pytest.mark.parametrize(
    ("data", "note"),
    [
        (history({"role": "user", "content": "hi"}), NO_ASSISTANT),
        (history(), NO_ASSISTANT),
        (history(assistant(None, stopReason="error", errorMessage="400 stub model refuses this prompt")),
         "the turn ended without a reply: 400 stub model refuses this prompt"),
        (history(assistant("   ")), "the agent's last message has no text (stopReason stop)"),
        ({"sessionKey": KEY}, "unexpected session history answer from the gateway (no messages list)"),
        ([1, 2], "unexpected session history answer from the gateway (no messages list)"),
    ],
)  # fmt: skip
def test_no_reply_says_why(data: Any, note: str) -> None:
    assert reply_from_history(data) == ("", note)


def test_long_reply_is_cut_at_the_bound_on_a_character_boundary() -> None:
    text = "é" * MAX_REPLY_BYTES  # 2 bytes each
    reply, note = reply_from_history(history(assistant(text)))
    assert len(reply.encode()) <= MAX_REPLY_BYTES and reply == "é" * (MAX_REPLY_BYTES // 2)
    assert note == f"reply cut to {MAX_REPLY_BYTES} bytes"


# --- read_reply over HTTP -----------------------------------------------------------------------


async def test_read_reply_reads_the_attempts_session(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.sessions[f"agent:ops:{KEY}"] = history({"role": "user", "content": "x"}, assistant(REPLY))
    assert await read_reply(http, gw.url + "/", TOKEN, "ops", KEY, 5) == (REPLY, "")
    [seen] = gw.seen
    assert seen.raw_path == f"/sessions/{'agent%3Aops%3Ahook%3Aocj-uid-1-1767254400-1'}/history?limit=20"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_read_reply_with_the_hooks_token_is_a_clear_401_note(
    gw: FakeGateway, http: aiohttp.ClientSession
) -> None:
    gw.sessions[KEY] = history(assistant(REPLY))
    reply, note = await read_reply(http, gw.url, HOOKS_TOKEN, "", KEY, 5)
    assert reply == ""
    assert note == (
        "the gateway refused the token for reading session history (401): the operator needs the "
        "gateway's full-access token (gateway.auth.token), not the hooks token"
    )


async def test_unknown_session_is_a_404_note(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    assert await read_reply(http, gw.url, TOKEN, "main", KEY, 5) == (
        "",
        f"the gateway has no session agent:main:{KEY} (404: Session not found: agent:main:{KEY}): "
        "wrong agentId, or the session was removed",
    )


async def test_server_error_quotes_the_gateway(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.answer = lambda _: web.json_response({"ok": False, "error": {"message": "store busy"}}, status=503)
    assert await read_reply(http, gw.url, TOKEN, "", KEY, 5) == (
        "",
        "the gateway answered 503 reading the session history: store busy",
    )


async def test_rate_limited_note(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.answer = lambda _: web.json_response({"error": {"message": "Too many requests"}}, status=429)
    assert await read_reply(http, gw.url, TOKEN, "", KEY, 5) == (
        "",
        "the gateway is rate limiting the operator (429): Too many requests",
    )


async def test_redirect_is_not_followed(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.answer = lambda r: (
        web.Response(status=302, headers={"Location": "/elsewhere"})
        if not r.path.startswith("/elsewhere")
        else web.Response(text="followed")
    )
    reply, note = await read_reply(http, gw.url, TOKEN, "", KEY, 5)
    assert reply == "" and note.startswith("the gateway answered a redirect (302) to /elsewhere")
    assert [r.path for r in gw.seen] == [f"/sessions/{KEY}/history"], "the token must not be replayed"


async def test_timeout_is_a_note(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.delay = 5
    assert await read_reply(http, gw.url, TOKEN, "", KEY, 0.3) == (
        "",
        "no answer from the gateway within 0.3s reading the reply",
    )


async def test_refused_connection_is_a_note(http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    reply, note = await read_reply(http, url, TOKEN, "", KEY, 5)
    assert reply == "" and note.startswith(f"cannot reach the gateway at {url} to read the reply: ClientConnector")


async def test_not_json_is_a_note(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.answer = lambda _: web.Response(text="<html>proxy</html>")
    assert await read_reply(http, gw.url, TOKEN, "", KEY, 5) == ("", "the gateway's session history answer is not JSON")


async def test_no_token_is_a_note_without_a_request(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    assert await read_reply(http, gw.url, "", "", KEY, 5) == (
        "",
        "no full-access gateway token configured for this gateway",
    )
    assert gw.seen == []


async def test_an_echoed_token_never_reaches_the_note(gw: FakeGateway, http: aiohttp.ClientSession) -> None:
    gw.answer = lambda r: web.json_response({"error": {"message": f"bad {r.headers['Authorization']}"}}, status=500)
    reply, note = await read_reply(http, gw.url, TOKEN, "", KEY, 5)
    assert reply == "" and TOKEN not in note and "[redacted]" in note


# --- which token --------------------------------------------------------------------------------


def token_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_default_gateway_token_serves_only_the_default_gateway(tmp_path: Path) -> None:
    settings = Settings(
        gateway_url="http://openclaw.openclaw.svc:18789",
        gateway_admin_token_file=token_file(tmp_path, "default", f" {TOKEN}\n"),
    )
    assert admin_token(settings, "HTTP://openclaw.openclaw.svc:18789/") == (TOKEN, "")
    token, note = admin_token(settings, "http://evil.example:18789")
    assert token == ""
    assert note == (
        "the operator has no full-access token for the gateway http://evil.example:18789 (settings "
        "OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILE for the default gateway, OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILES "
        "per gateway URL)"
    )


def test_per_gateway_token_files(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILES": json.dumps(
                {"http://gw.team-a.svc:18789/": token_file(tmp_path, "a", "token-a")}
            )
        }
    )
    assert admin_token(settings, "http://gw.team-a.svc:18789") == ("token-a", "")


def test_unreadable_or_empty_token_file_is_a_note(tmp_path: Path) -> None:
    missing = Settings(gateway_admin_token_file=str(tmp_path / "nope"))
    assert admin_token(missing, missing.gateway_url) == (
        "",
        f"cannot read the gateway token file {tmp_path / 'nope'}: No such file or directory",
    )
    empty = Settings(gateway_admin_token_file=token_file(tmp_path, "empty", "\n"))
    assert admin_token(empty, empty.gateway_url) == ("", f"the gateway token file {tmp_path / 'empty'} is empty")


# --- capture_reply: from a finished Pod to (reply, note) ----------------------------------------


def agent_spec(url: str, agent_id: str | None = None) -> OpenClawCronJobSpec:
    spec: dict[str, Any] = {
        "schedule": {"kind": "cron", "expr": "0 8 * * *"},
        "payload": {"kind": "agentTurn", "message": "Report status"},
        "gateway": {"url": url},
    }
    if agent_id:
        spec["agentId"] = agent_id
    return OpenClawCronJobSpec.model_validate(spec)


def finished_pod(result: RunnerResult | None, attempt: int = 1) -> PodView:
    return PodView(
        name=n.pod_name(JOB.name, T0, attempt),
        namespace=JOB.namespace,
        owner_uid=JOB.uid,
        run_id=n.run_id(JOB.name, T0),
        attempt=attempt,
        trigger="Schedule",
        scheduled=T0,
        created=T0,
        phase="Succeeded",
        exit_code=0,
        message=encode_result(result) if result is not None else "",
        node="node-a",
        image="ghcr.io/openclaw/openclaw-cron-operator:0.1.0",
    )


def ran(session_key: str | None, note: str | None = None) -> RunnerResult:
    return RunnerResult("Succeeded", "Completed", "ok", session_key=session_key, session_note=note)


def settings_for(gw: FakeGateway, tmp_path: Path, **over: Any) -> Settings:
    return Settings(gateway_admin_token_files={gw.url: token_file(tmp_path, "t", TOKEN)}, **over)


async def test_capture_reads_the_recomputed_session(
    gw: FakeGateway, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    key = n.session_key(JOB.uid, T0, 2)
    gw.sessions[f"agent:ops:{key}"] = history(assistant(REPLY))
    pod = finished_pod(ran(key), attempt=2)
    assert await capture_reply(http, settings_for(gw, tmp_path), JOB, agent_spec(gw.url, "ops"), pod) == (REPLY, "")


async def test_capture_without_session_says_why(gw: FakeGateway, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    settings, spec = settings_for(gw, tmp_path), agent_spec(gw.url)
    refused = "the gateway refused the per-attempt sessionKey (…); the turn ran without it"
    cases = [
        (finished_pod(ran(None, refused)), refused),
        (finished_pod(ran(None)), "the agent turn did not run in its own session (Completed)"),
        (
            finished_pod(ran("hook:someone-elses-session")),
            "the runner reported another session key than this attempt's",
        ),
        (finished_pod(None), "the run Pod left no runner result"),
        (None, "the run Pod is gone, so the attempt's session is unknown"),
    ]
    for pod, note in cases:
        assert await capture_reply(http, settings, JOB, spec, pod) == ("", note)
    off = replace(settings, session_keys=False)
    pod = finished_pod(ran(n.session_key(JOB.uid, T0, 1)))
    assert await capture_reply(http, off, JOB, spec, pod) == (
        "",
        "per-attempt session keys are off (OPENCLAW_CRON_SESSION_KEYS=false)",
    )
    no_token = Settings()
    _, note = await capture_reply(http, no_token, JOB, spec, pod)
    assert note.startswith(f"the operator has no full-access token for the gateway {gw.url}")
    assert gw.seen == [], "another session's key, or no token, must never be read"


async def test_capture_of_other_kinds_is_nothing(http: aiohttp.ClientSession) -> None:
    spec = OpenClawCronJobSpec.model_validate(
        {
            "schedule": {"kind": "cron", "expr": "0 8 * * *"},
            "payload": {"kind": "command", "image": "busybox", "command": ["true"]},
        }
    )
    assert await capture_reply(http, Settings(), JOB, spec, None) == ("", "")


# --- log tails ----------------------------------------------------------------------------------


async def test_log_tail_bounds_and_flags_truncation() -> None:
    asked: list[tuple[str, str, int]] = []
    text = "line\n" * 10

    async def read_log(namespace: str, pod: str, limit: int) -> str | None:
        asked.append((namespace, pod, limit))
        return text[-limit:]  # read_log gives the end of the log (Kube.read_log_tail)

    assert await log_tail(read_log, "ns", "p", 100) == (text, False)
    assert await log_tail(read_log, "ns", "p", 50) == (text, False)
    assert await log_tail(read_log, "ns", "p", 12) == ("ne\nline\nline\n"[-12:], True)
    assert asked == [("ns", "p", 101), ("ns", "p", 51), ("ns", "p", 13)]


async def test_log_tail_cuts_on_a_character_boundary() -> None:
    async def read_log(namespace: str, pod: str, limit: int) -> str | None:
        return "ééé"

    assert await log_tail(read_log, "ns", "p", 3) == ("é", True)


async def test_log_tail_without_a_log() -> None:
    async def gone(namespace: str, pod: str, limit: int) -> str | None:
        return None

    async def broken(namespace: str, pod: str, limit: int) -> str | None:
        raise RuntimeError("kubelet unreachable")

    assert await log_tail(gone, "ns", "p", 10) == ("", False)
    assert await log_tail(broken, "ns", "p", 10) == ("", False)


# --- the entry and its delivery verdict ---------------------------------------------------------


def test_delivery_verdict_from_runner_to_status() -> None:
    def verdict(**fields: Any) -> dict[str, Any] | None:
        status = delivery_status(RunnerResult("Succeeded", fields.pop("reason", "Completed"), "m", **fields))
        return status.wire() if status is not None else None

    assert verdict() is None
    assert verdict(delivered=True, delivery_attempted=True, reply_disposition="visible") == {
        "status": "delivered",
        "delivered": True,
        "deliveryAttempted": True,
        "replyDisposition": "visible",
    }
    assert verdict(delivered=False, delivery_suppression_reason="silent", reply_disposition="silent") == {
        "status": "suppressed",
        "delivered": False,
        "replyDisposition": "silent",
        "error": "silent",
    }
    assert verdict(
        reason="DeliveryFailed", delivered=False, delivery_attempted=True, delivery_error="delivery-failed"
    ) == {"status": "failed", "delivered": False, "deliveryAttempted": True, "error": "delivery-failed"}
    assert verdict(delivered=False, delivery_attempted=False, reply_disposition="visible") == {
        "status": "not-delivered",
        "delivered": False,
        "deliveryAttempted": False,
        "replyDisposition": "visible",
    }


def test_entry_for_joins_record_pod_reply_and_log() -> None:
    record = RunRecord(
        run_id=n.run_id(JOB.name, T0),
        trigger="Manual",
        scheduled_time=n.rfc3339(T0),
        start_time="2026-01-01T08:00:02Z",
        completion_time="2026-01-01T08:00:07Z",
        duration_seconds=5.0,
        attempts=2,
        result="Succeeded",
        reason="Completed",
        message="agent turn g-1 completed",
        pod_name=n.pod_name(JOB.name, T0, 2),
        gateway_run_id="g-1",
        delivery=DeliveryStatus(
            status="delivered", delivered=True, delivery_attempted=True, reply_disposition="visible"
        ),
    )
    pod = finished_pod(ran(None), attempt=2)
    entry = entry_for(JOB, record, pod, reply=REPLY, reply_note="", log="log text", log_truncated=True)
    assert entry.key() == (JOB.uid, record.run_id, 2)
    assert (entry.namespace, entry.job, entry.trigger, entry.result) == ("assistants", JOB.name, "Manual", "Succeeded")
    assert entry.scheduled_time == T0 and entry.completion_time == datetime(2026, 1, 1, 8, 0, 7, tzinfo=UTC)
    assert (entry.node, entry.image, entry.pod_name) == ("node-a", pod.image, pod.name)
    assert dict(entry.delivery) == {
        "status": "delivered",
        "delivered": True,
        "deliveryAttempted": True,
        "replyDisposition": "visible",
    }
    assert (entry.reply, entry.log, entry.log_truncated, entry.output, entry.exit_code) == (
        REPLY,
        "log text",
        True,
        "",
        None,
    )
    gone = entry_for(JOB, record, None, reply="", reply_note="why", log="", log_truncated=False)
    assert (gone.attempt, gone.node, gone.pod_name, gone.reply_note) == (2, "", record.pod_name, "why")


def test_module_keeps_its_bounds() -> None:
    assert capture.HISTORY_LIMIT >= 1 and capture.MAX_REPLY_BYTES == 64 * 1024


async def test_capture_entry_reads_reply_and_log_of_one_attempt(
    gw: FakeGateway, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    key = n.session_key(JOB.uid, T0, 1)
    gw.sessions[key] = history(assistant(REPLY))
    pod = finished_pod(ran(key))
    record = RunRecord(run_id=pod.run_id, scheduled_time=n.rfc3339(T0), result="Succeeded", pod_name=pod.name)
    asked: list[tuple[str, str, int]] = []

    async def read_log(namespace: str, name: str, limit: int) -> str | None:
        asked.append((namespace, name, limit))
        return "Succeeded (Completed): agent turn completed\n"

    settings = settings_for(gw, tmp_path)
    entry = await capture.capture_entry(http, settings, JOB, agent_spec(gw.url), record, pod, read_log, 1024)
    assert (entry.reply, entry.reply_note, entry.log, entry.log_truncated) == (
        REPLY,
        "",
        "Succeeded (Completed): agent turn completed\n",
        False,
    )
    assert asked == [(JOB.namespace, pod.name, 1025)]
    gone = await capture.capture_entry(http, settings, JOB, agent_spec(gw.url), record, None, read_log, 1024)
    assert (gone.reply, gone.log, gone.reply_note) == (
        "",
        "",
        "the run Pod is gone, so the attempt's session is unknown",
    )
