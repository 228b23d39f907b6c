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
