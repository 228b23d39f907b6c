"""The emulated API server's cost model (tests/support/costs.py): seats bound what is served at
once and the rest wait in order, watches hold none, service times are charged as the verb says,
and `CostModel.off()` (the test tiers' default) charges nothing.

Everything is counted, not timed: seat counters, an independent count of requests inside the
server at once, the seconds the model charged, a fake clock for the watch pacer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest

from support.costs import CostModel, Pacer, PriorityLevels, Quantizer, Seats, priority_level
from support.emulator import EmulatedApiServer
from support.faults import IDLE_TIMEOUT, Listener

# --- the settings ----------------------------------------------------------------------------------


def test_off_charges_nothing_and_bounds_nothing() -> None:
    off = CostModel.off()
    assert not off.enabled and off.seats == 0
    verbs = ("create", "update", "patch", "delete", "get", "list", "deletecollection", "post")
    assert {off.service_time(v, removed=10) for v in verbs} == {0.0}
    assert off.describe() == "off"


def test_the_calibrated_model_charges_writes_like_a_create_and_reads_less() -> None:
    model = CostModel()
    assert model.enabled and model.seats >= 1
    assert {model.service_time(v) for v in ("update", "patch", "delete")} == {model.create}
    assert 0 < model.service_time("get") < model.create
    assert model.service_time("list") == model.list
    assert model.service_time("deletecollection", removed=5) == pytest.approx(5 * model.delete)
    assert model.service_time("deletecollection", removed=0) == 0.0
    assert model.service_time("post") == model.get  # a non-resource request (discovery) is a read
    assert model.describe().startswith(
        f"seats {model.seats} (contention {model.contention:g}), priority levels of 600 seats, create "
    )


def test_a_request_starting_while_other_seats_are_busy_takes_longer() -> None:
    model = CostModel(seats=4, contention=0.25, create=0.002)
    assert [model.service_time("create", busy=b) for b in (1, 2, 4)] == pytest.approx([0.002, 0.0025, 0.0035])
    assert model.service_time("deletecollection", removed=2, busy=2) == pytest.approx(2 * model.delete * 1.25)
    assert CostModel.off().service_time("create", busy=10) == 0.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("create", -0.001, "cost model: create must not be negative, got -0.001"),
        ("watch_event", -1.0, "cost model: watch_event must not be negative"),
        ("seats", 1.5, "cost model: seats must be a whole number, got 1.5"),
        ("server_concurrency", 2.5, "cost model: server_concurrency must be a whole number, got 2.5"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        CostModel(**{field: value})


# --- seats -----------------------------------------------------------------------------------------


async def settle() -> None:
    """Let every task that can run, run (a few loop iterations; nothing here sleeps for real)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_seats_are_never_exceeded_and_the_queue_is_served_in_order() -> None:
    seats = Seats(2)
    gates = [asyncio.Event() for _ in range(6)]
    entered: list[int] = []
    inside = 0
    most = 0

    async def request(i: int) -> None:
        nonlocal inside, most
        async with seats.hold():
            inside += 1
            most = max(most, inside)
            entered.append(i)
            await gates[i].wait()
            inside -= 1

    tasks = [asyncio.create_task(request(i)) for i in range(6)]
    await asyncio.sleep(0)
    assert entered == [0, 1] and seats.in_use == 2 and seats.queued == 4
    gates[1].set()  # the second one finishes first: the oldest waiter gets its seat
    await settle()
    assert entered == [0, 1, 2] and seats.queued == 3
    for gate in gates:
        gate.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2, 3, 4, 5]
    assert most == 2 and seats.peak == 2
    assert (seats.served, seats.waited, seats.peak_queue, seats.in_use) == (6, 4, 4, 0)


async def test_a_freed_seat_goes_to_the_next_flow_in_turn_not_the_longest_queue() -> None:
    """Priority and fairness: a client with many requests waiting cannot starve one with a few."""
    seats = Seats(1)
    release = asyncio.Event()
    order: list[str] = []

    async def request(flow: str, name: str) -> None:
        async with seats.hold(flow):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(request("system:node:n1", "kubelet-0"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(request("system:node:n1", f"kubelet-{i}")) for i in range(1, 5)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(request("system:serviceaccount:cron:operator", f"create-{i}")) for i in range(2)]
    await asyncio.sleep(0)
    assert seats.queued == 6
    release.set()
    await asyncio.gather(first, *tasks)
    # the kubelet queued first, yet the operator's creates get every other seat
    assert order == ["kubelet-0", "kubelet-1", "create-0", "kubelet-2", "create-1", "kubelet-3", "kubelet-4"]
    assert seats.in_use == 0 and seats.queued == 0


async def test_a_waiter_that_goes_away_loses_its_place_and_leaks_no_seat() -> None:
    seats = Seats(1)
    release = asyncio.Event()
    served: list[str] = []

    async def request(name: str) -> None:
        async with seats.hold():
            served.append(name)
            await release.wait()

    first = asyncio.create_task(request("first"))
    gone = asyncio.create_task(request("gone"))
    last = asyncio.create_task(request("last"))
    await asyncio.sleep(0)
    assert seats.queued == 2
    gone.cancel()  # a client that disconnected while queued
    await settle()
    assert seats.queued == 1
    release.set()
    await asyncio.gather(first, last)
    assert gone.cancelled() and served == ["first", "last"] and seats.in_use == 0


@pytest.mark.parametrize(
    "cancel_first",
    [
        False,  # the seat is handed to the waiter, which is cancelled before it runs: passed on
        True,  # the waiter is cancelled, then the release comes: it is skipped and forgotten
    ],
)
async def test_a_cancelled_waiter_never_keeps_a_seat_nor_its_place(cancel_first: bool) -> None:
    seats = Seats(1)
    served: list[str] = []

    async def request(name: str) -> None:
        async with seats.hold():
            served.append(name)

    mine = seats.hold()
    await mine.__aenter__()
    gone = asyncio.create_task(request("gone"))
    last = asyncio.create_task(request("last"))
    await settle()
    assert seats.queued == 2
    if cancel_first:
        gone.cancel()
        await mine.__aexit__(None, None, None)
    else:
        await mine.__aexit__(None, None, None)
        gone.cancel()
    await asyncio.gather(gone, last, return_exceptions=True)
    assert gone.cancelled() and served == ["last"] and seats.in_use == 0 and seats.queued == 0


async def test_no_limit_means_nobody_waits() -> None:
    seats = Seats(0)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(50):
            await stack.enter_async_context(seats.hold())
        assert seats.in_use == 50
    assert seats.waited == 0 and seats.in_use == 0


# --- priority levels (API Priority and Fairness) ------------------------------------------------------


def test_priority_levels_share_the_server_seats_as_kube_apiserver_does() -> None:
    """NominalCL = ceil(ServerCL * NCS / sum NCS): 600 seats, v1.36's shares (sum 245)."""
    levels = PriorityLevels(600).levels
    assert (levels["workload-low"].limit, levels["system"].limit, levels["global-default"].limit) == (245, 74, 49)
    assert all(level.limit == 0 for level in PriorityLevels(0).levels.values())  # off: no bound
    assert priority_level("system:node:emulated-node") == "system"
    assert priority_level("system:serviceaccount:openclaw-cron:openclaw-cron-operator") == "workload-low"
    assert priority_level("system:serviceaccount:kube-system:generic-garbage-collector") == "workload-high"
    assert priority_level("system:kube-scheduler") == "workload-high"
    assert priority_level("alice") == priority_level("") == "global-default"


async def test_a_full_level_queues_its_own_users_fairly_and_leaves_other_levels_alone() -> None:
    levels = PriorityLevels(245, shares={"system": 2, "workload-low": 1, "global-default": 242})
    release = asyncio.Event()
    order: list[str] = []
    kubelet, operator, other = "system:node:n1", "system:serviceaccount:cron:op", "system:serviceaccount:cron:other"

    async def request(user: str, name: str) -> None:
        async with levels.hold(user):
            order.append(name)
            await release.wait()

    tasks = [asyncio.create_task(request(operator, f"op-{i}")) for i in range(4)]
    tasks.append(asyncio.create_task(request(other, "other-0")))
    tasks += [asyncio.create_task(request(kubelet, f"kubelet-{i}")) for i in range(2)]
    await settle()
    # workload-low has 1 seat: the operator's first request holds it; the kubelet's level has 2
    assert order == ["op-0", "kubelet-0", "kubelet-1"]
    assert levels.levels["workload-low"].queued == 4 and levels.levels["system"].queued == 0
    release.set()
    await asyncio.gather(*tasks)
    # within the full level a freed seat goes to the next user in turn: other-0 does not wait for all of op's
    assert order[3:] == ["op-1", "other-0", "op-2", "op-3"]


# --- sub-millisecond charges -------------------------------------------------------------------------


def test_quantizer_sleeps_whole_milliseconds_that_average_the_service_time() -> None:
    quantize = Quantizer()
    sleeps = [quantize(0.0017) for _ in range(100)]
    assert {round(s * 1000) for s in sleeps} == {1, 2}
    assert all(abs(s * 1000 - round(s * 1000)) < 1e-9 for s in sleeps)
    assert sum(sleeps) == pytest.approx(0.17, abs=0.001)  # what is left is under a millisecond
    assert quantize.total == pytest.approx(0.17)
    assert quantize(0.0) == 0.0 and quantize.total == pytest.approx(0.17)


class FakeTime:
    """A clock that only a (fake) sleep moves, overshooting by `late` like a busy event loop."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 1000.0
        self.late = late
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.late


async def test_pacer_charges_each_event_without_a_sleep_per_event() -> None:
    time = FakeTime()
    pacer = Pacer(quantum=0.001, clock=time.clock, sleep=time.sleep)
    for _ in range(100):
        await pacer.charge(0.0001)
    assert pacer.charged == pytest.approx(0.01)
    assert len(time.sleeps) <= 10 and all(s >= 0.001 - 1e-12 for s in time.sleeps)
    assert time.now - 1000.0 == pytest.approx(0.01, abs=0.001)  # the stream ran at 10,000 events/s


async def test_pacer_credits_an_overshooting_sleep_but_not_an_idle_gap() -> None:
    time = FakeTime(late=0.0005)
    pacer = Pacer(quantum=0.001, clock=time.clock, sleep=time.sleep)
    for _ in range(1000):
        await pacer.charge(0.0001)
    assert time.now - 1000.0 == pytest.approx(0.1, abs=0.002)  # late wake-ups do not add up
    time.now += 5.0  # idle: the next event is not free, and not charged for the gap either
    slept = len(time.sleeps)
    for _ in range(15):  # 1.5 ms of events: one sleep, once a whole quantum is owed
        await pacer.charge(0.0001)
    assert len(time.sleeps) == slept + 1


async def test_a_single_event_on_an_idle_stream_is_not_delayed() -> None:
    time = FakeTime()
    pacer = Pacer(quantum=0.001, clock=time.clock, sleep=time.sleep)
    await pacer.charge(0.0001)
    assert time.sleeps == []


# --- in the emulated API server --------------------------------------------------------------------


@attrs.define(kw_only=True)
class CountingServer(EmulatedApiServer):
    """Counts requests being served at once, independently of the seats' own counters."""

    inside: int = attrs.field(default=0, init=False)
    most_inside: int = attrs.field(default=0, init=False)

    async def _dispatch(self, request: Any, path: Any, call: Any) -> Any:
        if call.verb == "watch":
            return await super()._dispatch(request, path, call)
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await asyncio.sleep(0.02)  # overlap, so that a missing bound would show
            return await super()._dispatch(request, path, call)
        finally:
            self.inside -= 1


@contextlib.asynccontextmanager
async def serving(costs: CostModel) -> AsyncIterator[tuple[CountingServer, aiohttp.ClientSession]]:
    emulator = CountingServer(costs=costs, record_requests=False)
    token = emulator.tokens.issue("admin", ("system:masters",))
    listener = Listener(emulator)
    async with emulator:
        port = await listener.start()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as session:
                yield emulator, session
        finally:
            await emulator.aclose()
            await listener.stop()


async def test_the_listener_closes_an_idle_connection_as_kube_apiserver_does() -> None:
    """Keep-alive ends after `idle_timeout` (kube-apiserver: 90 s), not aiohttp's hour."""
    assert IDLE_TIMEOUT == 90.0
    emulator = EmulatedApiServer(record_requests=False)
    listener = Listener(emulator, idle_timeout=0.3)
    async with emulator:
        port = await listener.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 ")
            began = asyncio.get_running_loop().time()
            while await asyncio.wait_for(reader.read(65536), 5):  # the answer, then the server's close
                pass
            assert 0.2 <= asyncio.get_running_loop().time() - began < 3
            writer.close()
        finally:
            await emulator.aclose()
            await listener.stop()


def configmap(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})


CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def test_requests_beyond_the_seats_wait_for_one() -> None:
    async with serving(CostModel(seats=2, contention=0.5, create=0.02)) as (emulator, session):

        async def create(i: int) -> int:
            async with session.post(CONFIGMAPS, data=configmap(f"cm-{i}")) as resp:
                return resp.status

        codes = await asyncio.gather(*(create(i) for i in range(10)))
        assert codes == [201] * 10
        assert emulator.most_inside == 2  # counted inside the server, not by the seats
        assert emulator.seats.peak == 2 and emulator.seats.served == 10 and emulator.seats.waited >= 1
        # each create 20 ms, 30 ms when it started beside another (it did: both seats were busy)
        assert 10 * 0.02 < emulator.service.total <= 10 * 0.03 + 1e-9


async def test_a_watch_holds_no_seat_and_each_event_it_sends_is_charged() -> None:
    model = CostModel(seats=1, create=0.002, watch_event=0.0001)
    async with serving(model) as (emulator, session):
        async with session.get(CONFIGMAPS, params={"watch": "true", "resourceVersion": "1"}) as watch:
            assert watch.status == 200

            async def create(i: int) -> int:
                async with session.post(CONFIGMAPS, data=configmap(f"cm-{i}")) as resp:
                    return resp.status

            for i in range(3):  # with the only seat held by the watch, these would never be served
                assert await asyncio.wait_for(create(i), 10) == 201
            events = [json.loads(await asyncio.wait_for(watch.content.readline(), 10)) for _ in range(3)]
        assert [e["type"] for e in events] == ["ADDED"] * 3
        assert emulator.seats.served == 3 and emulator.seats.peak == 1
        assert emulator.watch_charged == pytest.approx(3 * 0.0001)


async def test_a_deletecollection_is_charged_one_delete_per_object_removed() -> None:
    model = dataclasses.replace(CostModel.off(), delete=0.001)
    async with serving(model) as (emulator, session):
        for i in range(5):
            emulator.create_object("v1", "configmaps", "default", json.loads(configmap(f"cm-{i}")))
        async with session.delete(CONFIGMAPS) as resp:
            assert resp.status == 200
        assert emulator.list_objects("v1", "configmaps", "default") == []
        assert emulator.service.total == pytest.approx(5 * 0.001)


async def test_with_the_model_off_no_request_takes_a_seat_or_is_charged() -> None:
    async with serving(CostModel.off()) as (emulator, session):
        async with session.get(CONFIGMAPS, params={"watch": "true", "resourceVersion": "1"}) as watch:

            async def create(i: int) -> int:
                async with session.post(CONFIGMAPS, data=configmap(f"cm-{i}")) as resp:
                    return resp.status

            assert await asyncio.gather(*(create(i) for i in range(5))) == [201] * 5
            await asyncio.wait_for(watch.content.readline(), 10)
        async with session.get(CONFIGMAPS) as resp:
            assert len((await resp.json())["items"]) == 5
        assert emulator.most_inside >= 2  # unbounded: they overlapped
        assert (emulator.seats.served, emulator.service.total, emulator.watch_charged) == (0, 0.0, 0.0)


def test_the_emulator_is_off_unless_told() -> None:
    assert EmulatedApiServer().costs == CostModel.off()
