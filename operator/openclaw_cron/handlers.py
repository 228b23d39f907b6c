"""kopf wiring: thin handlers that feed the reconciler and apply its plan.

- an index of run Pods by owner uid (the world rebuilt from owned objects);
- one daemon per OpenClawCronJob that sleeps until the plan's wake time, or until a
  Pod or the resource changes, then reconciles;
- event handlers that only wake the right daemon.

kopf peering stops the daemons of a standby replica, so only one operator acts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException

from . import metrics
from . import naming as n
from .api import GROUP, PLURAL, VERSION
from .kube import Conflict, Kube
from .notify import Notification, Notifier, load_channels
from .pods import JobRef, PodView, pod_view, render_pod
from .reconcile import Context, Event, JobView, Plan, reconcile
from .settings import Settings
from .validation import FieldError

log = logging.getLogger("openclaw_cron")
SECRET_CACHE_SECONDS = 30.0
ERROR_BACKOFF_SECONDS = 5.0
DELETE_MEMORY_SECONDS = 30.0
#: How long status writes may wait after a pass that only started Pods (see quiet).
START_COALESCE = timedelta(seconds=3)


def utcnow() -> datetime:
    """The operator's clock (one place to inject a fake one)."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Process-wide state shared by the handlers (kept in kopf's memo)."""

    settings: Settings
    kube: Kube
    notifier: Notifier | None = None
    wakers: dict[str, asyncio.Event] = field(default_factory=dict)
    #: Pods created by us and not yet seen in the index (for the global cap).
    inflight: set[str] = field(default_factory=set)
    secrets: dict[tuple[str, str, str], tuple[float, FieldError | None]] = field(default_factory=dict)
    #: Pods we asked to delete, until when we do not ask again.
    deleting: dict[str, float] = field(default_factory=dict)
    #: Run Pods the API refused to create (name → why), until their run is recorded.
    refused: dict[str, str] = field(default_factory=dict)
    #: Runs each job has waiting for the global cap (job uid → count), for the gauge.
    cap_waiting: dict[str, int] = field(default_factory=dict)

    def wake(self, uid: str) -> None:
        event = self.wakers.get(uid)
        if event is not None:
            event.set()


def runtime(memo: Any) -> Runtime:
    rt: Runtime = memo["runtime"]
    return rt


def configure(settings: kopf.OperatorSettings, ours: Settings) -> None:
    """kopf settings that matter for a scheduler."""
    settings.posting.level = logging.ERROR  # our own Events only, not log lines
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.worker_limit = 1000
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.peering.priority = ours.priority


@kopf.index("pods", labels={n.LABEL_MANAGED_BY: n.MANAGED_BY})
def run_pods(body: kopf.Body, **_: Any) -> dict[str, PodView] | None:
    """Run Pods by owner uid; the daemons read their world from here, not from the API."""
    view = pod_view(dict(body))
    return {view.owner_uid: view} if view else None


@kopf.on.event("pods", labels={n.LABEL_MANAGED_BY: n.MANAGED_BY})
def pod_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    rt = runtime(memo)
    rt.inflight.discard(body.get("metadata", {}).get("name", ""))
    for owner in body.get("metadata", {}).get("ownerReferences") or []:
        rt.wake(owner.get("uid", ""))


@kopf.on.event(GROUP, VERSION, PLURAL)
def job_changed(uid: str, memo: kopf.Memo, type: str | None, namespace: str | None, name: str, **_: Any) -> None:
    # An event handler, not on.delete: kopf keeps no per-object state for these (no extra writes).
    if type == "DELETED":
        metrics.forget_job(namespace or "", name)
    runtime(memo).wake(uid)


async def _secret_errors(rt: Runtime, job: JobView) -> tuple[FieldError, ...]:
    """A missing token Secret makes the job invalid (checked at most every 30 s)."""
    spec = job.spec
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


def _job_view(body: dict[str, Any]) -> JobView:
    meta = body.get("metadata") or {}
    created = n.parse_time(meta["creationTimestamp"]) if meta.get("creationTimestamp") else utcnow()
    return JobView(
        ref=JobRef(namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", "")),
        generation=int(meta.get("generation") or 1),
        created=created,
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        run_now=(meta.get("annotations") or {}).get(n.ANNOTATION_RUN_NOW) or None,
    )


def _newer(a: dict[str, Any], b: dict[str, Any] | None) -> dict[str, Any]:
    """The fresher of two copies of the object (kopf's live body vs our last write)."""
    if b is None:
        return a
    try:
        ra, rb = int(a["metadata"]["resourceVersion"]), int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return a
    return a if ra >= rb else b


def _global_free(rt: Runtime, index: kopf.Index[str, PodView]) -> int | None:
    cap = rt.settings.max_concurrent_runs
    if cap <= 0:
        return None
    running = {p.name for store in index.values() for p in store if not p.finished}
    return max(0, cap - len(running | rt.inflight))


def quiet(plan: Plan) -> bool:
    """Whether a pass decided nothing that must be written at once.

    After a pass that only started Pods, status writes may wait a little (START_COALESCE): the
    Pods themselves are the record (a later pass adopts them), so a short run gets one status
    write at its end instead of two. Anything else a pass decides (records, events, deletions)
    is written at once, since recomputing it would repeat it.
    """
    return not (
        plan.finished
        or plan.events
        or plan.deletes
        or plan.notifications
        or plan.missed
        or plan.skipped
        or plan.delete_job
    )


def _emit(body: dict[str, Any], job: JobView, ev: Event) -> None:
    """A Kubernetes Event on the job, and the same line in the operator's log."""
    level = logging.WARNING if ev.type == "Warning" else logging.INFO
    log.log(level, "%s/%s: %s: %s", job.ref.namespace, job.ref.name, ev.reason, ev.message)
    kopf.event(cast(kopf.Body, body), type=ev.type, reason=ev.reason, message=ev.message)


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch from `old` to `new` status: changed top-level keys, null for removed ones."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


async def _apply(
    rt: Runtime,
    body: dict[str, Any],
    job: JobView,
    plan: Plan,
    now: datetime,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    *,
    write_status: bool = True,
) -> dict[str, Any] | None:
    """Create Pods → patch status → delete Pods → events; returns the object we wrote."""
    status = plan.status
    if plan.spec is not None:
        for start in plan.starts:
            manifest = render_pod(job.ref, plan.spec, start, rt.settings)
            pod = manifest["metadata"]["name"]
            try:
                created = await rt.kube.create_pod(manifest)
            except ApiException as exc:
                rt.inflight.discard(pod)
                if exc.status is not None and 400 <= exc.status < 500:
                    # the next pass records the run as failed through the usual bookkeeping
                    rt.refused[pod] = f"{exc.status} {exc.reason}: {(exc.body or '')[:600]}"
                    write_status = True  # the active entry must be on record for that
                    continue
                raise
            rt.refused.pop(pod, None)  # refused before, but a status conflict had it planned again
            if created:
                # now, not after the status write: a conflict there would adopt the Pod silently
                _emit(
                    body,
                    job,
                    Event(
                        "Normal",
                        "Started",
                        f"started run {start.run_id} attempt {start.attempt} (pod {pod}, {start.trigger})",
                    ),
                )
            else:
                rt.inflight.discard(pod)
                log.info(
                    "%s/%s: pod %s already exists; run %s was started before",
                    job.ref.namespace,
                    job.ref.name,
                    pod,
                    start.run_id,
                )
            lag = (now - start.scheduled).total_seconds() if start.trigger == "Schedule" else None
            metrics.run_started(job.ref.namespace, job.ref.name, start.trigger)
            if lag is not None and start.attempt == 1:
                metrics.schedule_lag(
                    job.ref.namespace, job.ref.name, max(0.0, (utcnow() - start.scheduled).total_seconds())
                )
    written: dict[str, Any] | None = None
    patch = status_patch(job.status, status) if write_status else {}
    if patch:
        written = await rt.kube.patch_status(
            job.ref.namespace, job.ref.name, patch, body.get("metadata", {}).get("resourceVersion")
        )
    for pod, why in plan.deletes:
        if rt.deleting.get(pod, 0.0) > time.monotonic():
            continue  # asked already; the watch has not caught up yet
        rt.deleting[pod] = time.monotonic() + DELETE_MEMORY_SECONDS
        log.info("%s/%s: deleting pod %s (%s)", job.ref.namespace, job.ref.name, pod, why)
        await rt.kube.delete_pod(job.ref.namespace, pod)
    if len(rt.deleting) > 10000:
        rt.deleting = {k: v for k, v in rt.deleting.items() if v > time.monotonic()}
    for ev in plan.events:
        _emit(body, job, ev)
    for rec in plan.finished:
        metrics.run_finished(job.ref.namespace, job.ref.name, rec.result, rec.trigger, rec.duration_seconds)
    if plan.missed:
        metrics.missed(job.ref.namespace, job.ref.name, plan.missed)
    if plan.skipped:
        metrics.skipped(job.ref.namespace, job.ref.name, plan.skipped)
    notify_spec = plan.spec.notify if plan.spec else None
    if rt.notifier is not None and notify_spec is not None:
        for kind, rec in plan.notifications:
            rt.notifier.submit(
                Notification.for_run(
                    notify_spec, kind, job.ref.namespace, job.ref.name, rec, int(status.get("consecutiveFailures", 0))
                )
            )
    nxt = status.get("nextRunTime")
    metrics.set_job_state(
        job.ref.namespace,
        job.ref.name,
        consecutive_failures=int(status.get("consecutiveFailures", 0)),
        next_run_timestamp=n.parse_time(nxt).timestamp() if nxt else None,
        active=len(status.get("active", [])),
        waiting=len(status.get("pending", [])),
    )
    if rt.settings.max_concurrent_runs:
        rt.cap_waiting[job.ref.uid] = sum(1 for p in status.get("pending", []) if p.get("reason") == "GlobalCap")
        metrics.global_waiting(sum(rt.cap_waiting.values()))
    if plan.delete_job:
        log.info("%s/%s: deleteAfterRun: deleting the job after a successful run", job.ref.namespace, job.ref.name)
        await rt.kube.delete_job(job.ref.namespace, job.ref.name, job.ref.uid)
    return written


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def run_job(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    uid: str,
    memo: Any,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    """One job's scheduling loop: reconcile, apply, sleep until the next thing to do."""
    run_pods: kopf.Index[str, PodView] = kwargs["run_pods"]  # kopf injects indexes by name
    rt = runtime(memo)
    waker = rt.wakers.setdefault(uid, asyncio.Event())
    ours: dict[str, Any] | None = None
    hold_until: datetime | None = None  # status writes held back after a start (see quiet)
    try:
        while not stopped:
            waker.clear()
            current = _newer(dict(body), ours)
            job = _job_view(current)
            now = utcnow()
            try:
                pods = list(run_pods.get(uid, []))
                extra_errors = await _secret_errors(rt, job)
                gone = await _confirm_gone(rt, job, pods)
                active = {a.get("podName") for a in job.status.get("active", [])}
                refused = {pod: why for pod, why in rt.refused.items() if pod in active}
                # No await from here until the new Pods are registered as in flight: the global
                # cap is counted and claimed atomically within the event loop.
                ctx = Context(
                    now=now,
                    settings=rt.settings,
                    global_free=_global_free(rt, run_pods),
                    extra_errors=extra_errors,
                    gone=gone,
                    refused=refused,
                )
                plan = reconcile(job, pods, ctx)
                if plan.spec is not None:
                    rt.inflight.update(n.pod_name(job.ref.name, st.scheduled, st.attempt) for st in plan.starts)
                # a manual run's id comes from the clock, so only deterministic starts may wait
                manual = any(st.trigger == "Manual" for st in plan.starts)
                if plan.starts and not manual and quiet(plan) and hold_until is None:
                    hold_until = now + START_COALESCE
                defer = hold_until is not None and now < hold_until and quiet(plan) and not manual
                if not defer:
                    hold_until = None
                written = await _apply(rt, current, job, plan, now, logger, write_status=not defer)
                if written is not None:
                    ours = written
                for pod in refused:  # recorded by this pass, and written
                    rt.refused.pop(pod, None)
                if plan.delete_job:
                    return
                if any(n.pod_name(job.ref.name, st.scheduled, st.attempt) in rt.refused for st in plan.starts):
                    continue  # record the refused Pod's run at once
                wake = min(plan.wake_at, hold_until) if hold_until and plan.wake_at else plan.wake_at
                delay = max(0.0, (wake - utcnow()).total_seconds()) if wake else 30.0
            except Conflict:
                fresh = await rt.kube.get_job(job.ref.namespace, job.ref.name)
                if fresh is None:
                    return
                ours = fresh
                continue
            except (ApiException, OSError) as exc:
                metrics.reconcile_error(job.ref.namespace, type(exc).__name__)
                logger.warning("reconcile of %s failed, retrying in %ss: %s", job.ref.name, ERROR_BACKOFF_SECONDS, exc)
                delay = ERROR_BACKOFF_SECONDS
            await _sleep(waker, stopped, delay)
    finally:
        rt.wakers.pop(uid, None)
        rt.cap_waiting.pop(uid, None)


async def _confirm_gone(rt: Runtime, job: JobView, pods: list[PodView]) -> frozenset[str]:
    """Active Pods missing from the index: ask the API before calling them deleted."""
    seen = {p.name for p in pods}
    missing = [a.get("podName", "") for a in job.status.get("active", []) if a.get("podName") not in seen]
    gone = set()
    for name in missing:
        if name in rt.inflight:
            continue
        if await rt.kube.get_pod(job.ref.namespace, name) is None:
            gone.add(name)
    return frozenset(gone)


async def _sleep(waker: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep until woken by an event, stopped, or the time is up."""
    if seconds <= 0:
        return
    waiter = asyncio.ensure_future(waker.wait())
    stopper = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({waiter, stopper}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo["settings"]
    configure(settings, ours)
    rt = Runtime(settings=ours, kube=Kube())
    if ours.notify_config:
        rt.notifier = Notifier(load_channels(ours.notify_config))
        await rt.notifier.start()
    if ours.metrics_port:
        metrics.start_http_server(ours.metrics_port)
    memo["runtime"] = rt


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    rt: Runtime | None = memo.get("runtime")
    if rt is None:
        return
    if rt.notifier is not None:
        await rt.notifier.stop()
    rt.kube.close()
