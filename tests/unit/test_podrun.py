"""The install tier's stand-in kubelet (tests/install/podrun.py): what it makes of the chart's Pod."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "install"))

from podrun import SA_DIR, PodRun, expand
from test_chart import find, render


def test_dollar_paren_expansion_follows_kubernetes() -> None:
    env = {"A": "1", "B": "x y"}
    assert expand("--priority=$(A)", env) == "--priority=1"
    assert expand("$(B)-$(MISSING)-$$(A)", env) == "x y-$(MISSING)-$(A)"


def pod_run(tmp_path: Path, **kw: Any) -> PodRun:
    objs = render()
    (deployment,) = find(objs, "Deployment")
    secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}

    def lookup(kind: str, namespace: str, name: str) -> dict[str, str] | None:
        obj = secrets.get(name) if kind == "Secret" else None
        return None if obj is None else {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}

    return PodRun(pod=deployment["spec"]["template"], name="ocj-abc-1", namespace="openclaw-cron-system",
                  workdir=tmp_path, api_host="127.0.0.1", api_port=6443, service_account_dir=tmp_path / "sa",
                  lookup=lookup, **kw)  # fmt: skip


def test_the_chart_pod_runs_hardened_with_the_service_account_files(tmp_path: Path) -> None:
    argv = pod_run(tmp_path).argv(["podman"], "img", [])
    assert argv[argv.index("--user") + 1] == "65532:65532"
    for flag in ("--read-only", "no-new-privileges", "ALL", "KUBERNETES_SERVICE_HOST=127.0.0.1", "POD_ID=ocj-abc-1"):
        assert flag in argv, flag
    assert f"{tmp_path}/sa:{SA_DIR}:ro" in argv
    assert argv[argv.index("img") + 1 :][:2] == [
        "--liveness=http://0.0.0.0:8081/healthz",
        "--peering=ocj-openclaw-cron-operator",
    ]
    assert "--priority=0" in argv  # $(OPENCLAW_CRON_PRIORITY) expanded from the container's env


def test_a_root_user_is_refused_as_the_kubelet_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="runAsNonRoot"):
        pod_run(tmp_path, uid_override=(0, 0)).argv(["podman"], "img", [])
