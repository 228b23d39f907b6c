"""Starting and stopping the archive inside the operator: store, writer, recorder, read API.

The operator calls `start()` once at startup and `stop()` at exit. A store that cannot be
reached at startup (PostgreSQL not up yet) is retried in the background: scheduling goes on at
once, and finished Pods are kept (never pruned) until the store is open and holds them. A bad
store URL is a configuration error and stops the operator with a message naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from ..kube import Kube
from ..settings import Settings
from .open import open_store
from .recorder import Recorder
from .server import ArchiveServerSettings, Mount, Runner, start_server
from .store import Store, StoreError, redact
from .writer import ArchiveWriter, WriterSettings

log = logging.getLogger(__name__)
#: Seconds between attempts to open a store that was unavailable at startup.
OPEN_RETRY_SECONDS = 10.0


class ArchiveService:
    """The archive's parts as one object; `recorder` is None until the store is open."""

    def __init__(
        self,
        settings: Settings,
        kube: Kube,
        wake: Callable[[str], None],
        mount: Callable[[Store], Mount | None] | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.wake = wake
        #: More routes over the open store (the console, which the archive never imports); None: none.
        self.mount = mount
        self.server_settings = ArchiveServerSettings.from_env()
        self.store: Store | None = None
        self.recorder: Recorder | None = None
        self.server: Runner | None = None
        self._opener: asyncio.Task[None] | None = None
        self.on_ready: Callable[[Recorder], None] = lambda recorder: None

    async def start(self) -> None:
        """Open the store (or keep trying in the background) and start the read API."""
        if not self.settings.archive_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(
                f"OPENCLAW_CRON_ARCHIVE_URL {redact(self.settings.archive_url)!r}: "
                "expected sqlite:///path/file.db or postgresql://..."
            )
        if not await self._open():
            self._opener = asyncio.create_task(self._keep_opening(), name="archive store opener")

    async def _open(self) -> bool:
        try:
            store = await asyncio.to_thread(open_store, self.settings.archive_url)
        except StoreError as exc:
            log.warning("archive: store %s unavailable (%s); retrying", redact(self.settings.archive_url), exc)
            return False
        s = self.settings
        writer = ArchiveWriter(
            store,
            WriterSettings(retention=timedelta(days=s.archive_max_age_days), keep_per_job=s.archive_max_runs_per_job),
        )
        recorder = Recorder(
            writer, s, self.kube.read_log_tail, log_limit_bytes=s.archive_log_tail_bytes, wake=self.wake
        )
        await recorder.start()
        self.store, self.recorder = store, recorder
        self.server = await start_server(
            self.server_settings, store, api=self.kube, mount=self.mount(store) if self.mount else None
        )
        log.info("archive: store %s open; read API on %s", redact(s.archive_url), self.server.ports or "no port")
        self.on_ready(recorder)
        return True

    async def _keep_opening(self) -> None:
        opened = False
        while not opened:
            await asyncio.sleep(OPEN_RETRY_SECONDS)
            opened = await self._open()

    async def stop(self) -> None:
        if self._opener is not None:
            self._opener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opener
        if self.server is not None:
            await self.server.stop()
        if self.recorder is not None:
            left = await self.recorder.stop(flush_timeout=10.0)
            if left:
                log.warning("archive: %d run(s) not written at exit; archived from status after the restart", left)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
