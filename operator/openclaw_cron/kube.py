"""The few Kubernetes API calls the operator makes, through the official client.

The client is synchronous; calls run in a dedicated thread pool so a slow API server
never blocks kopf's event loop, and the pool (with the client's connection pool) is
sized for thousands of jobs. Bodies travel as plain dicts (`_preload_content=False`)
so nothing is lost in model round-trips.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .api import GROUP, PLURAL, VERSION

T = TypeVar("T")
MERGE = "application/merge-patch+json"
POOL = 32


class Conflict(Exception):
    """The resource changed since we read it (optimistic concurrency)."""


class Kube:
    """Async facade over CoreV1Api and CustomObjectsApi."""

    def __init__(self, api_client: Any | None = None) -> None:
        if api_client is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            conf = client.Configuration.get_default_copy()
            conf.connection_pool_maxsize = POOL
            api_client = client.ApiClient(conf)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self._pool = ThreadPoolExecutor(max_workers=POOL, thread_name_prefix="kube")
        #: API writes by kind, for the benchmark's writes-per-run figure.
        self.writes: dict[str, int] = {}

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def _count(self, what: str) -> None:
        self.writes[what] = self.writes.get(what, 0) + 1

    @staticmethod
    def _json(resp: Any) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(resp.data)
        return data

    async def create_pod(self, body: dict[str, Any]) -> bool:
        """Create a Pod; False when it already exists (the run was started before)."""
        self._count("pods.create")
        try:
            await self._call(
                self.core.create_namespaced_pod, body["metadata"]["namespace"], body, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def delete_pod(self, namespace: str, name: str) -> None:
        self._count("pods.delete")
        try:
            await self._call(self.core.delete_namespaced_pod, name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json(await self._call(self.core.read_namespaced_pod, name, namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def secret_key_exists(self, namespace: str, name: str, key: str) -> bool | None:
        """True/False whether Secret `name` has `key`; None when the Secret does not exist.

        The value is never decoded, logged or kept.
        """
        try:
            resp = await self._call(self.core.read_namespaced_secret, name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data = self._json(resp)
        return key in (data.get("data") or {}) or key in (data.get("stringData") or {})

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json(
                await self._call(
                    self.custom.get_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch /status, guarded by resourceVersion so a stale writer gets Conflict."""
        self._count("status.patch")
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            resp = await self._call(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                _content_type=MERGE,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{namespace}/{name}") from exc
            raise
        return self._json(resp)

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete the resource (deleteAfterRun), only if it is still the same object."""
        self._count("job.delete")
        try:
            await self._call(
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body={"preconditions": {"uid": uid}},
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
