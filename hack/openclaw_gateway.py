"""Run a real OpenClaw gateway on loopback with a stand-in model, for tests and by hand.

`python hack/openclaw_gateway.py` starts both (after `bash hack/install-gateway.sh`) and prints
the hooks URL and token; Ctrl-C stops them. The gateway test tier imports `StubModel` and
`Gateway` from here, so manual exploration and the tests run the very same setup.

Standard library only (threads + http.server): the stand-in must answer while the test process
blocks on a runner subprocess, and it must not depend on the test extras.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREFIX = Path(os.environ.get("OPENCLAW_GATEWAY_PREFIX", ROOT / ".cache" / "gateway"))
NODE = PREFIX / "node" / "bin" / "node"
ENTRY = PREFIX / "node_modules" / "openclaw" / "openclaw.mjs"

MODEL_ID = "stub-model"
#: A message containing this makes the stand-in refuse the completion with HTTP 400, a model
#: failure the gateway does not retry (it retries a 5xx for about a minute).
FAIL_MARKER = "STUB-MODEL-FAIL"
#: A message containing this makes the stand-in hang until `StubModel.release()` (or shutdown).
STALL_MARKER = "STUB-MODEL-STALL"
REPLY = "Stub model reply: all systems nominal."
#: A message containing `STUB-MODEL-ECHO:<word>` gets `REPLY` plus " echo <word>", so a test can
#: tell its own turn's reply from any other.
ECHO_MARKER = "STUB-MODEL-ECHO:"


def reply_for(users: str) -> str:
    """The stand-in's answer to the user messages `users` (JSON-encoded, as the model saw them)."""
    _, found, rest = users.partition(ECHO_MARKER)
    word = ""
    for ch in rest[:64] if found else "":
        if not (ch.isalnum() or ch in "-_"):
            break
        word += ch
    return f"{REPLY} echo {word}" if word else REPLY


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StubModel:
    """A minimal OpenAI-compatible chat model: lists one model, streams one fixed answer."""

    port: int = 0
    #: Text of the user messages of every chat completion request seen, in order.
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def completions_with(self, text: str) -> int:
        with self._lock:
            return sum(text in seen for seen in self.requests)

    def release(self) -> None:
        """Let stalled requests finish (and every later stall marker pass at once)."""
        self._release.set()

    def start(self) -> StubModel:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(
                        200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "stub"}]}
                    )
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                users = " ".join(
                    json.dumps(m.get("content")) for m in body.get("messages", []) if m.get("role") == "user"
                )
                with model._lock:
                    model.requests.append(users)
                if FAIL_MARKER in users:
                    self._json(
                        400, {"error": {"message": "stub model refuses this prompt", "type": "invalid_request_error"}}
                    )
                    return
                if STALL_MARKER in users:
                    model._release.wait(600)
                self._answer(body, reply_for(users))

            def _answer(self, body: dict[str, Any], reply: str) -> None:
                base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": body.get("model", MODEL_ID)}
                usage = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
                if not body.get("stream"):
                    message = {"role": "assistant", "content": reply}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
                    return
                chunk = {**base, "object": "chat.completion.chunk"}
                events = [
                    {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": reply}}]},
                    {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    {**chunk, "choices": [], "usage": usage},
                ]
                data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                payload = data.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="stub-model", daemon=True).start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class Gateway:
    """One `openclaw gateway run` process with its own HOME, TMPDIR, config and log."""

    base: Path
    model_url: str
    port: int = field(default_factory=free_port)
    hooks_token: str = field(default_factory=lambda: "hooks-" + secrets.token_hex(16))
    gateway_token: str = field(default_factory=lambda: "gw-" + secrets.token_hex(16))
    #: hooks.allowRequestSessionKey with the "hook:" prefix: lets the runner send per-attempt
    #: session keys, so the reply can be read back (False: as a default gateway config refuses them).
    allow_session_keys: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / "gateway.log"

    def config(self) -> dict[str, Any]:
        stub = {
            "baseUrl": self.model_url,
            "apiKey": "x",
            "api": "openai-completions",
            "models": [
                {
                    "id": MODEL_ID,
                    "name": "Stub",
                    "reasoning": False,
                    "input": ["text"],
                    "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                    "contextWindow": 128000,
                    "maxTokens": 4096,
                }
            ],
        }
        return {
            "gateway": {
                "mode": "local",
                "port": self.port,
                "bind": "loopback",
                "auth": {"mode": "token", "token": self.gateway_token},
            },
            "hooks": {"enabled": True, "token": self.hooks_token, "path": "/hooks", **self._session_keys()},
            "models": {"mode": "merge", "catalogRefresh": {"enabled": False}, "providers": {"stub": stub}},
            "agents": {"defaults": {"model": {"primary": f"stub/{MODEL_ID}"}}},
            "discovery": {"mdns": {"mode": "off"}},
            "update": {"checkOnStart": False},
            "logging": {"file": str(self.base / "openclaw-file.log")},
        }

    def _session_keys(self) -> dict[str, Any]:
        if not self.allow_session_keys:
            return {}
        return {"allowRequestSessionKey": True, "allowedSessionKeyPrefixes": ["hook:"]}

    def start(self) -> Gateway:
        if not (NODE.exists() and ENTRY.exists()):
            raise RuntimeError(f"no gateway installed under {PREFIX}: run `bash hack/install-gateway.sh`")
        home, tmp = self.base / "home", self.base / "tmp"
        (home / ".openclaw").mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)
        (home / ".openclaw" / "openclaw.json").write_text(json.dumps(self.config(), indent=2))
        env = {
            "PATH": f"{NODE.parent}:/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_NO_AUTO_UPDATE": "1",
            "OPENCLAW_OFFLINE": "1",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(NODE), str(ENTRY), "gateway", "run"],
                env=env,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() also ends its children
            )
        return self

    def wait_ready(self, timeout: float = 90.0) -> float:
        """Poll /readyz; return seconds waited. Raises with the log tail if it exits or hangs."""
        assert self.process is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return time.monotonic() - started
            time.sleep(0.25)
        raise RuntimeError(f"gateway not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM our own process group (by the PID we started), SIGKILL after `grace`.

        An idle gateway exits in ~3 s; with turns in flight it drains for minutes, which a test
        gateway with throwaway state need not wait for.
        """
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def running(base: Path) -> Iterator[tuple[StubModel, Gateway]]:
    model = StubModel().start()
    gateway = Gateway(base=base, model_url=model.base_url)
    try:
        gateway.start().wait_ready()
        yield model, gateway
    finally:
        gateway.stop()
        model.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="state directory (default: a new temporary one)")
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="openclaw-gateway-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with running(base) as (model, gateway):
        pid = gateway.process.pid if gateway.process else "?"
        print(f"gateway ready in {time.monotonic() - started:.1f}s (pid {pid})")
        print(f"export OPENCLAW_GATEWAY_URL={gateway.url}")
        print(f"export OPENCLAW_HOOKS_TOKEN={gateway.hooks_token}")
        print(f"# stand-in model {model.base_url}; log {gateway.log_path}; Ctrl-C stops", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
