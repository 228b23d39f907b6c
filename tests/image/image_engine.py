"""The container CLI the image tier drives, and the flags every container of the tier gets.

Podman (as `make image` installs it) runs with runc (crun fails on this kind of machine); Docker
works where an engine answers. `OCJ_CONTAINER_ENGINE` overrides, e.g. "docker" or "podman --runtime X".
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from support.cluster import CONTAINER_PARENT_LABEL

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("IMAGE") or "ghcr.io/openclaw/openclaw-cron-operator:0.1.0"
UID = "65532"
MAX_SECONDS = 900  # no container of the tier lives longer
#: What the chart gives the operator and every run Pod: non-root, read-only root, an emptyDir /tmp.
#: Lowered ulimits because this machine forbids raising them (a container runtime would try to).
HARDENED = [
    "--network=host",
    "--user",
    f"{UID}:{UID}",
    "--read-only",
    "--read-only-tmpfs=false",
    "--tmpfs",
    "/tmp:rw,size=64m",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
]


def engine() -> list[str] | None:
    """The container CLI argv prefix, or None when there is none."""
    if override := os.environ.get("OCJ_CONTAINER_ENGINE"):
        return shlex.split(override)
    if shutil.which("podman"):
        runc = shutil.which("runc")
        return ["podman", *(["--runtime", runc] if runc else [])]
    if shutil.which("docker"):
        return ["docker"]
    return None


def hardened(cli: list[str]) -> list[str]:
    """HARDENED for this CLI. Docker has no --read-only-tmpfs (it adds no tmpfs anyway); podman gets a
    lifetime, since a container outlives its killed `podman run` (the tier's next session also
    removes those of dead test processes)."""
    if Path(cli[0]).name == "docker":
        return [flag for flag in HARDENED if flag != "--read-only-tmpfs=false"]
    return [*HARDENED, "--timeout", str(MAX_SECONDS)]


def run(cli: list[str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=timeout)


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
