"""Helpers shared by the operator scenarios (integration tier here, e2e against a real cluster)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from support import Cluster, OperatorProcess, wait_for
from support.postgres import free_port

API = "cron.openclaw.io/v1alpha1"
PLURAL = "openclawcronjobs"
NS = "default"

#: Operator settings that make the fast suite fast: a short start timeout. The resync stays a day
#: (support.cluster.RESYNC_SECONDS): no scenario may pass by waiting for the safety net.
FAST_ENV = {
    "OPENCLAW_CRON_START_TIMEOUT_SECONDS": "4",
    # nothing listens there: runner Pods fail fast with GatewayUnreachable
    "OPENCLAW_CRON_GATEWAY_URL": "http://127.0.0.1:9",
}


def command_job(name: str, every: str = "2s", **spec: Any) -> dict[str, Any]:
    """A job whose Pods the simulated kubelet runs (script them by name prefix)."""
    body: dict[str, Any] = {
        "schedule": {"kind": "every", "every": every},
        "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi"]},
    }
    body.update(spec)
    return {"apiVersion": API, "kind": "OpenClawCronJob", "metadata": {"name": name, "namespace": NS}, "spec": body}


#: What the operator logs when its safety-net pass corrects a job (scheduler._count_correction).
CORRECTION_LOG = "the safety-net pass corrected"


def start(cluster: Cluster, *args: str, **env: str) -> OperatorProcess:
    """The operator with FAST_ENV; it serves /metrics on a free port (`process.metrics_port`) unless
    the test chose one, so the end-of-test check can read its safety-net corrections."""
    port = env.get("OPENCLAW_CRON_METRICS_PORT") or str(free_port())
    process = cluster.start_operator(
        *(args or ("--standalone",)), env={**FAST_ENV, **env, "OPENCLAW_CRON_METRICS_PORT": port}
    )
    process.metrics_port = int(port)  # type: ignore[attr-defined]
    return process


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def corrections(port: int) -> float:
    """`openclaw_cron_resync_corrections_total`, summed over its kinds."""
    total = 0.0
    for line in scrape(port).splitlines():
        if line.startswith("openclaw_cron_resync_corrections_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def assert_no_corrections(process: OperatorProcess) -> None:
    """No safety-net pass corrected anything: every wake this scenario needed came from an event."""
    port = getattr(process, "metrics_port", None)
    text = process.log_path.read_text(errors="replace")  # (a stopped process has closed its log)
    if process.running() and port:
        assert corrections(port) == 0, f"safety-net corrections counted:\n{text[-4000:]}"
    fixed = [line for line in text.splitlines() if CORRECTION_LOG in line]
    assert not fixed, "the safety-net pass corrected what no event woke:\n" + "\n".join(fixed[:10])


def job(cluster: Cluster, name: str) -> dict[str, Any]:
    obj = cluster.get(API, PLURAL, NS, name)
    assert obj is not None, f"{name} is gone"
    return obj


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(job(cluster, name).get("status") or {})


def wait_status(
    cluster: Cluster, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30, what: str = ""
) -> dict[str, Any]:
    """Wait until the job's status satisfies `predicate`; the failure message shows the last status."""
    last: dict[str, Any] = {}

    def check() -> bool:
        nonlocal last
        obj = cluster.get(API, PLURAL, NS, name)
        last = dict((obj or {}).get("status") or {})
        return bool(obj) and predicate(last)

    try:
        wait_for(check, timeout, 0.1, what or f"status of {name}")
    except Exception as exc:
        raise AssertionError(f"{what or 'condition'} not met; last status:\n{json.dumps(last, indent=1)}") from exc
    return last


def runs(st: dict[str, Any], result: str | None = None) -> list[dict[str, Any]]:
    return [r for r in st.get("recentRuns", []) if result is None or r["result"] == result]


def job_pods(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    return [p for p in cluster.pods(NS) if p["metadata"].get("labels", {}).get("cron.openclaw.io/job") == name]


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def patch_spec(cluster: Cluster, name: str, patch: dict[str, Any]) -> None:
    cluster.kubectl("patch", "ocj", name, "-n", NS, "--type", "merge", "-p", json.dumps({"spec": patch}))


def sleep(seconds: float) -> None:
    time.sleep(seconds)
