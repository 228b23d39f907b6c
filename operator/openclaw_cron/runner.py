"""`openclaw-cron-runner`: run one attempt of an agentTurn/systemEvent payload in a run Pod.

The operator tells the runner everything through the environment (names in `naming.py`); the
runner calls the gateway's hooks API once (again only after a 429, within its budget), writes ONE
JSON `RunnerResult` (≤ 4 KiB, the Kubernetes termination-message limit) to the result path and
prints a one-line summary. Exit 0 on Succeeded, 1 otherwise. The operator reads the outcome from
the Pod's termination message with `parse_result`, so it never needs the Pod's logs.

The hooks token is scrubbed from everything the runner writes or prints, including gateway
answers that echo it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError

from . import gateway
from .api import MAX_OUTPUT_BYTES, Delivery, Model, OpenClawCronJobSpec, Payload
from .gateway import RESULTS, HookCall, RunnerResult, failed
from .naming import (
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
    SESSION_KEY_PREFIX,
)

__all__ = ["RunRequest", "RunnerResult", "main", "parse_result", "run"]

DEFAULT_RESULT_PATH = "/dev/termination-log"
#: Kubernetes keeps at most 4096 bytes of a termination message.
MAX_RESULT_BYTES = 4096
#: Each field of the completion kept in the result is cut to this many characters.
COMPLETION_VALUE_CHARS = 200
REDACTED = "[redacted]"


class RunRequest(Model):
    """`OPENCLAW_CRON_REQUEST`: what to run, as the operator derived it from the job's spec."""

    # A newer operator may add keys; an older runner image must still run the payload.
    model_config = ConfigDict(extra="ignore")

    payload: Payload
    agent_id: str | None = None
    wake_mode: Literal["now", "next-heartbeat"] = "now"
    delivery: Delivery | None = None
    session_target: Literal["main", "isolated"] | None = None

    @classmethod
    def from_spec(cls, spec: OpenClawCronJobSpec) -> RunRequest:
        return cls(
            payload=spec.payload,
            agent_id=spec.agent_id,
            wake_mode=spec.wake_mode,
            delivery=spec.delivery,
            session_target=spec.session_target,
        )

    def to_env(self) -> str:
        """The env value (compact JSON; payload and delivery without unset optionals)."""
        return json.dumps(
            {
                "payload": self.payload.wire(),
                "agentId": self.agent_id,
                "wakeMode": self.wake_mode,
                "delivery": self.delivery.wire() if self.delivery is not None else None,
                "sessionTarget": self.session_target,
            },
            separators=(",", ":"),
        )


class EnvError(ValueError):
    """A missing or malformed variable of the run Pod contract (message names it)."""


@dataclass(frozen=True)
class RunnerEnv:
    gateway_url: str
    token: str
    request: RunRequest
    namespace: str
    job_name: str
    run_id: str
    attempt: int
    idempotency_key: str
    timeout_seconds: float
    result_path: str
    session_key: str | None = None


def read_env(env: Mapping[str, str]) -> RunnerEnv:
    """Validate the run Pod contract; the first problem raises EnvError naming the variable."""

    def need(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise EnvError(f"{name} is not set")
        return value

    url = need(ENV_GATEWAY_URL)
    try:
        gateway.endpoint(url, "")
    except ValueError as exc:
        raise EnvError(f"{ENV_GATEWAY_URL}: {exc}") from None
    token = need(ENV_HOOKS_TOKEN)
    try:
        request = RunRequest.model_validate_json(need(ENV_REQUEST))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(document)'}: {err['msg']}" for err in exc.errors()[:3]
        )
        raise EnvError(f"{ENV_REQUEST}: {problems}") from None
    kind = request.payload.kind
    if kind not in ("agentTurn", "systemEvent"):
        raise EnvError(f"{ENV_REQUEST}: payload.kind {kind!r} is not run by the runner")
    # The CRD's CEL rules say this at apply time; pydantic's flat Payload does not.
    if kind == "agentTurn" and not request.payload.message:
        raise EnvError(f"{ENV_REQUEST}: payload.message is required for agentTurn")
    if kind == "systemEvent" and not request.payload.text:
        raise EnvError(f"{ENV_REQUEST}: payload.text is required for systemEvent")
    namespace, _, job_name = need(ENV_JOB).partition("/")
    if not namespace or not job_name:
        raise EnvError(f"{ENV_JOB}: expected namespace/name, got {env[ENV_JOB]!r}")
    run_id = need(ENV_RUN_ID)
    try:
        attempt = int(need(ENV_ATTEMPT))
    except ValueError:
        raise EnvError(f"{ENV_ATTEMPT}: expected a whole number, got {env[ENV_ATTEMPT]!r}") from None
    if attempt < 1:
        raise EnvError(f"{ENV_ATTEMPT}: must be at least 1, got {attempt}")
    key = need(ENV_IDEMPOTENCY_KEY)
    if len(key) > gateway.MAX_IDEMPOTENCY_KEY:
        raise EnvError(f"{ENV_IDEMPOTENCY_KEY}: longer than {gateway.MAX_IDEMPOTENCY_KEY} characters")
    try:
        timeout = float(need(ENV_TIMEOUT_SECONDS))
    except ValueError:
        raise EnvError(f"{ENV_TIMEOUT_SECONDS}: expected seconds, got {env[ENV_TIMEOUT_SECONDS]!r}") from None
    if not timeout > 0 or timeout == float("inf"):
        raise EnvError(f"{ENV_TIMEOUT_SECONDS}: must be a positive number of seconds, got {timeout}")
    session_key = env.get(ENV_SESSION_KEY, "").strip() or None
    if session_key is not None and (
        not session_key.startswith(SESSION_KEY_PREFIX) or session_key != session_key.lower() or len(session_key) > 256
    ):
        raise EnvError(f"{ENV_SESSION_KEY}: expected a lowercase {SESSION_KEY_PREFIX}… key of ≤ 256 characters")
    return RunnerEnv(
        gateway_url=url,
        token=token,
        request=request,
        namespace=namespace,
        job_name=job_name,
        run_id=run_id,
        attempt=attempt,
        idempotency_key=key,
        timeout_seconds=timeout,
        result_path=env.get(ENV_RESULT_PATH) or DEFAULT_RESULT_PATH,
        session_key=session_key if kind == "agentTurn" else None,
    )


def hook_call(cfg: RunnerEnv) -> HookCall:
    req = cfg.request
    if req.payload.kind == "systemEvent":
        return gateway.wake_call(req.payload, agent_id=req.agent_id, wake_mode=req.wake_mode)
    return gateway.agent_call(
        req.payload,
        name=cfg.job_name,
        agent_id=req.agent_id,
        wake_mode=req.wake_mode,
        delivery=req.delivery,
        default_timeout_seconds=max(1, int(cfg.timeout_seconds)),
        session_key=cfg.session_key,
    )


def run(cfg: RunnerEnv) -> RunnerResult:
    """One attempt within `cfg.timeout_seconds`; a 429 is waited out (Retry-After) while it fits.

    A gateway that refuses the per-attempt session key gets the same call without it, under the
    same Idempotency-Key (the refusal started no run): the run works, only its reply cannot be read.
    """
    call = hook_call(cfg)
    started = time.monotonic()
    deadline = started + cfg.timeout_seconds
    throttled = 0
    session_note: str | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            answer = gateway.send(
                cfg.gateway_url, call, token=cfg.token, idempotency_key=cfg.idempotency_key, timeout=remaining
            )
        except TimeoutError:
            break
        except gateway.GatewayUnreachable as exc:
            return failed(
                gateway.GATEWAY_UNREACHABLE, f"cannot reach the gateway at {cfg.gateway_url}: {exc}", retryable=True
            )
        if answer.status == 429:
            wait = gateway.retry_after_seconds(answer)
            wait = 1.0 if wait is None else wait
            if time.monotonic() + wait < deadline:
                throttled += 1
                time.sleep(wait)
                continue
            result = gateway.interpret(call, answer)
            return dataclasses.replace(result, message=f"{result.message}; Retry-After {wait:g}s exceeds the budget")
        if gateway.session_key_refused(call, answer):
            session_note = (
                f"the gateway refused the per-attempt sessionKey ({answer.error_text()[:200]}); the turn ran without "
                "it, so its reply cannot be read back: set hooks.allowRequestSessionKey: true and keep "
                f'"{SESSION_KEY_PREFIX}" in hooks.allowedSessionKeyPrefixes'
            )
            call = call.without_session_key()
            continue
        result = gateway.interpret(call, answer, elapsed=time.monotonic() - started)
        if throttled:
            result = dataclasses.replace(result, message=f"{result.message} (after {throttled} rate-limited tries)")
        if session_note:
            result = dataclasses.replace(result, session_note=session_note)
        return result
    return RunnerResult(
        "TimedOut",
        gateway.DEADLINE_EXCEEDED,
        f"no outcome within the attempt budget of {cfg.timeout_seconds:g}s",
        retryable=True,
    )


# --- the result document ---------------------------------------------------------------------


def scrub(value: Any, secret: str) -> Any:
    """`value` with every occurrence of `secret` (raw or JSON-escaped) replaced, recursively."""
    if not secret:
        return value
    if isinstance(value, str):
        for form in {secret, json.dumps(secret)[1:-1]}:
            value = value.replace(form, REDACTED)
        return value
    if isinstance(value, dict):
        return {scrub(k, secret): scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secret) for v in value]
    return value


def scrub_result(result: RunnerResult, secret: str) -> RunnerResult:
    fields = {f.name: scrub(getattr(result, f.name), secret) for f in dataclasses.fields(result)}
    return RunnerResult(**fields)


def _cut(text: str, max_bytes: int) -> str:
    """`text` in at most `max_bytes` UTF-8 bytes, marked with … when cut."""
    if len(text.encode()) <= max_bytes:
        return text
    if max_bytes <= 3:
        return ""
    return text.encode()[: max_bytes - 3].decode("utf-8", "ignore") + "…"


def _encode(result: RunnerResult) -> str:
    return json.dumps(result.wire(), ensure_ascii=False, separators=(",", ":"))


def _size(result: RunnerResult) -> int:
    return len(_encode(result).encode())


def _trim_completion(completion: dict[str, Any] | None) -> dict[str, Any] | None:
    """Scalars only, strings cut, ≤ 1 KiB: the completion is evidence, not a transcript."""
    if completion is None:
        return None
    trimmed: dict[str, Any] = {}
    for key, value in completion.items():
        if isinstance(value, str):
            value = _cut(value, COMPLETION_VALUE_CHARS)
        elif not (value is None or isinstance(value, bool | int | float)):
            continue
        if len(json.dumps({**trimmed, str(key)[:64]: value}, ensure_ascii=False).encode()) > MAX_OUTPUT_BYTES:
            break
        trimmed[str(key)[:64]] = value
    return trimmed


def _fit(result: RunnerResult, name: Literal["message", "output"]) -> RunnerResult:
    """Cut field `name` to the longest prefix that lets the result fit (JSON escapes vary, so search)."""
    text: str | None = getattr(result, name)
    if not text or _size(result) <= MAX_RESULT_BYTES:
        return result

    def cut_to(max_bytes: int) -> RunnerResult:
        changes: dict[str, Any] = {name: _cut(text, max_bytes)}
        return dataclasses.replace(result, **changes)

    low, high = 0, len(text.encode())  # the longest fitting byte budget lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _size(cut_to(middle)) <= MAX_RESULT_BYTES else (low, middle)
    return cut_to(low)


def encode_result(result: RunnerResult) -> str:
    """The result as compact JSON of at most 4 KiB: output and completion ≤ 1 KiB, then the message is cut."""
    result = dataclasses.replace(
        result,
        completion=_trim_completion(result.completion),
        output=_cut(result.output, MAX_OUTPUT_BYTES) if result.output is not None else None,
    )
    result = _fit(result, "message")
    result = _fit(result, "output")
    if _size(result) > MAX_RESULT_BYTES:
        result = dataclasses.replace(result, completion=None)
    return _encode(result)


def parse_result(text: str) -> RunnerResult | None:
    """Read a runner's termination message; anything that is not a runner result gives None.

    Tolerates surrounding whitespace and extra lines (the last JSON line wins) and wrong types in
    optional fields (dropped), so a Pod's odd termination message can never crash the operator.
    """
    if not isinstance(text, str):
        return None
    candidates = [text.strip()] + [line.strip() for line in reversed(text.strip().splitlines())]
    for candidate in candidates:
        if not candidate.startswith("{"):
            continue
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        result, reason = data.get("result"), data.get("reason")
        if result not in RESULTS or not isinstance(reason, str):
            continue

        def opt(key: str, kind: type | tuple[type, ...], data: dict[str, Any] = data) -> Any:
            value = data.get(key)
            return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else None

        return RunnerResult(
            result=result,
            reason=reason,
            message=opt("message", str) or "",
            retryable=data.get("retryable") is True,
            http_status=opt("httpStatus", int),
            gateway_run_id=opt("gatewayRunId", str),
            completion=opt("completion", dict),
            delivered=opt("delivered", bool),
            output=opt("output", str),
            delivery_attempted=opt("deliveryAttempted", bool),
            reply_disposition=opt("replyDisposition", str),
            delivery_error=opt("deliveryError", str),
            delivery_suppression_reason=opt("deliverySuppressionReason", str),
            session_key=opt("sessionKey", str),
            session_note=opt("sessionNote", str),
        )
    return None


def summary_line(result: RunnerResult, job: str = "", run_id: str = "", attempt: int | None = None) -> str:
    """One human line for the Pod log: outcome first, then where it came from."""
    parts = [f"{result.result} ({result.reason})"]
    if result.message:
        parts.append(result.message)
    context = [
        f"job {job}" if job else "",
        f"run {run_id}" if run_id else "",
        f"attempt {attempt}" if attempt else "",
        f"http {result.http_status}" if result.http_status is not None else "",
        f"gateway run {result.gateway_run_id}" if result.gateway_run_id else "",
    ]
    line = ": ".join(parts)
    extra = ", ".join(c for c in context if c)
    return " ".join(f"{line} [{extra}]".split()) if extra else " ".join(line.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="openclaw-cron-runner",
        description="Run one attempt of an OpenClawCronJob payload against the OpenClaw gateway's hooks API. "
        f"Configured only by the environment: {ENV_GATEWAY_URL}, {ENV_HOOKS_TOKEN}, {ENV_REQUEST}, {ENV_JOB}, "
        f"{ENV_RUN_ID}, {ENV_ATTEMPT}, {ENV_IDEMPOTENCY_KEY}, {ENV_TIMEOUT_SECONDS}, {ENV_RESULT_PATH}, "
        f"{ENV_SESSION_KEY}.",
    )
    parser.parse_args(argv)
    env = os.environ
    token = env.get(ENV_HOOKS_TOKEN, "").strip()
    path = env.get(ENV_RESULT_PATH) or DEFAULT_RESULT_PATH
    job, run_id, attempt = env.get(ENV_JOB, ""), env.get(ENV_RUN_ID, ""), None
    try:
        cfg = read_env(env)
        attempt = cfg.attempt
        result = run(cfg)
    except EnvError as exc:
        result = failed(gateway.INVALID_REQUEST, str(exc), retryable=False)
    except Exception as exc:  # a runner bug must still leave a result, and no traceback with secrets
        result = failed(gateway.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", retryable=False)
    result = scrub_result(result, token)
    text = encode_result(result)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        print(f"openclaw-cron-runner: cannot write the result to {path}: {exc.strerror}", file=sys.stderr)
    print(scrub(summary_line(result, job, run_id, attempt), token), flush=True)
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
