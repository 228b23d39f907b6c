"""Install tier fixtures: the chart rendered by `helm template` with its defaults, the emulated
cluster it is installed into, and the container CLI that runs the Deployment's Pod as rendered.

Skips (saying why) where containers cannot run, as the image tier does; fails when they can but
the image is not built.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (HERE, ROOT / "tests" / "image", ROOT / "hack"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from image_engine import container_cli  # noqa: E402

__all__ = ["container_cli"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.install)
