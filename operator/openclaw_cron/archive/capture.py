"""Capture for the archive: an attempt's agent reply, its Pod's log, and the entry that holds them.

The reply is read by the OPERATOR after the attempt, from the gateway's session history under
the attempt's own session key (`naming.session_key`, sent by the runner), with the gateway's
full-access token. That token is read from a file mounted from a Secret in the operator's own
namespace (`Settings.gateway_admin_token_file`, and `gateway_admin_token_files` per gateway URL
for `spec.gateway.url`): it never reaches run Pods or job namespaces, which hold only the hooks
token. Why this way and not the alternatives (`openclaw-gateway.md`): the hooks answer never
carries the reply, the WS RPC needs a device identity off loopback, and the OpenAI-compatible
endpoints do not deliver. The session key is recomputed here rather than taken from the Pod, so
a forged termination message cannot make the operator read another session.

Nothing here raises for an unreadable reply: every failure becomes a `reply_note` saying why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import yarl

from .. import naming as n
from ..api import OpenClawCronJobSpec, RunRecord
from ..pods import JobRef, PodView
from ..runner import parse_result
from ..settings import Settings, gateway_key
from .model import RunEntry

log = logging.getLogger(__name__)

#: The reply kept per attempt (the gateway itself cuts each history text at 8000 characters).
MAX_REPLY_BYTES = 64 * 1024
#: History messages read: the reply is the last assistant message, after any tool turns.
HISTORY_LIMIT = 20
#: A gateway's error text quoted in a note.
NOTE_TEXT_CHARS = 300
#: Bound on the history answer read (HISTORY_LIMIT messages of ≤ 8000 characters each fit).
MAX_HISTORY_BYTES = 4 * 1024 * 1024

ReadLog = Callable[[str, str, int], Awaitable[str | None]]


def _cut(text: str, max_bytes: int) -> tuple[str, bool]:
    """`text` in at most `max_bytes` UTF-8 bytes (the head: a reply and a log read from the start)."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


def history_session_key(agent_id: str | None, session_key: str) -> str:
    """The key the history is stored under: `agent:<agentId>:<sessionKey>`.

    Without an agent id the bare key is sent, which the gateway resolves to ITS default agent:
    "main" without `agents.list`, else the listed agent with `default: true` (or the first), so
    the operator need not know the gateway's agent roster.
    """
    agent = (agent_id or "").strip().lower()
    return f"agent:{agent}:{session_key}" if agent else session_key


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])[:NOTE_TEXT_CHARS]
        if isinstance(err, str):
            return err[:NOTE_TEXT_CHARS]
    return body.decode("utf-8", "replace").strip()[:NOTE_TEXT_CHARS] or "(empty body)"


def reply_from_history(data: Any) -> tuple[str, str]:
    """The last assistant message's text parts from a history answer, or ("", why not)."""
    messages = data.get("messages", data.get("items")) if isinstance(data, dict) else None
    if not isinstance(messages, list):
        return "", "unexpected session history answer from the gateway (no messages list)"
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts = [content]
        elif isinstance(content, list):
            parts = [
                p["text"]
                for p in content
                if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            ]
        else:
            parts = []
        text = "\n".join(p for p in parts if p)
        if text.strip():
            reply, cut = _cut(text, MAX_REPLY_BYTES)
            return reply, f"reply cut to {MAX_REPLY_BYTES} bytes" if cut else ""
        error = message.get("errorMessage")
        if isinstance(error, str) and error.strip():
            return "", f"the turn ended without a reply: {error.strip()[:NOTE_TEXT_CHARS]}"
        return "", f"the agent's last message has no text (stopReason {message.get('stopReason', '?')})"
    return "", "the session holds no assistant message: the turn produced no reply"


async def read_reply(
    session: aiohttp.ClientSession,
    gateway_url: str,
    gateway_token: str,
    agent_id: str,
    session_key: str,
    timeout: float,  # noqa: ASYNC109 - one bound for the whole exchange, as aiohttp's total timeout
) -> tuple[str, str]:
    """(reply text, note) from `GET /sessions/<agent:<agentId>:<sessionKey>>/history`.

    `gateway_token` is the gateway's full-access token (`gateway.auth.token`); the hooks token
    gets 401. Redirects are not followed (the token must not go elsewhere). Never raises.
    """
    if not gateway_token:
        return "", "no full-access gateway token configured for this gateway"
    key = history_session_key(agent_id, session_key)
    url = f"{gateway_url.rstrip('/')}/sessions/{urllib.parse.quote(key, safe='')}/history?limit={HISTORY_LIMIT}"
    headers = {"Authorization": f"Bearer {gateway_token}", "Accept": "application/json"}
    try:
        async with session.get(
            yarl.URL(url, encoded=True),
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            body = await resp.content.read(MAX_HISTORY_BYTES)
            status = resp.status
            location = resp.headers.get("Location", "?")
    except TimeoutError:
        return "", f"no answer from the gateway within {timeout:g}s reading the reply"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return "", f"cannot reach the gateway at {gateway_url} to read the reply: {type(exc).__name__}: {exc}"
    note = _status_note(status, body, key, location)
    if note is not None:
        return "", note.replace(gateway_token, "[redacted]")
    try:
        data = json.loads(body)
    except ValueError:
        return "", "the gateway's session history answer is not JSON"
    reply, note = reply_from_history(data)
    return reply, note


def _status_note(status: int, body: bytes, key: str, location: str) -> str | None:
    """Why a non-200 history answer holds no reply; None for 200."""
    if status == 200:
        return None
    text = _error_text(body)
    if status in (401, 403):
        return (
            f"the gateway refused the token for reading session history ({status}): the operator needs the "
            "gateway's full-access token (gateway.auth.token), not the hooks token"
        )
    if status == 404:
        return f"the gateway has no session {key} ({status}: {text}): wrong agentId, or the session was removed"
    if 300 <= status < 400:
        return f"the gateway answered a redirect ({status}) to {location}: set the gateway URL to the final address"
    if status == 429:
        return f"the gateway is rate limiting the operator ({status}): {text}"
    return f"the gateway answered {status} reading the session history: {text}"


def admin_token(settings: Settings, gateway_url: str) -> tuple[str, str]:
    """(full-access token, note) for `gateway_url`: the per-URL file, else the default gateway's.

    The default token file only serves the default gateway URL, so a job that points at another
    gateway never receives the default gateway's token. Read at each use: a rotated Secret counts.
    """
    path = settings.gateway_admin_token_files.get(gateway_key(gateway_url))
    if path is None and gateway_key(gateway_url) == gateway_key(settings.gateway_url):
        path = settings.gateway_admin_token_file or None
    if path is None:
        return "", (
            f"the operator has no full-access token for the gateway {gateway_url} "
            "(settings OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILE for the default gateway, "
            "OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILES per gateway URL)"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        return "", f"cannot read the gateway token file {path}: {exc.strerror}"
    if not token:
        return "", f"the gateway token file {path} is empty"
    return token, ""


async def capture_reply(
    session: aiohttp.ClientSession,
    settings: Settings,
    job: JobRef,
    spec: OpenClawCronJobSpec,
    pod: PodView | None,
    read_timeout: float = 10.0,
) -> tuple[str, str]:
    """(reply, reply_note) for one finished attempt: every reason for no reply is the note.

    Not an agent turn: ("", ""). The session key is recomputed from the job uid, the Pod's
    scheduled time and attempt; the runner's result only says whether the gateway accepted it.
    """
    if spec.payload.kind != "agentTurn":
        return "", ""
    if not settings.session_keys:
        return "", "per-attempt session keys are off (OPENCLAW_CRON_SESSION_KEYS=false)"
    if pod is None:
        return "", "the run Pod is gone, so the attempt's session is unknown"
    res = parse_result(pod.message or "")
    if res is None:
        return "", "the run Pod left no runner result"
    key = n.session_key(job.uid, pod.scheduled, pod.attempt, n.run_tag(pod.run_id))
    if res.session_key != key:
        if res.session_note:
            return "", f"{res.session_note}"
        if res.session_key is None:
            return "", f"the agent turn did not run in its own session ({res.reason})"
        return "", "the runner reported another session key than this attempt's"
    url = spec.gateway.url if spec.gateway and spec.gateway.url else settings.gateway_url
    token, note = admin_token(settings, url)
    if not token:
        return "", note
    return await read_reply(session, url, token, spec.agent_id or "", key, read_timeout)


async def log_tail(read_log: ReadLog, namespace: str, pod: str, limit_bytes: int) -> tuple[str, bool]:
    """(log, truncated): at most `limit_bytes` of the Pod's log; ("", False) when there is none.

    Asks for one byte more than the limit, so "more than fits" is known. `read_log` gives the end
    of a long log (`Kube.read_log_tail`), so the cut keeps the end too.
    """
    try:
        text = await read_log(namespace, pod, limit_bytes + 1)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a log that cannot be read must not stop the archiving
        log.warning("cannot read the log of Pod %s/%s: %s: %s", namespace, pod, type(exc).__name__, exc)
        return "", False
    if not text:
        return "", False
    data = text.encode()
    if len(data) <= limit_bytes:
        return text, False
    return data[-limit_bytes:].decode("utf-8", "ignore"), True


def _when(text: str | None) -> datetime | None:
    return n.parse_time(text) if text else None


def entry_for(
    job: JobRef,
    record: RunRecord,
    pod: PodView | None,
    *,
    reply: str,
    reply_note: str,
    log: str,
    log_truncated: bool,
) -> RunEntry:
    """The archive entry for one attempt, from its status record and (if still there) its Pod."""
    return RunEntry(
        namespace=job.namespace,
        job=job.name,
        job_uid=job.uid,
        run_id=record.run_id,
        attempt=pod.attempt if pod is not None else record.attempts,
        trigger=record.trigger,
        result=record.result,
        scheduled_time=n.parse_time(record.scheduled_time),
        start_time=_when(record.start_time),
        completion_time=_when(record.completion_time),
        duration_seconds=record.duration_seconds,
        reason=record.reason or "",
        message=record.message or "",
        output=record.output or "",
        exit_code=record.exit_code,
        pod_name=record.pod_name or (pod.name if pod is not None else ""),
        node=(pod.node or "") if pod is not None else "",
        image=(pod.image or "") if pod is not None else "",
        gateway_run_id=record.gateway_run_id or "",
        delivery=record.delivery.wire() if record.delivery is not None else {},
        reply=reply,
        reply_note=reply_note,
        log=log,
        log_truncated=log_truncated,
    )


async def capture_entry(
    http: aiohttp.ClientSession,
    settings: Settings,
    job: JobRef,
    spec: OpenClawCronJobSpec,
    record: RunRecord,
    pod: PodView | None,
    read_log: ReadLog,
    log_limit_bytes: int,
    read_timeout: float = 10.0,
) -> RunEntry:
    """Everything for one finished attempt, while its Pod still exists: reply, log, entry.

    The reply read and the log read run concurrently; neither raises for what it cannot get.
    """
    if pod is None:
        reply, note = await capture_reply(http, settings, job, spec, None, read_timeout)
        return entry_for(job, record, None, reply=reply, reply_note=note, log="", log_truncated=False)
    (reply, note), (text, truncated) = await asyncio.gather(
        capture_reply(http, settings, job, spec, pod, read_timeout),
        log_tail(read_log, pod.namespace, pod.name, log_limit_bytes),
    )
    return entry_for(job, record, pod, reply=reply, reply_note=note, log=text, log_truncated=truncated)
