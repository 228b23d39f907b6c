"""Image tier fixtures: the built image, a container CLI that can run it, and the real gateway.

The tier skips, saying why, where containers cannot run (no podman or Docker, or a probe container
fails); it fails when they can but the image was not built (`make image`), and when the gateway
cannot be installed or started (OPENCLAW_GATEWAY_TESTS=skip skips those tests).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (HERE, ROOT / "hack"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from image_engine import IMAGE, engine, hardened, run  # noqa: E402

from support.cluster import CONTAINER_PARENT_LABEL  # noqa: E402
from support.gateway_fixtures import openclaw, stub_model  # noqa: E402

__all__ = ["openclaw", "stub_model"]  # session fixtures shared with the gateway tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.image)


def _remove_orphans(cli: list[str]) -> None:
    """Remove containers a dead test process left (its PID is in their label); live runs' stay."""
    label = f'{{{{.Label "{CONTAINER_PARENT_LABEL}"}}}}' if Path(cli[0]).name == "docker" else None
    label = label or f'{{{{index .Labels "{CONTAINER_PARENT_LABEL}"}}}}'
    listed = run(cli, "ps", "-a", "--filter", f"label={CONTAINER_PARENT_LABEL}", "--format", "{{.ID}} " + label)
    for line in listed.stdout.splitlines():
        cid, _, pid = line.partition(" ")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            run(cli, "rm", "--force", cid)


@pytest.fixture(scope="session")
def container_cli() -> list[str]:
    """The container CLI argv prefix, checked by running a throwaway container of the image."""
    cli = engine()
    if cli is None or shutil.which(cli[0]) is None:
        pytest.skip("containers cannot run here: neither podman nor docker is installed (make image installs podman)")
    if run(cli, "image", "inspect", IMAGE).returncode != 0:
        store = run(cli, "images", "--quiet")
        if store.returncode != 0:
            pytest.skip(f"containers cannot run here ({' '.join(cli)} fails): {store.stderr.strip()[-600:]}")
        pytest.fail(f"the image {IMAGE} is not built: run `make image` (or `make test-image`, which builds it)")
    probe = run(cli, "run", "--rm", *hardened(cli), "--entrypoint", "python3", IMAGE, "-c", "print('probe-ok')")
    if probe.returncode != 0 or "probe-ok" not in probe.stdout:
        pytest.skip(f"containers cannot run here ({' '.join(cli)} run failed): {probe.stderr.strip()[-600:]}")
    _remove_orphans(cli)
    return cli
