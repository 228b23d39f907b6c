"""The archive as the scheduler sees it: one object, two calls (`observe`, `may_prune`).

Every pass hands the recorder its job, the job's run Pods and the runs it just recorded. The
recorder, off the scheduling path, captures each finished attempt (its record, the Pod's log
tail, the agent's reply read from the gateway with the operator's own token) and queues it on
the `ArchiveWriter`; the first time it sees a job after a start it also hands the writer the
runs in `status.recentRuns` whose Pods are gone, so nothing on record is missing from the
archive after a restart. The scheduler prunes a finished Pod only when `may_prune` says its
attempt is stored. A store that is slow or down delays that pruning, never a run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import ValidationError

from ..api import OpenClawCronJobSpec, RunRecord
from ..pods import JobRef, PodView
from ..settings import Settings
from ..status import pod_outcome, record
from .capture import capture_entry, entry_for
from .model import RunEntry
from .store import StoreError
from .writer import ArchiveWriter, Key

log = logging.getLogger(__name__)

ReadLog = Callable[[str, str, int], Awaitable[str | None]]
#: Captures (log read + reply read) running at once.
CAPTURE_CONCURRENCY = 8
#: How long a job whose backfill failed (store down) waits before the next try.
BACKFILL_RETRY_SECONDS = 30.0


def attempt_record(pod: PodView, *, runner: bool, now: datetime) -> RunRecord:
    """The record of one finished attempt, from its Pod alone."""
    return record(
        run_id=pod.run_id,
        trigger=pod.trigger,
        scheduled=pod.scheduled,
        start=pod.start_time or pod.created,
        attempts=pod.attempt,
        outcome=pod_outcome(pod, runner=runner),
        pod_name=pod.name,
        now=now,
    )


def recent_entries(job: JobRef, recent: Iterable[dict[str, Any]], live: set[str]) -> list[RunEntry]:
    """Entries for `status.recentRuns` whose Pods are gone (their log is gone with them)."""
    out = []
    for raw in recent:
        try:
            rec = RunRecord.model_validate(raw)
        except ValidationError:
            continue
        if rec.pod_name and rec.pod_name in live:
            continue  # captured from its Pod, with the log
        out.append(entry_for(job, rec, None, reply="", reply_note="", log="", log_truncated=False))
    return out


class Recorder:
    """Feeds the writer from the scheduler's passes; answers whether a Pod may be pruned."""

    def __init__(
        self,
        writer: ArchiveWriter,
        settings: Settings,
        read_log: ReadLog,
        *,
        log_limit_bytes: int,
        wake: Callable[[str], None] = lambda uid: None,
    ) -> None:
        self.writer = writer
        #: Called with a job's uid when something of it got archived (its Pods may be pruned now).
        self.wake = wake
        self.settings = settings
        self.read_log = read_log
        self.log_limit_bytes = log_limit_bytes
        self._http: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(CAPTURE_CONCURRENCY)
        #: Attempts being captured or waiting for room in the writer's queue.
        self._busy: set[Key] = set()
        self._waiting: dict[Key, RunEntry] = {}
        #: Jobs whose backfill is done (uid), or failed and retried after a time (uid → when).
        self._ready: set[str] = set()
        self._retry_at: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self, flush_timeout: float = 10.0) -> int:
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
        return await self.writer.stop(flush_timeout=flush_timeout)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the scheduler's side ---------------------------------------------------------------
    def observe(
        self,
        job: JobRef,
        spec: OpenClawCronJobSpec | None,
        status: dict[str, Any],
        pods: Iterable[PodView],
        finished: Iterable[RunRecord],
        now: datetime,
    ) -> None:
        """Start archiving what this pass saw finish; never blocks, never raises."""
        pods = list(pods)
        self._resubmit()
        if job.uid not in self._ready:
            if asyncio.get_running_loop().time() >= self._retry_at.get(job.uid, 0.0):
                self._retry_at[job.uid] = float("inf")  # one backfill at a time
                live = {p.name for p in pods}
                self._spawn(self._backfill(job, recent_entries(job, status.get("recentRuns") or [], live)))
            return  # captures wait until the job's stored keys are known
        runner = spec is not None and spec.payload.kind != "command"
        for pod in pods:
            if not pod.finished:
                continue
            key: Key = (job.uid, pod.run_id, pod.attempt)
            if key in self._busy or self.writer.is_archived(key) or self.writer.is_pending(key):
                continue
            self._busy.add(key)
            rec = attempt_record(pod, runner=runner, now=now)
            self._spawn(self._capture(key, job, spec, rec, pod))
        attempts = {(p.run_id, p.attempt) for p in pods}
        for rec in finished:  # runs that ended without a Pod (skipped, missed, refused, deleted)
            key = (job.uid, rec.run_id, rec.attempts)
            if (rec.run_id, rec.attempts) in attempts or key in self._busy or self.writer.is_archived(key):
                continue
            self._offer(entry_for(job, rec, None, reply="", reply_note="", log="", log_truncated=False))

    def may_prune(self, job_uid: str, pod: PodView) -> bool:
        """A finished Pod may go once its attempt is in the store."""
        return self.writer.is_archived((job_uid, pod.run_id, pod.attempt))

    def pruned(self, job_uid: str, pods: Iterable[PodView]) -> None:
        for pod in pods:
            self.writer.forget((job_uid, pod.run_id, pod.attempt))

    def forget_job(self, job_uid: str) -> None:
        self._ready.discard(job_uid)
        self._retry_at.pop(job_uid, None)

    # -- off the scheduling path ------------------------------------------------------------
    def _offer(self, entry: RunEntry) -> None:
        if not self.writer.submit(entry):
            self._waiting[entry.key()] = entry  # the queue is full: keep it (and the Pod) for later
        elif entry.pod_name:
            self._spawn(self._wake_when_archived(entry.key()))

    async def _wake_when_archived(self, key: Key) -> None:
        """Wake the job once its attempt is stored, so that its Pod is pruned without waiting for
        the job's next pass (a daily job would otherwise keep it for a day)."""
        for _ in range(3600):
            await asyncio.sleep(1.0)
            if self.writer.is_archived(key):
                self.wake(key[0])
                return
            if not self.writer.is_pending(key):
                return  # refused by the store (logged by the writer): the next pass offers it again

    def _resubmit(self) -> None:
        for key, entry in list(self._waiting.items()):
            if not self.writer.submit(entry):
                return
            del self._waiting[key]
            if entry.pod_name:
                self._spawn(self._wake_when_archived(key))

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()  # no default auth: each read brings its own token
        return self._http

    async def _capture(
        self, key: Key, job: JobRef, spec: OpenClawCronJobSpec | None, rec: RunRecord, pod: PodView
    ) -> None:
        try:
            async with self._slots:
                if spec is None:
                    entry = entry_for(job, rec, pod, reply="", reply_note="", log="", log_truncated=False)
                else:
                    entry = await capture_entry(
                        self._session(), self.settings, job, spec, rec, pod, self.read_log, self.log_limit_bytes
                    )
            self._offer(entry)
        except Exception:  # a capture bug must not stop scheduling; the next pass tries again
            log.exception(
                "archive: capture of %s/%s run %s attempt %s failed", job.namespace, job.name, rec.run_id, key[2]
            )
        finally:
            self._busy.discard(key)

    async def _backfill(self, job: JobRef, entries: list[RunEntry]) -> None:
        try:
            added = await self.writer.backfill(job.uid, entries)
        except StoreError as exc:
            log.warning("archive: store unavailable for %s/%s (%s); retrying", job.namespace, job.name, exc)
            self._retry_at[job.uid] = asyncio.get_running_loop().time() + BACKFILL_RETRY_SECONDS
            return
        if added:
            log.info("archive: %d run(s) of %s/%s on record but not archived: queued", added, job.namespace, job.name)
        self._ready.add(job.uid)
        self._retry_at.pop(job.uid, None)
        self.wake(job.uid)  # its finished Pods can be captured now
