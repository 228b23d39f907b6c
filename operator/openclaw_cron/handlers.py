"""kopf wiring: thin handlers that feed the scheduler (`scheduler/`) and nothing else.

- an event handler for jobs that only updates the scheduler's copy of the job and wakes it;
- startup/cleanup that start and stop the one scheduling loop and the run-Pod informer
  (`informer.py`: run Pods change several times a run, and kopf's per-event machinery cost
  more than the rest of the run; the informer fills the scheduler's Pod store directly).

Only event handlers are registered for jobs, so kopf keeps no per-object
state and puts no finalizer on them: deleting a job, its namespace or the whole install
never waits for the operator. A finalizer left by an earlier version (one daemon per job
needed it) is removed by kopf on first sight, because `persistence.finalizer` still names it
and no handler requires it any more. kopf peering pauses the watches of a standby replica;
the scheduler reads the same pause state and does nothing while paused (the Pod informer
goes on, so a standby that takes over knows every run Pod already).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from . import collector, metrics
from . import naming as n
from .api import GROUP, PLURAL, VERSION
from .archive.service import ArchiveService
from .console import mount_for
from .credentials import REFRESH_SECONDS
from .informer import PodInformer
from .kube import Kube
from .notify import Notifier, load_channels
from .pods import PodStore
from .scheduler import Runtime, Scheduler, kopf_paused
from .settings import Settings

log = logging.getLogger("openclaw_cron")
#: The finalizer of versions ≤ 0.1 (kopf added it for the per-job daemons); removed at first sight.
LEGACY_FINALIZER = f"{GROUP}/finalizer"


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: only event handlers are registered, and they never look at one.

    kopf builds the "essence" of every watched body on every event, a deep copy of the whole
    object, to diff it for change handlers; with thousands of run Pods changing each minute that
    copy was a tenth of the operator's CPU. Nothing is stored, so no annotation is written either.
    """

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure(settings: kopf.OperatorSettings, ours: Settings) -> None:
    """kopf settings that matter for a scheduler."""
    settings.posting.level = logging.ERROR  # our own Events only, not log lines
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.worker_limit = 1000
    settings.persistence.finalizer = LEGACY_FINALIZER
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.peering.priority = ours.priority


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own login through the official client, valid for REFRESH_SECONDS.

    kopf keeps credentials until a 401; a projected ServiceAccount token rotated by the kubelet
    would then be used only after the old one is refused. Expiring them each minute makes kopf
    read the token file as often as client-go (and as the operator's own client) does.
    """
    info = kopf.login_via_client(**kwargs)
    if info is None:
        return None
    return dataclasses.replace(info, expiration=datetime.now(UTC) + timedelta(seconds=REFRESH_SECONDS))


def scheduler(memo: Any) -> Scheduler:
    sched: Scheduler = memo["scheduler"]
    return sched


@kopf.on.event(GROUP, VERSION, PLURAL)
async def job_changed(
    body: kopf.Body, uid: str, memo: kopf.Memo, type: str | None, namespace: str | None, name: str, **_: Any
) -> None:
    sched = scheduler(memo)
    if type == "DELETED":
        sched.forget(uid, namespace or "", name)
    elif (body.get("metadata") or {}).get("deletionTimestamp"):
        sched.forget(uid, namespace or "", name)  # going away (someone else's finalizer): no new runs
    else:
        sched.upsert(body)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    ours: Settings = memo["settings"]
    configure(settings, ours)
    kube = Kube(qps=ours.kube_api_qps, burst=ours.kube_api_burst, timeout=ours.api_timeout_seconds)
    rt = Runtime(settings=ours, kube=kube)
    if ours.notify_config:
        rt.notifier = Notifier(load_channels(ours.notify_config))
        await rt.notifier.start()
    if ours.metrics_port:
        metrics.watch_gc()
        metrics.start_http_server(ours.metrics_port)
    sched = Scheduler(rt, PodStore())
    informer = PodInformer(kube, ours.namespaces, f"{n.LABEL_MANAGED_BY}={n.MANAGED_BY}", sched.pod_event)
    await informer.list_all()  # the run Pods that exist, before any job's first pass
    sched.paused = kopf_paused()
    memo["scheduler"] = sched
    if ours.archive_url:
        archive = ArchiveService(ours, kube, sched.wake, mount=mount_for(sched.view, kube, ours.default_tz))
        rt.archive_pending = True  # finished Pods are kept until the store holds them

        def ready(recorder: Any) -> None:
            rt.recorder, rt.archive_pending = recorder, False

        archive.on_ready = ready
        await archive.start()
        memo["archive"] = archive
    sched.collections = collector.take_over(time.monotonic())
    memo["informer_task"] = asyncio.create_task(informer.run(), name="openclaw-cron pod informer")
    memo["scheduler_task"] = asyncio.create_task(sched.run(), name="openclaw-cron scheduler")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    sched: Scheduler | None = memo.get("scheduler")
    for key in ("scheduler_task", "informer_task"):
        task: asyncio.Task[None] | None = memo.get(key)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    archive: ArchiveService | None = memo.get("archive")
    if archive is not None:
        await archive.stop()
    if sched is None:
        return
    if sched.rt.notifier is not None:
        await sched.rt.notifier.stop()
    await sched.rt.kube.close()
