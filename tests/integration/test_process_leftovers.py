"""Processes a test starts die with the test run: a killed pytest leaves no operator behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from support import wait_for

TESTS = Path(__file__).resolve().parents[1]
PARENT = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from support.cluster import OperatorProcess
child = OperatorProcess([sys.executable, "-c", "import time; time.sleep(300)"], {}, Path(sys.argv[2]))
print(child.pid, flush=True)
time.sleep(300)
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (it has exited; its new parent has not reaped it yet)."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_an_operator_process_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(TESTS), str(tmp_path / "child.log")], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert not gone(child), "the child must be running before its parent dies"
        os.kill(parent.pid, signal.SIGKILL)  # no cleanup code runs: only the kernel can end the child
        parent.wait(10)
        wait_for(lambda: gone(child), 10, 0.05, f"pid {child} to die with its parent")
    finally:
        if not gone(child):
            os.kill(child, signal.SIGKILL)
