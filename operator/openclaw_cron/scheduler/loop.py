"""The scheduling loop: kopf's and the informer's events in, due jobs out, bounded passes.

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
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import metrics
from ..collector import FullCollections
from ..pods import PodStore
from .burst import BURST_CREATES, CreatesFirst, PassSlot
from .jobpass import ERROR_BACKOFF_SECONDS, JobPass
from .orchestration import Orchestration
from .queue import DueQueue
from .state import Clock, JobState, Runtime, compact, newer, resource_version, utcnow

log = logging.getLogger("openclaw_cron")

#: After a quiet spell the loop wakes this long before the next due time, to warm up for it
#: when it is a burst (`_look_ahead`): time for a few hundred TLS handshakes on a busy server.
LOOK_AHEAD = 2.0


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
        self.burst = CreatesFirst(self.wake)
        self.job_pass = JobPass(
            rt,
            pods,
            clock,
            self.orchestration,
            forget=self.forget,
            wake_dependents=self._wake_dependents,
            burst=self.burst,
        )
        self._queue = DueQueue()
        self._kick = asyncio.Event()
        self._slots = asyncio.Semaphore(rt.settings.max_parallel_reconciles)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Passes started and not yet finished (the loop is told when the last one ends).
        self._running = 0
        self.paused: Callable[[], bool] = lambda: False
        #: Full garbage collections in the gaps between slots, once `collector.take_over` ran.
        self.collections: FullCollections | None = None
        #: The loop slept through a quiet spell and has not looked at what comes after it yet.
        self._quiet = False

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
            echo = st.ours is not None and st.ours["metadata"].get("resourceVersion") == resource_version(body)
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
        self.burst.forget(uid)
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
        if self._queue.push(st, due):
            self._kick.set()

    # -- the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        """Dispatch due jobs forever (until cancelled)."""
        try:
            while True:
                self._kick.clear()
                timeout = 1.0 if self.paused() else self._dispatch(time.time())
                gcs = self.collections
                if gcs is not None and gcs.due(time.monotonic(), timeout, busy=self._running > 0):
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
        for st in self._queue.pop_due(now, self.jobs):
            st.running = True
            self._running += 1
            task = asyncio.create_task(self._run_pass(st), name=f"pass {st.uid}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        wait = self._queue.wait(now)
        if wait > LOOK_AHEAD:
            self._quiet = True
            return wait - LOOK_AHEAD
        if self._quiet:
            self._quiet = False
            self._look_ahead()
        return wait

    def _look_ahead(self) -> None:
        """LOOK_AHEAD before the first due time after a quiet spell: if that second is a burst (as
        many jobs due in it as make one), open the connections its creates will need now, while
        the server is idle (Kube.warm_up). Not in a steady stream of runs, which has no quiet spells,
        nor when the last burst's connections are still open."""
        first = self._queue.first_due()
        if first is None:
            return
        due = self._queue.count_before(first + 1.0, most=self.rt.kube.creates.most)
        if due >= BURST_CREATES and not self.rt.kube.connections_kept(LOOK_AHEAD):
            task = asyncio.create_task(self._warm_up(due), name="warm-up")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _warm_up(self, due: int) -> None:
        try:
            answered = await self.rt.kube.warm_up(due, within=LOOK_AHEAD)
        except Exception:  # a warm-up is an optimisation: the burst goes on without it
            log.exception("warming up for %d creates failed", due)
        else:
            log.info("warmed up for a burst of %d creates: %d connections answered in time", due, answered)

    async def _run_pass(self, st: JobState) -> None:
        next_due = time.time() + ERROR_BACKOFF_SECONDS
        try:
            async with PassSlot(self._slots) as slot:
                if not st.deleted and not self.paused():
                    next_due = await self.job_pass.run(st, sent=slot.give_back)
        except Exception:  # one job's bug must never stop the loop
            log.exception("pass of job %s failed", st.uid)
        finally:
            st.running = False
            self._running -= 1
            if not self._running:
                self._kick.set()  # quiet now: the loop may use the gap (see collector.py)
        if st.deleted:
            return
        if st.again:
            st.again = False
            next_due = 0.0
        self._enqueue(st, next_due)
