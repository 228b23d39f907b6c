"""Applying a pass's plan in a safe order: create Pods → patch status → delete Pods → Events.

Every step is idempotent, so a pass that stops anywhere in between leaves a world the next
pass (or the next operator) reads back correctly; see reconcile/__init__.py for why the order is safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
from kubernetes.client.exceptions import ApiException

from .. import metrics
from .. import naming as n
from ..api import OpenClawCronJobSpec
from ..job import JobView
from ..kube import Conflict
from ..notify import Notification
from ..pods import PodStore, PodView, Start, render_pod
from ..reconcile import Event, Plan
from .burst import CreatesFirst
from .state import Clock, JobState, Runtime, compact, utcnow
from .writes import prune_batches, status_patch

log = logging.getLogger("openclaw_cron")
DELETE_MEMORY_SECONDS = 30.0


def emit(rt: Runtime, body: Mapping[str, Any], job: JobView, ev: Event) -> None:
    """A Kubernetes Event on the job (Normal ones only when enabled), and the line in the log.

    Posted in the background: an Event is worth a retry, never a delayed run.
    """
    level = logging.WARNING if ev.type == "Warning" else logging.INFO
    log.log(level, "%s/%s: %s: %s", job.ref.namespace, job.ref.name, ev.reason, ev.message)
    if ev.type == "Warning" or rt.settings.normal_events:
        task = asyncio.create_task(_post_event(rt, body, ev))
        rt.background.add(task)
        task.add_done_callback(rt.background.discard)


async def _post_event(rt: Runtime, body: Mapping[str, Any], ev: Event) -> None:
    try:
        await rt.kube.create_event(body, ev.type, ev.reason, ev.message)
    except (ApiException, OSError, TimeoutError, aiohttp.ClientError) as exc:
        log.warning("could not post Event %s: %s", ev.reason, exc)


class Applier:
    def __init__(self, rt: Runtime, pods: PodStore, clock: Clock, burst: CreatesFirst) -> None:
        self.rt = rt
        self.pods = pods
        self.clock = clock
        self.burst = burst

    async def apply(
        self,
        st: JobState,
        body: dict[str, Any],
        job: JobView,
        plan: Plan,
        now: datetime,
        *,
        write_status: bool = True,
        seen: set[str] | frozenset[str] = frozenset(),
        sent: Callable[[], None] | None = None,
    ) -> None:
        """Create Pods → patch status → delete Pods → events.

        `seen`: unrecorded Pods the pass saw (so its plan adopted them): on record once written.
        `sent`: called as a Pod create goes to the server (see Kube.create_pod).
        """
        rt, ref = self.rt, job.ref
        made: set[str] = set()
        status = plan.status
        if plan.spec is not None and plan.starts:
            with self.burst.creates():
                write_status = await self.create_pods(st, body, job, plan.spec, plan.starts, made, sent) or write_status
        if write_status:
            await self.write_status(st, body, job, status, settles=made | seen)
        await self.delete_pods(st, job, plan)
        for ev in plan.events:
            emit(rt, body, job, ev)
        self.account(job, plan, status)
        if plan.delete_job:
            log.info("%s/%s: deleteAfterRun: deleting the job after a successful run", ref.namespace, ref.name)
            await rt.kube.delete_job(ref.namespace, ref.name, ref.uid)

    async def create_pods(
        self,
        st: JobState,
        body: dict[str, Any],
        job: JobView,
        spec: OpenClawCronJobSpec,
        starts: Sequence[Start],
        made: set[str],
        sent: Callable[[], None] | None = None,
    ) -> bool:
        """The runs' Pods, each added to `made` once it exists; True when the status must be written now."""
        rt, ref = self.rt, job.ref
        write_status = False
        for start in starts:
            pod = start.pod_name(ref.name)
            if st.deleted:  # deleted while this pass ran: never a new Pod for it
                rt.inflight.pop(pod, None)
                continue
            try:
                created = await rt.kube.create_pod(render_pod(ref, spec, start, rt.settings), sent=sent)
            except (OSError, TimeoutError, aiohttp.ClientError):
                st.uncertain.add(pod)  # it may have been created: the next pass asks first
                raise
            except ApiException as exc:
                rt.inflight.pop(pod, None)
                if exc.status is None or exc.status >= 500:
                    st.uncertain.add(pod)
                if exc.status is not None and 400 <= exc.status < 500:
                    # the next pass records the run as failed through the usual bookkeeping
                    rt.refused[pod] = f"{exc.status} {exc.reason}: {(exc.body or '')[:600]}"
                    write_status = True  # the active entry must be on record for that
                    continue
                raise
            rt.refused.pop(pod, None)  # refused before, but a status conflict had it planned again
            made.add(pod)
            st.unrecorded.add(pod)  # until a status write that records it lands
            if created:
                # now, not after the status write: a conflict there would adopt the Pod silently
                started = f"started run {start.run_id} attempt {start.attempt} (pod {pod}, {start.trigger})"
                emit(rt, body, job, Event("Normal", "Started", started))
            else:
                # Not a dead end: this pass did not know the Pod (a watch that lags, a restart).
                # Read it (it may have finished already), put the run on record now, and look
                # again at once, so the next pass follows or records it from what was read.
                rt.inflight.pop(pod, None)
                existing = await rt.kube.get_pod(ref.namespace, pod)
                if existing is not None:
                    self.pods.put(existing)
                write_status = True
                st.again = True
                log.info(
                    "%s/%s: pod %s already exists; run %s was started before: following it",
                    ref.namespace,
                    ref.name,
                    pod,
                    start.run_id,
                )
            metrics.run_started(ref.namespace, ref.name, start.trigger)
            if start.trigger == "Schedule" and start.attempt == 1:
                lag = max(0.0, (utcnow() - start.scheduled).total_seconds())
                metrics.schedule_lag(ref.namespace, ref.name, lag)
        return write_status

    async def write_status(
        self,
        st: JobState,
        body: dict[str, Any],
        job: JobView,
        status: dict[str, Any],
        *,
        settles: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Merge-patch the status (guarded by resourceVersion); remember the answer as `st.ours`.

        `settles`: Pods this status puts on record; once written they are no longer `unrecorded`.

        A write whose answer was lost (reset, timeout) is retried by the client and then meets a
        Conflict with its own first attempt: when the object already holds exactly what we wrote,
        that is success, and the pass goes on to its Events, metrics and notifications.
        """
        ref = job.ref
        patch = status_patch(job.status, status)
        st.deferred, st.deferred_pods = None, set()
        if not patch or st.deleted:
            st.unrecorded -= settles
            return
        try:
            written = await self.rt.kube.patch_status(
                ref.namespace, ref.name, patch, body["metadata"].get("resourceVersion")
            )
        except Conflict:
            fresh = await self.rt.kube.get_job(ref.namespace, ref.name)
            have = (fresh or {}).get("status") or {}
            if fresh is None or any(have.get(k) != status.get(k) for k in patch):
                raise  # (a key removed is None in both: absent from `status` and from `have`)
            written = fresh
        st.ours = compact(written)
        st.unrecorded -= settles

    async def delete_pods(self, st: JobState, job: JobView, plan: Plan) -> None:
        """Policy deletions at once; history pruning batched (see prune_batches)."""
        rt, ref = self.rt, job.ref
        mono = time.monotonic()
        pods = self.pods.get(st.uid)
        archived = {p.name for p in pods if self.archived(st.uid, p)}
        for pod, why in plan.deletes:
            if why == "HistoryLimit":
                if pod in archived:  # a Pod goes only after its run (and log) is in the archive
                    st.prune.setdefault(pod, mono)
                continue
            if rt.deleting.get(pod, 0.0) > mono:
                continue  # asked already; the watch has not caught up yet
            rt.deleting[pod] = mono + DELETE_MEMORY_SECONDS
            log.info("%s/%s: deleting pod %s (%s)", ref.namespace, ref.name, pod, why)
            if not await rt.kube.delete_pod(ref.namespace, pod):
                self.pods.remove(ref.namespace, pod)  # already gone: its DELETED event was missed
        planned = {pod for pod, why in plan.deletes if why == "HistoryLimit"} & archived
        st.prune = {pod: since for pod, since in st.prune.items() if pod in planned}
        nxt = plan.status.get("nextRunTime")
        soon = isinstance(nxt, str) and (n.parse_time(nxt) - self.clock()).total_seconds() < self.prune_delay()
        idle = not soon and not plan.status.get("active")
        for group in prune_batches(st.prune, pods, mono, rt.settings.prune_batch, self.prune_delay(), idle):
            names = [p.name for p in group]
            log.info("%s/%s: pruning %d finished pod(s) beyond the history limits", ref.namespace, ref.name, len(names))
            if len(group) == 1:
                if not await rt.kube.delete_pod(ref.namespace, names[0]):
                    self.pods.remove(ref.namespace, names[0])  # already gone: its DELETED event was missed
            else:
                runs = ",".join(sorted({p.run_id for p in group}))
                selector = f"{n.LABEL_JOB}={n.job_label(ref.name)},{n.LABEL_RUN_ID} in ({runs})"
                await rt.kube.delete_pods(ref.namespace, selector)
            for name in names:
                st.prune.pop(name, None)
                rt.deleting[name] = mono + DELETE_MEMORY_SECONDS
            if rt.recorder is not None:
                rt.recorder.pruned(st.uid, group)
        if len(rt.deleting) > 10000:
            rt.deleting = {k: v for k, v in rt.deleting.items() if v > mono}

    def account(self, job: JobView, plan: Plan, status: dict[str, Any]) -> None:
        """Metrics and notifications for what the pass decided."""
        rt, ref = self.rt, job.ref
        for rec in plan.finished:
            metrics.run_finished(ref.namespace, ref.name, rec.result, rec.trigger, rec.duration_seconds)
        metrics.missed(ref.namespace, ref.name, plan.missed)
        metrics.skipped(ref.namespace, ref.name, plan.skipped)
        notify_spec = plan.spec.notify if plan.spec else None
        if rt.notifier is not None and notify_spec is not None:
            failures = int(status.get("consecutiveFailures", 0))
            for kind, rec in plan.notifications:
                rt.notifier.submit(Notification.for_run(notify_spec, kind, ref.namespace, ref.name, rec, failures))
        if rt.notifier is not None:
            for message in plan.messages:  # escalation levels and their resolved message
                rt.notifier.submit(message)
        nxt = status.get("nextRunTime")
        metrics.set_job_state(
            ref.namespace,
            ref.name,
            consecutive_failures=int(status.get("consecutiveFailures", 0)),
            next_run_timestamp=n.parse_time(nxt).timestamp() if nxt else None,
            active=len(status.get("active", [])),
            waiting=len(status.get("pending", [])),
        )
        if rt.settings.max_concurrent_runs:
            rt.cap_waiting[ref.uid] = sum(1 for p in status.get("pending", []) if p.get("reason") == "GlobalCap")
            metrics.global_waiting(sum(rt.cap_waiting.values()))

    def archived(self, uid: str, pod: PodView) -> bool:
        """Whether the archive holds this Pod's attempt (always, without an archive)."""
        if self.rt.recorder is not None:
            return self.rt.recorder.may_prune(uid, pod)
        return not self.rt.archive_pending

    def prune_delay(self) -> float:
        return self.rt.settings.prune_max_delay_seconds
