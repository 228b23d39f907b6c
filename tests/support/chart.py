"""The chart's own objects as `helm template` renders them (the real helm binary), cached per values.

The tiers apply the chart's RBAC to the emulator and run the operator as the chart's
ServiceAccount, so a rule the chart forgot is a 403 in CI, not on a user's cluster.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM = os.environ.get("HELM") or str(ROOT / ".tools" / "bin" / "helm")
CHART = ROOT / "charts" / "openclaw-cron-operator"
#: The release the docs install (README: `helm install openclaw-cron-operator ... -n openclaw-cron-system`).
RELEASE = "openclaw-cron-operator"
NAMESPACE = "openclaw-cron-system"
#: The ServiceAccount that release's Deployment runs as.
SERVICE_ACCOUNT = "openclaw-cron-operator"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


@functools.lru_cache(maxsize=16)
def _render(release: str, namespace: str, values: tuple[str, ...]) -> tuple[str, ...]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"}
    argv = [HELM, "template", release, str(CHART), "--namespace", namespace]
    for value in values:
        argv += ["--set", value]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr}")
    return tuple(json.dumps(d) for d in yaml.safe_load_all(result.stdout) if d)


def render(*, values: tuple[str, ...] = (), release: str = RELEASE, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every object of the chart (`--set` `values`), a fresh copy per call (the rendering is cached)."""
    return [json.loads(d) for d in _render(release, namespace, tuple(values))]


def rbac_objects(
    watch_namespaces: tuple[str, ...] = (), *, values: tuple[str, ...] = (), namespace: str = NAMESPACE
) -> list[dict[str, Any]]:
    """The chart's ServiceAccount, (Cluster)Roles and (Cluster)RoleBindings for these watched namespaces."""
    sets = list(values)
    for i, ns in enumerate(watch_namespaces):
        sets.append(f"watch.namespaces[{i}]={ns}")
    return [copy.deepcopy(d) for d in render(values=tuple(sets), namespace=namespace) if d.get("kind") in RBAC_KINDS]
