"""The chart as a user installs it: `helm template` with its defaults, applied to the emulated API
server, and the Deployment's Pod run as rendered (podrun.py) — image, user, read-only root, env,
args, probes, volumes, the ServiceAccount files where a kubelet mounts them and
`KUBERNETES_SERVICE_HOST/PORT` pointing at the API. The emulated API authenticates every request
and authorizes it against the chart's own RBAC, so what passes here is what the chart grants.

    helm install ocj charts/openclaw-cron-operator -n openclaw-cron-system --create-namespace
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from image_engine import IMAGE, run
from podrun import PodRun

from openclaw_cron.naming import ANNOTATION_RUN_NOW
from support import Cluster, chart, wait_for
from support.aggregator import Aggregated
from support.cluster import CONTAINER_PARENT_LABEL
from support.frontproxy import FrontProxy

PLUGIN = str(Path(sys.executable).parent / "kubectl-openclaw")
RELEASE, RELEASE_NS, NS = "ocj", "openclaw-cron-system", "default"
API = "cron.openclaw.io/v1alpha1"
#: Kinds the emulated API serves; the rest (Deployment, APIService) the test does as a cluster would.
SERVED = {"Namespace", "ServiceAccount", "Secret", "ConfigMap", "Service", "PersistentVolumeClaim", "ClusterRole",
          "ClusterRoleBinding", "Role", "RoleBinding", "ClusterKopfPeering", "KopfPeering"}  # fmt: skip


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] == kind]
    return obj


class Installed:
    """The chart installed into `cluster`: its objects applied, its Pod running in a container."""

    def __init__(self, cluster: Cluster, cli: list[str], workdir: Path, uid: tuple[int, int] | None = None) -> None:
        self.cluster, self.cli, self.workdir = cluster, cli, workdir
        self.objs = chart.render(release=RELEASE, namespace=RELEASE_NS)  # `helm template`, the chart's defaults
        deployment = one(self.objs, "Deployment")
        self.sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}})
        cluster.apply(*(o for o in self.objs if o["kind"] in SERVED))
        self.sa_dir = workdir / "serviceaccount"
        self.token = cluster.write_service_account_files(self.sa_dir, RELEASE_NS, self.sa)
        self.front = FrontProxy(cluster, workdir / "front-proxy")
        self._register_api_service(one(self.objs, "APIService"))
        self.pod = PodRun(
            pod=deployment["spec"]["template"],
            name=f"{deployment['metadata']['name']}-{uuid.uuid4().hex[:10]}-{uuid.uuid4().hex[:5]}",
            namespace=RELEASE_NS,
            workdir=workdir / "pod",
            api_host="127.0.0.1",
            api_port=cluster.port,
            service_account_dir=self.sa_dir,
            lookup=self._lookup,
            uid_override=uid,
        )
        extra = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--timeout", "900",
                 "--label", f"{CONTAINER_PARENT_LABEL}={os.getpid()}"]  # fmt: skip
        self.argv = self.pod.argv(cli, IMAGE, extra)
        self.log = workdir / "operator.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen(self.argv, stdout=self._out, stderr=subprocess.STDOUT)

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        plural = {"Secret": "secrets", "ConfigMap": "configmaps"}[kind]
        obj = self.cluster.get("v1", plural, namespace, name)
        if obj is None:
            return None
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})

    def _register_api_service(self, api_service: dict[str, Any]) -> None:
        """What kube-aggregator does with the chart's APIService: reach its Service (the Pod's port, on
        this host) over TLS, trusting the caBundle and checking the certificate names the Service."""
        spec = api_service["spec"]
        ctx = ssl.create_default_context(cadata=base64.b64decode(spec["caBundle"]).decode())
        ctx.load_cert_chain(*(str(p) for p in self.front.proxy_client))
        service = next(
            o for o in self.objs if o["kind"] == "Service" and o["metadata"]["name"] == spec["service"]["name"]
        )
        port = one(self.objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
        target = service["spec"]["ports"][0]["targetPort"]
        container_port = next(p["containerPort"] for p in port if p["name"] == target)
        server_name = f"{spec['service']['name']}.{spec['service']['namespace']}.svc"
        self.cluster.emulator.aggregated[spec["group"]] = Aggregated(
            f"https://127.0.0.1:{container_port}", ctx, server_hostname=server_name
        )

    def logs(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        """The readiness probe as the kubelet runs it."""
        try:
            with urllib.request.urlopen(self.pod.probe_url("readinessProbe"), timeout=5) as resp:
                return 200 <= resp.status < 400
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the operator Pod did not become Ready:\n{self.logs()[-5000:]}")
            time.sleep(0.5)

    def stop(self) -> int:
        run(self.cli, "stop", "--time", "30", f"ocj-install-{self.pod.name}", timeout=90)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        run(self.cli, "rm", "--force", f"ocj-install-{self.pod.name}")
        self._out.close()
        return code


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "cluster").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def command_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "OpenClawCronJob",
        "metadata": {"name": name, "namespace": NS, "annotations": {ANNOTATION_RUN_NOW: uuid.uuid4().hex[:8]}},
        "spec": {
            "schedule": {"kind": "every", "every": "1h"},
            "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "echo installed"]},
            "history": {"successfulPodsLimit": 0, "failedPodsLimit": 0, "statusLimit": 5},
        },
    }


def runs_of(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    st = (cluster.get(API, "openclawcronjobs", NS, name) or {}).get("status") or {}
    return list(st.get("recentRuns") or []) if not st.get("active") else []


def run_now(cluster: Cluster, name: str) -> None:
    patch = {"metadata": {"annotations": {ANNOTATION_RUN_NOW: uuid.uuid4().hex[:8]}}}
    cluster.kubectl("patch", "openclawcronjob", name, "-n", NS, "--type=merge", "-p", json.dumps(patch))


def plugin(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [PLUGIN, "--kubeconfig", str(cluster.kubeconfig), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=cluster.env(), check=False)


def operator_calls(cluster: Cluster) -> list[Any]:
    return [
        c for c in cluster.call(lambda: list(cluster.emulator.calls)) if c.user_agent.startswith(("openclaw", "kopf"))
    ]


def test_the_chart_as_installed_becomes_ready_runs_archives_and_serves_history(
    container_cli: list[str], cluster: Cluster, tmp_path: Path
) -> None:
    installed = Installed(cluster, container_cli, tmp_path)
    expected = contextlib.ExitStack()
    try:
        installed.wait_ready()
        # kopf peering as the chart turns it on, with the Pod's name as this replica's identity
        peering = cluster.get("kopf.dev/v1", "clusterkopfpeerings", None, f"{RELEASE}-openclaw-cron-operator")
        assert installed.pod.name in ((peering or {}).get("status") or {}), peering
        cluster.apply(command_job("installed"))
        record = wait_for(lambda: runs_of(cluster, "installed"), 90, 0.3, "the run recorded")[0]
        assert (record["result"], record["trigger"]) == ("Succeeded", "Manual"), record

        # the archive, through the aggregation layer and the chart's serving certificate
        def history() -> list[dict[str, Any]]:
            done = plugin(cluster, "history", "installed", "-n", NS, "-o", "json", "--since", "1h")
            assert done.returncode == 0, done.stderr
            return list(json.loads(done.stdout)["items"])

        archived = wait_for(history, 60, 0.5, "the run in the archive")
        assert [r["runId"] for r in archived] == [record["runId"]]

        # every request so far as the chart's ServiceAccount, with the token from the mounted file
        user = f"system:serviceaccount:{RELEASE_NS}:{installed.sa}"
        assert {c.user for c in operator_calls(cluster)} == {user}

        # the kubelet rotates the projected token; the old one stops working
        cluster.write_service_account_files(installed.sa_dir, RELEASE_NS, installed.sa)
        # the 401s of the revoked token are the point from here on (kopf meets its own at its next
        # request, perhaps only the peering patch at shutdown): announced to the harness's guard
        expected.enter_context(cluster.expect_rejections())
        cluster.revoke_token(installed.token)
        rotated_at = time.time()
        run_now(cluster, "installed")
        wait_for(lambda: len(runs_of(cluster, "installed")) == 2, 90, 0.3, "a run after the rotation")
        after = [c for c in operator_calls(cluster) if c.when > rotated_at]
        assert any(c.code < 400 for c in after) and installed.ready()
        refused = [c for c in after if c.code == 401]
        assert len(refused) <= 4, refused  # at most one 401 per client connection, then the new token
        forbidden = [c for c in operator_calls(cluster) if c.code == 403]
        assert not forbidden, forbidden  # the chart's RBAC grants everything the operator does
    finally:
        code = installed.stop()
        expected.close()
        print(f"----- operator log (tail) -----\n{installed.logs()[-4000:]}")
    assert code == 0, installed.logs()[-3000:]


NO_PASSWD_ENTRY = """
import os, pwd
try:
    pwd.getpwuid(os.getuid())
except KeyError:
    print("no-entry", os.getuid())
"""


def test_the_image_runs_under_a_random_uid_without_a_passwd_entry(
    container_cli: list[str], cluster: Cluster, tmp_path: Path
) -> None:
    """As OpenShift runs it: a UID from the namespace's range, no passwd entry, fsGroup on the volumes."""
    installed = Installed(cluster, container_cli, tmp_path, uid=(1000680000, 1000680000))
    try:
        installed.wait_ready()
        whoami = run(container_cli, "exec", f"ocj-install-{installed.pod.name}", "python3", "-c", NO_PASSWD_ENTRY)
        assert whoami.stdout.strip() == "no-entry 1000680000", whoami.stdout + whoami.stderr
        cluster.apply(command_job("random-uid"))
        record = wait_for(lambda: runs_of(cluster, "random-uid"), 90, 0.3, "the run recorded")[0]
        assert record["result"] == "Succeeded", record
    finally:
        code = installed.stop()
        print(f"----- operator log (tail) -----\n{installed.logs()[-4000:]}")
    assert code == 0, installed.logs()[-3000:]
