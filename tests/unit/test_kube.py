"""The async API client's rate limit and retry policy (pure parts), and the scale settings."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from openclaw_cron.kube import BACKOFF_CAP, TokenBucket, retry_delay
from openclaw_cron.settings import Settings
from support.http import serving


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=3, clock=clock)
    assert [bucket.delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.delay() == pytest.approx(0.1)  # the 4th waits one token's worth
    assert bucket.delay() == pytest.approx(0.2)  # queued behind it
    clock.now += 1.0  # ten tokens come back, capped at the burst
    assert [bucket.delay() for _ in range(1)] == [0.0]


def test_token_bucket_off_with_zero_qps() -> None:
    bucket = TokenBucket(qps=0, burst=1, clock=FakeClock())
    assert {bucket.delay() for _ in range(1000)} == {0.0}


async def test_token_bucket_acquire_paces_real_time() -> None:
    import time

    bucket = TokenBucket(qps=50, burst=1)
    begun = time.monotonic()
    for _ in range(6):
        await bucket.acquire()
    assert time.monotonic() - begun >= 5 / 50 * 0.9  # five waits of 20 ms after the first token


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


async def test_authorization_is_cached_and_reread_after_a_401(tmp_path: Path) -> None:
    """The token is read once per minute, not per call; a 401 (a rotated token) reads it again."""
    from aiohttp import web
    from kubernetes import client

    from openclaw_cron.kube import Kube

    token_file = tmp_path / "token"
    token_file.write_text("one")
    reads: list[str] = []
    seen: list[str] = []

    def refresh(conf: client.Configuration) -> None:
        reads.append(token_file.read_text())
        conf.api_key["authorization"] = reads[-1]

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        ok = request.headers.get("Authorization") == f"Bearer {token_file.read_text()}"
        return web.json_response({"ok": ok}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_get("/x", handler)
    async with serving(app) as url:
        conf = client.Configuration(host=url)
        conf.api_key_prefix["authorization"] = "Bearer"
        conf.refresh_api_key_hook = refresh  # type: ignore[assignment]
        kube = Kube(conf)
        try:
            for _ in range(5):
                assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            assert reads == ["one"]  # one read for five calls
            token_file.write_text("two")  # rotated
            assert await kube.request("GET", "/x", operation="t") == {"ok": True}
            assert reads == ["one", "two"] and seen[-2:] == ["Bearer one", "Bearer two"]
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
