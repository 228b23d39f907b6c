"""Benchmark: the real operator process against the emulated API server, steady or in a burst.

    .venv/bin/python hack/bench.py                             # 1000 jobs every 60s, 3 min (make bench)
    .venv/bin/python hack/bench.py --jobs 10000 --every 10m --idle 60   # make bench-scale
    .venv/bin/python hack/bench.py --burst 1000                # make bench-burst
    .venv/bin/python hack/bench.py --burst 1000 --burst-again 60   # the next minute's burst (operator warm)
    .venv/bin/python hack/bench.py --chains 20x5               # make bench-chains
    .venv/bin/python hack/bench.py --jobs 200 --minutes 1      # a small run while developing
    .venv/bin/python hack/bench.py --calibrate 3               # the server's Pod create rates only
    .venv/bin/python hack/bench.py --burst 200 --cost-model off   # the emulator answering at once

Steady mode: N `every` jobs (`command` payload) with anchors spread evenly over one interval on
whole seconds, so the schedule demands N / interval runs a second and no slot is missed by
design. Burst mode: N jobs (`every: 1h`) anchored at the same second. Jobs are created in the
emulator's store through the API's own create path (uid, resourceVersion, generation,
creationTimestamp, pruning, validation, watch events; `--create kubectl` posts them instead),
then the operator (`openclaw-cron-operator --standalone`) starts; the first slot is far enough
ahead for every job's first status write (plus `--idle` quiet seconds).

The emulated API server and the simulated kubelet run in this process (one thread); the
operator is a separate process. The server charges a real one's costs (tests/support/costs.py:
service time by verb, 2 seats, a charge per watch event; `--cost NAME=VALUE` overrides one,
`--cost-model off` answers at once as before). `--calibrate` measures its Pod create rate one at
a time and 10 in flight from a separate aiohttp client, next to kube-apiserver's on this host
(285/s, 520/s); a burst run does the same first. Figures, all taken from /proc and the
emulator's request log:
- readiness: operator start → the last job whose `status.nextRunTime` is its correct next slot;
- idle: operator CPU share and API requests/s in the quiet window between readiness and the
  first slot (nothing due: the scheduler should sleep);
- lag: the time the emulator stored each Pod (what a watcher sees; with the cost model, after
  its wait for a seat and its service time) minus the Pod's `cron.openclaw.io/scheduled-time`
  (slots are whole seconds, so it is exact); slots due in the window without any Pod count as
  infinite lag; the first `--warmup` seconds are shown apart;
- burst: slot → last Pod create, the create rate between the first and the last create, lags,
  split into slot → the create's arrival (the operator's side) and arrival → stored (the server's);
- chains: C chains of L jobs (link k depends on link k-1, no schedule), every head run at once:
  per link, the upstream Pod's Succeeded (the kubelet's status write) → the downstream's Pod
  create, p50/p99 (target ≤ 1 s), with the safety net a day away (every wake from an event);
- CPU (utime+stime) of the operator process and, separately, of the emulator+kubelet thread of
  this process, per run; operator RSS (VmRSS each second, VmHWM);
- API writes of the operator's own client (`openclaw-cron-operator/…`, and kopf's `kopf/…`) per
  run, by verb/resource, with and without Events; per-run Normal Events are off unless
  `--normal-events`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import itertools
import json
import logging
import math
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import Cluster, Script  # noqa: E402
from support.cluster import RESYNC_SECONDS  # noqa: E402
from support.costs import CostModel  # noqa: E402
from support.emulator import ApiCall, EmulatedApiServer  # noqa: E402

API = "cron.openclaw.io/v1alpha1"
PLURAL = "openclawcronjobs"
NS = "default"
SCHEDULED_ANNOTATION = "cron.openclaw.io/scheduled-time"
JOB_LABEL = "cron.openclaw.io/job"
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/", "openclaw-cron-operator/")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
PRUNE_BATCH = 5  # OPENCLAW_CRON_PRUNE_BATCH's default
#: Targets (issue 10 / DESIGN §10).
TARGET_P99_S = 0.25
TARGET_RSS_MB = 500.0
TARGET_CPU_PER_RUN_S = 0.008
TARGET_WRITES_PER_RUN = 3.0
TARGET_READY_S = 60.0
TARGET_BURST_S = 5.0
#: The simulated kubelet's connections, opened before the run and kept, as a real kubelet keeps its
#: one HTTP/2 connection (support/kubelet.py): its TLS handshakes are no cost a cluster has in a burst.
KUBELET_CONNECTIONS = 100
#: Connections opened this long before a burst's slot are the operator's warm-up (its scheduler.loop.LOOK_AHEAD).
WARM_UP_WINDOW_S = 2.0
#: Slots due this close to the end are not measured (their Pods may legitimately still be coming).
TAIL_SECONDS = 5.0
#: A nextRunTime may still name a slot this many seconds past (its run not started yet).
READY_GRACE_S = 5.0
#: py-spy frame `func (/path/to/file.py:123)` → `func (file.py)`
FRAME = re.compile(r"^(.*) \((?:.*/)?([^/]*?)(?::\d+)?\)$")
DURATION = re.compile(r"^(\d+)([smh])$")


# --- the schedule the bench creates ---------------------------------------------------------


def parse_every(text: str) -> int:
    """`60s`, `10m`, `1h` → seconds."""
    m = DURATION.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"expected a positive duration like 60s, 10m or 1h, got {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def format_every(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """RFC 3339 → Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Plan:
    """`jobs` jobs every `period` seconds from `first_slot`: spread evenly over one period, or all
    anchored at `first_slot` (a burst)."""

    jobs: int
    period: int
    first_slot: int
    spread: bool = True
    #: burst mode: which burst is measured (0: the first; 1: the next one, a period later)
    measured: int = 0

    @property
    def burst_slot(self) -> int:
        """The slot of the measured burst."""
        return self.first_slot + self.measured * self.period

    @staticmethod
    def name(i: int) -> str:
        return f"bench-{i:05d}"

    def anchor(self, i: int) -> int:
        return self.first_slot + (i * self.period) // self.jobs if self.spread else self.first_slot

    def manifests(self) -> list[dict[str, Any]]:
        every = format_every(self.period)
        return [
            {
                "apiVersion": API,
                "kind": "OpenClawCronJob",
                "metadata": {"name": self.name(i), "namespace": NS},
                "spec": {
                    "schedule": {"kind": "every", "every": every, "anchor": rfc3339(self.anchor(i))},
                    "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "true"]},
                },
            }
            for i in range(self.jobs)
        ]

    def expected(self) -> dict[str, tuple[int, int]]:
        """Job name → (anchor, period), for the readiness check."""
        return {self.name(i): (self.anchor(i), self.period) for i in range(self.jobs)}

    def due(self, lo: float, hi: float) -> int:
        """Slots of all jobs in [lo, hi)."""
        return sum(slots_in(self.anchor(i), self.period, lo, hi) for i in range(self.jobs))


def slots_in(anchor: int, period: int, lo: float, hi: float) -> int:
    """How many of `anchor + k*period` (k ≥ 0) fall in [lo, hi)."""
    if hi <= lo:
        return 0
    first = max(0, math.ceil((lo - anchor) / period))
    last = math.ceil((hi - anchor) / period) - 1  # largest k with anchor + k*period < hi
    return max(0, last - first + 1)


def slot_at_or_after(anchor: int, period: int, t: float) -> int:
    if t <= anchor:
        return anchor
    return anchor + math.ceil((t - anchor) / period) * period


def correct_next(value: float, anchor: int, period: int, when: float, grace: float = READY_GRACE_S) -> bool:
    """Whether `nextRunTime` = `value`, written at `when`, is the job's correct next slot.

    That is the first slot at or after `when`, or one up to `grace` seconds earlier whose run
    may not have started yet.
    """
    return value in (slot_at_or_after(anchor, period, when), slot_at_or_after(anchor, period, when - grace))


# --- the cost model, and its calibration against the real server's figures -------------------

#: kube-apiserver v1.36 with etcd on the same 2 cores (issue 21): Pod creates a second sent one
#: at a time (~3.5 ms each), and with CALIBRATION_WIDTH in flight.
REAL_SEQUENTIAL_RATE = 285.0
REAL_PARALLEL_RATE = 520.0
CALIBRATION_WIDTH = 10
CALIBRATION_NS = "bench-calibration"
CALIBRATION_AGENT = "bench-calibration/1"
COST_VALUE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s)?$")


def parse_costs(items: Sequence[str]) -> dict[str, Any]:
    """`--cost create=3ms --cost seats=4` → CostModel field overrides (times in s unless `ms`)."""
    names = {f.name for f in dataclasses.fields(CostModel)}
    out: dict[str, Any] = {}
    for item in items:
        key, _, text = item.partition("=")
        key, text = key.strip(), text.strip()
        m = COST_VALUE.match(text)
        if key not in names:
            raise ValueError(f"expected NAME=VALUE with NAME one of {', '.join(sorted(names))}, got {item!r}")
        if key in ("seats", "server_concurrency"):
            if not text.isdigit():
                raise ValueError(f"{key} is a whole number, got {text!r}")
            out[key] = int(text)
        elif not m:
            raise ValueError(f"{key}: expected a number of seconds, or of milliseconds with 'ms' (3ms), got {text!r}")
        else:
            out[key] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    return out


def cost_model(args: argparse.Namespace) -> CostModel:
    """The calibrated model (`--cost-model on`, the default) or none, with `--cost` overrides."""
    base = CostModel() if args.cost_model == "on" else CostModel.off()
    return dataclasses.replace(base, **parse_costs(args.cost))


def calibration_pod(i: int) -> dict[str, Any]:
    """A Pod about the size of a run Pod, for a scheduler nobody runs (the kubelet leaves it alone)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"calibration-{i:06d}",
            "namespace": CALIBRATION_NS,
            "labels": {"app.kubernetes.io/name": "bench-calibration", "bench/index": str(i)},
            "annotations": {"bench/purpose": "create-rate calibration"},
        },
        "spec": {
            "schedulerName": "bench-calibration",
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 3600,
            "containers": [
                {
                    "name": "job",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "true"],
                    "env": [{"name": "BENCH", "value": "1"}, {"name": "INDEX", "value": str(i)}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


@dataclass
class Phase:
    """Creates sent `width` at a time: how many, how long, each one's latency (client side)."""

    width: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else math.nan

    def line(self, target: float) -> str:
        lat = sorted(self.latencies)
        return (
            f"{self.rate:.0f} creates/s ({len(lat)} in {self.seconds:.2f} s; latency p50 {ms(percentile(lat, 50))}"
            f" p99 {ms(percentile(lat, 99))}); real server {target:.0f}/s ({self.rate / target:.0%})"
        )


@dataclass
class Calibration:
    model: CostModel
    sequential: Phase
    parallel: Phase

    def lines(self) -> list[str]:
        return [
            f"calibration, cost model {self.model.describe()}:",
            f"  Pod creates one at a time: {self.sequential.line(REAL_SEQUENTIAL_RATE)}",
            f"  {self.parallel.width} in flight:             {self.parallel.line(REAL_PARALLEL_RATE)}",
        ]


async def calibration_client(config: Mapping[str, Any]) -> dict[str, Any]:
    """Pod creates over HTTPS with aiohttp, one at a time and then `width` at a time (in a child process)."""
    ctx = ssl.create_default_context(cafile=config["ca"])
    headers = {
        "Authorization": f"Bearer {config['token']}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": CALIBRATION_AGENT,
    }
    url = f"{config['url']}/api/v1/namespaces/{CALIBRATION_NS}/pods"
    counter = itertools.count(int(config.get("first", 0)))
    connector = aiohttp.TCPConnector(limit=max(config["width"], 1), ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def create(latencies: list[float]) -> None:
            body = json.dumps(calibration_pod(next(counter)))
            began = time.perf_counter()
            async with session.post(url, data=body) as resp:
                await resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"calibration create answered {resp.status}")
            latencies.append(time.perf_counter() - began)

        async def phase(count: int, width: int) -> dict[str, Any]:
            latencies: list[float] = []
            left = itertools.count(count, -1)

            async def worker() -> None:
                while next(left) > 0:
                    await create(latencies)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(width)))
            return {"width": width, "seconds": time.perf_counter() - began, "latencies": latencies}

        await phase(config["width"] * 3, config["width"])  # connections and TLS handshakes made first
        sequential = await phase(config["sequential"], 1)
        parallel = await phase(config["parallel"], config["width"])
    return {"sequential": sequential, "parallel": parallel}


def calibrate(cluster: Cluster, model: CostModel, sequential: int = 300, parallel: int = 1000) -> Calibration:
    """Pod create rates of the running emulated server (with its cost model), as the real server's were
    measured: a separate client process, the operator's credentials, sequential and 10 in flight."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CALIBRATION_NS}}
    if cluster.get("v1", "namespaces", None, CALIBRATION_NS) is None:
        cluster.call(lambda: cluster.emulator.create_object("v1", "namespaces", None, namespace))
    kubeconfig = yaml.safe_load(cluster.operator_kubeconfig().read_text())
    first = len(cluster.list("v1", "pods", CALIBRATION_NS))
    config = {
        "url": cluster.url,
        "ca": str(cluster.ca_file),
        "token": kubeconfig["users"][0]["user"]["token"],
        "width": CALIBRATION_WIDTH,
        "sequential": sequential,
        "parallel": parallel,
        "first": first,
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--calibration-client", json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"calibration client failed ({done.returncode}):\n{done.stderr[-4000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return Calibration(model, Phase(**found["sequential"]), Phase(**found["parallel"]))


def run_calibration(args: argparse.Namespace) -> str:
    """`--calibrate`: the emulated server (and kubelet) alone, its create rates next to the real server's."""
    model = cost_model(args)
    workdir = Path(tempfile.mkdtemp(prefix="ocj-bench-calibrate-"))
    lines: list[str] = []
    with Cluster(workdir, emulator=BenchApiServer(record_requests=False, history_limit=2, costs=model)) as cluster:
        for _ in range(args.calibrate):
            lines += calibrate(cluster, model).lines()
    shutil.rmtree(workdir, ignore_errors=True)
    return "\n".join(lines)


# --- the recording emulator -------------------------------------------------------------------


@attrs.define(kw_only=True)
class BenchApiServer(EmulatedApiServer):
    """The emulator, also noting Pod creates, Pod completions, and when each job became ready."""

    #: pod name → (time stored, scheduled instant from the annotation, job label)
    pod_creates: dict[str, tuple[float, float, str]] = attrs.field(factory=dict, init=False)
    #: pod name → the create's arrival (before any wait for a seat of the cost model)
    pod_arrivals: dict[str, float] = attrs.field(factory=dict, init=False)
    #: pod name → time the kubelet reported phase Succeeded
    pod_succeeded: dict[str, float] = attrs.field(factory=dict, init=False)
    #: job name → (anchor, period) of the jobs whose readiness is tracked
    expected: dict[str, tuple[int, int]] = attrs.field(factory=dict, init=False)
    #: job name → first time a stored version had the correct `status.nextRunTime`
    ready_at: dict[str, float] = attrs.field(factory=dict, init=False)

    async def _dispatch(self, request: Any, path: Any, call: ApiCall) -> Any:
        response = await super()._dispatch(request, path, call)
        if call.resource == "pods" and call.verb == "create" and response.status < 400:
            meta = (request.data or {}).get("metadata") or {}
            scheduled = (meta.get("annotations") or {}).get(SCHEDULED_ANNOTATION)
            name, job = meta.get("name"), (meta.get("labels") or {}).get(JOB_LABEL, "")
            if name and scheduled and name not in self.pod_creates:
                # Stored now: what a watcher sees (the cost model may have queued it since arrival).
                self.pod_creates[name] = (time.time(), parse_time(scheduled), job)
                self.pod_arrivals[name] = call.when
        elif call.resource == "pods/status" and response.status < 400 and call.name:
            phase = ((request.data or {}).get("status") or {}).get("phase")
            if phase == "Succeeded" and call.name not in self.pod_succeeded:
                self.pod_succeeded[call.name] = time.time()
        return response

    def _commit(self, rt: Any, obj: Any, type_: str, old: Any) -> Any:
        result = super()._commit(rt, obj, type_, old)
        if rt.plural == PLURAL and type_ == "MODIFIED":
            name = obj["metadata"]["name"]
            if name in self.expected and name not in self.ready_at:
                nxt = (obj.get("status") or {}).get("nextRunTime")
                now = time.time()
                if isinstance(nxt, str) and correct_next(parse_time(nxt), *self.expected[name], now):
                    self.ready_at[name] = now
        return result


# --- /proc sampling -------------------------------------------------------------------------


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def host_busy_seconds() -> float:
    """CPU seconds all cores spent busy (everything but idle and iowait) from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(path: str) -> float:
    """utime + stime from a /proc `stat` file (a process's or one thread's), 0 when unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


GC_SUM = re.compile(r'^openclaw_cron_gc_pause_seconds_(sum|count)\{generation="2"\} (\S+)$', re.M)


def operator_gc(port: int) -> tuple[float, float]:
    """Full-collection pause seconds and count so far, from the operator's own metrics."""
    try:
        names = "name[]=openclaw_cron_gc_pause_seconds_sum&name[]=openclaw_cron_gc_pause_seconds_count"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{names}", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return (0.0, 0.0)
    found = dict(GC_SUM.findall(text))
    return (float(found.get("sum", 0)), float(found.get("count", 0)))


def quiet_emulator_gc() -> None:
    """Keep this process's full collections out of the figures.

    The emulator stands in for kube-apiserver, whose Go collector runs concurrently. Its own
    full collections here (0.2-0.8 s over 10,000 stored jobs and the watch cache) delay the
    Pod creates it receives, and that would count as the operator's lag. So the jobs just
    stored are frozen and automatic full collections are off for the rest of the run; young
    ones go on. `--emulator-gc` keeps the defaults.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)


class GcLog:
    """Pauses of this process's garbage collector (the emulator's: it answers the operator).

    A Pod create that arrives during one is received late and counts as the operator's lag, so
    the report shows both processes' pauses beside the lag timeline.
    """

    def __init__(self, least: float = 0.005) -> None:
        self.least = least
        self.pauses: list[tuple[float, float, int]] = []  # (wall start, seconds, generation)
        self._start = 0.0

    def __enter__(self) -> GcLog:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        if took >= self.least:
            self.pauses.append((time.time() - took, took, info["generation"]))


@dataclass
class Sample:
    when: float
    rss_kb: int
    hwm_kb: int
    #: operator process CPU seconds
    cpu: float
    #: the emulator+kubelet thread's CPU seconds
    emu_cpu: float
    host_busy: float
    #: the operator's cumulative full (generation 2) garbage-collection pause seconds, and count
    op_gc: tuple[float, float] = (0.0, 0.0)


@dataclass
class Usage:
    """CPU over an interval, from the samples that bracket it."""

    seconds: float
    cpu: float
    emu_cpu: float
    host_busy: float

    @property
    def others(self) -> float:
        """Cores busy with other processes (the rest of the host), on average."""
        return max(0.0, self.host_busy - self.cpu - self.emu_cpu) / self.seconds if self.seconds > 0 else math.nan


def usage(samples: Sequence[Sample], lo: float, hi: float) -> Usage | None:
    """CPU between the last sample at or before `lo` and the first at or after `hi`."""
    before = [s for s in samples if s.when <= lo]
    after = [s for s in samples if s.when >= hi]
    if not before or not after or after[0].when <= before[-1].when:
        return None
    a, b = before[-1], after[0]
    return Usage(b.when - a.when, b.cpu - a.cpu, b.emu_cpu - a.emu_cpu, b.host_busy - a.host_busy)


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values` (inf entries allowed); nan when empty."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


@dataclass
class LagStats:
    count: int
    missing: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, lags: Iterable[float], missing: int = 0) -> LagStats:
        values = sorted([*lags, *([math.inf] * missing)])
        return cls(
            count=len(values) - missing,
            missing=missing,
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=values[-1] if values else math.nan,
        )


def server_times(
    creates: Mapping[str, tuple[float, float, str]], arrivals: Mapping[str, float]
) -> dict[tuple[str, float], float]:
    """Per run (its first Pod): how long the server took from the create's arrival to storing it
    (with the cost model: the wait for a seat and the service time)."""
    out: dict[tuple[str, float], float] = {}
    for name, (stored, scheduled, job) in sorted(creates.items(), key=lambda kv: kv[1]):
        if name in arrivals:
            out.setdefault((job, scheduled), stored - arrivals[name])
    return out


@dataclass
class SeatUse:
    """What the cost model's seats did over the whole run."""

    limit: int
    peak: int
    served: int
    waited: int
    peak_queue: int
    #: Priority levels that served requests: "name peak/limit (queued N)".
    levels: str = ""

    @classmethod
    def of(cls, emulator: EmulatedApiServer) -> SeatUse:
        s = emulator.seats
        levels = ", ".join(
            f"{name} {lv.peak}/{lv.limit or 'unbounded'} (queued {lv.waited})"
            for name, lv in emulator.levels.levels.items()
            if lv.served
        )
        return cls(s.limit, s.peak, s.served, s.waited, s.peak_queue, levels)

    def line(self) -> str:
        if not self.served:
            return "none charged"
        return (
            f"{self.served} requests held one (peak {self.peak} of {self.limit or 'unbounded'});"
            f" {self.waited} ({self.waited / self.served:.0%}) queued first, longest queue {self.peak_queue};"
            f" priority levels, peak seats: {self.levels}"
        )


def first_creates(creates: Mapping[str, tuple[float, float, str]]) -> dict[tuple[str, float], float]:
    """(job, scheduled instant) → receive time of the run's first Pod (a retry's is not its start)."""
    out: dict[tuple[str, float], float] = {}
    for when, scheduled, job in sorted(creates.values()):
        out.setdefault((job, scheduled), when)
    return out


@dataclass
class Burst:
    jobs: int
    slot: float
    created: int
    #: slot → last Pod create (seconds), first → last create
    to_last: float
    spread: float
    lag: LagStats

    @property
    def rate(self) -> float:
        """Pods/s between the first and the last create (the operator's create rate)."""
        return (self.created - 1) / self.spread if self.created > 1 and self.spread > 0 else math.nan

    @classmethod
    def of(cls, runs: Mapping[tuple[str, float], float], slot: float, jobs: int) -> Burst:
        times = sorted(when for (_, scheduled), when in runs.items() if scheduled == slot)
        if not times:
            return cls(jobs, slot, 0, math.inf, math.nan, LagStats.of([], jobs))
        missing = max(0, jobs - len(times))
        return cls(
            jobs=jobs,
            slot=slot,
            created=len(times),
            to_last=math.inf if missing else times[-1] - slot,
            spread=times[-1] - times[0],
            lag=LagStats.of([t - slot for t in times], missing),
        )


@dataclass
class Writes:
    """Operator writes in a window, per run."""

    counts: dict[tuple[str, str], int]
    runs: int

    def per_run(self, events: bool = True) -> float:
        total = sum(v for (_, r), v in self.counts.items() if events or r != "events")
        return total / self.runs if self.runs else math.nan

    @property
    def pruned(self) -> bool:
        return any(r == "pods" and v in ("delete", "deletecollection") for v, r in self.counts)

    def steady(self, events: bool = True, prune_batch: int = PRUNE_BATCH) -> float:
        """Per run once each job's history is full: runs shorter than the history limit (3 Pods)
        prune nothing yet, so without a prune in the window add one deletecollection per batch."""
        return self.per_run(events) + (0.0 if self.pruned else 1.0 / prune_batch)


def readiness(ready_at: Mapping[str, float], jobs: int, t0: float) -> tuple[float, int]:
    """(seconds from `t0` until the last job was ready, or inf; jobs never ready)."""
    missing = jobs - len(ready_at)
    if missing or not ready_at:
        return math.inf, missing
    return max(ready_at.values()) - t0, 0


def operator_calls(
    calls: Iterable[ApiCall], since: float, until: float, verbs: Sequence[str] | None = WRITE_VERBS
) -> Counter[tuple[str, str]]:
    """Successful requests of the operator's clients in [since, until) by (verb, resource)."""
    return Counter(
        (c.verb, c.resource)
        for c in calls
        if since <= c.when < until
        and (verbs is None or c.verb in verbs)
        and c.code < 400
        and c.user_agent.startswith(OPERATOR_AGENTS)
    )


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value * 1000:.0f} ms")


def secs(value: float) -> str:
    return "n/a" if math.isnan(value) else ("never" if math.isinf(value) else f"{value:.2f} s")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def lag_row(lag: LagStats) -> str:
    return " / ".join(ms(v) for v in (lag.p50, lag.p95, lag.p99, lag.max))


def lag_timeline(
    runs: Mapping[tuple[str, float], float],
    t0: float,
    step: float,
    samples: Sequence[Sample] = (),
    emu_gc: Sequence[tuple[float, float, int]] = (),
) -> list[str]:
    """One line per `step` seconds of scheduled time: slots started, p50 and max lag, and the
    garbage-collection pauses of the operator (full collections) and the emulator in it."""
    buckets: dict[int, list[float]] = {}
    for (_, scheduled), when in runs.items():
        buckets.setdefault(int((scheduled - t0) // step), []).append(when - scheduled)
    op_gc: dict[int, float] = {}
    for before, after in itertools.pairwise(samples):
        k = int((after.when - t0) // step)
        op_gc[k] = op_gc.get(k, 0.0) + after.op_gc[0] - before.op_gc[0]
    emu: dict[int, float] = {}
    for start, took, _ in emu_gc:
        k = int((start - t0) // step)
        emu[k] = emu.get(k, 0.0) + took
    lines = []
    for b in sorted(buckets):
        lags = sorted(buckets[b])
        lines.append(
            f"  t+{b * step:4.0f}s  {len(lags):5d}  {ms(percentile(lags, 50)):>9}  {ms(lags[-1]):>9}"
            f"  {ms(op_gc.get(b, 0.0)):>9}  {ms(emu.get(b, 0.0)):>9}"
        )
    return lines


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    """Everything measured in one run; `format_report` turns it into the printed table."""

    args: argparse.Namespace
    plan: Plan
    t0: float
    create_s: float
    warm_end: float
    end: float
    samples: list[Sample]
    runs: dict[tuple[str, float], float]
    succeeded: dict[str, float]
    ready_at: dict[str, float]
    calls: list[ApiCall]
    counters: dict[str, int]
    profile: str = ""
    notes: list[str] = field(default_factory=list)
    restart: Restart | None = None
    #: this process's (the emulator's) garbage-collection pauses
    emu_gc: list[tuple[float, float, int]] = field(default_factory=list)
    costs: CostModel = field(default_factory=CostModel.off)
    calibration: Calibration | None = None
    #: (job, scheduled instant) of each run's first Pod → seconds from its create's arrival to stored
    server_time: dict[tuple[str, float], float] = field(default_factory=dict)
    seats: SeatUse | None = None
    #: when the emulator accepted each connection (a TLS handshake each)
    opened: list[float] = field(default_factory=list)


@dataclass
class Restart:
    """A second operator started over the recorded jobs (nothing due, nothing changed)."""

    settled_s: float
    seconds: float
    cpu: float
    rss_mb: float
    writes: dict[tuple[str, str], int]
    requests: int
    #: seconds after the start until the operator last used > 10 % of a core (over 1 s)
    busy_s: float = math.nan
    profile: str = ""


def start_profiler(pid: int, seconds: float, workdir: Path) -> subprocess.Popen[bytes] | None:
    """`py-spy record --gil` (on-CPU Python only, 20 Hz, collapsed stacks) on the operator, if installed."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        exe = Path(shutil.which("py-spy") or exe)  # one on PATH (pip install --target ...) will do
    if not exe.exists() or seconds < 3:
        return None
    out = workdir / "operator-profile.txt"
    cmd = [str(exe), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "20", "--gil", "-f", "raw"]
    cmd += ["-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(text: str, top: int = 25) -> str:
    """Top functions by inclusive and self share of samples from py-spy's collapsed stacks."""
    total = 0
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [FRAME.sub(r"\1 (\2)", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        self_time[frames[-1]] += n
    if not total:
        return "profile: no samples"
    lines = [f"profile: {total} samples; top inclusive"]
    lines += [f"  {v / total:6.1%}  {k}" for k, v in inclusive.most_common(top)]
    lines += ["profile: top self"]
    lines += [f"  {v / total:6.1%}  {k}" for k, v in self_time.most_common(top)]
    return "\n".join(lines)


def finish_profiler(profiler: subprocess.Popen[bytes], workdir: Path) -> str:
    try:
        profiler.wait(60)
    except subprocess.TimeoutExpired:
        profiler.terminate()
        profiler.wait(10)
    out = workdir / "operator-profile.txt"
    return summarize_profile(out.read_text()) if out.exists() else "profile: py-spy wrote nothing"


def create_jobs(cluster: Cluster, manifests: list[dict[str, Any]], via: str) -> None:
    """Through the API's create path in the emulator (`store`), or `kubectl create` in chunks."""
    for start in range(0, len(manifests), 250):
        chunk = manifests[start : start + 250]
        if via == "kubectl":
            items = {"apiVersion": "v1", "kind": "List", "items": chunk}
            cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(items), timeout=300)
        else:
            cluster.call(lambda c=chunk: [cluster.emulator.create_object(API, PLURAL, NS, m) for m in c])


def sum_counters(cluster: Cluster) -> dict[str, int]:
    def total() -> dict[str, int]:
        out: Counter[str] = Counter()
        for obj in cluster.emulator.list_objects(API, PLURAL, NS):
            for k, v in ((obj.get("status") or {}).get("counters") or {}).items():
                out[k] += int(v)
        return dict(out)

    return cluster.call(total)


def startup_budget(jobs: int) -> int:
    """Seconds from operator start to the first slot: enough for every job's first status write."""
    return 8 + jobs // 125


def run(args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="ocj-bench-"))
    jobs = args.burst or args.jobs
    model = cost_model(args)
    emulator = BenchApiServer(
        record_requests=False, history_limit=2, watch_cache_size=max(20_000, 4 * jobs), costs=model
    )
    script = Script(run_seconds=args.run_seconds)
    kubelet = {
        "default_script": script,
        "post_events": args.kubelet_events == "on",
        "connections": args.kubelet_connections,
    }
    cluster = Cluster(workdir, emulator=emulator, kubelet_options=kubelet)
    samples: list[Sample] = []
    notes: list[str] = []
    with cluster, GcLog() as emu_gc:
        assert cluster._thread is not None and cluster._thread.native_id is not None
        emu_stat = f"/proc/self/task/{cluster._thread.native_id}/stat"
        calibration = None
        if args.burst:  # what this server does alone, next to the real one's figures, before the run
            calibration = calibrate(cluster, model)
            print("\n".join(calibration.lines()), flush=True)
        create_estimate = 2 + jobs // (1000 if args.create == "store" else 150)
        lead = args.lead if args.lead is not None else startup_budget(jobs)
        first_slot = int(time.time()) + create_estimate + lead + int(args.idle)
        if args.burst:
            period, measured = (args.burst_again, 1) if args.burst_again else (3600, 0)
            plan = Plan(jobs=jobs, period=period, first_slot=first_slot, spread=False, measured=measured)
        else:
            plan = Plan(jobs=jobs, period=parse_every(args.every), first_slot=first_slot)
        cluster.call(lambda: emulator.expected.update(plan.expected()))
        t = time.monotonic()
        create_jobs(cluster, plan.manifests(), args.create)
        create_s = time.monotonic() - t
        if not args.emulator_gc:
            quiet_emulator_gc()
        print(f"created {jobs} jobs in {create_s:.1f}s ({args.create}); first slot {rfc3339(first_slot)}", flush=True)
        metrics_port = free_port()
        env = {"OPENCLAW_CRON_METRICS_PORT": str(metrics_port), "OPENCLAW_CRON_GATEWAY_URL": "http://127.0.0.1:9"}
        if args.normal_events:
            env["OPENCLAW_CRON_NORMAL_EVENTS"] = "true"
        env.update(kv.split("=", 1) for kv in args.env)
        operator = cluster.start_operator("--standalone", *args.operator_arg, env=env)
        t0 = time.time()
        if first_slot < t0 + 1:
            notes.append("the first slot came due before the operator started (slow job creation)")
        if args.burst:
            warm_end = end = plan.burst_slot + args.burst_wait
        else:
            warm_end = first_slot + (args.warmup if args.warmup is not None else min(60.0, args.minutes * 20))
            end = first_slot + args.minutes * 60.0
        profiler: subprocess.Popen[bytes] | None = None
        profile_tried = False
        profile_at = plan.burst_slot - 1.0 if args.burst else warm_end
        next_print = t0 + 30
        while (now := time.time()) < end:
            if not operator.running():
                raise SystemExit(f"the operator exited:\n{operator.logs()[-4000:]}")
            samples.append(
                Sample(
                    now,
                    proc_status_kb(operator.pid, "VmRSS"),
                    proc_status_kb(operator.pid, "VmHWM"),
                    proc_cpu_seconds(f"/proc/{operator.pid}/stat"),
                    proc_cpu_seconds(emu_stat),
                    host_busy_seconds(),
                    operator_gc(metrics_port),
                )
            )
            if profiler is None and args.profile and now >= profile_at and not profile_tried:
                profiler = start_profiler(operator.pid, min(args.profile, end - now - 2), workdir)
                profile_tried = True
            if args.burst and now > plan.burst_slot + 1 and len(emulator.pod_creates) >= jobs * (1 + plan.measured):
                end = min(end, now + 8.0)  # all created: time for the (held-back) status writes
            if now >= next_print:
                s = samples[-1]
                print(
                    f"t+{now - t0:4.0f}s ready {len(emulator.ready_at)} pods {len(emulator.pod_creates)}"
                    f" rss {s.rss_kb / 1024:.0f} MB cpu {s.cpu:.1f}s emulator cpu {s.emu_cpu:.1f}s",
                    flush=True,
                )
                next_print += 30
            near_slot = args.burst and plan.burst_slot - 2 <= now <= plan.burst_slot + 15
            time.sleep(max(0.0, min(0.2 if near_slot else 1.0, end - time.time())))
        samples.append(
            Sample(
                time.time(),
                proc_status_kb(operator.pid, "VmRSS"),
                proc_status_kb(operator.pid, "VmHWM"),
                proc_cpu_seconds(f"/proc/{operator.pid}/stat"),
                proc_cpu_seconds(emu_stat),
                host_busy_seconds(),
                operator_gc(metrics_port),
            )
        )
        profile = finish_profiler(profiler, workdir) if profiler is not None else ""
        if args.profile and profiler is None:
            notes.append("no profile: py-spy is not installed (.venv/bin/pip install py-spy)")
        counters = sum_counters(cluster)
        creates = dict(cluster.call(lambda: dict(emulator.pod_creates)))
        arrivals = dict(cluster.call(lambda: dict(emulator.pod_arrivals)))
        succeeded = dict(cluster.call(lambda: dict(emulator.pod_succeeded)))
        ready_at = dict(cluster.call(lambda: dict(emulator.ready_at)))
        seats = cluster.call(lambda: SeatUse.of(emulator))
        opened = cluster.connections_opened()
        calls: list[ApiCall] = cluster.call(lambda: list(emulator.calls))
        restart = None
        if args.restart:
            restart = restart_phase(cluster, operator, args, env, len(creates), notes)
            calls = cluster.call(lambda: list(emulator.calls))
        else:
            operator.stop()
        if "Traceback" in operator.log_path.read_text(errors="replace"):
            notes.append(f"the operator logged a traceback; see {operator.log_path}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        notes.append(f"work directory kept: {workdir}")
    return Result(
        args=args,
        plan=plan,
        t0=t0,
        create_s=create_s,
        warm_end=warm_end,
        end=end,
        samples=samples,
        runs=first_creates(creates),
        succeeded=succeeded,
        ready_at=ready_at,
        calls=calls,
        counters=counters,
        profile=profile,
        notes=notes,
        restart=restart,
        emu_gc=emu_gc.pauses,
        costs=model,
        calibration=calibration,
        server_time=server_times(creates, arrivals),
        seats=seats,
        opened=opened,
    )


def restart_phase(
    cluster: Cluster, operator: Any, args: argparse.Namespace, env: Mapping[str, str], runs: int, notes: list[str]
) -> Restart:
    """Once every run of the burst is on record, restart the operator and watch `args.restart` s.

    Nothing is due for an hour and nothing changed, so the new operator should write nothing.
    """
    began = time.time()
    while time.time() < began + 120:
        c = sum_counters(cluster)
        if c.get("succeeded", 0) + c.get("failed", 0) >= runs:
            break
        time.sleep(2)
    else:
        notes.append("restart: not every run was on record after 120 s")
    settled = time.time() - began
    operator.stop()
    second = cluster.start_operator("--standalone", *args.operator_arg, name="operator-restart", env=env)
    t1 = time.time()
    seconds = min(args.profile_restart, args.restart - 1)
    profiler = start_profiler(second.pid, seconds, cluster.workdir) if args.profile_restart else None
    rss = 0
    cpu_at: list[tuple[float, float]] = []
    while time.time() < t1 + args.restart and second.running():
        rss = max(rss, proc_status_kb(second.pid, "VmRSS"))
        cpu_at.append((time.time() - t1, proc_cpu_seconds(f"/proc/{second.pid}/stat")))
        time.sleep(0.5)
    cpu = proc_cpu_seconds(f"/proc/{second.pid}/stat")
    t2 = time.time()
    profile = finish_profiler(profiler, cluster.workdir) if profiler is not None else ""
    calls: list[ApiCall] = cluster.call(lambda: list(cluster.emulator.calls))
    second.stop()
    if "Traceback" in second.log_path.read_text(errors="replace"):
        notes.append(f"the restarted operator logged a traceback; see {second.log_path}")
    return Restart(
        settled_s=settled,
        seconds=t2 - t1,
        cpu=cpu,
        rss_mb=rss / 1024,
        writes=dict(operator_calls(calls, t1, t2)),
        requests=sum(operator_calls(calls, t1, t2, verbs=None).values()),
        busy_s=busy_until(cpu_at),
        profile=profile,
    )


def busy_until(cpu_at: Sequence[tuple[float, float]], share: float = 0.1, span: float = 1.0) -> float:
    """The last time (seconds since start) the process used more than `share` of a core over
    `span` seconds; inf when it was still that busy at the last sample, 0 when never."""
    last = 0.0
    for i, (t, cpu) in enumerate(cpu_at):
        j = i
        while j + 1 < len(cpu_at) and cpu_at[j][0] - t < span:
            j += 1
        if j == i:
            break
        t2, cpu2 = cpu_at[j]
        if (cpu2 - cpu) / (t2 - t) > share:
            last = t2
    if cpu_at and last >= cpu_at[-1][0]:
        return math.inf
    return last


# --- the report ------------------------------------------------------------------------------


def format_report(r: Result) -> str:
    """A plain two-column table with PASS/FAIL on the targets, per-verb write rows, a lag timeline."""
    rows: list[tuple[str, str]] = []
    add = rows.append
    plan, samples = r.plan, r.samples
    rss_peak = max(s.rss_kb for s in samples) / 1024
    hwm = samples[-1].hwm_kb / 1024
    if r.args.burst:
        again = f" (measured: the next, {plan.period} s later)" if plan.measured else ""
        add(("mode", f"burst: {plan.jobs} jobs due at {rfc3339(plan.first_slot)}{again}"))
    else:
        every = format_every(plan.period)
        add(("mode", f"steady: {plan.jobs} jobs every {every}, {r.args.minutes:g} min from the first slot"))
        add(("schedule demands", f"{plan.jobs / plan.period:.2f} runs/s"))
    add(("jobs created", f"{r.create_s:.1f} s ({r.args.create})"))
    add(("cost model (support/costs.py)", r.costs.describe()))
    add(("simulated kubelet's connections kept", str(r.args.kubelet_connections)))

    # Startup: readiness, then the quiet window before the first slot.
    ready_s, not_ready = readiness(r.ready_at, plan.jobs, r.t0)
    add(("readiness (every nextRunTime correct)", secs(ready_s) + (f" ({not_ready} jobs never)" if not_ready else "")))
    add((f"target readiness <= {TARGET_READY_S:.0f} s", verdict(ready_s <= TARGET_READY_S)))
    startup = operator_calls(r.calls, r.t0, plan.first_slot - 1)
    add(("startup writes (before first slot)", f"{sum(startup.values())} ({dict(sorted(startup.items()))})"))
    quiet_lo = max(r.t0, r.t0 + ready_s if math.isfinite(ready_s) else r.t0) + 2.0
    quiet_hi = plan.first_slot - 2.0
    if r.args.idle and quiet_hi - quiet_lo >= 10:
        quiet_lo = max(quiet_lo, quiet_hi - r.args.idle)
        u = usage(samples, quiet_lo, quiet_hi)
        requests = sum(operator_calls(r.calls, quiet_lo, quiet_hi, verbs=None).values())
        if u is not None:
            add(
                (
                    "idle (nothing due) operator CPU",
                    f"{u.cpu / u.seconds:.2%} of a core over {u.seconds:.0f} s,"
                    f" {requests / u.seconds:.2f} API requests/s (emulator {u.emu_cpu / u.seconds:.2%})",
                )
            )
    elif r.args.idle:
        r.notes.append("no quiet window: readiness took the idle time (raise --lead)")

    if r.args.burst:
        burst = Burst.of(r.runs, plan.burst_slot, plan.jobs)
        add(("pods created for the slot", f"{burst.created} of {plan.jobs}"))
        add(("slot -> last Pod create", secs(burst.to_last)))
        add((f"target all creates <= {TARGET_BURST_S:.0f} s after the slot", verdict(burst.to_last <= TARGET_BURST_S)))
        add(("create rate (first -> last create)", f"{burst.rate:.0f} Pods/s over {secs(burst.spread)}"))
        add(("lag p50/p95/p99/max", lag_row(burst.lag)))
        if r.calibration is not None:  # the host's speed this run, taken out (runs differ by 20 %+ by host)
            speed = r.calibration.parallel.rate / REAL_PARALLEL_RATE
            add(
                (
                    f"  x {speed:.2f} (this run's calibration / real server, 10 in flight)",
                    f"last create {secs(burst.to_last * speed)}, lag p99 {secs(burst.lag.p99 * speed)}",
                )
            )
        keys = [k for k in r.runs if k[1] == plan.burst_slot and k in r.server_time]
        if keys:
            sent = LagStats.of([r.runs[k] - r.server_time[k] - plan.burst_slot for k in keys])
            served = LagStats.of([r.server_time[k] for k in keys])
            add(("  slot -> create sent (operator) p50/p99", f"{ms(sent.p50)} / {ms(sent.p99)}"))
            add(("  sent -> stored (server) p50/p99", f"{ms(served.p50)} / {ms(served.p99)}"))
            span = max(r.runs[k] for k in keys) - min(r.runs[k] - r.server_time[k] for k in keys)
            if span > 0:  # the time average of creates inside the server, first arrival to last stored
                held = sum(r.server_time[k] for k in keys) / span
                add(("  creates at the server at once (mean)", f"{held:.0f}"))
        last = plan.burst_slot + (burst.to_last if math.isfinite(burst.to_last) else r.args.burst_wait)
        during = Counter(
            (c.user_agent.split("/")[0], f"{c.verb} {c.resource}")
            for c in r.calls
            if plan.burst_slot <= c.when <= last and c.verb != "watch"
        )
        for agent in sorted({a for a, _ in during}):
            mine = sorted(((n, what) for (a, what), n in during.items() if a == agent), reverse=True)
            add((f"  requests until the last create: {agent}", ", ".join(f"{what} {n}" for n, what in mine[:4])))
        add(("  connections opened until the last create", str(sum(plan.burst_slot <= t <= last for t in r.opened))))
        ahead = sum(plan.burst_slot - WARM_UP_WINDOW_S <= t < plan.burst_slot for t in r.opened)
        add((f"  connections opened in the {WARM_UP_WINDOW_S:g} s before the slot", str(ahead)))
        u = usage(samples, plan.burst_slot - 0.2, last + 0.2)
        runs = burst.created
        window = (plan.burst_slot - 1.0, r.end)
    else:
        lo, hi = r.warm_end, r.end - TAIL_SECONDS
        warm = [w - s for (_, s), w in r.runs.items() if s < lo]
        meas = [w - s for (_, s), w in r.runs.items() if lo <= s < hi]
        warm_lag = LagStats.of(warm, max(0, plan.due(plan.first_slot, lo) - len(warm)))
        lag = LagStats.of(meas, max(0, plan.due(lo, hi) - len(meas)))
        add(("warm-up / measured", f"{lo - plan.first_slot:.0f} s / {hi - lo:.0f} s of slots"))
        add(("lag (warm-up) runs", f"{warm_lag.count} started, {warm_lag.missing} due but never started"))
        add(("lag (warm-up) p50/p95/p99/max", lag_row(warm_lag)))
        add(("lag runs", f"{lag.count} started, {lag.missing} due but never started"))
        add(("lag p50/p95/p99/max", lag_row(lag)))
        add((f"target p99 lag <= {TARGET_P99_S * 1000:.0f} ms", verdict(lag.count > 0 and lag.p99 <= TARGET_P99_S)))
        u = usage(samples, r.warm_end, r.end)
        runs = sum(1 for (_, s), w in r.runs.items() if r.warm_end <= w < r.end)
        if u is not None:
            add(("pod create rate (measured)", f"{runs / u.seconds:.2f} Pods/s"))
        done = sum(1 for w in r.succeeded.values() if r.warm_end <= w < r.end)
        add(("runs finished/s (measured)", f"{done / (r.end - r.warm_end):.2f}"))
        window = (r.warm_end, r.end)
    c = r.counters
    add(("status counters (sum)", ", ".join(f"{k} {c.get(k, 0)}" for k in ("runs", "succeeded", "failed"))))
    add(("missed / skipped", f"{c.get('missed', 0)} / {c.get('skipped', 0)}"))
    add(("target missed = skipped = 0", verdict(c.get("missed", 0) == 0 and c.get("skipped", 0) == 0)))
    add(("operator RSS peak / final", f"{rss_peak:.0f} MB / {samples[-1].rss_kb / 1024:.0f} MB (VmHWM {hwm:.0f} MB)"))
    add((f"target RSS <= {TARGET_RSS_MB:.0f} MB", verdict(max(rss_peak, hwm) <= TARGET_RSS_MB)))
    add(("operator CPU total", f"{samples[-1].cpu:.1f} s"))
    if u is not None and runs:
        per_run = u.cpu / runs
        add(("window", f"{u.seconds:.1f} s, {runs} Pod creates"))
        add(("operator CPU per run", f"{ms(per_run)} ({u.cpu / u.seconds:.0%} of a core)"))
        add(("  = runs per operator CPU-second", f"{1 / per_run:.0f}" if per_run > 0 else "n/a"))
        add((f"target CPU per run <= {TARGET_CPU_PER_RUN_S * 1000:.0f} ms", verdict(per_run <= TARGET_CPU_PER_RUN_S)))
        add(("emulator+kubelet CPU per run", f"{ms(u.emu_cpu / runs)} ({u.emu_cpu / u.seconds:.0%} of a core)"))
        add(
            (
                "host CPU busy in window",
                f"{u.host_busy / u.seconds:.2f} of {os.cpu_count()} cores (other processes {u.others:.2f})",
            )
        )
    gc_s, gc_n = (b - a for a, b in zip(samples[0].op_gc, samples[-1].op_gc, strict=True))
    each = f", {ms(gc_s / gc_n)} each" if gc_n else ""
    add(("operator full GCs (whole run)", f"{gc_n:.0f}, {secs(gc_s)} in all{each}"))
    long = [took for _, took, _ in r.emu_gc if took >= 0.05]
    add(("emulator GC pauses >= 50 ms (whole run)", f"{len(long)}, {secs(sum(long))} in all"))
    writes = Writes(dict(operator_calls(r.calls, *window)), runs)
    events = "on" if r.args.normal_events else "off"
    add((f"operator writes/run (Normal Events {events})", f"{writes.per_run():.2f}"))
    add(("  without Events", f"{writes.per_run(events=False):.2f}"))
    if not writes.pruned:
        add(
            (
                "  at steady state",
                f"{writes.steady():.2f} (+1 deletecollection per {PRUNE_BATCH} runs once history is full)",
            )
        )
    add((f"target writes/run <= {TARGET_WRITES_PER_RUN:.0f}", verdict(writes.steady() <= TARGET_WRITES_PER_RUN)))
    for (verb, resource), count in sorted(writes.counts.items(), key=lambda kv: -kv[1]):
        per = count / runs if runs else math.nan
        add((f"  {verb} {resource}", f"{count} ({per:.3f}/run)"))
    others = Counter(
        c.user_agent.split("/")[0]
        for c in r.calls
        if window[0] <= c.when < window[1]
        and c.verb in WRITE_VERBS
        and c.code < 400
        and c.resource.startswith("pods")
        and not c.user_agent.startswith(OPERATOR_AGENTS)
    )
    for agent, count in others.most_common():
        add((f"Pod writes by {agent} (watch events)", f"{count / runs if runs else math.nan:.2f}/run"))
    by_request = Counter(
        (c.user_agent.split("/")[0], c.verb, c.resource)
        for c in r.calls
        if window[0] <= c.when < window[1] and c.verb != "watch"
    )
    by_agent: Counter[str] = Counter()
    for (agent, _, _), count in by_request.items():
        by_agent[agent] += count
    if runs:
        add(("API requests/run in the window (all clients)", f"{sum(by_agent.values()) / runs:.2f}"))
        for agent, count in by_agent.most_common():
            top = sorted(((n, v, res) for (a, v, res), n in by_request.items() if a == agent), reverse=True)[:4]
            detail = ", ".join(f"{v} {res} {n / runs:.2f}" for n, v, res in top)
            add((f"  {agent}", f"{count / runs:.2f} ({detail})"))
    if r.seats is not None and r.costs.enabled:
        add(("seats (whole run)", r.seats.line()))
    width = max(len(k) for k, _ in rows)
    lines = [*(r.calibration.lines() if r.calibration else [])]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["lag by scheduled time (since operator start): slots, p50, max; GC pauses: operator (full), emulator"]
    lines += lag_timeline(r.runs, r.t0, 1.0 if r.args.burst else 15.0, r.samples, r.emu_gc)
    if r.restart is not None:
        rs = r.restart
        lines += [
            f"restart (after {rs.settled_s:.0f} s for every run to be on record), first {rs.seconds:.0f} s:",
            f"  operator CPU {rs.cpu:.1f} s, RSS peak {rs.rss_mb:.0f} MB, {rs.requests} API requests",
            f"  busy (> 10 % of a core) until {'the end' if math.isinf(rs.busy_s) else f't+{rs.busy_s:.0f} s'}",
            f"  writes {sum(rs.writes.values())} {dict(sorted(rs.writes.items()))}"
            f"  target no write where nothing changed: {verdict(not rs.writes)}",
        ]
        if rs.profile:
            lines += ["restart " + rs.profile]
    lines += [f"note: {n}" for n in r.notes]
    if r.profile:
        lines += ["", r.profile]
    return "\n".join(lines)


# --- chains mode: how fast a dependency wakes its dependent ---------------------------------


#: Target for a pipeline link: an upstream's end to its dependent's Pod create (issue 18).
TARGET_LINK_S = 1.0


def parse_chains(text: str) -> tuple[int, int]:
    """`20x5` → (20 chains, 5 jobs each)."""
    count, _, length = text.partition("x")
    try:
        chains, jobs = int(count), int(length)
    except ValueError:
        raise ValueError(f"expected CHAINSxJOBS such as 20x5, got {text!r}") from None
    if chains < 1 or jobs < 2:
        raise ValueError(f"need at least 1 chain of 2 jobs, got {text!r}")
    return chains, jobs


def chain_name(chain: int, link: int) -> str:
    return f"chain{chain:03d}-{link}"


def chain_manifests(chains: int, length: int) -> list[dict[str, Any]]:
    """Link 0 of each chain runs when told (run-now); link k > 0 depends on link k - 1, no schedule."""
    out = []
    for c in range(chains):
        for k in range(length):
            spec: dict[str, Any] = {
                "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}
            }
            if k == 0:
                spec["schedule"] = {"kind": "every", "every": "24h"}
            else:
                spec["dependsOn"] = {"jobs": [chain_name(c, k - 1)]}
            out.append({"apiVersion": API, "kind": "OpenClawCronJob",
                        "metadata": {"name": chain_name(c, k), "namespace": NS}, "spec": spec})  # fmt: skip
    return out


def link_delays(
    chains: int, length: int, creates: Mapping[str, tuple[float, float, str]], succeeded: Mapping[str, float]
) -> tuple[list[float], int]:
    """Per link: the downstream's first Pod create minus the upstream's Pod end; and links never made."""
    first_pod: dict[str, tuple[float, str]] = {}
    for pod, (when, _scheduled, job) in creates.items():
        if job not in first_pod or when < first_pod[job][0]:
            first_pod[job] = (when, pod)
    delays: list[float] = []
    missing = 0
    for c in range(chains):
        for k in range(1, length):
            up, down = first_pod.get(chain_name(c, k - 1)), first_pod.get(chain_name(c, k))
            end = succeeded.get(up[1]) if up else None
            if end is None or down is None:
                missing += 1
            else:
                delays.append(max(0.0, down[0] - end))
    return delays, missing


def run_chains(args: argparse.Namespace) -> str:
    """Start every chain's head at once; measure each link; the report as text."""
    chains, length = parse_chains(args.chains)
    workdir = Path(tempfile.mkdtemp(prefix="ocj-bench-chains-"))
    emulator = BenchApiServer(record_requests=False, history_limit=2, costs=cost_model(args))
    cluster = Cluster(
        workdir,
        emulator=emulator,
        kubelet_options={
            "default_script": Script(run_seconds=args.run_seconds),
            "connections": args.kubelet_connections,
        },
    )
    with cluster:
        create_jobs(cluster, chain_manifests(chains, length), "store")
        metrics_port = free_port()
        env = {"OPENCLAW_CRON_METRICS_PORT": str(metrics_port), "OPENCLAW_CRON_GATEWAY_URL": "http://127.0.0.1:9"}
        env.update(kv.split("=", 1) for kv in args.env)
        operator = cluster.start_operator("--standalone", *args.operator_arg, env=env)
        resync = env.get("OPENCLAW_CRON_RESYNC_SECONDS", RESYNC_SECONDS)

        def all_ready() -> bool:
            objs = cluster.emulator.list_objects(API, PLURAL, NS)
            return len(objs) == chains * length and all((o.get("status") or {}).get("state") for o in objs)

        deadline = time.monotonic() + 120
        while not cluster.call(all_ready):
            if time.monotonic() > deadline or not operator.running():
                raise SystemExit(f"the jobs did not become ready:\n{operator.logs()[-4000:]}")
            time.sleep(0.2)
        import kubernetes  # the heads are told through the API, as `kubectl openclaw run` does

        client = cluster.api_client()
        api = kubernetes.client.CustomObjectsApi(client)
        group, version = API.split("/")
        t0 = time.time()
        for c in range(chains):
            patch = {"metadata": {"annotations": {"cron.openclaw.io/run-now": f"bench-{t0:.3f}"}}}
            api.patch_namespaced_custom_object(group, version, NS, PLURAL, chain_name(c, 0), patch)
        client.close()
        tails = [chain_name(c, length - 1) for c in range(chains)]

        def done() -> bool:
            return all(
                (o.get("status") or {}).get("recentRuns")
                for o in cluster.emulator.list_objects(API, PLURAL, NS)
                if o["metadata"]["name"] in tails
            )

        deadline = time.monotonic() + args.burst_wait
        while not cluster.call(done) and time.monotonic() < deadline:
            time.sleep(0.2)
        took = time.time() - t0
        creates = dict(cluster.call(lambda: dict(emulator.pod_creates)))
        succeeded = dict(cluster.call(lambda: dict(emulator.pod_succeeded)))
        counters = sum_counters(cluster)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
            scrape = resp.read().decode()
        fixes = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith("openclaw_cron_resync_corrections_total")
        )
        operator.stop()
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    delays, missing = link_delays(chains, length, creates, succeeded)
    stats = LagStats.of(delays, missing)
    ok = missing == 0 and stats.p50 <= TARGET_LINK_S and stats.p99 <= TARGET_LINK_S
    jobs = chains * length
    return "\n".join(
        [
            f"chains: {chains} chains of {length} jobs ({jobs} jobs, {chains * (length - 1)} links),"
            f" Pods run {args.run_seconds:g}s, resync {resync}s",
            f"cost model: {emulator.costs.describe()}",
            f"all heads told to run at once; every chain's last job recorded after {took:.1f}s",
            f"link delay (upstream Pod Succeeded -> downstream Pod create): n={stats.count} missing={stats.missing}"
            f" p50 {ms(stats.p50)} p95 {ms(stats.p95)} p99 {ms(stats.p99)} max {ms(stats.max)}"
            f"  target p50/p99 <= {TARGET_LINK_S:g}s: {verdict(ok)}",
            f"counters: runs {counters.get('runs', 0)} succeeded {counters.get('succeeded', 0)}"
            f" (expected {jobs} each: {verdict(counters.get('runs') == jobs == counters.get('succeeded'))})",
            f"safety-net corrections: {fixes:g} ({verdict(fixes == 0)})",
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="steady mode: number of jobs (default 1000)")
    parser.add_argument("--every", default="60s", help="steady mode: each job's interval, e.g. 60s, 10m (default 60s)")
    parser.add_argument("--minutes", type=float, default=3.0, help="steady mode: minutes from the first slot (3)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds after the first slot shown apart (default min(60, run/3))"
    )
    parser.add_argument("--burst", type=int, default=0, metavar="N", help="burst mode: N jobs due in the same second")
    parser.add_argument(
        "--chains", default="", metavar="CxL", help="chains mode: C chains of L dependent jobs, e.g. 20x5 (link delays)"
    )
    parser.add_argument(
        "--burst-again",
        type=int,
        default=0,
        metavar="S",
        help="burst mode: the jobs are due again S seconds later, and that burst is measured (the operator warm)",
    )
    parser.add_argument("--burst-wait", type=float, default=60.0, help="burst mode: give up this long after the slot")
    parser.add_argument("--idle", type=float, default=0.0, help="quiet seconds before the first slot (idle CPU)")
    parser.add_argument("--lead", type=int, default=None, help="seconds for startup before the first slot (8+N/125)")
    parser.add_argument("--create", choices=("store", "kubectl"), default="store", help="how jobs are created")
    parser.add_argument("--run-seconds", type=float, default=0.2, help="simulated run time of each Pod (default 0.2)")
    parser.add_argument("--normal-events", action="store_true", help="per-run Normal Events on (default off)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="operator environment (repeatable)")
    parser.add_argument("--operator-arg", action="append", default=[], help="extra operator flag (repeatable)")
    parser.add_argument(
        "--profile", type=float, default=0, metavar="SECONDS", help="py-spy the operator this long (window or burst)"
    )
    parser.add_argument(
        "--restart", type=float, default=0, metavar="SECONDS", help="burst mode: then restart the operator, watch"
    )
    parser.add_argument("--profile-restart", type=float, default=0, metavar="SECONDS", help="py-spy the restart")
    parser.add_argument(
        "--emulator-gc", action="store_true", help="leave the emulator's full garbage collections on (they add lag)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (operator log)")
    parser.add_argument(
        "--cost-model",
        choices=("on", "off"),
        default="on",
        help="charge a real server's service times and seats (support/costs.py; default on)",
    )
    parser.add_argument(
        "--cost", action="append", default=[], metavar="NAME=VALUE", help="cost model override, e.g. create=3ms"
    )
    parser.add_argument(
        "--calibrate",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="only measure the server's Pod create rates (N times) next to the real server's",
    )
    parser.add_argument(
        "--kubelet-events",
        choices=("on", "off"),
        default="on",
        help="the simulated kubelet and scheduler post their Pod Events (Scheduled, Pulled, ...; default on)",
    )
    parser.add_argument(
        "--kubelet-connections",
        type=int,
        default=KUBELET_CONNECTIONS,
        metavar="N",
        help=f"connections the simulated kubelet opens at start and keeps (default {KUBELET_CONNECTIONS}; 0: opened as"
        " its requests need them, each a TLS handshake on the emulator's thread, which a real kubelet never pays)",
    )
    parser.add_argument("--calibration-client", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.minutes <= 0 or args.burst < 0:
        parser.error("--jobs and --minutes must be positive, --burst not negative")
    if args.kubelet_connections < 0:
        parser.error("--kubelet-connections must not be negative (0: opened as the kubelet's requests need them)")
    try:
        parse_every(args.every)
    except ValueError as exc:
        parser.error(f"--every: {exc}")
    if any("=" not in kv for kv in args.env):
        parser.error("--env takes KEY=VALUE")
    if args.chains:
        try:
            parse_chains(args.chains)
        except ValueError as exc:
            parser.error(f"--chains: {exc}")
    if args.burst_again and (not args.burst or args.burst_again < 10 or args.restart):
        parser.error("--burst-again needs --burst, at least 10 s, and no --restart")
    if args.restart and not args.burst:
        parser.error("--restart needs --burst (nothing may be due while the restarted operator is watched)")
    try:
        cost_model(args)
    except ValueError as exc:
        parser.error(f"--cost: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.calibration_client:  # the child process of `calibrate`
        print(json.dumps(asyncio.run(calibration_client(json.loads(args.calibration_client)))), flush=True)
        return 0
    # The kubelet's in-flight Pods are cut off at shutdown; asyncio would log each one.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if args.calibrate:
        print(run_calibration(args), flush=True)
    else:
        print(run_chains(args) if args.chains else format_report(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
