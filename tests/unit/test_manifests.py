"""manifests/: install.yaml in sync with the chart, and everything in it and in examples/ valid.

`kubectl apply --dry-run=client` needs an API server for discovery (REST mapping) and a GET
per object, so a tiny fake server answers exactly that, from a resource table plus the kinds
our CRDs define: a kind kubectl cannot map (a typo, a CRD that is not shipped) fails the test.
Schema validation comes from kubernetes-validate (built-in kinds, 1.34), the generated CRD's
OpenAPI schema (OpenClawCronJobs, via jsonschema) and the project's own validation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from openclaw_cron import api

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
INSTALL = ROOT / "manifests" / "install.yaml"
EXAMPLES = ROOT / "manifests" / "examples"
CRDS = ROOT / "crds"
K8S_VERSION = "1.34.0"
NAMESPACE = "openclaw-cron-system"

#: Built-in kinds the manifests may use: kind → (group, version, plural, namespaced).
BUILTIN: dict[str, tuple[str, str, str, bool]] = {
    "Namespace": ("", "v1", "namespaces", False),
    "Secret": ("", "v1", "secrets", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "PersistentVolumeClaim": ("", "v1", "persistentvolumeclaims", True),
    "Service": ("", "v1", "services", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "Pod": ("", "v1", "pods", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "StatefulSet": ("apps", "v1", "statefulsets", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
}


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def crd_docs() -> list[dict[str, Any]]:
    return [d for p in sorted(CRDS.glob("*.yaml")) for d in docs(p)]


def resource_table() -> dict[str, tuple[str, str, str, bool]]:
    table = dict(BUILTIN)
    for crd in crd_docs():
        spec = crd["spec"]
        for version in spec["versions"]:
            table[spec["names"]["kind"]] = (
                spec["group"],
                version["name"],
                spec["names"]["plural"],
                spec["scope"] == "Namespaced",
            )
    return table


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def example_jobs() -> list[dict[str, Any]]:
    return [d for p in example_files() for d in docs(p) if d["kind"] == api.KIND]


def load_render_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_manifests", ROOT / "hack" / "render_manifests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- install.yaml ----------------------------------------------------------------------


def test_install_yaml_is_fresh() -> None:
    render = load_render_script()
    assert INSTALL.read_text() == render.render(), "manifests/install.yaml is stale: run make manifests"


def test_install_yaml_contents() -> None:
    objs = docs(INSTALL)
    kinds = [o["kind"] for o in objs]
    assert kinds[0] == "Namespace" and objs[0]["metadata"]["name"] == NAMESPACE
    assert kinds[1:4] == ["CustomResourceDefinition"] * 3, "CRDs come right after the Namespace"
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"} <= set(kinds)
    assert "ClusterKopfPeering" in kinds
    table = resource_table()
    for obj in objs:
        if table[obj["kind"]][3]:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
    assert INSTALL.read_text().startswith("# OpenClaw Cron Operator: everything in one file")


def test_install_yaml_crd_is_the_generated_one() -> None:
    ocj = [o for o in docs(INSTALL) if o["kind"] == "CustomResourceDefinition" and o["spec"]["group"] == api.GROUP]
    assert ocj == docs(CRDS / "cron.openclaw.io_openclawcronjobs.yaml")


def test_chart_crds_match_repo_crds() -> None:
    chart = ROOT / "charts" / "openclaw-cron-operator" / "crds"
    assert sorted(p.name for p in chart.glob("*.yaml")) == sorted(p.name for p in CRDS.glob("*.yaml"))
    for path in CRDS.glob("*.yaml"):
        assert (chart / path.name).read_text() == path.read_text(), f"{path.name}: run make crds"


# --- schema validation -----------------------------------------------------------------


def ocj_schema() -> dict[str, Any]:
    (crd,) = docs(CRDS / "cron.openclaw.io_openclawcronjobs.yaml")
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def validate_object(obj: dict[str, Any]) -> None:
    """Built-in kinds: kubernetes-validate (strict, 1.34); our kinds: the CRD schemas."""
    if obj["kind"] == api.KIND:
        jsonschema.validate(obj, ocj_schema())
    elif obj["apiVersion"] == "kopf.dev/v1":
        assert set(obj) <= {"apiVersion", "kind", "metadata", "status"}
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "path", [INSTALL, *sorted(CRDS.glob("*.yaml")), *example_files()], ids=lambda p: str(p.relative_to(ROOT))
)
def test_objects_validate(path: Path) -> None:
    objs = docs(path)
    assert objs
    for obj in objs:
        validate_object(obj)


def test_examples_cover_the_documented_cases() -> None:
    jobs = {j["metadata"]["name"]: j["spec"] for j in example_jobs()}
    assert jobs["morning-status"]["delivery"]["channel"] == "telegram"
    assert jobs["morning-status"]["schedule"] == {
        "kind": "cron",
        "expr": "0 7 * * *",
        "tz": "America/Los_Angeles",
        "staggerSeconds": 0,
        "startingDeadlineSeconds": 300,
        "catchUp": "Latest",
    }
    assert jobs["inbox-check"]["schedule"]["every"] == "20m"
    assert jobs["inbox-check"]["payload"]["kind"] == "systemEvent"
    assert jobs["remind-standup"]["schedule"]["kind"] == "at" and jobs["remind-standup"]["deleteAfterRun"] is True
    assert jobs["nightly-export"]["payload"]["kind"] == "command" and jobs["nightly-export"]["retry"]["limit"] > 0
    assert "resources" in jobs["nightly-export"]["payload"]
    assert set(jobs["weekly-report-staging"]["gateway"]) == {"url", "tokenSecretRef"}
    secrets = {d["metadata"]["name"] for p in example_files() for d in docs(p) if d["kind"] == "Secret"}
    assert {"openclaw-hooks", jobs["weekly-report-staging"]["gateway"]["tokenSecretRef"]["name"]} <= secrets


@pytest.mark.parametrize("job", example_jobs(), ids=lambda j: j["metadata"]["name"])
def test_examples_are_valid_for_the_models(job: dict[str, Any]) -> None:
    api.OpenClawCronJobSpec.model_validate(job["spec"])
    validation = pytest.importorskip("openclaw_cron.validation")
    assert validation.validate(job["spec"]) == []
    assert validation.validate_metadata(job["metadata"]["name"]) == []


# --- kubectl apply --dry-run=client ----------------------------------------------------


class FakeDiscovery(BaseHTTPRequestHandler):
    """Just enough API server for kubectl's client-side dry run: discovery, then 404 per object."""

    table: dict[str, tuple[str, str, str, bool]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _resources(self, group: str, version: str) -> list[dict[str, Any]]:
        return [
            {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for kind, (g, v, plural, namespaced) in sorted(self.table.items())
            if (g, v) == (group, version)
        ]  # fmt: skip

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        parts = path.strip("/").split("/")
        groups = sorted({(g, v) for g, v, _, _ in self.table.values() if g})
        if path == "/version":
            return self._send(200, {"major": "1", "minor": "34", "gitVersion": "v1.34.0"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            items = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, v in groups
            ]  # fmt: skip
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": items})
        if path == "/api/v1" or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", "v1") if path == "/api/v1" else (parts[1], parts[2])
            gv = f"{group}/{version}".lstrip("/")
            resources = self._resources(group, version)
            return self._send(200, {"kind": "APIResourceList", "groupVersion": gv, "resources": resources})
        return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                "code": 404, "message": f"{path} not found"})  # fmt: skip


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not KUBECTL.exists():
        pytest.skip("kubectl not installed: make tools")
    FakeDiscovery.table = resource_table()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDiscovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "fake", "user": {}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
                "current-context": "fake",
            }
        )
    )
    yield path
    server.shutdown()


def kubectl_dry_run(kubeconfig: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    args = [str(KUBECTL), "apply", "--dry-run=client", "--validate=false"]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def test_kubectl_dry_run_everything(kubeconfig: Path) -> None:
    files = [INSTALL, CRDS, EXAMPLES]
    result = kubectl_dry_run(kubeconfig, *files)
    assert result.returncode == 0, result.stderr
    expected = sum(len(docs(p)) for p in [INSTALL, *CRDS.glob("*.yaml"), *example_files()])
    lines = [line for line in result.stdout.splitlines() if line.endswith("created (dry run)")]
    assert len(lines) == expected, result.stdout
    assert "openclawcronjob.cron.openclaw.io/morning-status created (dry run)" in result.stdout


def test_kubectl_dry_run_rejects_an_unknown_kind(kubeconfig: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: cron.openclaw.io/v1alpha1\nkind: OpenClawCronJobz\nmetadata: {name: x}\nspec: {}\n")
    result = kubectl_dry_run(kubeconfig, bad)
    assert result.returncode != 0
    assert "OpenClawCronJobz" in result.stderr
