"""The run-Pod informer: one list, then a resumable watch, feeding the scheduler's Pod store.

Run Pods change about four times per run (created, scheduled, running, finished) and once more
when pruned. Handled as kopf events, each went through a worker task per object, cause
detection and handler invocation: more CPU than the rest of a run's work together. This reads
the same list+watch stream the way client-go's reflector does: list, watch from the list's
resourceVersion, resume from the last version seen after a dropped or timed-out stream, and
list again after 410 Gone (the version fell out of the API server's watch cache), reporting
Pods that vanished in between as deleted. kopf still watches the OpenClawCronJobs themselves.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from kubernetes.client.exceptions import ApiException

from . import metrics
from .kube import Kube, retry_delay

log = logging.getLogger("openclaw_cron.informer")

#: The watch's server-side timeout, jittered like client-go's reflector (5 to 10 min).
WATCH_SECONDS = (300, 600)
#: Called with ("ADDED" | "MODIFIED" | "DELETED", Pod). A DELETED body may carry only metadata.
Sink = Callable[[str, Mapping[str, Any]], None]
Key = tuple[str, str]


class PodInformer:
    """List+watch of the Pods matching `selector`, in each namespace of `namespaces` (or all)."""

    def __init__(self, kube: Kube, namespaces: tuple[str, ...], selector: str, sink: Sink) -> None:
        self.kube = kube
        self.selector = selector
        self.sink = sink
        #: "" is all namespaces: one stream then, as kube-controller-manager does.
        self.scopes: tuple[str, ...] = namespaces or ("",)
        self._rv: dict[str, str] = {}
        self._known: dict[str, set[Key]] = {}
        #: How many times a scope was listed (the first time included); for tests and the bench.
        self.lists = 0

    async def list_all(self) -> None:
        """List every scope once (before the first pass, so no job starts blind)."""
        for scope in self.scopes:
            await self._list(scope)

    async def run(self) -> None:
        """Follow every scope until cancelled."""
        await asyncio.gather(*(self._follow(scope) for scope in self.scopes))

    async def _list(self, scope: str) -> None:
        items, rv = await self.kube.list_pods(scope, self.selector)
        self.lists += 1
        listed = {_key(pod) for pod in items}
        known = self._known.get(scope, set())
        for namespace, name in known - listed:  # gone while not watching
            self.sink("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        for pod in items:
            self.sink("MODIFIED" if _key(pod) in known else "ADDED", pod)
        self._known[scope] = listed
        self._rv[scope] = rv

    async def _follow(self, scope: str) -> None:
        failures = 0
        while True:
            try:
                if scope not in self._rv:
                    await self._list(scope)
                seconds = random.randint(*WATCH_SECONDS)
                async for event in self.kube.watch_pods(scope, self.selector, self._rv[scope], seconds):
                    failures = 0
                    if not self._apply(scope, event):
                        break
            except asyncio.CancelledError:
                raise
            except (ApiException, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                failures += 1
                if isinstance(exc, ApiException) and exc.status == 410:
                    self._rv.pop(scope, None)
                delay = retry_delay(failures, None)
                log.warning("watching run Pods%s failed, again in %.1fs: %s", _where(scope), delay, exc)
                await asyncio.sleep(delay)

    def _apply(self, scope: str, event: Mapping[str, Any]) -> bool:
        """One watch event; False when the stream must be listed again (410 Gone, other errors)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            metrics.api_error("pods.watch", str(code or "error"))
            if code != 410:
                log.warning("watch of run Pods%s ended with an error: %s", _where(scope), obj.get("message"))
            self._rv.pop(scope, None)  # 410: the version is too old; anything else: start clean
            return False
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._rv[scope] = rv
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return True  # BOOKMARK: only the version moves
        known = self._known.setdefault(scope, set())
        if kind == "DELETED":
            known.discard(_key(obj))
        else:
            known.add(_key(obj))
        self.sink(kind, obj)
        return True


def _key(pod: Mapping[str, Any]) -> Key:
    meta = pod.get("metadata") or {}
    return (meta.get("namespace", ""), meta.get("name", ""))


def _where(scope: str) -> str:
    return f" in {scope}" if scope else ""
