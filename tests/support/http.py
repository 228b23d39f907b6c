"""A real aiohttp server on 127.0.0.1 for tests that need an HTTP peer (not the API emulator)."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL, stops it afterwards."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def list_all(url: str, timeout: float = 10) -> list[dict[str, Any]]:
    """Every item of a Kubernetes-style list endpoint (`?...`), following `metadata.continue` page by page."""
    items: list[dict[str, Any]] = []
    cont = ""
    while True:
        with urllib.request.urlopen(url + (f"&continue={cont}" if cont else ""), timeout=timeout) as resp:
            page = json.loads(resp.read())
        items += page["items"]
        cont = page["metadata"].get("continue") or ""
        if not cont:
            return items
