"""The run-Pod informer against the emulated API server's real list+watch: resume and 410."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kubernetes import client

from openclaw_cron.informer import PodInformer
from openclaw_cron.kube import Kube
from support import Cluster

MANAGED = {"app.kubernetes.io/managed-by": "openclaw-cron-operator"}
SELECTOR = "app.kubernetes.io/managed-by=openclaw-cron-operator"


def pod(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED)},
        "spec": {"containers": [{"name": "run", "image": "busybox"}]},
    }


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 (the condition is another thread's doing)
            await asyncio.sleep(0.02)


class Seen:
    """The sink: the informer's view of every Pod, and each event in order."""

    def __init__(self) -> None:
        self.pods: dict[str, str] = {}
        self.events: list[tuple[str, str]] = []

    def __call__(self, kind: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.events.append((kind, name))
        if kind == "DELETED":
            self.pods.pop(name, None)
        else:
            self.pods[name] = (body.get("metadata") or {}).get("labels", {}).get("step", "")


@contextlib.asynccontextmanager
async def following(cluster: Cluster, namespaces: tuple[str, ...] = ()) -> AsyncIterator[tuple[Any, Seen, PodInformer]]:
    """The informer listed and following `cluster`: (CoreV1Api, its sink, the informer)."""
    api = cluster.api_client()
    kube = Kube(api.configuration)
    seen = Seen()
    informer = PodInformer(kube, namespaces, SELECTOR, seen)
    await informer.list_all()
    task = asyncio.create_task(informer.run())
    try:
        yield client.CoreV1Api(api), seen, informer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await kube.close()
        api.close()


async def test_lists_then_follows_resumes_a_dropped_stream_and_lists_again_after_410(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(kubelet=False, emulator_options={"watch_cache_size": 30})
    setup = client.CoreV1Api(cluster.api_client())
    setup.create_namespaced_pod("default", pod("before"))
    other = pod("not-ours")
    other["metadata"]["labels"] = {}
    setup.create_namespaced_pod("default", other)
    async with following(cluster) as (core, seen, informer):
        assert seen.events == [("ADDED", "before")]  # the selector: only run Pods
        await asyncio.to_thread(core.create_namespaced_pod, "default", pod("during"))
        await until(lambda: "during" in seen.pods)

        # A dropped stream (an API server restart, a load balancer's idle timeout): resumed from
        # the last version, so nothing is listed again and no event is repeated.
        cluster.call(cluster.emulator.disconnect_watches)
        body = {"metadata": {"labels": {"step": "2"}}}
        await asyncio.to_thread(core.patch_namespaced_pod, "during", "default", body)
        await until(lambda: seen.pods.get("during") == "2")
        assert informer.lists == 1
        assert seen.events.count(("ADDED", "during")) == 1

        # Changes elsewhere push the informer's last version out of the watch cache; after the
        # next drop the resume gets 410 Gone and the informer lists again, and follows on.
        for i in range(40):
            await asyncio.to_thread(core.create_namespaced_config_map, "default", {"metadata": {"name": f"cm{i}"}})
        cluster.call(cluster.emulator.disconnect_watches)
        await until(lambda: informer.lists == 2)
        await asyncio.to_thread(core.delete_namespaced_pod, "before", "default")
        await until(lambda: "before" not in seen.pods)
        assert set(seen.pods) == {"during"}


async def test_a_namespace_list_watches_only_those_namespaces(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(kubelet=False)
    setup = client.CoreV1Api(cluster.api_client())
    for ns in ("team-a", "team-b"):
        setup.create_namespace({"metadata": {"name": ns}})
    async with following(cluster, ("team-a",)) as (core, seen, _):
        await asyncio.to_thread(core.create_namespaced_pod, "team-b", pod("b", "team-b"))
        await asyncio.to_thread(core.create_namespaced_pod, "team-a", pod("a", "team-a"))
        await until(lambda: "a" in seen.pods)
        await asyncio.sleep(0.3)
        assert seen.events == [("ADDED", "a")]
