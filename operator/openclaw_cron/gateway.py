"""Client for the OpenClaw gateway's hooks API (DESIGN §2): build a call, send it, say what it means.

Building (`agent_call`, `wake_call`) and interpreting (`interpret`) are pure, so every outcome is
unit-testable without a network. `send` is the only I/O. It uses the standard library's
`http.client` rather than `urllib.request` or a third-party client because:

- it never follows redirects, so the `Authorization` header (the hooks token) is never replayed to
  another host, and a redirect is reported as the misconfiguration it is;
- it returns every status with its body instead of raising for non-2xx, which is what the outcome
  table needs;
- it adds no dependency to the runner, which runs in every run Pod.

A hard per-call deadline comes from running the exchange in a worker thread: socket timeouts bound
each read, not the whole answer, and `waitForCompletion` answers arrive only when the turn ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal

from .api import Delivery, Payload

AGENT_PATH = "/hooks/agent"
WAKE_PATH = "/hooks/wake"
#: The gateway refuses longer keys (DESIGN §2).
MAX_IDEMPOTENCY_KEY = 256
#: More than any answer the hooks API gives; bounds memory if something else answers.
MAX_ANSWER_BYTES = 256 * 1024
ERROR_TEXT_CHARS = 500

ResultKind = Literal["Succeeded", "Failed", "TimedOut"]
RESULTS: tuple[ResultKind, ...] = ("Succeeded", "Failed", "TimedOut")

# Reasons the runner reports. `retryable` says whether another attempt can help.
COMPLETED = "Completed"  # Succeeded: agent turn ok
SKIPPED = "Skipped"  # Succeeded: the gateway chose not to run the turn (e.g. model preflight)
AGENT_ERROR = "AgentError"  # Failed, retryable: the turn failed inside the gateway
DELIVERY_FAILED = "DeliveryFailed"  # Failed, retryable: answer not delivered and bestEffort is false
INVALID_REQUEST = "InvalidRequest"  # Failed, not retryable: 400/404/405/413 or bad runner env
UNAUTHORIZED = "Unauthorized"  # Failed, not retryable: 401/403 (wrong hooks token)
RATE_LIMITED = "RateLimited"  # Failed, retryable: 429 whose Retry-After does not fit the budget
GATEWAY_ERROR = "GatewayError"  # Failed: 5xx/409 (retryable), redirects and odd answers (not)
GATEWAY_UNREACHABLE = "GatewayUnreachable"  # Failed, retryable: connection refused/reset, DNS, TLS
DEADLINE_EXCEEDED = "DeadlineExceeded"  # TimedOut, retryable: the attempt's budget ran out
AGENT_TIMEOUT = "AgentTimeout"  # TimedOut, retryable: the gateway ended the turn at its timeoutSeconds
INTERNAL_ERROR = "InternalError"  # Failed, not retryable: a bug in the runner


@dataclass(frozen=True)
class RunnerResult:
    """The one JSON document a runner writes to its termination message (wire keys camelCase)."""

    result: ResultKind
    reason: str
    message: str = ""
    retryable: bool = False
    http_status: int | None = None
    gateway_run_id: str | None = None
    completion: dict[str, Any] | None = None
    delivered: bool | None = None
    output: str | None = None
    #: The completion's delivery verdict, as the gateway gave it (`openclaw-gateway.md`).
    delivery_attempted: bool | None = None
    reply_disposition: str | None = None  # visible | silent | empty
    delivery_error: str | None = None  # only ever "delivery-failed" on 2026.9.6
    delivery_suppression_reason: str | None = None  # empty | silent | heartbeat | channel_transform
    #: The per-attempt session key the turn ran under (None: not sent, or refused by the gateway).
    session_key: str | None = None
    #: Why the turn ran without its session key, so the archive can say why no reply was captured.
    session_note: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.result == "Succeeded"

    def wire(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "reason": self.reason,
            "message": self.message,
            "retryable": self.retryable,
            "httpStatus": self.http_status,
            "gatewayRunId": self.gateway_run_id,
            "completion": self.completion,
            "delivered": self.delivered,
            "output": self.output,
            "deliveryAttempted": self.delivery_attempted,
            "replyDisposition": self.reply_disposition,
            "deliveryError": self.delivery_error,
            "deliverySuppressionReason": self.delivery_suppression_reason,
            "sessionKey": self.session_key,
            "sessionNote": self.session_note,
        }


def failed(reason: str, message: str, *, retryable: bool, http_status: int | None = None) -> RunnerResult:
    return RunnerResult("Failed", reason, message, retryable=retryable, http_status=http_status)


@dataclass(frozen=True)
class HookCall:
    """One request to the hooks API, before the token and idempotency key are added."""

    path: str
    body: dict[str, Any]
    #: What the interpretation needs to know about the request.
    deliver: bool = False
    best_effort: bool = False
    timeout_seconds: int | None = None

    @property
    def is_agent(self) -> bool:
        return self.path == AGENT_PATH

    @property
    def session_key(self) -> str | None:
        key = self.body.get("sessionKey")
        return key if isinstance(key, str) else None

    def without_session_key(self) -> HookCall:
        """The same call for a gateway that refuses caller-chosen session keys."""
        body = {k: v for k, v in self.body.items() if k not in ("sessionKey", "sessionMode")}
        return dataclasses.replace(self, body=body)


def agent_call(
    payload: Payload,
    *,
    name: str,
    agent_id: str | None,
    wake_mode: str,
    delivery: Delivery | None,
    default_timeout_seconds: int,
    session_key: str | None = None,
) -> HookCall:
    """`POST /hooks/agent` for an agentTurn; waits for completion so the outcome is the run's.

    With `session_key` the turn runs in its own persistent session, whose history the operator
    reads the reply from afterwards (the hooks answer never carries it).
    """
    if not payload.message:
        raise ValueError("payload.message is required for agentTurn")
    deliver = delivery is not None and delivery.mode == "announce"
    timeout = payload.timeout_seconds or default_timeout_seconds
    body: dict[str, Any] = {"message": payload.message, "name": payload.name or name}
    if agent_id:
        body["agentId"] = agent_id
    body["wakeMode"] = wake_mode
    body["deliver"] = deliver
    if deliver and delivery is not None:
        if delivery.channel:
            body["channel"] = delivery.channel
        if delivery.to:
            body["to"] = delivery.to
        if delivery.account_id:
            body["accountId"] = delivery.account_id
    if payload.model:
        body["model"] = payload.model
    if payload.thinking:
        body["thinking"] = payload.thinking
    body["timeoutSeconds"] = timeout
    body["waitForCompletion"] = True
    if session_key:
        body["sessionKey"] = session_key
        body["sessionMode"] = "persistent"
    return HookCall(
        AGENT_PATH,
        body,
        deliver=deliver,
        best_effort=delivery.best_effort if delivery is not None else False,
        timeout_seconds=timeout,
    )


def wake_call(payload: Payload, *, agent_id: str | None, wake_mode: str) -> HookCall:
    """`POST /hooks/wake` for a systemEvent: enqueue the text, wake now or at the next heartbeat."""
    if not payload.text:
        raise ValueError("payload.text is required for systemEvent")
    body: dict[str, Any] = {"text": payload.text, "mode": wake_mode}
    if agent_id:
        body["agentId"] = agent_id
    return HookCall(WAKE_PATH, body)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def json(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def error_text(self) -> str:
        """The gateway's own words: `error` of a JSON body, else the text body (shortened)."""
        data = self.json()
        if data is not None and isinstance(data.get("error"), str | dict):
            text = data["error"] if isinstance(data["error"], str) else json.dumps(data["error"])
        else:
            text = self.body.decode("utf-8", "replace").strip()
        return text[:ERROR_TEXT_CHARS] or "(empty body)"


class GatewayUnreachable(Exception):
    """The exchange failed below HTTP: refused, reset, DNS, TLS, malformed answer."""


def endpoint(base_url: str, path: str) -> urllib.parse.SplitResult:
    """`base_url` + hook path; a path prefix on the base (a reverse proxy) is kept."""
    base = urllib.parse.urlsplit(base_url)
    if base.scheme not in ("http", "https") or not base.hostname:
        raise ValueError(f"expected an http(s)://host[:port] URL, got {base_url!r}")
    if base.query or base.fragment or base.username or base.password:
        raise ValueError("the gateway URL must not carry a query, fragment or credentials")
    return base._replace(path=base.path.rstrip("/") + path)


def send(base_url: str, call: HookCall, *, token: str, idempotency_key: str, timeout: float) -> HttpAnswer:
    """POST `call`; raise TimeoutError after `timeout` seconds in total, GatewayUnreachable below HTTP."""
    url = endpoint(base_url, call.path)
    conn_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(url.hostname or "", url.port, timeout=max(timeout, 0.001))
    data = json.dumps(call.body).encode()
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": idempotency_key,
        "User-Agent": "openclaw-cron-runner",
    }
    outcome: list[HttpAnswer | BaseException] = []

    def exchange() -> None:
        try:
            conn.request("POST", url.path, body=data, headers=headers)
            resp = conn.getresponse()
            body = resp.read(MAX_ANSWER_BYTES)
            if resp.length and len(body) < MAX_ANSWER_BYTES:
                # Closed before Content-Length was met: a cut answer (unreachable), not a bad one.
                raise http.client.IncompleteRead(body, resp.length)
            outcome.append(HttpAnswer(resp.status, body, {k.lower(): v for k, v in resp.getheaders()}))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        finally:
            conn.close()

    worker = threading.Thread(target=exchange, name="hooks-request", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() or not outcome:
        with contextlib.suppress(Exception):
            conn.close()
        raise TimeoutError(f"no answer from the gateway within {timeout:.1f}s")
    got = outcome[0]
    if isinstance(got, HttpAnswer):
        return got
    if isinstance(got, TimeoutError):
        raise TimeoutError(f"no answer from the gateway within {timeout:.1f}s")
    if isinstance(got, OSError | http.client.HTTPException):
        # Only the class and the OS's words: never the request (it holds the token).
        raise GatewayUnreachable(f"{type(got).__name__}: {got}") from None
    raise got


def session_key_refused(call: HookCall, answer: HttpAnswer) -> bool:
    """A 400 about the sessionKey: the gateway lacks `hooks.allowRequestSessionKey` or the prefix.

    Observed on 2026.9.6: "sessionKey is disabled for externally supplied hook payload values; set
    hooks.allowRequestSessionKey=true to enable" and "sessionKey must start with one of: …". Such
    a refusal starts no run, so the same call without the key may reuse the Idempotency-Key.
    """
    return call.session_key is not None and answer.status == 400 and "sessionkey" in answer.error_text().lower()


def retry_after_seconds(answer: HttpAnswer) -> float | None:
    """Retry-After as seconds (the gateway sends an integer); None when absent or an HTTP date."""
    raw = answer.headers.get("retry-after", "").strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return None


def interpret(call: HookCall, answer: HttpAnswer, *, elapsed: float = 0.0) -> RunnerResult:
    """What an HTTP answer means for the run (429 is the caller's to retry before this)."""
    status = answer.status
    what = "agent turn" if call.is_agent else "wake"
    if status == 200:
        data = answer.json()
        if data is None or data.get("ok") is not True:
            return failed(
                GATEWAY_ERROR, f"unexpected 200 answer: {answer.error_text()}", retryable=False, http_status=200
            )
        return _agent_outcome(call, data, elapsed) if call.is_agent else _wake_outcome(data)
    text = answer.error_text()
    if status in (400, 413):
        return failed(
            INVALID_REQUEST,
            f"gateway refused the {what} request ({status}): {text}",
            retryable=False,
            http_status=status,
        )
    if status in (401, 403):
        return failed(
            UNAUTHORIZED,
            f"gateway refused the hooks token ({status}): check the token Secret matches hooks.token",
            retryable=False,
            http_status=status,
        )
    if status in (404, 405):
        return failed(
            INVALID_REQUEST,
            f"no hooks endpoint at {call.path} ({status}): are hooks enabled with path /hooks on this gateway?",
            retryable=False,
            http_status=status,
        )
    if status == 429:
        return failed(
            RATE_LIMITED, f"gateway is rate limiting this client (429): {text}", retryable=True, http_status=status
        )
    if 300 <= status < 400:
        where = answer.headers.get("location", "?")
        return failed(
            GATEWAY_ERROR,
            f"gateway answered a redirect ({status}) to {where}: set the gateway URL to the final address",
            retryable=False,
            http_status=status,
        )
    if status >= 500 or status == 409:
        return failed(GATEWAY_ERROR, f"gateway error ({status}): {text}", retryable=True, http_status=status)
    return failed(GATEWAY_ERROR, f"unexpected answer ({status}): {text}", retryable=False, http_status=status)


def _wake_outcome(data: dict[str, Any]) -> RunnerResult:
    outcome = str(data.get("eventOutcome") or "accepted")
    return RunnerResult(
        "Succeeded",
        outcome[:1].upper() + outcome[1:],
        f"system event {outcome} (mode {data.get('mode', '?')}); eventOutcome={outcome}",
        http_status=200,
    )


def _agent_outcome(call: HookCall, data: dict[str, Any], elapsed: float) -> RunnerResult:
    run_id = data.get("runId") if isinstance(data.get("runId"), str) else None
    completion = data.get("completion")
    if not isinstance(completion, dict):
        return RunnerResult(
            "Failed",
            GATEWAY_ERROR,
            f"gateway accepted run {run_id} but sent no completion: it does not support waitForCompletion",
            http_status=200,
            gateway_run_id=run_id,
        )

    def flag(key: str) -> bool | None:
        value = completion.get(key)
        return value if isinstance(value, bool) else None

    def word(key: str) -> str | None:
        value = completion.get(key)
        return value[:ERROR_TEXT_CHARS] if isinstance(value, str) and value else None

    words = _completion_words(completion)
    base = RunnerResult(
        "Succeeded",
        COMPLETED,
        http_status=200,
        gateway_run_id=run_id,
        completion=completion,
        delivered=flag("delivered"),
        output=_completion_text(completion),
        delivery_attempted=flag("deliveryAttempted"),
        reply_disposition=word("replyDisposition"),
        delivery_error=word("deliveryError"),
        delivery_suppression_reason=word("deliverySuppressionReason"),
        session_key=call.session_key,
    )
    status = completion.get("status")

    def with_(result: ResultKind, reason: str, message: str, retryable: bool) -> RunnerResult:
        return dataclasses.replace(base, result=result, reason=reason, message=message, retryable=retryable)

    if status == "error":
        timeout = call.timeout_seconds
        if timeout is not None and elapsed >= timeout:
            # The gateway ends a turn at its timeoutSeconds with a bare error; the clock says why.
            return with_(
                "TimedOut", AGENT_TIMEOUT, f"agent turn {run_id} hit the gateway timeout of {timeout}s{words}", True
            )
        return with_(
            "Failed", AGENT_ERROR, f"agent turn {run_id} failed in the gateway{words or ' (see its log)'}", True
        )
    if status == "skipped":
        return with_("Succeeded", SKIPPED, f"gateway skipped agent turn {run_id}{words}", False)
    if status != "ok":
        return with_("Failed", GATEWAY_ERROR, f"agent turn {run_id} ended with unknown status {status!r}", False)
    problem = _delivery_problem(call, completion)
    if problem and not call.best_effort:
        return with_("Failed", DELIVERY_FAILED, f"agent turn {run_id} completed but {problem}", True)
    note = f"; {problem} (bestEffort)" if problem else ""
    return with_("Succeeded", COMPLETED, f"agent turn {run_id} completed{note}", False)


def _delivery_problem(call: HookCall, completion: dict[str, Any]) -> str | None:
    """Why delivery counts as failed, or None. A suppressed delivery (nothing to say) is not a failure."""
    if completion.get("delivered") is True or completion.get("deliverySuppressionReason"):
        return None
    if completion.get("deliveryError"):
        return f"delivery failed ({completion['deliveryError']})"
    if completion.get("deliveryAttempted") is True:
        return "delivery was attempted and did not succeed"
    if call.deliver:
        return "the answer was not delivered (delivered=false)"
    return None


def _completion_words(completion: dict[str, Any]) -> str:
    """The gateway's own explanation, when the completion carries one."""
    for key in ("error", "summary", "reason", "message"):
        value = completion.get(key)
        if isinstance(value, str) and value.strip():
            return f": {value.strip()[:ERROR_TEXT_CHARS]}"
    return ""


def _completion_text(completion: dict[str, Any]) -> str | None:
    """The reply text, if this gateway version includes it (2026.9.6 does not)."""
    for key in ("text", "summary", "output", "reply"):
        value = completion.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None
