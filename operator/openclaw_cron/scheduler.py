"""One scheduling loop for every job: a time-ordered queue, compact per-job state, bounded passes.

kopf watches the jobs and calls `upsert` / `forget`; the run-Pod informer (`informer.py`) calls
`pod_event`. Nothing else of kopf's per-object machinery is used for a job (no daemon, hence no
finalizer: a job, its namespace or the whole install can be deleted while the operator is
down). The loop pops the jobs that are due (or woke), runs each job's pass as a task (at most
`settings.max_parallel_reconciles` at once, never two passes of one job at a time), and puts
the job back in the queue at the time its plan asks for. A pass is the kubebuilder shape: the
world rebuilt from the resource and its owned Pods → `reconcile()` (pure) → apply the plan in
a safe order: create Pods → patch status → delete Pods → Events.

Idle jobs cost nothing between their due times: no per-job timers or resync storms, just a
heap entry (a safety-net pass every `resync_seconds`, 10 minutes by default). Full garbage
collections run in the gaps between slots (`collector.py`), not in the middle of one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from kubernetes.client.exceptions import ApiException

from . import metrics
from . import naming as n
from .archive.recorder import Recorder
from .collector import FullCollections
from .kube import Conflict, Kube
from .notify import Notification, Notifier
from .orchestration.wiring import Orchestration, view_fields
from .pods import JobRef, PodStore, PodView, pod_view, render_pod
from .reconcile import Context, Event, JobView, Plan, reconcile
from .settings import Settings
from .validation import FieldError

log = logging.getLogger("openclaw_cron")
SECRET_CACHE_SECONDS = 30.0
ERROR_BACKOFF_SECONDS = 5.0
DELETE_MEMORY_SECONDS = 30.0
#: Seconds a Pod we created may be missing from the Pod watch before we read it from the API.
INFLIGHT_GRACE = 10.0
#: An invalid job (e.g. its token Secret is missing) looks again this soon.
INVALID_RECHECK_SECONDS = 30.0
#: How long status writes may wait after a pass that only started Pods (see quiet).
START_COALESCE = timedelta(seconds=3)
#: Annotations of ours kept in the compact copy of a job (others are not needed).
_KEPT_ANNOTATION_PREFIX = "cron.openclaw.io/"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The operator's clock (one place to inject a fake one)."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Process-wide state shared by the handlers and the scheduler (kept in kopf's memo)."""

    settings: Settings
    kube: Kube
    notifier: Notifier | None = None
    #: Pods created by us and not yet seen in the index (for the global cap): name → since.
    inflight: dict[str, float] = field(default_factory=dict)
    secrets: dict[tuple[str, str, str], tuple[float, FieldError | None]] = field(default_factory=dict)
    #: Pods we asked to delete, until when we do not ask again.
    deleting: dict[str, float] = field(default_factory=dict)
    #: Run Pods the API refused to create (name → why), until their run is recorded.
    refused: dict[str, str] = field(default_factory=dict)
    #: Runs each job has waiting for the global cap (job uid → count), for the gauge.
    cap_waiting: dict[str, int] = field(default_factory=dict)
    #: The run archive (None: not configured). `archive_pending`: configured, store not open yet,
    #: so finished Pods are kept (not pruned) until it is.
    recorder: Recorder | None = None
    archive_pending: bool = False
    #: Fire-and-forget tasks (Event posts), kept referenced until done.
    background: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(slots=True)
class JobState:
    """What the scheduler keeps per job: a compact copy of the object and its queue slot."""

    uid: str
    body: dict[str, Any]
    #: The object as our last status write returned it (fresher than the watch until it catches up).
    ours: dict[str, Any] | None = None
    #: When the watch last told us about the object (monotonic).
    seen: float = 0.0
    hold_until: datetime | None = None
    #: A status held back (see quiet) and the Pods it records: written at once when a later pass
    #: runs before the Pod watch shows those Pods, since that pass would otherwise not see them.
    deferred: dict[str, Any] | None = None
    deferred_pods: set[str] = field(default_factory=set)
    #: Pods whose create got no clear answer; read from the API by the next pass.
    uncertain: set[str] = field(default_factory=set)
    #: Pods this process started (or found existing at create) whose status write has not landed
    #: (held back, or lost to a conflict): the reconciler adopts them whatever their trigger.
    unrecorded: set[str] = field(default_factory=set)
    #: The queued look is only the safety-net resync (no event asked for it): see `corrections`.
    net: bool = False
    #: (namespace, name) of the jobs this one depends on (spec.dependsOn), for the reverse map.
    deps: tuple[tuple[str, str], ...] = ()
    #: Queue position: due time (epoch seconds) and a token that invalidates older heap entries.
    due: float = 0.0
    token: int = 0
    running: bool = False
    again: bool = False
    deleted: bool = False
    #: Finished Pods past the history limits, waiting to be pruned in a batch (name → since).
    prune: dict[str, float] = field(default_factory=dict)


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a job the scheduler needs (drops managedFields, foreign annotations...)."""
    meta = body.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(_KEPT_ANNOTATION_PREFIX)}
    kept = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "generation", "resourceVersion", "creationTimestamp")
        if k in meta
    }
    if annotations:
        kept["annotations"] = annotations
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def _rv(body: Mapping[str, Any]) -> str | None:
    rv = (body.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv is not None else None


def job_view(body: Mapping[str, Any], now: datetime) -> JobView:
    meta = body.get("metadata") or {}
    created = n.parse_time(meta["creationTimestamp"]) if meta.get("creationTimestamp") else now
    return JobView(
        ref=JobRef(namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", "")),
        generation=int(meta.get("generation") or 1),
        created=created,
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        run_now=(meta.get("annotations") or {}).get(n.ANNOTATION_RUN_NOW) or None,
        **view_fields(meta.get("annotations")),
    )


def newer(a: dict[str, Any], b: dict[str, Any] | None) -> dict[str, Any]:
    """The fresher of two copies of the object (the watch's vs our last write)."""
    if b is None:
        return a
    try:
        ra, rb = int(a["metadata"]["resourceVersion"]), int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return a
    return a if ra >= rb else b


def quiet(plan: Plan) -> bool:
    """Whether a pass decided nothing that must be written at once.

    After a pass that only started Pods, status writes may wait a little (START_COALESCE): the
    Pods themselves are the record (a later pass adopts them), so a short run gets one status
    write at its end instead of two. Anything else a pass decides (records, events, deletions)
    is written at once, since recomputing it would repeat it. History pruning is not in that
    list: it is batched and only ever deletes Pods whose runs are already on record.
    """
    return not (
        plan.finished
        or plan.events
        or any(why != "HistoryLimit" for _, why in plan.deletes)
        or plan.notifications
        or plan.messages
        or plan.missed
        or plan.skipped
        or plan.delete_job
    )


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from `old` to `new` status: changed keys, null for removed ones.

    Objects are diffed down to their leaves: a merge patch merges nested objects, so a field
    dropped inside one (e.g. `backfill.nextSlot` once every slot started) needs its own null,
    or the API server keeps it. Lists are replaced whole, as merge patches do.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            patch[key] = status_patch(before, value)
        else:
            patch[key] = value
    patch.update({k: None for k in old if k not in new})
    return patch


def corrections(old_status: Mapping[str, Any], plan: Plan) -> dict[str, str]:
    """What a pass changed, by kind (`started`, `recorded`, `status`); empty for a no-op pass.

    For a safety-net pass this is the definition of a correction: anything here is something
    an event should have woken the job for earlier.
    """
    fixed: dict[str, str] = {}
    if plan.starts:
        fixed["started"] = ", ".join(s.run_id for s in plan.starts)
    recorded = [r.run_id for r in plan.finished]
    if recorded or plan.missed:
        fixed["recorded"] = ", ".join(recorded + ([f"{plan.missed} missed"] if plan.missed else []))
    changed = sorted(status_patch(dict(old_status), plan.status))
    if changed:
        fixed["status"] = ", ".join(changed)
    return fixed


def prune_batches(
    due: Mapping[str, float], pods: Iterable[PodView], now: float, batch: int, max_delay: float, idle: bool = False
) -> list[list[PodView]]:
    """Which waiting prunes to issue now, grouped so that one label selector removes exactly them.

    Nothing until `batch` Pods wait, the oldest waited `max_delay`, or the job is `idle` (no run
    soon that would fill the batch, e.g. suspended); then all of them. Pods are
    grouped by run id: a run whose every Pod is due goes into one deletecollection group; a run
    with a Pod that must stay (another attempt kept for history) has its Pods deleted one by one.
    """
    if not due or (len(due) < batch and now - min(due.values()) < max_delay and not idle):
        return []
    by_run: dict[str, list[PodView]] = {}
    for pod in pods:
        by_run.setdefault(pod.run_id, []).append(pod)
    whole: list[PodView] = []
    single: list[list[PodView]] = []
    for run_pods in by_run.values():
        doomed = [p for p in run_pods if p.name in due]
        if not doomed:
            continue
        if len(doomed) == len(run_pods):
            whole.extend(doomed)
        else:
            single.extend([p] for p in doomed)
    return ([whole] if whole else []) + single


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


def kopf_paused() -> Callable[[], bool]:
    """Whether kopf's peering has paused this replica (a standby must not schedule).

    kopf keeps the pause state in a toggle set that it hands to its own root tasks but not to
    handlers; daemons (which kopf stops on pause) would need a finalizer per job, which is
    what this design avoids. So the toggle set is read from kopf's "daemon killer" root task,
    which exists in every mode; when it cannot be found the replica counts as active.
    """
    for task in asyncio.all_tasks():
        if task.get_name() != "daemon killer":
            continue
        toggles = _find_local(task.get_coro(), "operator_paused")
        if toggles is not None and hasattr(toggles, "is_on"):
            return lambda: bool(toggles.is_on())
    log.warning("kopf's pause state was not found; peering cannot pause this replica's scheduler")
    return lambda: False


def _find_local(coro: Any, name: str, depth: int = 4) -> Any:
    """A local variable of a coroutine or of one it wraps (kopf's guard → the root task's coroutine)."""
    for _ in range(depth):
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            return None
        if name in frame.f_locals:
            return frame.f_locals[name]
        inner = frame.f_locals.get("coro")
        coro = inner if inner is not None else getattr(coro, "cr_await", None)
    return None


class Scheduler:
    """The loop. `upsert`/`forget`/`wake` are called from kopf's event handlers."""

    def __init__(self, rt: Runtime, pods: PodStore, *, clock: Clock = utcnow) -> None:
        self.rt = rt
        self.pods = pods
        self.clock = clock
        self.jobs: dict[str, JobState] = {}
        #: Jobs by namespace, and (namespace, job name) → uids of the jobs that depend on it.
        self._by_ns: dict[str, dict[str, JobState]] = {}
        self._dependents: dict[tuple[str, str], set[str]] = {}
        self.orchestration = Orchestration(
            rt.kube, lambda ns: [newer(st.body, st.ours) for st in self._by_ns.get(ns, {}).values()]
        )
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = 0
        self._kick = asyncio.Event()
        self._slots = asyncio.Semaphore(rt.settings.max_parallel_reconciles)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Passes started and not yet finished (the loop is told when the last one ends).
        self._passes = 0
        self.paused: Callable[[], bool] = lambda: False
        #: Full garbage collections in the gaps between slots, once `collector.take_over` ran.
        self.collections: FullCollections | None = None

    def view(self, namespace: str | None) -> list[dict[str, Any]]:
        """The freshest copy of each job (of one namespace, or all), for readers such as the console."""
        states = self.jobs.values() if namespace is None else self._by_ns.get(namespace, {}).values()
        return [newer(st.body, st.ours) for st in list(states) if not st.deleted]

    # -- events from kopf --------------------------------------------------------------
    def upsert(self, body: Mapping[str, Any]) -> None:
        uid = (body.get("metadata") or {}).get("uid", "")
        if not uid:
            return
        st = self.jobs.get(uid)
        changed = True  # new, or its spec changed: the jobs that name it may decide otherwise now
        if st is None:
            st = self.jobs[uid] = JobState(uid=uid, body=compact(body))
            metrics.jobs(len(self.jobs))
        else:
            changed = st.body["spec"] != (body.get("spec") or {})
            st.body = compact(body)
            echo = st.ours is not None and st.ours["metadata"].get("resourceVersion") == _rv(body)
            if st.ours is not None and newer(st.body, st.ours) is st.body:
                st.ours = None  # the watch caught up with our last write
            if echo:
                st.seen = time.monotonic()
                return  # the echo of our own write: the last pass already saw this state
        st.seen = time.monotonic()
        self._index(st)
        self.wake(uid)
        if changed:
            self._wake_dependents(st.body["metadata"].get("namespace", ""), st.body["metadata"].get("name", ""))

    def _wake_dependents(self, namespace: str, name: str) -> None:
        """Wake the jobs whose spec.dependsOn names `name` (by name: a missing job has no uid)."""
        for dependent in list(self._dependents.get((namespace, name), ())):
            self.wake(dependent)

    def _index(self, st: JobState) -> None:
        """Keep the per-namespace map and the reverse dependency map in step with the job."""
        meta = st.body["metadata"]
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        self._by_ns.setdefault(ns, {})[st.uid] = st
        deps = tuple((ns, d) for d in ((st.body["spec"].get("dependsOn") or {}).get("jobs") or ()) if d != name)
        if deps == st.deps:
            return
        for key in st.deps:
            self._dependents.get(key, set()).discard(st.uid)
        for key in deps:
            self._dependents.setdefault(key, set()).add(st.uid)
        st.deps = deps

    def pod_event(self, kind: str, body: Mapping[str, Any]) -> None:
        """A run Pod was added, changed or deleted (the Pod informer): update the store, wake its job.

        A change the reconciler cannot see (its view is the same) wakes nobody; a freed slot
        under the global cap wakes the jobs waiting for one.
        """
        meta = body.get("metadata") or {}
        self.rt.inflight.pop(meta.get("name", ""), None)
        if kind == "DELETED":
            owner = self.pods.remove(meta.get("namespace", ""), meta.get("name", ""))
        else:
            owner = self.pods.put(body)
        if owner is None:
            return
        self.wake(owner)
        finished_or_gone = kind == "DELETED" or (body.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if finished_or_gone and self.rt.settings.max_concurrent_runs:
            for uid, waiting in list(self.rt.cap_waiting.items()):
                if waiting:
                    self.wake(uid)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """The job is gone: drop its state, metric series and pending work."""
        st = self.jobs.pop(uid, None)
        if st is not None:
            st.deleted = True
            st.token = -1
            self._by_ns.get(namespace, {}).pop(uid, None)
            for key in st.deps:
                self._dependents.get(key, set()).discard(uid)
            self._wake_dependents(namespace, name)  # "no OpenClawCronJob ...", or a cycle gone
        metrics.forget_job(namespace, name)
        metrics.jobs(len(self.jobs))
        self.rt.cap_waiting.pop(uid, None)
        if self.rt.recorder is not None:
            self.rt.recorder.forget_job(uid)

    def wake(self, uid: str) -> None:
        st = self.jobs.get(uid)
        if st is None:
            return
        st.net = False  # an event asked for this look
        if st.running:
            st.again = True
        else:
            self._enqueue(st, 0.0)

    def _enqueue(self, st: JobState, due: float) -> None:
        if st.token > 0 and st.due <= due:
            return  # already queued at least as early
        self._tokens += 1
        st.token, st.due = self._tokens, due
        heapq.heappush(self._heap, (due, st.token, st.uid))
        if not self._heap or self._heap[0][1] == st.token:
            self._kick.set()

    # -- the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        """Dispatch due jobs forever (until cancelled)."""
        try:
            while True:
                self._kick.clear()
                timeout = 1.0 if self.paused() else self._dispatch(time.time())
                gcs = self.collections
                if gcs is not None and gcs.due(time.monotonic(), timeout, busy=self._passes > 0):
                    gcs.collect(time.monotonic())  # in a gap between slots (see collector.py)
                    continue
                try:
                    async with asyncio.timeout(timeout):
                        await self._kick.wait()
                except TimeoutError:
                    pass
        finally:
            for task in list(self._tasks):
                task.cancel()
            await self.orchestration.close()

    def _dispatch(self, now: float) -> float:
        """Start the passes of every due job; seconds until the next one is due."""
        while self._heap and self._heap[0][0] <= now:
            _, token, uid = heapq.heappop(self._heap)
            st = self.jobs.get(uid)
            if st is None or st.token != token:
                continue  # superseded or forgotten
            st.token = 0
            st.running = True
            self._passes += 1
            task = asyncio.create_task(self._run_pass(st), name=f"pass {uid}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return min(60.0, self._heap[0][0] - now) if self._heap else 60.0

    async def _run_pass(self, st: JobState) -> None:
        next_due = time.time() + ERROR_BACKOFF_SECONDS
        try:
            async with self._slots:
                if not st.deleted and not self.paused():
                    next_due = await self.reconcile_once(st)
        except Exception:  # one job's bug must never stop the loop
            log.exception("pass of job %s failed", st.uid)
        finally:
            st.running = False
            self._passes -= 1
            if not self._passes:
                self._kick.set()  # quiet now: the loop may use the gap (see collector.py)
        if st.deleted:
            return
        if st.again:
            st.again = False
            next_due = 0.0
        self._enqueue(st, next_due)

    # -- one job's pass ----------------------------------------------------------------
    async def reconcile_once(self, st: JobState) -> float:
        """Reconcile one job and apply the plan; returns when (epoch seconds) to look again."""
        rt = self.rt
        current = newer(st.body, st.ours)
        now = self.clock()
        job = job_view(current, now)
        net, st.net = st.net, False
        try:
            pods = self.pods.get(st.uid)
            await self._resolve_uncertain(st, job, pods)
            if net:
                await self._reread_active(job, pods)
            if st.deferred is not None and not st.deferred_pods <= {p.name for p in pods}:
                # Pods started by an earlier pass whose status write was held back, not yet in
                # the index (a lagging watch, a slow create): put them on record first.
                await self._write_status(st, current, job, st.deferred, settles=st.deferred_pods)
                current = newer(st.body, st.ours)
                job = job_view(current, now)
            extra_errors = await self._secret_errors(job)
            inputs = await self.orchestration.inputs(job, now)  # nothing to read without dependsOn/conditions
            gone = await self._confirm_gone(job, pods)  # may add Pods the watch has not shown
            active = {a.get("podName") for a in job.status.get("active", [])}
            refused = {pod: why for pod, why in rt.refused.items() if pod in active}
            if st.deleted:
                return 0.0
            # No await from here until the new Pods are registered as in flight: the global
            # cap is counted and claimed atomically within the event loop.
            ctx = Context(
                now=now,
                settings=rt.settings,
                global_free=self._global_free(),
                extra_errors=extra_errors,
                gone=gone,
                refused=refused,
                orchestration=inputs,
                unrecorded=frozenset(st.unrecorded),
            )
            plan = reconcile(job, pods, ctx)
            if plan.starts and time.monotonic() - st.seen > rt.settings.resync_seconds:
                # The watch has said nothing of this job for long: make sure it still exists
                # before starting a run for it (a DELETED event may have been missed in a re-list).
                if await rt.kube.get_job(job.ref.namespace, job.ref.name) is None:
                    self.forget(st.uid, job.ref.namespace, job.ref.name)
                    return 0.0
                st.seen = time.monotonic()
                plan = reconcile(job, pods, dataclasses.replace(ctx, global_free=self._global_free()))
            if plan.spec is not None:
                mono = time.monotonic()
                rt.inflight.update((s.pod_name(job.ref.name), mono) for s in plan.starts)
            # a manual run's id comes from the clock, so only deterministic starts may wait
            manual = any(s.trigger == "Manual" for s in plan.starts)
            if plan.starts and not manual and quiet(plan) and st.hold_until is None:
                st.hold_until = now + START_COALESCE
            defer = st.hold_until is not None and now < st.hold_until and quiet(plan) and not manual
            if not defer:
                st.hold_until = None
            seen = st.unrecorded & {p.name for p in pods}
            await self._apply(st, current, job, plan, now, write_status=not defer, seen=seen)
            if net:
                self._count_correction(job, plan)
            if rt.recorder is not None and not st.deleted:
                rt.recorder.observe(job.ref, plan.spec, plan.status, pods, plan.finished, now)
            if plan.finished:  # its dependents decide now, not at their next look
                self._wake_dependents(job.ref.namespace, job.ref.name)
            if defer:  # the Pods exist now; their record waits (see quiet)
                st.deferred = plan.status
                st.deferred_pods |= {s.pod_name(job.ref.name) for s in plan.starts}
            for pod in refused:  # recorded by this pass, and written
                rt.refused.pop(pod, None)
            if plan.delete_job:
                return time.time() + ERROR_BACKOFF_SECONDS  # the DELETED event forgets it
            if any(s.pod_name(job.ref.name) in rt.refused for s in plan.starts):
                return 0.0  # record the refused Pod's run at once
            wakes = [w for w in (plan.wake_at, st.hold_until) if w is not None]
            due = min(wakes).timestamp() if wakes else time.time() + rt.settings.resync_seconds
            if st.prune:
                due = min(due, min(st.prune.values()) - time.monotonic() + time.time() + self._prune_delay())
            if extra_errors:
                due = min(due, time.time() + INVALID_RECHECK_SECONDS)
            if any(a.get("podName") not in {p.name for p in pods} for a in plan.status.get("active", [])):
                due = min(due, time.time() + INFLIGHT_GRACE)  # follow up on a Pod the watch has not shown
            # nothing but the resync asked for this next look: if it corrects something, say so
            st.net = plan.resync and plan.wake_at is not None and due >= plan.wake_at.timestamp()
            return due
        except Conflict:
            fresh = await rt.kube.get_job(job.ref.namespace, job.ref.name)
            if fresh is None:
                self.forget(st.uid, job.ref.namespace, job.ref.name)
            else:
                st.ours = compact(fresh)
            return 0.0
        except (ApiException, OSError, TimeoutError) as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                self.forget(st.uid, job.ref.namespace, job.ref.name)  # deleted under us
                return 0.0
            metrics.reconcile_error(job.ref.namespace, type(exc).__name__)
            log.warning(
                "reconcile of %s/%s failed, retrying in %ss: %s",
                job.ref.namespace,
                job.ref.name,
                ERROR_BACKOFF_SECONDS,
                exc,
            )
            return time.time() + ERROR_BACKOFF_SECONDS

    async def _reread_active(self, job: JobView, pods: list[PodView]) -> None:
        """A safety-net pass reads its active Pods from the API: what a lost watch event hid.

        Only jobs with active runs pay for it, once per resync; what it finds goes into the Pod
        store too (newer versions only), and the pass's plan counts as a correction.
        """
        mine = {p.name: i for i, p in enumerate(pods)}
        for act in job.status.get("active", []):
            name = act.get("podName")
            if not name:
                continue
            body = await self.rt.kube.get_pod(job.ref.namespace, name)
            view = pod_view(body) if body is not None else None
            if body is None or view is None or view.owner_uid != job.ref.uid:
                continue  # gone: _confirm_gone asks again and records it
            self.pods.put(body)
            if name in mine:
                pods[mine[name]] = view
            else:
                pods.append(view)

    def _count_correction(self, job: JobView, plan: Plan) -> None:
        """A safety-net pass (no event asked for it) whose plan is not a no-op: a missing wake.

        Counted in `openclaw_cron_resync_corrections_total{kind}` and logged with what it fixed:
        it started runs, recorded runs, or changed the status.
        """
        fixed = corrections(job.status, plan)
        if not fixed:
            return
        for kind in fixed:
            metrics.resync_correction(kind)
        log.warning(
            "%s/%s: the safety-net pass corrected what no event woke it for: %s",
            job.ref.namespace,
            job.ref.name,
            "; ".join(f"{kind} {what}" for kind, what in fixed.items()),
        )

    def _archived(self, uid: str, pod: PodView) -> bool:
        """Whether the archive holds this Pod's attempt (always, without an archive)."""
        if self.rt.recorder is not None:
            return self.rt.recorder.may_prune(uid, pod)
        return not self.rt.archive_pending

    def _prune_delay(self) -> float:
        return self.rt.settings.prune_max_delay_seconds

    def _global_free(self) -> int | None:
        cap = self.rt.settings.max_concurrent_runs
        if cap <= 0:
            return None
        running = {p.name for store in self.pods.values() for p in store if not p.finished}
        return max(0, cap - len(running | self.rt.inflight.keys()))

    async def _secret_errors(self, job: JobView) -> tuple[FieldError, ...]:
        """A missing token Secret makes the job invalid (checked at most every 30 s)."""
        rt, spec = self.rt, job.spec
        if (spec.get("payload") or {}).get("kind") == "command":
            return ()
        ref = (spec.get("gateway") or {}).get("tokenSecretRef") or {}
        name = ref.get("name") or rt.settings.gateway_token_secret
        key = ref.get("key") or rt.settings.gateway_token_key
        cache_key = (job.ref.namespace, name, key)
        cached = rt.secrets.get(cache_key)
        if cached and time.monotonic() - cached[0] < SECRET_CACHE_SECONDS:
            return (cached[1],) if cached[1] else ()
        try:
            found = await rt.kube.secret_key_exists(job.ref.namespace, name, key)
        except ApiException as exc:
            log.warning("cannot check Secret %s/%s: %s", job.ref.namespace, name, exc.reason)
            return ()
        origin = "" if ref.get("name") else " (the operator's default; set spec.gateway.tokenSecretRef or create it)"
        error = None
        if found is None:
            error = FieldError(
                "spec.gateway.tokenSecretRef", f'Secret "{name}" not found in namespace "{job.ref.namespace}"{origin}'
            )
        elif not found:
            error = FieldError("spec.gateway.tokenSecretRef", f'Secret "{name}" has no key "{key}"{origin}')
        rt.secrets[cache_key] = (time.monotonic(), error)
        return (error,) if error else ()

    async def _resolve_uncertain(self, st: JobState, job: JobView, pods: list[PodView]) -> None:
        """Pods whose create failed without a clear answer (reset, timeout, 5xx after retries).

        The API may have created them all the same; the index shows them only when the watch
        does. Read them, so that the reconciler adopts an existing one instead of planning a
        newer slot over it (and losing the run).
        """
        seen = {p.name for p in pods}
        for name in sorted(st.uncertain):
            if name not in seen:
                body = await self.rt.kube.get_pod(job.ref.namespace, name)
                view = pod_view(body) if body is not None else None
                if view is not None and view.owner_uid == job.ref.uid:
                    pods.append(view)
                elif body is None:
                    self.rt.inflight.pop(name, None)  # never created: it holds no slot of the cap
            st.uncertain.discard(name)

    async def _confirm_gone(self, job: JobView, pods: list[PodView]) -> frozenset[str]:
        """Active Pods missing from the index: ask the API before calling them deleted.

        A Pod the API has but the index lacks (a watch that lags or lost events around an API
        server restart) is added to `pods` as read, so the run is followed all the same. Pods we
        created a moment ago are left to the watch for `INFLIGHT_GRACE` seconds.
        """
        seen = {p.name for p in pods}
        missing = [a.get("podName", "") for a in job.status.get("active", []) if a.get("podName") not in seen]
        gone = set()
        mono = time.monotonic()
        for name in missing:
            since = self.rt.inflight.get(name)
            if since is not None and mono - since < INFLIGHT_GRACE:
                continue
            body = await self.rt.kube.get_pod(job.ref.namespace, name)
            view = pod_view(body) if body is not None else None
            if body is None:
                self.rt.inflight.pop(name, None)
                gone.add(name)
            elif view is not None and view.owner_uid == job.ref.uid:
                pods.append(view)
        return frozenset(gone)

    async def _apply(
        self,
        st: JobState,
        body: dict[str, Any],
        job: JobView,
        plan: Plan,
        now: datetime,
        *,
        write_status: bool = True,
        seen: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Create Pods → patch status → delete Pods → events.

        `seen`: unrecorded Pods the pass saw (so its plan adopted them): on record once written.
        """
        rt, ref = self.rt, job.ref
        made: set[str] = set()
        status = plan.status
        if plan.spec is not None:
            for start in plan.starts:
                pod = start.pod_name(ref.name)
                if st.deleted:  # deleted while this pass ran: never a new Pod for it
                    rt.inflight.pop(pod, None)
                    continue
                try:
                    created = await rt.kube.create_pod(render_pod(ref, plan.spec, start, rt.settings))
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
        if write_status:
            await self._write_status(st, body, job, status, settles=made | seen)
        await self._delete_pods(st, job, plan)
        for ev in plan.events:
            emit(rt, body, job, ev)
        self._account(job, plan, status)
        if plan.delete_job:
            log.info("%s/%s: deleteAfterRun: deleting the job after a successful run", ref.namespace, ref.name)
            await rt.kube.delete_job(ref.namespace, ref.name, ref.uid)

    async def _write_status(
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

    async def _delete_pods(self, st: JobState, job: JobView, plan: Plan) -> None:
        """Policy deletions at once; history pruning batched (see prune_batches)."""
        rt, ref = self.rt, job.ref
        mono = time.monotonic()
        pods = self.pods.get(st.uid)
        archived = {p.name for p in pods if self._archived(st.uid, p)}
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
        soon = isinstance(nxt, str) and (n.parse_time(nxt) - self.clock()).total_seconds() < self._prune_delay()
        idle = not soon and not plan.status.get("active")
        for group in prune_batches(st.prune, pods, mono, rt.settings.prune_batch, self._prune_delay(), idle):
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

    def _account(self, job: JobView, plan: Plan, status: dict[str, Any]) -> None:
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
