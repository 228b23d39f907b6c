"""Render manifests/install.yaml: the Helm chart's defaults as one plain kubectl-appliable file.

For users without Helm (`kubectl apply --server-side -f manifests/install.yaml`): the
Namespace, the CRDs (from crds/, so they are the generated ones) and `helm template` of
the chart with a fixed release name and namespace. `--check` exits 1 when the committed
file differs, for CI and tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "openclaw-cron-operator"
CRDS = ROOT / "crds"
OUT = ROOT / "manifests" / "install.yaml"
RELEASE = "openclaw-cron-operator"
NAMESPACE = "openclaw-cron-system"

HEADER = f"""\
# OpenClaw Cron Operator: everything in one file, rendered by `make manifests`
# (hack/render_manifests.py) from charts/openclaw-cron-operator with its default values,
# release {RELEASE} in namespace {NAMESPACE}. Do not edit; change the chart instead.
#
#   kubectl apply --server-side -f manifests/install.yaml
"""

NAMESPACE_DOC = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/name: openclaw-cron-operator
    pod-security.kubernetes.io/enforce: restricted
"""


def helm_binary() -> str:
    """The repo's helm (.tools/bin, installed by `make tools`), else the one on PATH."""
    local = ROOT / ".tools" / "bin" / "helm"
    if local.exists():
        return str(local)
    found = shutil.which("helm")
    if not found:
        raise SystemExit("helm not found: run make tools")
    return found


def helm_template() -> str:
    """`helm template` of the chart's defaults (templates only; CRDs come from crds/)."""
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"}
    result = subprocess.run(
        [helm_binary(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return result.stdout


def _strip(doc: str) -> str:
    """A YAML document without its leading `---` and header comments (they repeat per file)."""
    lines = [line for line in doc.strip().splitlines() if line.strip() != "---"]
    while lines and lines[0].startswith("#") and not lines[0].startswith("# Source:"):
        lines.pop(0)
    return "\n".join(lines).strip() + "\n"


def render() -> str:
    """The whole install.yaml: Namespace, then CRDs (applied before their objects), then the chart."""
    parts = [NAMESPACE_DOC]
    for crd in sorted(CRDS.glob("*.yaml")):
        for doc in crd.read_text(encoding="utf-8").split("\n---"):
            if doc.strip() and "kind:" in doc:
                parts.append(_strip(doc))
    for doc in helm_template().split("\n---"):
        if doc.strip() and "kind:" in doc:
            parts.append(_strip(doc))
    return HEADER + "".join(f"---\n{part}" for part in parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when manifests/install.yaml is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run make manifests", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
