"""The benchmark's arithmetic (hack/bench.py): slots, readiness, burst figures, writes per run.

The figures in docs/bench.md are only as good as these: a wrong slot count would hide missed
runs, a wrong readiness check would call a stale nextRunTime correct.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack" / "bench.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ocj_bench", HACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ocj_bench"] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def brute_slots(anchor: int, period: int, lo: float, hi: float) -> int:
    return sum(1 for k in range(0, 10_000) if lo <= anchor + k * period < hi)


@pytest.mark.parametrize(
    ("anchor", "period", "lo", "hi"),
    [
        (100, 60, 0, 100),  # ends right at the anchor: none
        (100, 60, 0, 101),  # the anchor itself
        (100, 60, 100, 160),  # [anchor, next) holds one
        (100, 60, 100.5, 160),  # just after the anchor: the next one is at hi, excluded
        (100, 60, 99.5, 400.5),
        (100, 600, 130, 2000),
        (100, 7, 50, 50),
    ],
)
def test_slots_in_matches_enumeration(anchor: int, period: int, lo: float, hi: float) -> None:
    assert bench.slots_in(anchor, period, lo, hi) == brute_slots(anchor, period, lo, hi)


def test_plan_spreads_10000_jobs_every_10m_evenly_over_whole_seconds() -> None:
    plan = bench.Plan(jobs=10_000, period=600, first_slot=1_000)
    per_second = Counter(plan.anchor(i) for i in range(plan.jobs))
    assert min(per_second) == 1_000 and max(per_second) == 1_599
    assert set(per_second.values()) == {16, 17}  # ~16.7 runs/s, no second twice as busy
    assert plan.due(1_000, 1_600) == 10_000
    assert plan.due(1_000, 1_060) == sum(per_second[s] for s in range(1_000, 1_060))
    manifest = plan.manifests()[123]
    assert manifest["spec"]["schedule"] == {"kind": "every", "every": "10m", "anchor": bench.rfc3339(plan.anchor(123))}


def test_burst_plan_anchors_every_job_at_one_second() -> None:
    plan = bench.Plan(jobs=50, period=3600, first_slot=2_000, spread=False)
    assert {m["spec"]["schedule"]["anchor"] for m in plan.manifests()} == {bench.rfc3339(2_000)}
    assert {m["spec"]["schedule"]["every"] for m in plan.manifests()} == {"1h"}
    assert plan.due(2_000, 2_001) == 50 and plan.due(2_001, 5_000) == 0
    assert plan.burst_slot == 2_000


def test_burst_again_measures_the_next_burst_a_period_later(capsys: pytest.CaptureFixture[str]) -> None:
    plan = bench.Plan(jobs=50, period=60, first_slot=2_000, spread=False, measured=1)
    assert plan.burst_slot == 2_060 and plan.due(2_060, 2_061) == 50
    assert bench.parse_args(["--burst", "200", "--burst-again", "60"]).burst_again == 60
    for wrong in (["--burst-again", "60"], ["--burst", "200", "--burst-again", "5"]):
        with pytest.raises(SystemExit):
            bench.parse_args(wrong)
        assert "--burst-again needs --burst, at least 10 s, and no --restart" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("10m", 600), ("1h", 3600), (" 90s ", 90)])
def test_parse_every(text: str, seconds: int) -> None:
    assert bench.parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "10", "1d", "1m30s", "-5s"])
def test_parse_every_refuses_what_it_cannot_schedule(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive duration like 60s, 10m or 1h"):
        bench.parse_every(text)


def test_format_every_round_trips() -> None:
    for seconds in (45, 60, 90, 600, 3600, 5400):
        assert bench.parse_every(bench.format_every(seconds)) == seconds


def test_correct_next_is_the_coming_slot_only() -> None:
    anchor, period = 1_000, 60
    assert bench.correct_next(1_000, anchor, period, when=900)  # before the anchor: the anchor
    assert not bench.correct_next(1_060, anchor, period, when=900)  # skips a slot: wrong
    assert not bench.correct_next(999, anchor, period, when=900)  # a second off: wrong
    assert bench.correct_next(1_060, anchor, period, when=1_000.2)  # the anchor's run just started
    assert bench.correct_next(1_000, anchor, period, when=1_003)  # its run not started yet (grace)
    assert not bench.correct_next(1_000, anchor, period, when=1_000 + bench.READY_GRACE_S + 1)
    assert bench.correct_next(1_120, anchor, period, when=1_090)


def test_readiness_is_the_last_job_and_never_while_one_is_missing() -> None:
    assert bench.readiness({"a": 12.0, "b": 15.5}, 2, t0=10.0) == (5.5, 0)
    assert bench.readiness({"a": 12.0}, 3, t0=10.0) == (math.inf, 2)
    assert bench.readiness({}, 1, t0=10.0) == (math.inf, 1)


def test_first_creates_keeps_a_runs_first_pod_not_its_retry() -> None:
    creates = {
        "j-100-2": (105.0, 100.0, "j"),  # attempt 2, later
        "j-100-1": (100.1, 100.0, "j"),
        "k-100-1": (100.3, 100.0, "k"),
    }
    assert bench.first_creates(creates) == {("j", 100.0): 100.1, ("k", 100.0): 100.3}


def test_burst_figures() -> None:
    runs = {(f"j{i}", 500.0): 500.5 + i * 0.01 for i in range(101)}  # 101 creates over 1 s
    runs[("other", 560.0)] = 560.1  # a different slot is not part of the burst
    burst = bench.Burst.of(runs, 500.0, 101)
    assert burst.created == 101 and burst.lag.missing == 0
    assert burst.to_last == pytest.approx(1.5)
    assert burst.rate == pytest.approx(100.0)
    assert burst.lag.p50 == pytest.approx(1.0)
    assert burst.lag.max == pytest.approx(1.5)


def test_burst_with_a_missing_create_never_finished() -> None:
    runs = {(f"j{i}", 500.0): 500.2 for i in range(9)}
    burst = bench.Burst.of(runs, 500.0, 10)
    assert burst.created == 9 and burst.lag.missing == 1
    assert math.isinf(burst.to_last) and math.isinf(burst.lag.max)
    assert math.isinf(bench.Burst.of({}, 500.0, 10).to_last)


def test_lag_stats_count_missing_runs_as_infinite() -> None:
    lag = bench.LagStats.of([0.1] * 98, missing=2)
    assert lag.count == 98 and lag.p95 == pytest.approx(0.1) and math.isinf(lag.p99)


def test_writes_per_run_with_and_without_events_and_at_steady_state() -> None:
    counts = {("create", "pods"): 100, ("patch", "openclawcronjobs/status"): 100, ("create", "events"): 200}
    writes = bench.Writes(counts, runs=100)
    assert writes.per_run() == pytest.approx(4.0)
    assert writes.per_run(events=False) == pytest.approx(2.0)
    assert not writes.pruned
    assert writes.steady(events=False) == pytest.approx(2.2)  # + a deletecollection per 5 runs
    pruned = bench.Writes({**counts, ("deletecollection", "pods"): 20}, runs=100)
    assert pruned.pruned and pruned.steady(events=False) == pytest.approx(2.2)  # measured, not added
    assert math.isnan(bench.Writes({}, runs=0).per_run())


def test_usage_brackets_the_interval_with_samples() -> None:
    samples = [bench.Sample(float(t), 0, 0, cpu=t * 0.1, emu_cpu=t * 0.2, host_busy=t * 1.0) for t in range(10)]
    u = bench.usage(samples, 2.5, 6.5)
    assert u is not None
    assert u.seconds == pytest.approx(5.0)  # samples at 2 and 7
    assert u.cpu == pytest.approx(0.5) and u.emu_cpu == pytest.approx(1.0)
    assert u.others == pytest.approx((5.0 - 0.5 - 1.0) / 5.0)
    assert bench.usage(samples, -1, 3) is None and bench.usage(samples, 3, 20) is None


def test_operator_calls_count_only_the_operators_successful_requests() -> None:
    def call(when: float, verb: str, resource: str, agent: str, code: int = 201) -> object:
        return bench.ApiCall(when, verb, "", resource, "default", None, agent, code)

    calls = [
        call(1, "create", "pods", "openclaw-cron-operator/0.1"),
        call(2, "deletecollection", "pods", "openclaw-cron-operator/0.1", 200),
        call(3, "create", "pods", "openclaw-cron-operator/0.1", 409),  # refused: not a write
        call(4, "patch", "pods/status", "simulated-kubelet/1.0"),  # the kubelet's
        call(5, "list", "pods", "kopf/1.37"),
        call(9, "create", "pods", "openclaw-cron-operator/0.1"),  # outside the window
    ]
    assert bench.operator_calls(calls, 0, 8) == Counter({("create", "pods"): 1, ("deletecollection", "pods"): 1})
    assert sum(bench.operator_calls(calls, 0, 8, verbs=None).values()) == 3


def test_summarize_profile_shares() -> None:
    raw = "main (a.py:1);loop (b.py:2);reconcile (reconcile.py:3) 30\nmain (a.py:1);loop (b.py:2) 10\n"
    text = bench.summarize_profile(raw)
    assert "profile: 40 samples" in text
    assert " 75.0%  reconcile (reconcile.py)" in text
    assert "100.0%  main (a.py)" in text
    assert bench.summarize_profile("") == "profile: no samples"


def test_busy_until_is_the_last_busy_second() -> None:
    # 1 core busy for 3 s, then idle (0.01 of a core)
    samples = [(t * 0.5, min(t * 0.5, 3.0) + max(0.0, t * 0.5 - 3.0) * 0.01) for t in range(21)]
    assert 3.0 <= bench.busy_until(samples) <= 3.0 + 1.0  # within one span of the true end
    still = [(t * 0.5, t * 0.5) for t in range(11)]
    assert math.isinf(bench.busy_until(still))
    assert bench.busy_until([(t * 0.5, 0.0) for t in range(11)]) == 0.0
    assert bench.busy_until([]) == 0.0


# --- the cost model's settings and the calibration figures --------------------------------------


def test_cost_overrides_take_seconds_or_milliseconds_and_whole_seats() -> None:
    assert bench.parse_costs(["create=3ms", "get=0.0005", " seats = 4 ", "contention=0", "server_concurrency=0"]) == {
        "create": pytest.approx(0.003),
        "get": 0.0005,
        "seats": 4,
        "contention": 0.0,
        "server_concurrency": 0,
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("creates=3ms", "expected NAME=VALUE with NAME one of contention, create, delete, get, list, patch, seats"),
        ("create=fast", "create: expected a number of seconds, or of milliseconds with 'ms' (3ms), got 'fast'"),
        ("create", "create: expected a number of seconds, or of milliseconds with 'ms' (3ms), got ''"),
        ("create=-1ms", "create: expected a number of seconds, or of milliseconds with 'ms' (3ms), got '-1ms'"),
        ("seats=1.5", "seats is a whole number, got '1.5'"),
        ("seats=2ms", "seats is a whole number, got '2ms'"),
        ("server_concurrency=lots", "server_concurrency is a whole number, got 'lots'"),
    ],
)
def test_bad_cost_overrides_are_refused_saying_what_is_expected(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        bench.parse_costs([item])


def test_the_bench_charges_the_calibrated_model_unless_told_not_to(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.cost_model(bench.parse_args([])) == bench.CostModel()
    assert bench.cost_model(bench.parse_args(["--cost-model", "off"])) == bench.CostModel.off()
    tuned = bench.cost_model(bench.parse_args(["--cost", "seats=3", "--cost", "create=2ms"]))
    assert (tuned.seats, tuned.create, tuned.patch) == (3, 0.002, bench.CostModel().patch)
    with pytest.raises(SystemExit):
        bench.parse_args(["--cost", "seats=many"])
    assert "--cost: seats is a whole number, got 'many'" in capsys.readouterr().err


def test_server_time_is_arrival_to_stored_of_each_runs_first_pod() -> None:
    creates = {"j-1": (100.30, 100.0, "j"), "j-1-retry": (104.0, 100.0, "j"), "k-1": (100.50, 100.0, "k")}
    arrivals = {"j-1": 100.10, "j-1-retry": 103.9, "k-1": 100.45}
    assert bench.server_times(creates, arrivals) == {
        ("j", 100.0): pytest.approx(0.20),
        ("k", 100.0): pytest.approx(0.05),
    }


def test_calibration_lines_put_each_rate_next_to_the_real_servers() -> None:
    sequential = bench.Phase(width=1, seconds=1.0, latencies=[0.0035] * 285)
    parallel = bench.Phase(width=10, seconds=2.0, latencies=[0.019] * 1040)
    lines = bench.Calibration(bench.CostModel(), sequential, parallel).lines()
    assert lines[0].startswith("calibration, cost model seats 2")
    assert "285 creates/s (285 in 1.00 s; latency p50 4 ms p99 4 ms); real server 285/s (100%)" in lines[1]
    assert "10 in flight" in lines[2] and "520 creates/s" in lines[2] and "real server 520/s (100%)" in lines[2]


def test_the_kubelet_keeps_a_pool_of_connections_unless_told_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.parse_args([]).kubelet_connections == bench.KUBELET_CONNECTIONS > 0
    assert bench.parse_args(["--kubelet-connections", "0"]).kubelet_connections == 0
    with pytest.raises(SystemExit):
        bench.parse_args(["--kubelet-connections", "-1"])
    assert "--kubelet-connections must not be negative" in capsys.readouterr().err
