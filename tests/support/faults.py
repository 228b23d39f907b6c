"""API faults on purpose: a seeded plan of what goes wrong, and a listener that can restart.

The operator must survive an API server that misbehaves the way real ones do. `FaultPlan`
holds rules that pick requests (verb, resource, path, namespace, name, client) and either fail
them (5xx, 429 with `Retry-After`), answer late (past a client's timeout, and then still apply
the write, as a slow etcd does), reset the connection (before or after the write is applied),
cut a watch stream after a while, or answer a watch resume with `410 Gone`. A rule fires a
number of `times` or with a `probability` drawn from the plan's seeded RNG, so a run is
reproducible. `Listener` stops and restarts the HTTP listener on the same port while the
emulator (objects, resourceVersions, watch cache) lives on: an API server restart as clients
see it.

The simulated kubelet and kubectl are exempt by default: they are the test's world, not the
code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import aiohttp.web

if TYPE_CHECKING:
    from kmock._internal import rendering

    from .emulator import ApiCall, EmulatedApiServer

Action = Literal["error", "slow", "reset", "drop-watch", "gone"]
ACTIONS: tuple[Action, ...] = ("error", "slow", "reset", "drop-watch", "gone")
#: Seconds an idle connection stays open (kube-apiserver: `IdleTimeout: 90 * time.Second`).
IDLE_TIMEOUT = 90.0
#: Clients a rule leaves alone unless it names them in `clients`.
EXEMPT = ("simulated-kubelet", "kubectl")
_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Hit:
    """One request a rule caught (monotonic time, for recovery measurements)."""

    when: float
    action: Action
    verb: str
    resource: str
    name: str | None
    user_agent: str
    code: int | None
    rule: FaultRule | None = field(default=None, repr=False, compare=False)


@dataclass
class FaultRule:
    """Which requests to hit and what to do to them; `hits` counts what it caught."""

    action: Action
    verb: str | None = None  # RBAC verb: get list watch create update patch delete
    resource: str | None = None  # plural or plural/subresource ("pods", "openclawcronjobs/status")
    path: str | None = None  # a regex searched in the URL path (discovery has no resource)
    namespace: str | None = None
    name_prefix: str | None = None
    clients: tuple[str, ...] | None = None  # User-Agent prefixes; None: every client but EXEMPT
    times: int | None = 1  # None: until removed
    probability: float = 1.0
    code: int = 503  # error
    retry_after: int | None = None  # error: Retry-After header (and details.retryAfterSeconds)
    seconds: float = 0.0  # slow: delay before the real answer; drop-watch: stream life before the cut
    after_apply: bool = False  # reset: the request is served (a write applied), then the answer is lost
    message: str = "injected fault"
    label: str = ""
    hits: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; expected one of {ACTIONS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be in [0, 1]")
        self._path = re.compile(self.path) if self.path else None

    def matches(self, call: ApiCall, path: str, params: dict[str, str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.action in ("drop-watch", "gone") and call.verb != "watch":
            return False
        if self.action == "gone" and params.get("resourceVersion", "") in ("", "0"):
            return False  # 410 answers a resume, not a fresh watch
        agent = call.user_agent
        if self.clients is None:
            if agent.startswith(EXEMPT):
                return False
        elif not agent.startswith(self.clients):
            return False
        return (
            (self.verb is None or self.verb == call.verb)
            and (self.resource is None or self.resource == call.resource)
            and (self._path is None or self._path.search(path) is not None)
            and (self.namespace is None or self.namespace == call.namespace)
            and (self.name_prefix is None or (call.name or "").startswith(self.name_prefix))
        )


@dataclass
class FaultPlan:
    """The rules in force, consulted by the emulator for every request (thread-safe: tests add
    rules from their own thread while the emulator's loop reads them)."""

    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Future[aiohttp.web.StreamResponse]] = set()

    def add(self, action: Action, **options: Any) -> FaultRule:
        rule = FaultRule(action, **options)
        with self._lock:
            self.rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def last_hit(self, rule: FaultRule | None = None) -> float | None:
        """Monotonic time of the last caught request (of `rule`, or of any)."""
        with self._lock:
            times = [h.when for h in self.hits if rule is None or h.rule is rule]
        return max(times) if times else None

    def _pick(self, call: ApiCall, path: str, params: dict[str, str]) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(call, path, params):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                rule.hits += 1
                code = rule.code if rule.action == "error" else 410 if rule.action == "gone" else None
                self.hits.append(
                    Hit(time.monotonic(), rule.action, call.verb, call.resource, call.name, call.user_agent, code, rule)
                )
                return rule
        return None

    async def handle(
        self,
        request: rendering.Request,
        call: ApiCall,
        serve: Callable[[], Awaitable[aiohttp.web.StreamResponse]],
    ) -> aiohttp.web.StreamResponse:
        """Answer `request` through the first matching rule, or just `serve()` it."""
        raw = request._raw_request
        assert raw is not None
        params = dict(request.params)
        rule = self._pick(call, raw.path, params)
        if rule is None:
            return await serve()
        if rule.action == "error":
            return error_response(rule.code, rule.message, rule.retry_after)
        if rule.action == "slow":
            # Shielded: a client that gives up does not stop the server from applying the write.
            async def late() -> aiohttp.web.StreamResponse:
                await asyncio.sleep(rule.seconds)
                return await serve()

            task = asyncio.ensure_future(late())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return await asyncio.shield(task)
        if rule.action == "reset":
            if rule.after_apply:
                await serve()
            reset(raw)
            return aiohttp.web.Response(status=500)  # never reaches the client
        if rule.action == "drop-watch":
            loop = asyncio.get_running_loop()
            loop.call_later(rule.seconds, reset, raw)
            return await serve()
        return await gone_stream(raw, params.get("resourceVersion", ""))


def error_response(code: int, message: str, retry_after: int | None = None) -> aiohttp.web.Response:
    """A `kind: Status` failure as kube-apiserver sends it (429/5xx carry Retry-After when asked)."""
    reason = _REASONS.get(code, "InternalError")
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"{message} ({code})",
        "reason": reason,
        "code": code,
    }
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
        body["details"] = {"retryAfterSeconds": retry_after}
    return aiohttp.web.json_response(body, status=code, headers=headers)


def reset(raw: aiohttp.web.BaseRequest) -> None:
    """Close the client's connection with a TCP RST (SO_LINGER 0), as a crashed proxy does."""
    transport = raw.transport
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def gone_stream(raw: aiohttp.web.BaseRequest, rv: str) -> aiohttp.web.StreamResponse:
    """A watch resume refused: HTTP 200 and one ERROR event with a 410 Expired Status, then EOF."""
    response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(raw)
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {rv} (injected fault)",
        "reason": "Expired",
        "code": 410,
    }
    await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
    await response.write_eof()
    return response


class _Server(aiohttp.web.Server):
    """aiohttp's server, noting when each connection opens (one handler a connection)."""

    def __init__(self, *args: Any, opened: list[float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opened = opened

    def __call__(self) -> aiohttp.web.RequestHandler:
        self._opened.append(time.time())
        return super().__call__()


class Listener:
    """The emulator's listener on 127.0.0.1 (HTTPS when given an SSLContext, as kube-apiserver serves);
    `restart` keeps the port and the emulator's state.

    aiohttp's server: TLS is negotiated once per connection and keep-alive holds it, so a client
    pays one handshake, not one per request. The context asks for client certificates and the
    emulator reads the verified one from the connection (authn.py).
    """

    def __init__(
        self,
        emulator: EmulatedApiServer,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.emulator = emulator
        self.port = port or 0
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.restarts = 0
        #: When each connection was accepted (wall clock): a TLS handshake each, on the emulator's
        #: one thread, so a burst that opens connections is slower for it (hack/bench.py counts them).
        self.opened: list[float] = []
        self._runner: aiohttp.web.ServerRunner | None = None

    async def start(self) -> int:
        # Idle connections close after 90 s, as kube-apiserver's (its http.Server's IdleTimeout),
        # not after aiohttp's hour: a client that keeps one longer meets a server that closed it.
        server = _Server(
            self.emulator, handler_cancellation=True, keepalive_timeout=self.idle_timeout, opened=self.opened
        )
        runner = aiohttp.web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=self.ssl_context, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        """Stop listening; open connections (watches included) are cut, as when the process dies."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.emulator.disconnect_watches()
        await runner.cleanup()

    async def restart(self, down: float = 0.0) -> float:
        """Stop, stay down `down` seconds, listen again on the same port; the measured downtime."""
        began = time.monotonic()
        await self.stop()
        await asyncio.sleep(down)
        for _ in range(100):  # the port may linger a moment after close
            try:
                await self.start()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"could not listen on port {self.port} again")
        self.restarts += 1
        return time.monotonic() - began
