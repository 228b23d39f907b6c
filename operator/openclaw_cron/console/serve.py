"""The console on the archive's listeners: what the operator hands the archive service at startup.

The archive never imports the console (it sits below it); the operator passes `mount_for(...)`
as the service's `mount`, and the service calls it with the store once that is open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ..archive.server import Mount
from ..archive.sql import SqlStore
from ..archive.store import Store
from ..kube import Kube
from .jobs import JobSource
from .routes import Console


def mount_for(jobs: JobSource, kube: Kube, default_tz: str) -> Callable[[Store], Mount | None]:
    """The console's routes over a store (both SQL stores serve it; another kind gets no console)."""

    async def events(namespace: str, name: str) -> list[Mapping[str, Any]]:
        """A job's Events, read with the operator's client (the console asked RBAC for the user first)."""
        selector = f"involvedObject.name={name},involvedObject.kind=OpenClawCronJob"
        answer = await kube.request(
            "GET",
            f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
            operation="events.list",
            query={"fieldSelector": selector, "limit": "200"},
        )
        items: list[Mapping[str, Any]] = (answer or {}).get("items") or []
        return items

    def mount(store: Store) -> Mount | None:
        if not isinstance(store, SqlStore):
            return None
        return Console(store, jobs, events, default_tz=default_tz).mount

    return mount
