"""The real OpenClaw gateway and its stand-in model as session fixtures (gateway and image tiers).

The gateway is installed on demand (hack/install-gateway.sh, cached), runs on loopback and is
stopped by its PID at the end. It fails (never skips) when it cannot be installed or started,
unless OPENCLAW_GATEWAY_TESTS=skip: a silently skipped tier would hide a broken runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "hack") not in sys.path:
    sys.path.insert(0, str(ROOT / "hack"))

import openclaw_gateway as harness  # noqa: E402 - lives in hack/ so people can run it by hand


@pytest.fixture(scope="session")
def stub_model() -> Iterator[harness.StubModel]:
    model = harness.StubModel().start()
    yield model
    model.stop()


@pytest.fixture(scope="session")
def openclaw(stub_model: harness.StubModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Gateway]:
    """The real gateway, installed on demand (cached) and stopped by its PID at the end."""
    if os.environ.get("OPENCLAW_GATEWAY_TESTS") == "skip":
        pytest.skip("OPENCLAW_GATEWAY_TESTS=skip")
    install = subprocess.run(
        ["bash", str(ROOT / "hack" / "install-gateway.sh")], capture_output=True, text=True, timeout=900
    )
    if install.returncode != 0:
        pytest.fail(
            f"cannot install the OpenClaw gateway (set OPENCLAW_GATEWAY_TESTS=skip to skip):\n"
            f"{install.stdout[-2000:]}\n{install.stderr[-4000:]}"
        )
    gateway = harness.Gateway(base=tmp_path_factory.mktemp("openclaw"), model_url=stub_model.base_url)
    started = time.monotonic()
    try:
        gateway.start().wait_ready(timeout=120)
    except RuntimeError as exc:
        gateway.stop()
        pytest.fail(f"the OpenClaw gateway did not start: {exc}")
    print(f"\nopenclaw gateway ready on {gateway.url} in {time.monotonic() - started:.1f}s")
    yield gateway
    gateway.stop()
