"""What the chart installs, run for real: the built image's entry points, its user and filesystem,
the operator from it against the emulated API server, and its runner against a real gateway."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openclaw_gateway as harness
import pytest
from image_engine import IMAGE, UID, hardened, run

from openclaw_cron.naming import ANNOTATION_RUN_NOW, LABEL_JOB
from support import Cluster, wait_for

API = "cron.openclaw.io/v1alpha1"
NS = "default"
RUNNER_IN_IMAGE = Path(__file__).resolve().parent / "run_in_image.py"


def in_image(cli: list[str], entrypoint: str, *args: str, env: dict[str, str] | None = None) -> Any:
    flags = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return run(cli, "run", "--rm", *hardened(cli), *flags, "--entrypoint", entrypoint, IMAGE, *args)


@pytest.mark.parametrize(
    ("entrypoint", "usage"),
    [
        ("openclaw-cron-runner", "usage: openclaw-cron-runner"),
        ("kubectl-openclaw", "usage: kubectl openclaw"),
        ("openclaw-cron-operator", "usage: openclaw-cron-operator"),
    ],
)
def test_entry_points_answer_help(container_cli: list[str], entrypoint: str, usage: str) -> None:
    result = in_image(container_cli, entrypoint, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(usage), result.stdout


def test_image_runs_as_65532_on_a_read_only_root(container_cli: list[str]) -> None:
    config = json.loads(run(container_cli, "image", "inspect", IMAGE).stdout)[0]["Config"]
    assert config["User"] == f"{UID}:{UID}" and config["Entrypoint"] == ["openclaw-cron-operator"]
    probe = """
import os, errno, openclaw_cron
print(os.getuid(), os.getgid())
for path in ("/opt/venv/probe", os.path.join(os.path.dirname(openclaw_cron.__file__), "probe"), "/probe"):
    try:
        open(path, "w")
    except OSError as e:
        print(path, errno.errorcode[e.errno])
open("/tmp/probe", "w").write("ok")
print("tmp", open("/tmp/probe").read())
"""
    result = in_image(container_cli, "python3", "-c", probe)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{UID} {UID}"
    assert all(line.endswith("EROFS") for line in lines[1:4]), lines  # not EACCES: the root is read-only
    assert lines[4] == "tmp ok"


def test_runner_from_the_image_runs_an_agent_turn(
    container_cli: list[str], openclaw: harness.Gateway, stub_model: harness.StubModel, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    result = tmp_path / "termination-log"
    result.write_text("")
    result.chmod(0o666)
    env = {
        "OPENCLAW_GATEWAY_URL": openclaw.url,
        "OPENCLAW_HOOKS_TOKEN": openclaw.hooks_token,
        "OPENCLAW_CRON_REQUEST": json.dumps(
            {"payload": {"kind": "agentTurn", "message": f"Report status {marker}"}, "wakeMode": "next-heartbeat"}
        ),
        "OPENCLAW_CRON_JOB": "tests/image-tier",
        "OPENCLAW_CRON_RUN_ID": "image-tier-1767254400",
        "OPENCLAW_CRON_ATTEMPT": "1",
        "OPENCLAW_CRON_IDEMPOTENCY_KEY": f"ocj-{uuid.uuid4()}-1767254400-1",
        "OPENCLAW_CRON_TIMEOUT_SECONDS": "90",
        "OPENCLAW_CRON_RESULT_PATH": "/dev/termination-log",
    }
    flags = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    proc = run(
        container_cli,
        "run",
        "--rm",
        *hardened(container_cli),
        "-v",
        f"{result}:/dev/termination-log",
        *flags,
        "--entrypoint",
        "openclaw-cron-runner",
        IMAGE,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcome = json.loads(result.read_text())
    assert (outcome["result"], outcome["reason"], outcome["httpStatus"]) == ("Succeeded", "Completed", 200), outcome
    assert uuid.UUID(outcome["gatewayRunId"]) and outcome["completion"]["status"] == "ok"
    assert stub_model.completions_with(marker) >= 1, "the turn must have reached the model"
    assert openclaw.hooks_token not in proc.stdout + proc.stderr + result.read_text()


# --- the operator from the image against the emulated API server ------------------------------


@pytest.fixture
def cluster(container_cli: list[str], openclaw: harness.Gateway, tmp_path: Path) -> Iterator[Cluster]:
    """The emulated cluster; its kubelet runs runner Pods from the image too (run_in_image.py)."""
    kubelet = {
        "runner_command": [sys.executable, str(RUNNER_IN_IMAGE)],
        "extra_env": {"OCJ_TEST_ENGINE": json.dumps(container_cli), "OCJ_TEST_IMAGE": IMAGE},
    }
    cluster = Cluster(tmp_path / "cluster", kubelet_options=kubelet).start()
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "openclaw-hooks", "namespace": NS},
            "stringData": {"token": openclaw.hooks_token},
        }
    )
    try:
        yield cluster
    finally:
        cluster.stop()
        for process in cluster._processes:  # shown by pytest when the test failed
            print(f"----- {process.log_path.name} (tail) -----\n{process.log_path.read_text()[-4000:]}")


def settled_run(cluster: Cluster, name: str, timeout: float = 90) -> dict[str, Any]:
    def first() -> dict[str, Any] | None:
        st = (cluster.get(API, "openclawcronjobs", NS, name) or {}).get("status") or {}
        return st["recentRuns"][0] if st.get("recentRuns") and not st.get("active") else None

    record = wait_for(first, timeout, 0.2, f"a recorded run of {name}")
    assert record is not None
    return record


def test_operator_from_the_image_runs_and_records_jobs(
    container_cli: list[str], openclaw: harness.Gateway, cluster: Cluster
) -> None:
    """A command job (Pods simulated by the kubelet) and a systemEvent job (its runner Pod run from
    the image, against the real gateway) are started by the operator in the image and recorded."""
    operator = cluster.start_operator_in_image(
        IMAGE,
        "--standalone",
        engine=container_cli,
        run_args=hardened(container_cli),
        env={
            "OPENCLAW_CRON_GATEWAY_URL": openclaw.url,
            "OPENCLAW_CRON_METRICS_PORT": "0",
        },
    )
    run_now = {ANNOTATION_RUN_NOW: uuid.uuid4().hex[:8]}
    text = f"Calendar check {uuid.uuid4().hex}"
    cluster.apply(
        {
            "apiVersion": API,
            "kind": "OpenClawCronJob",
            "metadata": {"name": "hello", "namespace": NS, "annotations": run_now},
            "spec": {
                "schedule": {"kind": "every", "every": "1h"},
                "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi"]},
            },
        },
        {
            "apiVersion": API,
            "kind": "OpenClawCronJob",
            "metadata": {"name": "wake", "namespace": NS, "annotations": run_now},
            "spec": {
                "schedule": {"kind": "every", "every": "1h"},
                "payload": {"kind": "systemEvent", "text": text},
                "wakeMode": "next-heartbeat",
            },
        },
    )
    started = time.monotonic()
    hello, wake = settled_run(cluster, "hello"), settled_run(cluster, "wake")
    print(f"both runs recorded {time.monotonic() - started:.1f}s after apply")
    assert (hello["result"], hello["trigger"]) == ("Succeeded", "Manual"), hello
    assert (wake["result"], wake["reason"]) == ("Succeeded", "Queued"), wake
    assert "eventOutcome=queued" in wake["message"], wake
    for name, record in (("hello", hello), ("wake", wake)):
        pods = [p for p in cluster.pods(NS) if p["metadata"].get("labels", {}).get(LABEL_JOB) == name]
        assert [p["metadata"]["name"] for p in pods] == [record["podName"]], "one run, one Pod"
    assert cluster.kubelet is not None
    executed = [detail for _, event, detail in cluster.kubelet.history if event == "Executing"]
    assert any(str(RUNNER_IN_IMAGE) in detail for detail in executed), "the runner Pod ran from the image"
    assert operator.running(), operator.logs()[-3000:]
    inspect = json.loads(run(container_cli, "inspect", operator.container).stdout)[0]
    assert inspect["Config"]["User"] == f"{UID}:{UID}" and inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert operator.stop() == 0, operator.logs()[-3000:]
