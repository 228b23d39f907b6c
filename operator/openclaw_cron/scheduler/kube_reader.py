"""`Reader` on the operator's API client: what `gather_inputs` reads, for the scheduler.

Other jobs come from the scheduler's own cache (no API call); ConfigMaps and Secrets are
one GET each, only when a slot is due; HTTP checks use a session of their own that never
follows redirects (an allowed host must not bounce the check elsewhere).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes.client.exceptions import ApiException

from ..kube import Kube

USER_AGENT = "openclaw-cron-operator (http condition)"


class KubeReader:
    def __init__(self, kube: Kube, jobs: Callable[[str], Iterable[Mapping[str, Any]]]) -> None:
        self.kube = kube
        self._jobs = jobs
        self._session: aiohttp.ClientSession | None = None

    async def jobs_in_namespace(self, namespace: str) -> list[Mapping[str, Any]]:
        return list(self._jobs(namespace))

    async def _get(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = await self.kube.request(
                "GET", f"/api/v1/namespaces/{quote(namespace)}/{kind}/{quote(name)}", operation=f"{kind}.get"
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return data

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, str] | None:
        data = await self._get(namespace, "configmaps", name)
        return None if data is None else dict(data.get("data") or {})

    async def get_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        data = await self._get(namespace, "secrets", name)
        raw = None if data is None else (data.get("data") or {}).get(key)
        if raw is None:
            return None
        try:
            return base64.b64decode(raw).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return None

    async def http_status(self, url: str) -> int:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        async with self._session.get(url, allow_redirects=False) as resp:
            return resp.status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
