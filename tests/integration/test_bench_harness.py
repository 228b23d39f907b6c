"""The benchmark's harness: jobs seeded in the emulator's store are what the API would create,
and a small burst through the real operator is measured end to end (counts, not speed)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import Cluster
from support.apimachinery import ApiError

HACK = Path(__file__).resolve().parents[2] / "hack" / "bench.py"
API = "cron.openclaw.io/v1alpha1"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ocj_bench_it", HACK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ocj_bench_it"] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def job(name: str, **extra_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "OpenClawCronJob",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": "a"}},
        "spec": {
            "schedule": {"kind": "every", "every": "10m", "anchor": "2030-01-01T00:00:00Z"},
            "payload": {"kind": "command", "image": "busybox:1.36", "command": ["true"]},
            **extra_spec,
        },
    }


def shape(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with its identity values blanked (they differ by design), keys kept."""
    out = json.loads(json.dumps(obj))
    meta = out["metadata"]
    for key in ("name", "uid", "resourceVersion", "creationTimestamp"):
        assert meta.get(key), f"metadata.{key} missing"
        meta[key] = "*"
    return out


def test_seeded_job_looks_exactly_like_an_api_created_one(cluster: Cluster) -> None:
    # --validate=false: the server prunes the unknown field instead of kubectl refusing it
    cluster.kubectl("create", "--validate=false", "-f", "-", input=json.dumps(job("via-api", unknownField=1)))
    before = cluster.call(lambda: cluster.emulator.resource_version)
    seeded = cluster.call(
        lambda: cluster.emulator.create_object(API, "openclawcronjobs", "default", job("seeded", unknownField=1))
    )
    via_api = cluster.get(API, "openclawcronjobs", "default", "via-api")
    stored = cluster.get(API, "openclawcronjobs", "default", "seeded")
    assert via_api is not None and stored is not None
    assert stored == seeded  # what create_object returns is what is stored
    assert shape(stored) == shape(via_api)  # same defaults, same pruning of unknownField
    assert "unknownField" not in stored["spec"]
    assert stored["metadata"]["generation"] == 1
    assert int(stored["metadata"]["resourceVersion"]) == before + 1
    assert stored["metadata"]["uid"] != via_api["metadata"]["uid"]
    assert stored["metadata"]["creationTimestamp"].endswith("Z")
    # kubectl (a real client) sees it like any other, watch included
    names = [o["metadata"]["name"] for o in cluster.kubectl_json("get", "openclawcronjobs")["items"]]
    assert names == ["seeded", "via-api"]


def test_seeding_is_validated_like_a_post(cluster: Cluster) -> None:
    bad = job("bad")
    bad["spec"]["schedule"]["kind"] = "weekly"
    with pytest.raises(ApiError) as info:
        cluster.call(lambda: cluster.emulator.create_object(API, "openclawcronjobs", "default", bad))
    posted = cluster.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert info.value.code == 422
    assert posted.returncode != 0 and "spec.schedule.kind" in posted.stderr
    assert "spec.schedule.kind" in json.dumps(info.value.status())


def test_small_burst_through_the_real_operator_is_counted() -> None:
    """20 jobs due in one second: every Pod create is seen, readiness found, writes ≤ 3 per run,
    and a restart afterwards is watched; the cost model is on and calibrated first."""
    args = bench.parse_args(["--burst", "20", "--lead", "12", "--burst-wait", "30", "--restart", "6"])
    result = bench.run(args)
    burst = bench.Burst.of(result.runs, result.plan.first_slot, 20)
    assert burst.created == 20 and math.isfinite(burst.to_last)
    ready_s, not_ready = bench.readiness(result.ready_at, 20, result.t0)
    assert not_ready == 0 and ready_s < result.plan.first_slot - result.t0
    writes = bench.Writes(dict(bench.operator_calls(result.calls, result.plan.first_slot - 1, result.end)), 20)
    assert writes.counts[("create", "pods")] == 20
    assert writes.steady() <= bench.TARGET_WRITES_PER_RUN
    # a restarted operator over recorded jobs, nothing due: it lists and watches, and writes nothing
    assert result.restart is not None and result.restart.requests > 0
    assert result.restart.writes == {}
    report = bench.format_report(result)
    assert re.search(r"^pods created for the slot +20 of 20$", report, re.M)
    assert re.search(r"^target all creates <= 5 s after the slot +(PASS|FAIL)$", report, re.M)
    assert "traceback" not in report
    # the calibration ran against this server first, through the cost model's seats
    assert result.calibration is not None and result.costs == bench.CostModel()
    assert len(result.calibration.sequential.latencies) == 300 and len(result.calibration.parallel.latencies) == 1000
    assert re.search(r"^  Pod creates one at a time: \d+ creates/s .*real server 285/s", report, re.M)
    assert result.seats is not None and result.seats.peak == result.costs.seats and result.seats.waited > 0
    assert re.search(r"^  sent -> stored \(server\) p50/p99 +\d+ ms / \d+ ms$", report, re.M)
