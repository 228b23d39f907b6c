"""Benchmark: N `every: 60s` jobs on the emulated API server with the real operator process.

    .venv/bin/python hack/bench.py                      # 1000 jobs, 3 minutes (make bench)
    .venv/bin/python hack/bench.py --jobs 100 --minutes 1

Every job runs a `command` payload once a minute; anchors are spread evenly (whole seconds)
over one minute, starting just after the operator starts, so no slot is ever missed by design.
The emulated API server and the simulated kubelet run in this process (one thread); the
operator is a separate process (`openclaw-cron-operator --standalone`).

Figures (the first `--warmup` seconds after the operator starts are reported separately):
- lag: the emulator's receive time of each Pod create minus the Pod's
  `cron.openclaw.io/scheduled-time` annotation (slots fall on whole seconds, so it is exact);
  slots due in the window without any Pod by the end count as infinite lag;
- runs/s: Pods the kubelet finished (Succeeded) in the window / window length;
- status: sum of `status.counters` over all jobs at the end (succeeded, missed, skipped);
- operator RSS (VmRSS sampled each second, VmHWM) and CPU (utime+stime) from /proc;
- API writes by the operator's clients only (kopf's aiohttp `kopf/…` and the official
  client's `OpenAPI-Generator/…`), per successful run in the window, split by verb/resource.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import Cluster, Script  # noqa: E402
from support.emulator import ApiCall, EmulatedApiServer  # noqa: E402

API = "cron.openclaw.io/v1alpha1"
PLURAL = "openclawcronjobs"
NS = "default"
SCHEDULED_ANNOTATION = "cron.openclaw.io/scheduled-time"
JOB_LABEL = "cron.openclaw.io/job"
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/", "openclaw-cron-operator/")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
TARGET_P99_S = 1.0
TARGET_RSS_MB = 300.0
TARGET_WRITES_PER_RUN = 5.0
#: Slots due this close to the end are not measured (their Pods may legitimately still be coming).
TAIL_SECONDS = 5.0
#: py-spy frame `func (/path/to/file.py:123)` → `func (file.py)`
FRAME = re.compile(r"^(.*) \((?:.*/)?([^/]*?)(?::\d+)?\)$")


@attrs.define(kw_only=True)
class BenchApiServer(EmulatedApiServer):
    """The emulator, also noting when each Pod create arrived and when each Pod finished."""

    #: pod name → (receive time, scheduled instant from the annotation, job label)
    pod_creates: dict[str, tuple[float, float, str]] = attrs.field(factory=dict, init=False)
    #: pod name → time the kubelet reported phase Succeeded
    pod_succeeded: dict[str, float] = attrs.field(factory=dict, init=False)

    async def _dispatch(self, request: Any, path: Any, call: ApiCall) -> Any:
        response = await super()._dispatch(request, path, call)
        if call.resource == "pods" and call.verb == "create" and response.status < 400:
            meta = (request.data or {}).get("metadata") or {}
            scheduled = (meta.get("annotations") or {}).get(SCHEDULED_ANNOTATION)
            name, job = meta.get("name"), (meta.get("labels") or {}).get(JOB_LABEL, "")
            if name and scheduled and name not in self.pod_creates:
                self.pod_creates[name] = (call.when, parse_time(scheduled), job)
        elif call.resource == "pods/status" and response.status < 400 and call.name:
            phase = ((request.data or {}).get("status") or {}).get("phase")
            if phase == "Succeeded" and call.name not in self.pod_succeeded:
                self.pod_succeeded[call.name] = time.time()
        return response


def parse_time(text: str) -> float:
    """RFC 3339 → Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_manifests(count: int, first_slot: int) -> list[dict[str, Any]]:
    """`count` jobs every 60 s, anchors spread evenly over one minute on whole seconds."""
    return [
        {
            "apiVersion": API,
            "kind": "OpenClawCronJob",
            "metadata": {"name": f"bench-{i:05d}", "namespace": NS},
            "spec": {
                "schedule": {"kind": "every", "every": "60s", "anchor": rfc3339(first_slot + (i * 60) // count)},
                "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "true"]},
            },
        }
        for i in range(count)
    ]


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


def proc_cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    when: float
    rss_kb: int
    hwm_kb: int
    cpu: float
    bench_cpu: float
    host_busy: float


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


@dataclass
class Report:
    jobs: int
    minutes: float
    warmup_s: float
    window_s: float
    warmup_lag: LagStats
    lag: LagStats
    runs_per_s: float
    expected_runs_per_s: float
    counters: dict[str, int]
    window_succeeded: int
    pods_created: int
    rss_peak_mb: float
    rss_final_mb: float
    hwm_mb: float
    cpu_s: float
    window_cpu_s: float
    bench_cpu_s: float
    window_bench_cpu_s: float
    window_host_busy_s: float
    profile: str
    timeline: list[str]
    writes: dict[tuple[str, str], int]
    warmup_writes: dict[tuple[str, str], int]
    notes: list[str] = field(default_factory=list)

    @property
    def window_runs(self) -> int:
        """Runs counted for writes: the larger of runs started and runs finished in the window.

        Either alone is off by the runs that straddle the window's edges (≈1 %).
        """
        return max(self.window_succeeded, self.writes.get(("create", "pods"), 0))

    @property
    def writes_per_run(self) -> float:
        return sum(self.writes.values()) / self.window_runs if self.window_runs else math.nan

    @property
    def steady_writes_per_run(self) -> float:
        """Runs shorter than the history limit delete no Pods yet; in steady state each run prunes one."""
        if any(r == "pods" and v == "delete" for v, r in self.writes):
            return self.writes_per_run
        return self.writes_per_run + 1

    @property
    def writes_per_run_no_events(self) -> float:
        total = sum(v for (_, r), v in self.writes.items() if r != "events")
        return total / self.window_runs if self.window_runs else math.nan


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value * 1000:.0f} ms")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def format_report(r: Report) -> str:
    """A plain two-column table (plus per-verb write rows) with PASS/FAIL on the targets."""
    rows: list[tuple[str, str]] = []
    add = rows.append
    add(("jobs / duration", f"{r.jobs} jobs, every 60s, {r.minutes:g} min"))
    add(("warm-up / measured window", f"{r.warmup_s:.0f} s / {r.window_s:.0f} s"))
    for label, lag in (("lag (warm-up)", r.warmup_lag), ("lag (measured)", r.lag)):
        add((f"{label} runs", f"{lag.count} started, {lag.missing} due but never started"))
        add((f"{label} p50/p95/p99/max", " / ".join(ms(v) for v in (lag.p50, lag.p95, lag.p99, lag.max))))
    p99_ok = r.lag.count > 0 and r.lag.p99 <= TARGET_P99_S
    add(("target p99 lag <= 1 s", verdict(p99_ok)))
    add(("runs/s (measured)", f"{r.runs_per_s:.2f} (schedule demands {r.expected_runs_per_s:.2f})"))
    add(("pods created (total)", str(r.pods_created)))
    c = r.counters
    add(("status counters (sum)", ", ".join(f"{k} {c.get(k, 0)}" for k in ("runs", "succeeded", "failed"))))
    add(("missed / skipped", f"{c.get('missed', 0)} / {c.get('skipped', 0)}"))
    add(("target missed = skipped = 0", verdict(c.get("missed", 0) == 0 and c.get("skipped", 0) == 0)))
    add(("operator RSS peak / final", f"{r.rss_peak_mb:.0f} MB / {r.rss_final_mb:.0f} MB (VmHWM {r.hwm_mb:.0f} MB)"))
    add(("target RSS <= 300 MB", verdict(max(r.rss_peak_mb, r.hwm_mb) <= TARGET_RSS_MB)))
    per_run = r.window_cpu_s / r.window_succeeded if r.window_succeeded else math.nan
    add(
        (
            "operator CPU total / window",
            f"{r.cpu_s:.1f} s / {r.window_cpu_s:.1f} s ({r.window_cpu_s / r.window_s:.0%} core)",
        )
    )
    add(("operator CPU per run", ms(per_run)))
    add(
        (
            "emulator+kubelet CPU window",
            f"{r.window_bench_cpu_s:.1f} s ({r.window_bench_cpu_s / r.window_s:.0%} core; this process)",
        )
    )
    others = r.window_host_busy_s - r.window_cpu_s - r.window_bench_cpu_s
    add(
        (
            "host CPU busy in window",
            f"{r.window_host_busy_s / r.window_s:.2f} of {os.cpu_count()} cores"
            f" (other processes {max(0.0, others) / r.window_s:.2f} cores)",
        )
    )
    add(("succeeded runs in window", str(r.window_succeeded)))
    add(("operator writes/run", f"{r.writes_per_run:.2f} (without Events {r.writes_per_run_no_events:.2f})"))
    steady = r.steady_writes_per_run
    if steady != r.writes_per_run:
        add(("writes/run at steady state", f"{steady:.2f} (+1 pod delete/run once history limit 3 is full)"))
    add(("target writes/run <= 5", verdict(steady <= TARGET_WRITES_PER_RUN)))
    for (verb, resource), count in sorted(r.writes.items(), key=lambda kv: -kv[1]):
        per = count / r.window_succeeded if r.window_succeeded else math.nan
        add((f"  window {verb} {resource}", f"{count} ({per:.2f}/run)"))
    for (verb, resource), count in sorted(r.warmup_writes.items(), key=lambda kv: -kv[1]):
        add((f"  warm-up {verb} {resource}", f"{count} ({count / r.jobs:.2f}/job)"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["lag by scheduled time (since operator start): slots, p50, max", *r.timeline]
    lines += [f"note: {n}" for n in r.notes]
    if r.profile:
        lines += ["", r.profile]
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


def start_profiler(pid: int, seconds: float, workdir: Path) -> subprocess.Popen[bytes] | None:
    """`py-spy record --gil` (on-CPU Python only, 20 Hz, collapsed stacks) on the operator, if installed."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists() or seconds < 5:
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


def create_jobs(cluster: Cluster, manifests: list[dict[str, Any]]) -> None:
    """`kubectl create` in chunks (one POST per job, user agent kubectl)."""
    for start in range(0, len(manifests), 250):
        chunk = {"apiVersion": "v1", "kind": "List", "items": manifests[start : start + 250]}
        cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(chunk), timeout=300)


def operator_writes(calls: list[ApiCall], since: float, until: float) -> Counter[tuple[str, str]]:
    return Counter(
        (c.verb, c.resource)
        for c in calls
        if since <= c.when < until
        and c.verb in WRITE_VERBS
        and c.code < 400
        and c.user_agent.startswith(OPERATOR_AGENTS)
    )


def sum_counters(cluster: Cluster) -> dict[str, int]:
    def total() -> dict[str, int]:
        out: Counter[str] = Counter()
        for rt in cluster.emulator.list_objects(API, PLURAL, NS):
            for k, v in ((rt.get("status") or {}).get("counters") or {}).items():
                out[k] += int(v)
        return dict(out)

    return cluster.call(total)


def run(args: argparse.Namespace) -> Report:
    total_s = args.minutes * 60.0
    warmup_s = args.warmup if args.warmup is not None else min(60.0, total_s / 3)
    workdir = Path(tempfile.mkdtemp(prefix="ocj-bench-"))
    cluster = Cluster(
        workdir,
        emulator_options={"record_requests": False},
        kubelet_options={"default_script": Script(run_seconds=args.run_seconds)},
    )
    # Same options as Cluster would pass, plus the recording subclass; bounded memory.
    cluster.emulator = BenchApiServer(record_requests=False, history_limit=2, watch_cache_size=20_000)
    emulator: BenchApiServer = cluster.emulator
    samples: list[Sample] = []
    notes: list[str] = []
    with cluster:
        first_slot = int(time.time()) + args.lead + max(5, args.jobs // 200)
        t = time.monotonic()
        create_jobs(cluster, job_manifests(args.jobs, first_slot))
        print(f"created {args.jobs} jobs in {time.monotonic() - t:.1f}s; first slot {rfc3339(first_slot)}", flush=True)
        env = {"OPENCLAW_CRON_METRICS_PORT": "0", "OPENCLAW_CRON_GATEWAY_URL": "http://127.0.0.1:9"}
        operator = cluster.start_operator("--standalone", *args.operator_arg, env=env)
        t0 = time.time()
        if first_slot < t0 + 1:
            notes.append("the first slots came due before the operator started (slow job creation)")
        warm_end, end = t0 + warmup_s, t0 + total_s
        bench_cpu0 = proc_cpu_seconds()
        window_counters: dict[str, int] = {}
        window_cpu: tuple[float, float, float] | None = None
        profiler: subprocess.Popen[bytes] | None = None
        next_print = t0 + 30
        while (now := time.time()) < end:
            if not operator.running():
                raise SystemExit(f"the operator exited:\n{operator.logs()[-4000:]}")
            samples.append(
                Sample(
                    now,
                    proc_status_kb(operator.pid, "VmRSS"),
                    proc_status_kb(operator.pid, "VmHWM"),
                    proc_cpu_seconds(operator.pid),
                    proc_cpu_seconds() - bench_cpu0,
                    host_busy_seconds(),
                )
            )
            if window_cpu is None and now >= warm_end:
                window_counters = sum_counters(cluster)
                window_cpu = (samples[-1].cpu, samples[-1].bench_cpu, samples[-1].host_busy)
                if profiler is None and args.profile:
                    profiler = start_profiler(operator.pid, min(args.profile, end - now - 5), workdir)
            if now >= next_print:
                s = samples[-1]
                print(
                    f"t+{now - t0:4.0f}s pods {len(emulator.pod_creates)} rss {s.rss_kb / 1024:.0f} MB"
                    f" cpu {s.cpu:.1f}s emulator cpu {s.bench_cpu:.1f}s",
                    flush=True,
                )
                next_print += 30
            time.sleep(max(0.0, min(1.0, end - time.time())))
        final = samples[-1]
        profile = finish_profiler(profiler, workdir) if profiler is not None else ""
        end_counters = sum_counters(cluster)
        creates = dict(cluster.call(lambda: dict(emulator.pod_creates)))
        succeeded = dict(cluster.call(lambda: dict(emulator.pod_succeeded)))
        calls: list[ApiCall] = cluster.call(lambda: list(emulator.calls))
        operator.stop()
        if "Traceback" in operator.log_path.read_text(errors="replace"):
            notes.append(f"the operator logged a traceback; see {operator.log_path}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        notes.append(f"work directory kept: {workdir}")

    # Lags by scheduled instant: warm-up slots vs measured slots; due slots without a Pod.
    measured_until = end - TAIL_SECONDS
    by_slot: dict[tuple[str, float], float] = {}
    for when, scheduled, job in sorted(creates.values()):  # a retry's Pod is not the run's start
        by_slot.setdefault((job, scheduled), when - scheduled)
    timeline = lag_timeline(by_slot, t0, 15.0)
    warm = [lag for (_, s), lag in by_slot.items() if s < warm_end]
    meas = [lag for (_, s), lag in by_slot.items() if warm_end <= s < measured_until]
    due_warm = due_meas = 0
    for i in range(args.jobs):
        anchor = first_slot + (i * 60) // args.jobs
        for k in range(int(total_s // 60) + 2):
            s = anchor + 60 * k
            if s < warm_end:
                due_warm += 1
            elif s < measured_until:
                due_meas += 1
    window_cpu = window_cpu or (final.cpu, final.bench_cpu, final.host_busy)
    window_s = end - warm_end
    done = [w for w in succeeded.values() if warm_end <= w < end]
    window_succeeded = end_counters.get("succeeded", 0) - window_counters.get("succeeded", 0)
    return Report(
        jobs=args.jobs,
        minutes=args.minutes,
        warmup_s=warmup_s,
        window_s=window_s,
        warmup_lag=LagStats.of(warm, max(0, due_warm - len(warm))),
        lag=LagStats.of(meas, max(0, due_meas - len(meas))),
        runs_per_s=len(done) / window_s if window_s > 0 else math.nan,
        expected_runs_per_s=args.jobs / 60,
        counters=end_counters,
        window_succeeded=window_succeeded,
        pods_created=len(creates),
        rss_peak_mb=max(s.rss_kb for s in samples) / 1024,
        rss_final_mb=final.rss_kb / 1024,
        hwm_mb=final.hwm_kb / 1024,
        cpu_s=final.cpu,
        window_cpu_s=final.cpu - window_cpu[0],
        bench_cpu_s=final.bench_cpu,
        window_bench_cpu_s=final.bench_cpu - window_cpu[1],
        window_host_busy_s=final.host_busy - window_cpu[2],
        profile=profile,
        timeline=timeline,
        writes=dict(operator_writes(calls, warm_end, end)),
        warmup_writes=dict(operator_writes(calls, 0.0, warm_end)),
        notes=notes,
    )


def lag_timeline(by_slot: dict[tuple[str, float], float], t0: float, step: float) -> list[str]:
    """One line per `step` seconds of scheduled time: slots started, p50 and max lag."""
    buckets: dict[int, list[float]] = {}
    for (_, scheduled), lag in by_slot.items():
        buckets.setdefault(int((scheduled - t0) // step), []).append(lag)
    lines = []
    for b in sorted(buckets):
        lags = sorted(buckets[b])
        lines.append(f"  t+{b * step:4.0f}s  {len(lags):5d}  {ms(percentile(lags, 50)):>9}  {ms(lags[-1]):>9}")
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="number of OpenClawCronJobs (default 1000)")
    parser.add_argument("--minutes", type=float, default=3.0, help="run time after the operator starts (default 3)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds excluded from the percentiles (default min(60, run/3))"
    )
    parser.add_argument("--run-seconds", type=float, default=0.2, help="simulated run time of each Pod (default 0.2)")
    parser.add_argument("--lead", type=int, default=3, help="seconds from job creation to the first slot (plus N/200)")
    parser.add_argument("--operator-arg", action="append", default=[], help="extra operator flag (repeatable)")
    parser.add_argument(
        "--profile", type=float, default=0, metavar="SECONDS", help="py-spy the operator this long in the window"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (operator log)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.minutes <= 0:
        parser.error("--jobs and --minutes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The kubelet's in-flight Pods are cut off at shutdown; asyncio would log each one.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    report = run(args)
    print(format_report(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
