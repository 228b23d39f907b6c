"""What a real API server charges for a request: service time by verb, seats, watch events.

The emulator answers at once. kube-apiserver with etcd on a small host spends milliseconds on
every request, serves only so many at a time (`--max-requests-inflight` /
`--max-mutating-requests-inflight`, or the seats of API Priority and Fairness), and queues the
rest. A bench without that overstates what a burst achieves (issue 21: the emulated 1,000-job
burst took 2.4 s, a real server 6.8-7.9 s). `CostModel` holds the charges; the emulator
(emulator.py) applies them when its `costs` are not `CostModel.off()`:

- every request but a watch is first admitted by API Priority and Fairness (`PriorityLevels`):
  its user's priority level (the default FlowSchemas: kubelets `system`, service accounts
  `workload-low`, ...) has a share of `server_concurrency` seats, and only when a level's seats
  are all taken do its requests queue, fairly by flow (user);
- an admitted request then waits for one of `seats` (the host's cores; FIFO, as the Go runtime
  shares the CPU among the requests in flight), holds it for its verb's service time (an
  `asyncio.sleep`; longer by `contention` for each other seat busy), and is then served while
  still holding it, so the emulator's own CPU comes on top (the calibration measures the two
  together);
- a deletecollection is charged one delete per object it removed;
- a watch holds no seat (max-in-flight exempts long-running requests; APF charges only the
  initial listing), but every event sent on it costs `watch_event` of that stream's time
  (`Pacer`), so a watcher that falls behind receives late.

Defaults are calibrated (hack/bench.py `--calibrate`, docs/bench.md) so that the emulated
server, with its own CPU on top, creates Pods as fast as kube-apiserver v1.36 with etcd on the
same 2 cores did: ~3.5 ms for a create sent one at a time (285/s), ~520/s with 10 in flight.
Writes other than creates were not measured there; they are charged like a create (each is
one etcd transaction after admission). Test tiers run with the model off (the default), so
the suite keeps its speed; the bench runs with it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, fields

#: Verbs charged like a write (one etcd transaction each).
WRITES = ("create", "update", "patch", "delete")


@dataclass(frozen=True)
class CostModel:
    """Service times in seconds, and the seats requests share; `CostModel()` is the calibrated one."""

    #: Requests served at once (all but watches): the host's cores. More wait in a FIFO queue. 0: no bound.
    seats: int = 2
    #: API Priority and Fairness's seats (--max-requests-inflight + --max-mutating-requests-inflight,
    #: 400 + 200 by default), shared among the priority levels (PRIORITY_LEVELS). 0: no bound.
    server_concurrency: int = 600
    #: How much longer a request takes for each other seat busy when it starts (0.33: a third).
    #: The seats share the host's cores with etcd and the client: on the real server 10 creates
    #: in flight went 1.82x as fast as one at a time, not 2x.
    contention: float = 0.33
    #: A Pod create as kube-apiserver + etcd serve it (calibrated: see the module docstring).
    create: float = 0.0017
    #: A full update (PUT), a merge/strategic/JSON patch, a delete: not measured, charged like a create.
    update: float = 0.0017
    patch: float = 0.0017
    delete: float = 0.0017
    #: A get (a quorum read from etcd) and a list (a quorum list; the per-object part is the
    #: emulator's own deep copies and JSON, which already cost more than the real server's).
    get: float = 0.001
    list: float = 0.002
    #: Each event sent on a watch stream (the watch cache's dispatch and serialization).
    watch_event: float = 0.0001

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"cost model: {f.name} must not be negative, got {getattr(self, f.name)!r}")
        for name in ("seats", "server_concurrency"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"cost model: {name} must be a whole number, got {getattr(self, name)!r}")

    @classmethod
    def off(cls) -> CostModel:
        """Nothing charged, no bound: the emulator answers at once (the test tiers' default)."""
        zero = 0.0
        return cls(0, 0, zero, create=zero, update=zero, patch=zero, delete=zero, get=zero, list=zero, watch_event=zero)

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def service_time(self, verb: str, removed: int = 0, busy: int = 1) -> float:
        """Seconds a seat is held for one request (RBAC verb; non-resource requests count as get),
        starting while `busy` seats (its own included) are in use.

        A deletecollection is one delete per object it `removed`.
        """
        if verb == "deletecollection":
            base = self.delete * removed
        elif verb in WRITES:
            base = float(getattr(self, verb))
        else:
            base = self.list if verb == "list" else self.get
        return base * (1.0 + self.contention * max(0, busy - 1))

    def describe(self) -> str:
        """One line for reports: `seats 2 (contention 0.33), create 1.7 ms, ...` or `off`."""
        if not self.enabled:
            return "off"
        skip = ("seats", "server_concurrency", "contention")
        times = ", ".join(f"{f.name} {getattr(self, f.name) * 1000:g} ms" for f in fields(self) if f.name not in skip)
        apf = f"priority levels of {self.server_concurrency or 'unbounded'} seats"
        return f"seats {self.seats or 'unbounded'} (contention {self.contention:g}), {apf}, {times}"


Sleep = Callable[[float], Awaitable[object]]


class Seats:
    """At most `limit` requests served at once (0: no bound); the rest wait, fairly by flow.

    As one priority level of API Priority and Fairness: each flow (the authenticated user, as
    the default FlowSchemas distinguish them) waits in its own queue, and a freed seat goes to
    the next flow in turn, so one chatty client cannot make another wait behind all of its
    requests. Within a flow, requests keep their order; with one flow (`hold()`) it is FIFO.

    Counters say what happened, for tests and the bench's report: the most seats ever in use
    at once, how many requests had to queue, and the longest queue (all flows together).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self.served = 0
        self.waited = 0
        self.peak_queue = 0
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        #: Flows with waiters, in the order their turn comes.
        self._turns: deque[str] = deque()

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _take(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    async def _acquire(self, flow: str) -> None:
        if self.limit <= 0 or (self.in_use < self.limit and not self._turns):
            self._take()
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(flow, deque())
        if not queue:
            self._turns.append(flow)
        queue.append(turn)
        self.waited += 1
        self.peak_queue = max(self.peak_queue, self.queued)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # the seat was handed over just as the client went away: pass it on
            elif turn in queue:  # (a release may have dropped it already)
                queue.remove(turn)
                if not queue and flow in self._turns:
                    self._turns.remove(flow)
            raise

    def _next(self) -> asyncio.Future[None] | None:
        """The first waiter of the flow whose turn it is; that flow goes to the back of the line."""
        while self._turns:
            flow = self._turns.popleft()
            queue = self._queues[flow]
            turn = queue.popleft()
            if queue:
                self._turns.append(flow)
            if not turn.done():
                return turn
        return None

    def _release(self) -> None:
        self.in_use -= 1
        while self.in_use < self.limit and (turn := self._next()) is not None:
            self._take()
            turn.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, flow: str = "") -> AsyncIterator[None]:
        """A seat for the duration of the block (after waiting for one, in `flow`'s queue)."""
        await self._acquire(flow)
        self.served += 1
        try:
            yield
        finally:
            self._release()


#: kube-apiserver v1.36's default priority levels and their nominal concurrency shares.
PRIORITY_LEVELS: Mapping[str, int] = {
    "system": 30,
    "node-high": 40,
    "leader-election": 10,
    "workload-high": 40,
    "workload-low": 100,
    "global-default": 20,
    "catch-all": 5,
}


def priority_level(user: str) -> str:
    """The level the default FlowSchemas give a user's requests (the ones this test world has)."""
    if user.startswith("system:node:"):
        return "system"  # system-nodes (group system:nodes)
    if user in ("system:kube-scheduler", "system:kube-controller-manager"):
        return "workload-high"
    if user.startswith("system:serviceaccount:kube-system:"):
        return "workload-high"  # kube-system-service-accounts
    if user.startswith("system:serviceaccount:"):
        return "workload-low"  # service-accounts: every operator, kopf included
    return "global-default"


class PriorityLevels:
    """API Priority and Fairness's admission: each level's seats, NominalCL = ceil(ServerCL * NCS / sum NCS).

    With the defaults (600 seats) `workload-low` has 245 and `system` 74: a level queues (fairly
    by user) only past those, so at a small server it is the cores (`CostModel.seats`) that
    queue, everyone's requests in one line. Borrowing between levels is not modelled (a busy
    level would get more seats on a real server, not fewer).
    """

    def __init__(self, server_concurrency: int, shares: Mapping[str, int] = PRIORITY_LEVELS) -> None:
        total = sum(shares.values())
        self.levels = {
            name: Seats(math.ceil(server_concurrency * ncs / total) if server_concurrency > 0 else 0)
            for name, ncs in shares.items()
        }

    def hold(self, user: str) -> contextlib.AbstractAsyncContextManager[None]:
        """A seat of `user`'s level for the block, after waiting in its flow's queue if the level is full."""
        return self.levels[priority_level(user)].hold(user)


class Quantizer:
    """Whole-millisecond sleeps whose average is the requested time (error diffusion).

    asyncio's sleeps end on the next millisecond at the earliest (epoll's resolution): a 1.7 ms
    service time would always take 2 ms. Each request sleeps the whole milliseconds owed so far
    instead and carries the rest to the next one, so a run of them averages 1.7 ms.
    """

    def __init__(self, step: float = 0.001) -> None:
        self.step = step
        self._carry = 0.0
        #: Seconds asked for so far (what the model charged).
        self.total = 0.0

    def __call__(self, seconds: float) -> float:
        if seconds <= 0:
            return 0.0
        self.total += seconds
        self._carry += seconds
        whole = self.step * int(self._carry / self.step + 1e-9)
        self._carry -= whole
        return whole


class Pacer:
    """Charges time per event on one stream without a sleep per event.

    asyncio's sleeps end on the next millisecond at the earliest (epoll's resolution), so a
    0.1 ms charge per event cannot be one sleep each. The pacer keeps the stream's debt and
    sleeps only once it is `quantum` ahead; a sleep that overshoots is credited (up to a quantum).
    """

    def __init__(
        self,
        quantum: float = 0.001,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.quantum = quantum
        self._clock = clock
        self._sleep = sleep
        self._due = -float("inf")
        #: Seconds charged, and slept, so far.
        self.charged = 0.0
        self.slept = 0.0

    async def charge(self, seconds: float) -> None:
        if seconds <= 0:
            return
        now = self._clock()
        # Behind by less than a quantum: a sleep overshot, keep the schedule; idle longer: start now.
        self._due = (self._due if self._due >= now - self.quantum else now) + seconds
        self.charged += seconds
        ahead = self._due - now
        if ahead >= self.quantum:
            self.slept += ahead
            await self._sleep(ahead)
