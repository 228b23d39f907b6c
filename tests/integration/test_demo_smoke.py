"""`make demo` end to end: hack/demo.py for 40 s shows succeeded runs of every demo job, then exits 0.

Slow (~45 s) and process-based, hence marked integration although it lives with the unit tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
JOBS = ("demo-hello", "demo-flaky", "demo-wake", "demo-agent")

pytestmark = pytest.mark.integration


def _jobs(kubeconfig: str) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [str(KUBECTL), "get", "ocj", "-o", "json", "--request-timeout=5s"],
        capture_output=True,
        text=True,
        timeout=15,
        # a private discovery cache: ~/.kube/cache is keyed by host:port, and ports are reused
        env={**os.environ, "KUBECONFIG": kubeconfig, "KUBECACHEDIR": str(Path(kubeconfig).parent / "kube-cache")},
    )
    if result.returncode != 0:
        return {}
    return {o["metadata"]["name"]: o for o in json.loads(result.stdout)["items"]}


def test_demo_runs_every_job_and_exits_cleanly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "hack" / "demo.py"), "--duration", "40", "--quiet", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.match(r"ready (\S+) (\S+)", first)
        assert match, f"no ready line: {first!r}"
        kubeconfig = match.group(2)
        lines = [first]  # read on a thread: communicate() would bypass readline()'s buffer
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        reader.start()
        assert Path(kubeconfig) == tmp_path / "kubeconfig"
        succeeded: set[str] = set()
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and process.poll() is None and succeeded != set(JOBS):
            for name, obj in _jobs(kubeconfig).items():
                if (obj.get("status") or {}).get("counters", {}).get("succeeded", 0) >= 1:
                    succeeded.add(name)
            time.sleep(1)
        if succeeded != set(JOBS) and process.poll() is None:
            process.send_signal(signal.SIGUSR1)  # the demo prints its kubelet tasks, Pods and kubelet history
        process.wait(timeout=55)  # --duration 40, then a clean stop
        reader.join(10)
        output = "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert succeeded >= set(JOBS), f"jobs without a succeeded run: {set(JOBS) - succeeded}\n{output}"
    assert process.returncode == 0, output
    assert "kubectl get ocj -w" in output and "kubectl openclaw runs" in output
    summary = dict(re.findall(r"^summary (\S+) (.*)$", output, re.M))
    assert set(JOBS) <= summary.keys(), output
    assert "failed=0" in summary["demo-hello"]
    assert "stopped" in output
