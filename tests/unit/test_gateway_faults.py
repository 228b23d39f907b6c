"""The runner against a gateway that fails: a real TCP server on 127.0.0.1 doing each fault.

Each fault gives the documented result and reason (gateway.py's reason table), is retryable or
not as DESIGN §2/§4 say (the runner itself only waits out a 429 within its budget; every other
retry is the operator's, as a new attempt with its own Pod and key), and every request of one
attempt carries that attempt's one Idempotency-Key, so a replay never starts a second gateway run.

`hooks_server.HooksServer` answers with HTTP; these faults live below HTTP (a connection that
never answers, an answer cut mid-body), hence a socket-level server here.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openclaw_cron import gateway, runner
from openclaw_cron import naming as n
from openclaw_cron.api import OpenClawCronJobSpec
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
from openclaw_cron.pods import JobRef, Start, render_pod
from openclaw_cron.settings import Settings

TOKEN = "hooks-token-fault-5d2e"
WHEN = datetime(2026, 1, 12, 7, 0, tzinfo=UTC)
KEY = n.idempotency_key("uid-42", WHEN, 1)
AGENT = {"payload": {"kind": "agentTurn", "message": "Summarize the inbox."}, "wakeMode": "now"}
OK = {"ok": True, "runId": "gw-run-7", "completion": {"status": "ok", "replyDisposition": "visible"}}

Behaviour = Callable[[socket.socket, bytes], None]


def http_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Behaviour:
    return lambda conn, _: conn.sendall(http_answer(status, body, headers))


def rst(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def cut(after: int, *, reset: bool) -> Behaviour:
    """Send the first `after` bytes of a good answer, then RST (or FIN) the connection."""

    def behave(conn: socket.socket, _: bytes) -> None:
        conn.sendall(http_answer(200, OK)[:after])
        time.sleep(0.05)
        rst(conn) if reset else conn.shutdown(socket.SHUT_RDWR)

    return behave


class RawGateway:
    """Accepts on 127.0.0.1, reads one request per connection, then does that connection's behaviour."""

    def __init__(self, *behaviours: Behaviour) -> None:
        self.behaviours = list(behaviours)
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._held: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def keys(self) -> list[str]:
        found = []
        for raw in self.requests:
            head = raw.split(b"\r\n\r\n", 1)[0].decode()
            found += [
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("idempotency-key:")
            ]
        return found

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        self._held.append(conn)
        raw = b""
        conn.settimeout(5)
        while b"\r\n\r\n" not in raw:
            raw += conn.recv(65536)
        head, _, body = raw.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        behave = self.behaviours.pop(0) if self.behaviours else answer(599, {"error": "no behaviour left"})
        with contextlib.suppress(OSError):
            behave(conn, body)

    def __enter__(self) -> RawGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()


def hang(conn: socket.socket, _: bytes) -> None:
    """Accept the request and never answer (until the test ends)."""
    time.sleep(30)


def hang_mid_body(conn: socket.socket, _: bytes) -> None:
    conn.sendall(http_answer(200, OK)[:-10])
    time.sleep(30)


def cfg(url: str, tmp_path: Path, *, timeout: float = 5, attempt: int = 1) -> runner.RunnerEnv:
    return runner.read_env(
        {
            ENV_GATEWAY_URL: url,
            ENV_HOOKS_TOKEN: TOKEN,
            ENV_REQUEST: json.dumps(AGENT),
            ENV_JOB: "assistants/morning",
            ENV_RUN_ID: "morning-1768201200",
            ENV_ATTEMPT: str(attempt),
            ENV_IDEMPOTENCY_KEY: n.idempotency_key("uid-42", WHEN, attempt),
            ENV_TIMEOUT_SECONDS: str(timeout),
            ENV_RESULT_PATH: str(tmp_path / "result"),
        }
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[Callable[..., RawGateway]]:
    started: list[RawGateway] = []

    def start(*behaviours: Behaviour) -> RawGateway:
        server = RawGateway(*behaviours).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


def timed(config: runner.RunnerEnv) -> tuple[runner.RunnerResult, float]:
    began = time.monotonic()
    result = runner.run(config)
    return result, time.monotonic() - began


def test_down_at_the_start_is_unreachable_and_retryable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result, seconds = timed(cfg(url, tmp_path))
    assert (result.result, result.reason, result.retryable) == ("Failed", gateway.GATEWAY_UNREACHABLE, True)
    assert result.message.startswith(f"cannot reach the gateway at {url}: ConnectionRefusedError")
    assert seconds < 2, "a refused connection must not burn the attempt's budget"


@pytest.mark.parametrize("behaviour", [hang, hang_mid_body], ids=["no-answer", "headers-then-silence"])
def test_accepting_then_hanging_ends_at_the_budget(
    served: Callable[..., RawGateway], tmp_path: Path, behaviour: Behaviour
) -> None:
    server = served(behaviour)
    result, seconds = timed(cfg(server.url, tmp_path, timeout=1.5))
    assert (result.result, result.reason, result.retryable) == ("TimedOut", gateway.DEADLINE_EXCEEDED, True)
    assert result.message == "no outcome within the attempt budget of 1.5s"
    assert 1.5 <= seconds < 3
    assert server.keys() == [KEY], "one request, not a silent second try"


def test_429_retry_after_is_waited_out_with_the_same_key(served: Callable[..., RawGateway], tmp_path: Path) -> None:
    server = served(
        answer(429, {"ok": False, "error": "too many"}, {"Retry-After": "1"}),
        answer(429, {"ok": False, "error": "too many"}, {"Retry-After": "1"}),
        answer(200, OK),
    )
    result, seconds = timed(cfg(server.url, tmp_path, timeout=10))
    assert (result.result, result.reason) == ("Succeeded", gateway.COMPLETED)
    assert result.message == "agent turn gw-run-7 completed (after 2 rate-limited tries)"
    assert result.gateway_run_id == "gw-run-7" and seconds >= 2
    assert server.keys() == [KEY, KEY, KEY]
    bodies = {r.split(b"\r\n\r\n", 1)[1] for r in server.requests}
    assert len(bodies) == 1, "a replay must send the same payload, or the gateway starts a new run"


def test_429_beyond_the_budget_is_rate_limited_and_retryable(served: Callable[..., RawGateway], tmp_path: Path) -> None:
    server = served(answer(429, {"ok": False, "error": "too many"}, {"Retry-After": "30"}))
    result, seconds = timed(cfg(server.url, tmp_path, timeout=3))
    assert (result.result, result.reason, result.retryable) == ("Failed", gateway.RATE_LIMITED, True)
    assert result.http_status == 429 and result.message.endswith("; Retry-After 30s exceeds the budget")
    assert seconds < 1 and server.keys() == [KEY]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_retryable_gateway_error_without_a_second_request(
    served: Callable[..., RawGateway], tmp_path: Path, status: int
) -> None:
    server = served(answer(status, {"ok": False, "error": "upstream down"}), answer(200, OK))
    result, _ = timed(cfg(server.url, tmp_path))
    assert (result.result, result.reason, result.retryable) == ("Failed", gateway.GATEWAY_ERROR, True)
    assert result.message == f"gateway error ({status}): upstream down" and result.http_status == status
    assert server.keys() == [KEY], "5xx is retried by the operator as a new attempt, not inside this one"


GOOD = len(http_answer(200, OK))
HEAD = http_answer(200, OK).index(b"\r\n\r\n") + 4


@pytest.mark.parametrize(
    ("after", "reset"),
    [(0, True), (HEAD - 5, True), (HEAD + 10, True), (HEAD + 10, False), (GOOD - 1, False)],
    ids=["rst-before-answer", "rst-mid-headers", "rst-mid-body", "fin-mid-body", "fin-one-byte-short"],
)
def test_connection_reset_mid_answer_is_unreachable_and_retryable(
    served: Callable[..., RawGateway], tmp_path: Path, after: int, reset: bool
) -> None:
    server = served(cut(after, reset=reset))
    result, seconds = timed(cfg(server.url, tmp_path))
    assert (result.result, result.reason, result.retryable) == ("Failed", gateway.GATEWAY_UNREACHABLE, True), result
    assert result.message.startswith(f"cannot reach the gateway at {server.url}: ")
    assert seconds < 2 and server.keys() == [KEY]


def test_the_key_is_the_attempts_own() -> None:
    """Every Pod rendered for one attempt carries the same key; the next attempt has its own."""
    spec = OpenClawCronJobSpec.model_validate(
        {"schedule": {"kind": "every", "every": "1h"}, "payload": {"kind": "agentTurn", "message": "hi"}}
    )
    ref, settings = JobRef("assistants", "morning", "uid-42"), Settings(runner_image="img:1", gateway_url="http://gw")

    def key(attempt: int) -> str:
        pod = render_pod(ref, spec, Start("morning-1768201200", WHEN, attempt, "Schedule"), settings)
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        return str(env[ENV_IDEMPOTENCY_KEY])

    assert key(1) == key(1) == KEY
    assert key(2) != key(1) and key(2) == n.idempotency_key("uid-42", WHEN, 2)


def test_a_rerun_of_the_same_attempt_replays_with_the_same_key(
    served: Callable[..., RawGateway], tmp_path: Path
) -> None:
    """A runner that lost its answer (reset) and runs again for the same attempt sends the same key."""
    server = served(cut(HEAD + 10, reset=True), answer(200, OK))
    first = runner.run(cfg(server.url, tmp_path))
    second = runner.run(cfg(server.url, tmp_path))
    assert first.reason == gateway.GATEWAY_UNREACHABLE and second.reason == gateway.COMPLETED
    assert server.keys() == [KEY, KEY]
    other = served(answer(200, OK))
    runner.run(cfg(other.url, tmp_path, attempt=2))
    assert other.keys() == [n.idempotency_key("uid-42", WHEN, 2)]
