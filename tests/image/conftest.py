"""Image tier fixtures: the built image, a container CLI that can run it, and the real gateway.

The tier skips, saying why, where containers cannot run (no podman or Docker, or a probe container
fails); it fails when they can but the image was not built (`make image`), and when the gateway
cannot be installed or started (OPENCLAW_GATEWAY_TESTS=skip skips those tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (HERE, ROOT / "hack"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from image_engine import container_cli  # noqa: E402

from support.gateway_fixtures import openclaw, stub_model  # noqa: E402

__all__ = ["container_cli", "openclaw", "stub_model"]  # session fixtures (shared with the gateway/install tiers)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.image)
