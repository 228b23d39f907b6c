"""The run-Pod informer's bookkeeping: what a re-list after 410 reports, and where it resumes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from openclaw_cron import informer as informer_module
from openclaw_cron.informer import PodInformer


def pod(name: str, rv: str, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}, "status": {"phase": phase}}


class ScriptedKube:
    """list_pods answers from `lists` in turn; each watch plays the next script, then ends."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], str]], watches: list[list[dict[str, Any]]]) -> None:
        self.lists, self.watches = lists, watches
        self.watched_from: list[str] = []

    async def list_pods(self, scope: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        return self.lists.pop(0)

    async def watch_pods(self, scope: str, selector: str, rv: str, seconds: int) -> AsyncIterator[dict[str, Any]]:
        self.watched_from.append(rv)
        if not self.watches:
            await asyncio.Event().wait()  # the last stream stays open
        for event in self.watches.pop(0):
            yield event


async def run_until_blocked(informer: PodInformer, kube: ScriptedKube) -> None:
    await informer.list_all()
    task = asyncio.create_task(informer.run())
    for _ in range(200):
        await asyncio.sleep(0)
        if not kube.watches and len(kube.watched_from) > 0 and kube.lists == []:
            break
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_relist_after_410_reports_pods_gone_meanwhile_and_resumes_from_bookmarks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(informer_module, "retry_delay", lambda *_: 0.0)
    kube = ScriptedKube(
        lists=[([pod("a", "5"), pod("b", "6")], "10"), ([pod("b", "30", "Succeeded"), pod("c", "31")], "40")],
        watches=[
            [
                {"type": "MODIFIED", "object": pod("a", "11", "Succeeded")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
            ],
            [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}],
            [{"type": "ADDED", "object": pod("d", "41")}],
        ],
    )
    events: list[tuple[str, str, str]] = []

    def sink(kind: str, body: Mapping[str, Any]) -> None:
        events.append((kind, body["metadata"]["name"], (body.get("status") or {}).get("phase", "")))

    informer = PodInformer(kube, (), "sel", sink)  # type: ignore[arg-type]
    await run_until_blocked(informer, kube)
    assert kube.watched_from == ["10", "20", "40", "41"]  # the bookmark moved the resume point
    assert informer.lists == 2
    assert events == [
        ("ADDED", "a", "Running"),
        ("ADDED", "b", "Running"),
        ("MODIFIED", "a", "Succeeded"),
        ("DELETED", "a", ""),  # gone while the informer could not see: reported, body is metadata only
        ("MODIFIED", "b", "Succeeded"),
        ("ADDED", "c", "Running"),
        ("ADDED", "d", "Running"),
    ]


async def test_a_refused_watch_is_said_and_retried_and_an_error_event_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without RBAC for watching Pods the informer says so and tries again (Kube counts the 403);
    an ERROR event in the stream is said, counted, and makes the next round list first."""
    from kubernetes.client.exceptions import ApiException

    from openclaw_cron import metrics

    monkeypatch.setattr(informer_module, "retry_delay", lambda *_: 0.0)
    kube = ScriptedKube(lists=[([], "1")], watches=[[{"type": "ADDED", "object": pod("a", "2")}]])
    refusals = [ApiException(status=403, reason="Forbidden")]
    plain_watch = kube.watch_pods

    def watch(scope: str, selector: str, rv: str, seconds: int) -> AsyncIterator[dict[str, Any]]:
        if refusals:
            raise refusals.pop()
        return plain_watch(scope, selector, rv, seconds)

    kube.watch_pods = watch  # type: ignore[method-assign]
    seen: list[str] = []
    informer = PodInformer(kube, ("team",), "sel", lambda kind, body: seen.append(body["metadata"]["name"]))  # type: ignore[arg-type]
    await run_until_blocked(informer, kube)
    assert seen == ["a"]  # the second watch went through
    assert "watching run Pods in team failed, again in 0.0s: (403)" in caplog.text
    bad = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd leader changed"}}
    counted = metrics.API_ERRORS.labels("pods.watch", "500")._value.get()
    assert informer._apply("team", bad) is False  # an error event: listed again, counted, said
    assert "watch of run Pods in team ended with an error: etcd leader changed" in caplog.text
    assert metrics.API_ERRORS.labels("pods.watch", "500")._value.get() == counted + 1
    assert "team" not in informer._rv  # the next round lists first
