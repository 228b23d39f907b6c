"""One job's pass, the kubebuilder shape: the world rebuilt → `reconcile()` (pure) → the plan applied.

The loop (`loop.py`) runs at most one pass of a job at a time and queues the job again at the
time the pass returns.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException

from .. import metrics
from ..job import JobView, job_view
from ..kube import Conflict
from ..pods import PodStore
from ..reconcile import Context, Plan, reconcile
from .apply import Applier
from .burst import CreatesFirst
from .orchestration import Orchestration
from .state import Clock, JobState, Runtime, compact, newer
from .world import INFLIGHT_GRACE, World
from .writes import START_COALESCE, bookkeeping, corrections, quiet

log = logging.getLogger("openclaw_cron")
ERROR_BACKOFF_SECONDS = 5.0
#: An invalid job (e.g. its token Secret is missing) looks again this soon.
INVALID_RECHECK_SECONDS = 30.0


class JobPass:
    """Runs passes; `forget` and `wake_dependents` are the loop's (a pass may find its job gone).

    `burst`: counts the passes creating Pods; while they are many, bookkeeping passes wait (burst.py).
    """

    def __init__(
        self,
        rt: Runtime,
        pods: PodStore,
        clock: Clock,
        orchestration: Orchestration,
        *,
        forget: Callable[[str, str, str], None],
        wake_dependents: Callable[[str, str], None],
        burst: CreatesFirst,
    ) -> None:
        self.rt = rt
        self.pods = pods
        self.clock = clock
        self.orchestration = orchestration
        self.world = World(rt, pods)
        self.burst = burst
        self.applier = Applier(rt, pods, clock, burst)
        self.forget = forget
        self.wake_dependents = wake_dependents

    async def run(self, st: JobState, *, sent: Callable[[], None] | None = None) -> float:
        """Reconcile one job and apply the plan; returns when (epoch seconds) to look again.

        `sent`: called when the pass's Pod create goes to the server (it gives the pass's slot back).
        """
        rt = self.rt
        current = newer(st.body, st.ours)
        now = self.clock()
        job = job_view(current, now)
        net, st.net = st.net, False
        try:
            pods = self.pods.get(st.uid)
            await self.world.resolve_uncertain(st, job, pods)
            if net:
                await self.world.reread_active(job, pods)
            if st.deferred is not None and not st.deferred_pods <= {p.name for p in pods}:
                # Pods started by an earlier pass whose status write was held back, not yet in
                # the index (a lagging watch, a slow create): put them on record first.
                await self.applier.write_status(st, current, job, st.deferred, settles=st.deferred_pods)
                current = newer(st.body, st.ours)
                job = job_view(current, now)
            extra_errors = await self.world.secret_errors(job)
            inputs = await self.orchestration.inputs(job, now)  # nothing to read without dependsOn/conditions
            gone = await self.world.confirm_gone(job, pods)  # may add Pods the watch has not shown
            active = {a.get("podName") for a in job.status.get("active", [])}
            refused = {pod: why for pod, why in rt.refused.items() if pod in active}
            if st.deleted:
                return 0.0
            # No await from here until the new Pods are registered as in flight: the global
            # cap is counted and claimed atomically within the event loop.
            ctx = Context(
                now=now,
                settings=rt.settings,
                global_free=self.world.global_free(),
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
                plan = reconcile(job, pods, dataclasses.replace(ctx, global_free=self.world.global_free()))
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
                if bookkeeping(job.status, plan):
                    wait = self.burst.postpone(st.uid)
                    if wait is not None:  # a burst's creates go first; nothing written, recomputed later
                        later = time.time() + wait
                        return min(later, plan.wake_at.timestamp()) if plan.wake_at else later
            seen = st.unrecorded & {p.name for p in pods}
            await self.applier.apply(st, current, job, plan, now, write_status=not defer, seen=seen, sent=sent)
            if net:
                self._count_correction(job, plan)
            if rt.recorder is not None and not st.deleted:
                rt.recorder.observe(job.ref, plan.spec, plan.status, pods, plan.finished, now)
            if plan.finished:  # its dependents decide now, not at their next look
                self.wake_dependents(job.ref.namespace, job.ref.name)
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
                due = min(due, min(st.prune.values()) - time.monotonic() + time.time() + self.applier.prune_delay())
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
