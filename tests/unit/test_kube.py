"""The async API client's rate limit and retry policy (pure parts), and the scale settings."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Container
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from openclaw_cron.kube import BACKOFF_CAP, retry_delay
from openclaw_cron.settings import Settings
from support.http import serving


def test_retry_delay_honours_retry_after_and_jitters_otherwise() -> None:
    assert retry_delay(1, "3") == 3.0
    assert retry_delay(1, "1000") == BACKOFF_CAP * 4  # bounded: a bad header never stalls a run for long
    rng = random.Random(7)
    delays = [retry_delay(k, None, rng) for k in (1, 2, 3, 10)]
    assert all(0 <= d <= BACKOFF_CAP for d in delays)
    assert retry_delay(1, "soon", random.Random(1)) <= 0.2  # unparseable: the backoff


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENCLAW_CRON_KUBE_API_QPS": "fast"}, "OPENCLAW_CRON_KUBE_API_QPS: expected a number, got 'fast'"),
        ({"OPENCLAW_CRON_KUBE_API_BURST": "-1"}, "OPENCLAW_CRON_KUBE_API_BURST: must not be negative, got '-1'"),
        ({"OPENCLAW_CRON_NORMAL_EVENTS": "maybe"}, "OPENCLAW_CRON_NORMAL_EVENTS: expected true or false, got 'maybe'"),
        ({"OPENCLAW_CRON_PRUNE_BATCH": "x"}, "OPENCLAW_CRON_PRUNE_BATCH: expected a number, got 'x'"),
        (
            {"OPENCLAW_CRON_MAX_PARALLEL_RECONCILES": "1.5"},
            "OPENCLAW_CRON_MAX_PARALLEL_RECONCILES: expected a number, got '1.5'",
        ),
    ],
)
def test_bad_scale_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as exc:
        Settings.from_env(env)
    assert str(exc.value) == message


def test_scale_settings_are_read() -> None:
    s = Settings.from_env(
        {
            "OPENCLAW_CRON_KUBE_API_QPS": "50",
            "OPENCLAW_CRON_KUBE_API_BURST": "80",
            "OPENCLAW_CRON_NORMAL_EVENTS": "true",
            "OPENCLAW_CRON_MAX_PARALLEL_RECONCILES": "8",
        }
    )
    assert (s.kube_api_qps, s.kube_api_burst, s.normal_events, s.max_parallel_reconciles) == (50.0, 80, True, 8)
    assert Settings().normal_events is False and Settings().resync_seconds == 600.0


EXEC_API = "client.authentication.k8s.io/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_checking_app(valid: Callable[[], Container[str]], seen: list[str]) -> Any:
    """An API stand-in that answers 401 unless the request carries `Bearer <one of valid()>`.

    The scheme is case-insensitive, as kube-apiserver reads it (the in-cluster loader sends "bearer").
    """
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        seen.append(f"Bearer {token}" if scheme.lower() == "bearer" else header)
        ok = scheme.lower() == "bearer" and token in valid()
        return web.json_response({"ok": ok}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_get("/x", handler)
    return app


def kubeconfig(path: Path, server: str, user: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def test_a_kubeconfig_token_is_sent_as_the_official_client_stores_it(tmp_path: Path) -> None:
    """The official client keeps the token under `BearerToken`: reading "authorization" found nothing."""
    from kubernetes import config

    from openclaw_cron.credentials import Credentials

    path = kubeconfig(tmp_path / "config", "https://127.0.0.1:6443", {"token": "abc"})
    creds = Credentials(loader=lambda conf: config.load_kube_config(config_file=str(path), client_configuration=conf))
    assert creds.authorization() == "Bearer abc"
    basic = kubeconfig(tmp_path / "basic", "https://127.0.0.1:6443", {"username": "u", "password": "p"})
    creds = Credentials(loader=lambda conf: config.load_kube_config(config_file=str(basic), client_configuration=conf))
    assert creds.authorization() == "Basic dTpw"
    certs = kubeconfig(tmp_path / "certs", "https://127.0.0.1:6443", {})
    creds = Credentials(loader=lambda conf: config.load_kube_config(config_file=str(certs), client_configuration=conf))
    assert creds.authorization() == ""  # client certificates only: no header at all


async def test_a_rotated_service_account_token_is_used_within_a_minute_and_at_once_after_a_401(
    tmp_path: Path,
) -> None:
    """In a Pod: the projected token file, re-read every minute (as client-go) and right after a 401."""
    from kubernetes.config.incluster_config import InClusterConfigLoader

    from openclaw_cron.credentials import REFRESH_SECONDS, Credentials
    from openclaw_cron.kube import Kube

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("one")
    ca.write_text("not used over plain HTTP")
    valid, seen = {"one"}, []
    async with serving(token_checking_app(lambda: valid, seen)) as url:
        host, port = url.removeprefix("http://").split(":")
        environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}

        def in_cluster(conf: Any) -> None:
            loader = InClusterConfigLoader(str(token), str(ca), environ=environ)
            loader._token_refresh_period = timedelta(0)  # the client's own minute: ours is what is measured
            loader.load_and_set(conf)
            conf.host = url  # the loader builds https://; this stand-in speaks HTTP

        clock = Clock()
        kube = Kube(credentials=Credentials(loader=in_cluster, clock=clock))
        try:
            for _ in range(3):
                assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            token.write_text("two")  # the kubelet rotated it; the old one is still valid for a while
            valid.add("two")
            clock.now += REFRESH_SECONDS / 2
            assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            assert seen[-1] == "Bearer one"  # cached: no file read per call
            valid.discard("one")  # the old token is refused now: one 401, then the new file at once
            assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            assert seen[-2:] == ["Bearer one", "Bearer two"]
            token.write_text("three")  # rotated again, and no 401 this time
            valid.add("three")
            clock.now += REFRESH_SECONDS + 1
            assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            assert seen[-1] == "Bearer three"  # picked up within the minute
        finally:
            await kube.close()


async def test_an_exec_plugin_runs_again_after_a_401(tmp_path: Path) -> None:
    """EKS/GKE/AKS kubeconfigs: an ExecCredential plugin gives the token; a 401 runs it again."""
    from kubernetes import config

    from openclaw_cron.credentials import Credentials
    from openclaw_cron.kube import Kube

    current, runs = tmp_path / "current", tmp_path / "runs"
    current.write_text("first")
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        f"echo run >> {runs}\n"
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        f'"status":{{"token":"%s"}}}}\' "$(cat {current})"\n'
    )
    plugin.chmod(0o755)
    seen: list[str] = []
    async with serving(token_checking_app(lambda: {current.read_text()}, seen)) as url:
        path = kubeconfig(
            tmp_path / "config",
            url,
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": str(plugin),
                    "interactiveMode": "Never",
                }
            },
        )
        creds = Credentials(
            loader=lambda conf: config.load_kube_config(config_file=str(path), client_configuration=conf)
        )
        kube = Kube(credentials=creds)
        try:
            assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            current.write_text("second")  # the provider's credential changed
            assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            assert seen == ["Bearer first", "Bearer first", "Bearer second"]
            assert runs.read_text().count("run") == 2
        finally:
            await kube.close()


async def test_a_watch_event_split_across_chunks_is_read_whole() -> None:
    """A large Pod arrives in pieces; blank keep-alive lines are skipped; the stream's end ends it."""
    from aiohttp import web
    from kubernetes import client

    from openclaw_cron.kube import Kube

    big = {"type": "ADDED", "object": {"metadata": {"name": "p", "annotations": {"x": "y" * 200_000}}}}
    small = {"type": "DELETED", "object": {"metadata": {"name": "q"}}}
    asked: list[dict[str, str]] = []

    async def watch(request: web.Request) -> web.StreamResponse:
        asked.append(dict(request.query))
        response = web.StreamResponse()
        await response.prepare(request)
        data = (json.dumps(big) + "\n\n" + json.dumps(small) + "\n").encode()
        for begin in range(0, len(data), 7_000):  # cuts through both lines
            await response.write(data[begin : begin + 7_000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/pods", watch)
    async with serving(app) as url:
        kube = Kube(client.Configuration(host=url))
        try:
            events = [e async for e in kube.watch_pods("", "a=b", "42", 300)]
        finally:
            await kube.close()
    assert events == [big, small]
    assert asked == [
        {
            "watch": "true",
            "labelSelector": "a=b",
            "resourceVersion": "42",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
    ]


def test_credentials_that_cannot_be_read_again_are_kept_and_the_reason_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A 401, then the token file is gone (or the plugin fails): the old ones stay, and the log says why."""
    from kubernetes import client, config

    from openclaw_cron.credentials import Credentials

    calls: list[int] = []

    def loader(conf: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise config.ConfigException("Service token file does not exist.")
        conf.api_key["BearerToken"] = "Bearer first"

    creds = Credentials(loader=loader, clock=Clock())
    assert isinstance(creds.conf, client.Configuration) and creds.authorization() == "Bearer first"
    creds.reload()
    assert creds.authorization() == "Bearer first"
    assert "reading them again failed: Service token file does not exist." in caplog.text


async def test_a_create_is_sent_once_the_adaptive_limit_lets_it_go() -> None:
    """`sent` (a pass giving back its slot) comes when the create goes, not while it waits its turn."""
    import asyncio

    from aiohttp import web

    from openclaw_cron.kube import Kube
    from openclaw_cron.throttle import AdaptiveLimit

    answer, first = asyncio.Event(), asyncio.Event()
    arrived: list[str] = []

    async def create(request: web.Request) -> web.Response:
        arrived.append((await request.json())["metadata"]["name"])
        first.set()
        await answer.wait()
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/ns/pods", create)
    async with serving(app) as url:
        from kubernetes.client import Configuration

        conf = Configuration()
        conf.host = url
        kube = Kube(conf, creates=AdaptiveLimit(least=1, most=1, initial=1))
        sent: list[str] = []
        try:
            pods = [{"metadata": {"name": name, "namespace": "ns"}} for name in ("a", "b")]
            tasks = [
                asyncio.create_task(kube.create_pod(p, sent=lambda n=p: sent.append(n["metadata"]["name"])))
                for p in pods
            ]
            await asyncio.wait_for(first.wait(), 10)
            await asyncio.sleep(0.1)  # time for b to go, were it not waiting
            assert sent == ["a"] and arrived == ["a"]  # b waits for the one slot: not sent yet
            answer.set()
            assert await asyncio.gather(*tasks) == [True, True]
            assert sent == ["a", "b"] == arrived
        finally:
            await kube.close()


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_retried_create_counts_as_sent_once_and_one_never_sent_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`sent` comes as the body goes out: once for a create that needed two attempts, never for
    one that reached no server (its pass keeps its slot, and gives it back as it ends)."""
    import asyncio

    from aiohttp import web
    from kubernetes.client import Configuration

    from openclaw_cron import kube as kube_module
    from openclaw_cron.kube import Kube

    monkeypatch.setattr(kube_module, "BACKOFF_BASE", 0.01)
    attempts: list[int] = []

    async def create(request: web.Request) -> web.Response:
        await request.read()
        attempts.append(1)
        return web.json_response({}, status=503 if len(attempts) == 1 else 201)

    app = web.Application()
    app.router.add_post("/api/v1/namespaces/ns/pods", create)
    pod = {"metadata": {"name": "a", "namespace": "ns"}}
    async with serving(app) as url:
        conf = Configuration()
        conf.host = url
        kube = Kube(conf)
        sent: list[str] = []
        try:
            assert await kube.create_pod(pod, sent=lambda: sent.append("a")) is True
        finally:
            await kube.close()
        assert len(attempts) == 2 and sent == ["a"]

    conf = Configuration()
    conf.host = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(kube_module, "ATTEMPTS", 2)
    kube = Kube(conf)
    try:
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(kube.create_pod(pod, sent=lambda: sent.append("b")), 10)
    finally:
        await kube.close()
    assert sent == ["a"]


async def test_a_warm_up_opens_a_connection_per_create_to_come_and_starts_the_limit_there() -> None:
    """Before a burst: one `GET /version` per create to come (at most the adaptive limit's bound),
    all at once, so each is a connection of its own, and no more than the rate limit gives back by
    the burst; an answer after the burst's due time does not count, but its connection stays open."""
    import asyncio

    from aiohttp import web
    from kubernetes.client import Configuration

    from openclaw_cron.kube import KEEPALIVE, Kube
    from openclaw_cron.throttle import AdaptiveLimit

    peers: set[object] = set()
    requests, delay = [0], [0.1]  # long enough that none finishes before all began

    async def version(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        requests[0] += 1
        await asyncio.sleep(delay[0])
        return web.json_response({"major": "1", "minor": "36"})

    async def create(request: web.Request) -> web.Response:
        return web.json_response(await request.json(), status=201)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_post("/api/v1/namespaces/ns/pods", create)
    async with serving(app) as url:
        conf = Configuration()
        conf.host = url
        kube = Kube(conf, qps=100, burst=200, creates=AdaptiveLimit(least=4, most=30, initial=8))
        try:
            assert not kube.connections_kept(within=2)  # no burst yet: nothing to find open
            assert await kube.create_pod({"metadata": {"name": "a", "namespace": "ns"}})
            assert kube.connections_kept(within=2) and not kube.connections_kept(within=KEEPALIVE)
            learned = kube.creates.limit  # 9: one quick answer
            delay[0] = 0.5
            assert await asyncio.wait_for(kube.warm_up(10, within=0.2), 10) == 0  # all answered late
            assert requests[0] == len(peers) == 10 and kube.creates.limit == learned  # (the create's reused)
            delay[0] = 0.1
            assert await asyncio.wait_for(kube.warm_up(20, within=5), 10) == 20
            assert requests[0] == 30 and len(peers) == 20 and kube.creates.limit == 20  # the late ten kept
            assert await asyncio.wait_for(kube.warm_up(50, within=5), 10) == 30  # at most the limit's bound
            assert requests[0] == 60 and len(peers) == 30 and kube.creates.limit == 30
        finally:
            await kube.close()
        slow = Kube(conf, qps=2, burst=4, creates=AdaptiveLimit(least=4, most=30, initial=8))
        try:  # a low rate limit: only what it refills by the burst (2/s x 1 s)
            assert await asyncio.wait_for(slow.warm_up(20, within=1), 10) == 2 and requests[0] == 62
        finally:
            await slow.close()
