"""Delivery: the Notifier sends in the background with bounded memory and bounded retries.

Fire-and-forget for the reconcile loop: ``submit`` never blocks or raises. Each delivery's
outcome is counted in ``openclaw_cron_notifications_total`` (ok, error, dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

import aiohttp

from .. import metrics
from .channels.base import Channel
from .errors import DeliveryError
from .message import Notification

# The subsystem's one logger keeps the name it had as one module (log filters, caplog).
log = logging.getLogger("openclaw_cron.notify")


class Notifier:
    """Sends notifications in the background with bounded memory and bounded retries.

    ``submit`` enqueues one delivery per channel and returns at once; when the queue is
    full the oldest delivery is dropped (counted as outcome "dropped"). Deliveries run
    concurrently (at most ``max_in_flight``) so one dead channel does not hold up the
    others. Retryable failures (connection errors, timeouts, HTTP 429/5xx, SMTP 4xx) are
    retried ``retries`` times after ``backoff``, 2x, 4x ... seconds (a 429's Retry-After
    is honoured up to ``max_backoff``); other failures are final at once.
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        queue_size: int = 1000,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_in_flight: int = 8,
    ) -> None:
        self.channels = dict(channels)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: asyncio.Queue[tuple[Notification, str]] = asyncio.Queue(maxsize=queue_size)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._warned: set[str] = set()

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._tasks)

    def submit(self, message: Notification) -> None:
        """Queue ``message`` for each of its channels; never blocks, never raises."""
        for name in message.channels:
            if name not in self.channels:
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("notification channel %r is not configured; messages to it are dropped", name)
                metrics.notification_sent("unknown", "error")
                continue
            if self._queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    _old, old_channel = self._queue.get_nowait()
                    self._queue.task_done()
                    metrics.notification_sent(old_channel, "dropped")
                    log.warning("notification queue full; dropped the oldest message for %r", old_channel)
            self._queue.put_nowait((message, name))

    async def start(self) -> None:
        if self._worker is None:
            self._session = aiohttp.ClientSession()
            self._worker = asyncio.create_task(self._run(), name="openclaw-cron-notifier")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Give queued and in-flight deliveries ``drain_timeout`` seconds, then cancel."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        self._worker.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(self._worker, *tasks, return_exceptions=True)
        while not self._queue.empty():
            _msg, channel = self._queue.get_nowait()
            self._queue.task_done()
            metrics.notification_sent(channel, "dropped")
        self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            message, name = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(message, name))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        self._queue.task_done()

    async def _deliver(self, message: Notification, name: str) -> None:
        channel = self.channels[name]
        assert self._session is not None
        attempt = 0
        while True:
            try:
                await channel.send(self._session, message)
            except DeliveryError as exc:
                if exc.retryable and attempt < self.retries:
                    delay = min(self.backoff * 2**attempt, self.max_backoff)
                    if exc.retry_after is not None:
                        delay = min(max(delay, exc.retry_after), self.max_backoff)
                    attempt += 1
                    log.info(
                        "notification %s to %r failed (%s); retry %d in %.1fs", message.kind, name, exc, attempt, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                log.warning(
                    "notification %s for %s/%s to %r failed: %s",
                    message.kind,
                    message.namespace,
                    message.job,
                    name,
                    exc,
                )
                metrics.notification_sent(name, "error")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug in a channel must not kill the worker; the text is still scrubbed.
                log.error("notification to %r crashed: %s", name, channel.scrub(repr(exc)))
                metrics.notification_sent(name, "error")
                return
            metrics.notification_sent(name, "ok")
            return
