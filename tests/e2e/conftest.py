"""E2E tier: the operator scenarios against the real cluster in KUBECONFIG.

Skipped at collection, with the reason, when KUBECONFIG is unset or its cluster does not
answer `/readyz` within 5 s. Per test module: a fresh namespace `ocj-e2e-<random>`, crds/
applied server-side, the hooks token Secret, and `openclaw-cron-operator --standalone
--namespace <ns>` as a local process with that KUBECONFIG; at the end the jobs, the operator
and the namespace go away.

Run Pods run on the cluster's nodes (image `$E2E_IMAGE`, default busybox:1.36). When the
cluster has no schedulable node, or `E2E_SIMULATED_KUBELET=1`, the simulated kubelet from
tests/support runs them on this machine instead, talking to the API like a kubelet (binding,
`pods/status`, graceful deletion), with TLS and credentials from the kubeconfig. Its Pods
carry a nodeSelector no real node matches, so a real scheduler never takes them.

Environment: KUBECONFIG, E2E_OPERATOR_KUBECONFIG (the operator's own; default KUBECONFIG), E2E_IMAGE,
E2E_SIMULATED_KUBELET (1 force / 0 never), E2E_START_TIMEOUT
(the operator's start timeout; default 5 s simulated, 45 s on real nodes), E2E_KEEP_NAMESPACE=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from support import OperatorProcess, Script, SimulatedKubelet, wait_for
from support.apimachinery import rfc3339

REPO = Path(__file__).resolve().parents[2]
KUBECTL = os.environ.get("KUBECTL") or str(REPO / ".tools" / "bin" / "kubectl")
OPERATOR = str(Path(sys.executable).parent / "openclaw-cron-operator")
API = "cron.openclaw.io/v1alpha1"
GROUP, VERSION = API.split("/")
PLURAL = "openclawcronjobs"
CRD = f"{PLURAL}.{GROUP}"
SECRET = "openclaw-hooks"
MISSING_IMAGE = "does-not-exist.invalid/nope:1"
SIM_LABEL = "e2e.openclaw.io/simulated-node"

_PROBLEM: list[str | None] = []  # memo: the reason to skip, computed once per session
_FAILED = pytest.StashKey[bool]()
_CURRENT: list[E2E] = []


# --- skip early --------------------------------------------------------------------------------


def cluster_problem() -> str | None:
    """Why the e2e tier cannot run here (None: it can); at most ~5 s."""
    if _PROBLEM:
        return _PROBLEM[0]
    problem: str | None = None
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if not kubeconfig:
        problem = "KUBECONFIG is not set: the e2e tier runs against a real cluster (docs/demo.md)"
    elif not all(Path(p).exists() for p in kubeconfig.split(os.pathsep) if p):
        problem = f"KUBECONFIG={kubeconfig} does not exist"
    elif not Path(KUBECTL).exists():
        problem = f"kubectl not found at {KUBECTL}: run `make tools`"
    else:
        try:
            result = subprocess.run(
                [KUBECTL, "get", "--raw", "/readyz", "--request-timeout=5s"],
                capture_output=True,
                text=True,
                timeout=8,
            )
            if result.returncode != 0:
                tail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
                problem = f"the cluster in KUBECONFIG is unreachable: {tail}"
        except subprocess.TimeoutExpired:
            problem = "the cluster in KUBECONFIG is unreachable: no answer to /readyz within 8 s"
    _PROBLEM.append(problem)
    return problem


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [i for i in items if here in Path(str(i.fspath)).parents]
    if not mine:
        return
    problem = cluster_problem()
    for item in mine:
        item.add_marker(pytest.mark.e2e)
        if problem:
            item.add_marker(pytest.mark.skip(reason=problem))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report carries the operator log tail and the kubelet's last steps."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and _CURRENT:
        env = _CURRENT[-1]
        report.sections.append(("operator log (tail)", env.operator.logs()[-6000:] if env.operator else ""))
        if env.kubelet is not None:
            report.sections.append(("simulated kubelet", "\n".join(map(str, env.kubelet.kubelet.history[-60:]))))


# --- the simulated kubelet against a real API server --------------------------------------------


class RealApiKubelet(SimulatedKubelet):
    """`SimulatedKubelet` with the kubeconfig's TLS and credentials, and an image that never pulls."""

    def __init__(self, configuration: Any, **options: Any) -> None:
        # The official client keeps a token under BearerToken; only auth_settings() finds it (issue 17).
        auth = (configuration.auth_settings().get("BearerToken") or {}).get("value") or ""
        super().__init__(configuration.host, token="", **options)
        self.configuration = configuration
        self.auth = auth

    def ssl_context(self) -> ssl.SSLContext | bool:
        cfg = self.configuration
        if not self.server.startswith("https"):
            return False
        if not cfg.verify_ssl:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
        return context

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        headers = {"User-Agent": f"simulated-kubelet/{self.node_name}"}
        if self.auth:
            headers["Authorization"] = self.auth
        self._session = aiohttp.ClientSession(
            self.server,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(ssl=self.ssl_context()),
        )
        self._task = asyncio.create_task(self._watch_pods(), name="kubelet-watch")

    def script_for(self, pod: dict[str, Any]) -> Script:
        images = [c.get("image", "") for c in pod.get("spec", {}).get("containers", [])]
        if MISSING_IMAGE in images:
            return Script(
                stay_pending_reason="ErrImagePull",
                stay_pending_message=(
                    f'failed to pull and unpack image "{MISSING_IMAGE}": failed to resolve reference: '
                    "dial tcp: lookup does-not-exist.invalid: no such host"
                ),
            )
        return super().script_for(pod)


class KubeletThread:
    """The simulated kubelet (and, where the API serves Nodes, its Node) on a private event loop."""

    def __init__(self, configuration: Any, namespace: str, workdir: Path) -> None:
        self.node = f"ocj-e2e-sim-{secrets.token_hex(3)}"
        self.kubelet = RealApiKubelet(
            configuration,
            node_name=self.node,
            workdir=workdir,
            execute_commands=True,
            namespaces={namespace},
            restart_backoff=1.0,
        )
        self.node_created = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="e2e-kubelet", daemon=True)
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        await self.kubelet.start()
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node, "labels": {SIM_LABEL: "true", "kubernetes.io/hostname": self.node}},
            # Never a target for the real scheduler; the simulated kubelet binds its Pods itself.
            "spec": {"unschedulable": True, "taints": [{"key": SIM_LABEL, "value": "true", "effect": "NoSchedule"}]},
        }
        code, _ = await self.kubelet.api("POST", "/api/v1/nodes", node)
        # 404: the API serves no Nodes (the emulator); 403: no right to create one. Pods bound to a
        # missing Node would be removed by a real cluster's pod GC after ~40 s, so warn.
        self.node_created = code in (200, 201)
        if not self.node_created and code != 404:
            print(
                f"e2e: could not create Node {self.node} ({code}); run Pods may be garbage-collected", file=sys.stderr
            )
        if self.node_created:
            self._heartbeat = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        """Keep the Node Ready so the node lifecycle controller does not evict its Pods."""
        while True:
            now = rfc3339()
            status = {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "simulated kubelet (openclaw e2e)",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            }
            with contextlib.suppress(Exception):
                await self.kubelet.api(
                    "PATCH", f"/api/v1/nodes/{self.node}/status", {"status": status}, "application/merge-patch+json"
                )
            await asyncio.sleep(10)

    async def _stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.node_created:
            with contextlib.suppress(Exception):
                await self.kubelet.api("DELETE", f"/api/v1/nodes/{self.node}")
        await self.kubelet.stop()


# --- the environment each test module gets ------------------------------------------------------


class E2E:
    """One namespace with the operator running in it; helpers that work on any conformant cluster."""

    def __init__(self, workdir: Path) -> None:
        import kubernetes

        self.workdir = workdir
        self.kubeconfig = os.environ["KUBECONFIG"]
        self.ns = f"ocj-e2e-{secrets.token_hex(3)}"
        self.image = os.environ.get("E2E_IMAGE", "busybox:1.36")
        self.configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(client_configuration=self.configuration)
        self.client = kubernetes.client.ApiClient(self.configuration)
        self.custom = kubernetes.client.CustomObjectsApi(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.simulated = self._want_simulation()
        default_timeout = "5" if self.simulated else "45"
        self.start_timeout = int(os.environ.get("E2E_START_TIMEOUT", default_timeout))
        self.kubelet: KubeletThread | None = None
        self.operator: OperatorProcess | None = None

    # -- setup / teardown

    def _want_simulation(self) -> bool:
        forced = os.environ.get("E2E_SIMULATED_KUBELET", "")
        if forced in ("1", "true", "yes"):
            return True
        if forced in ("0", "false", "no"):
            return False
        result = self.kubectl("get", "nodes", "-o", "json", check=False, namespaced=False)
        if result.returncode != 0:
            return True  # the API serves no Nodes at all
        nodes = json.loads(result.stdout)["items"]

        def schedulable(node: dict[str, Any]) -> bool:
            spec, st = node.get("spec", {}), node.get("status", {})
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
            blocked = any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or [])
            return ready and not spec.get("unschedulable") and not blocked

        return not any(schedulable(n) for n in nodes)

    def setup(self) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"), namespaced=False)
        wait_for(self._crd_established, 30, 0.5, "the CRD is established")
        self.kubectl("create", "namespace", self.ns, namespaced=False)
        wait_for(lambda: self._default_sa(), 30, 0.5, f"serviceaccount default in {self.ns}")
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET, "namespace": self.ns},
                "type": "Opaque",
                "stringData": {"token": "e2e-" + secrets.token_hex(8)},
            }
        )
        if self.simulated:
            self.kubelet = KubeletThread(self.configuration, self.ns, self.workdir / "kubelet")
            self.kubelet.start()
        else:
            self._prepull()
        self.start_operator()

    def _crd_established(self) -> bool:
        result = self.kubectl("get", "crd", CRD, "-o", "json", namespaced=False, check=False)
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", []) if result.returncode == 0 else []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    def _default_sa(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0

    def _prepull(self) -> None:
        """Pull E2E_IMAGE once (on some node) so start timeouts measure starts, not the first pull."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "prepull", "namespace": self.ns},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": self.image,
                        "command": ["sh", "-c", "true"],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    }
                ],
                # Pod Security "restricted", like the operator's own run Pods.
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            },
        }
        try:
            self.apply(pod)
        except AssertionError as e:
            print(f"e2e: no image pre-pull ({e}); first starts may be slow", file=sys.stderr)
            return
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: self.core.read_namespaced_pod("prepull", self.ns).status.phase in ("Succeeded", "Failed"),
                180,
                1,
                f"image {self.image} pulled",
            )
        self.kubectl("delete", "pod", "prepull", "--wait=false", check=False)

    def start_operator(self) -> OperatorProcess:
        env = dict(os.environ)
        env.update(
            {
                # the operator's own identity where one is given (the emulated tier: the chart's ServiceAccount)
                "KUBECONFIG": os.environ.get("E2E_OPERATOR_KUBECONFIG") or self.kubeconfig,
                "OPENCLAW_CRON_METRICS_PORT": "0",
                "OPENCLAW_CRON_RESYNC_SECONDS": "2",
                "OPENCLAW_CRON_START_TIMEOUT_SECONDS": str(self.start_timeout),
                "OPENCLAW_CRON_GATEWAY_URL": "http://127.0.0.1:9",
                "OPENCLAW_CRON_NORMAL_EVENTS": "true",
            }
        )
        self.operator = OperatorProcess(
            [OPERATOR, "--standalone", "--namespace", self.ns], env, self.workdir / "operator.log"
        )
        self.operator.wait_for_log("Initial authentication has finished", 60)
        return self.operator

    def teardown(self) -> None:
        # Jobs carry no finalizer; deleting them first only keeps the operator's log quiet.
        self.kubectl("delete", PLURAL, "--all", "--wait=true", "--timeout=60s", check=False, timeout=90)
        if self.operator is not None:
            self.operator.stop()
        if os.environ.get("E2E_KEEP_NAMESPACE") != "1":
            self.kubectl("delete", "namespace", self.ns, "--wait=false", namespaced=False, check=False)
            # The simulated kubelet confirms the graceful Pod deletions the namespace teardown starts.
            with contextlib.suppress(TimeoutError):
                wait_for(
                    lambda: self.kubectl("get", "namespace", self.ns, namespaced=False, check=False).returncode != 0,
                    60,
                    0.5,
                    f"namespace {self.ns} is gone",
                )
        if self.kubelet is not None:
            self.kubelet.stop()
        self.client.close()

    # -- clients

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        namespaced: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        argv = [KUBECTL, *(("--namespace", self.ns) if namespaced else ()), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env={**os.environ})
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def apply(self, *objects: dict[str, Any]) -> None:
        """Client-side `kubectl apply`, as users do (JSON documents: no YAML 1.1 surprises)."""
        self.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))

    # -- jobs

    def command_job(
        self,
        name: str,
        script: str = "echo hello from e2e",
        every: str = "2s",
        env: list[dict[str, Any]] | None = None,
        image: str | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        """A `command` job running `sh -c <script>` in E2E_IMAGE (locally under the simulated kubelet)."""
        payload: dict[str, Any] = {"kind": "command", "image": image or self.image, "command": ["sh", "-c", script]}
        if env:
            payload["env"] = env
        body: dict[str, Any] = {"schedule": {"kind": "every", "every": every}, "payload": payload}
        if self.simulated:
            body["template"] = {"nodeSelector": {SIM_LABEL: self.ns}}
        body.update(spec)
        return {
            "apiVersion": API,
            "kind": "OpenClawCronJob",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": body,
        }

    def job(self, name: str) -> dict[str, Any] | None:
        import kubernetes

        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name))
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def status(self, name: str) -> dict[str, Any]:
        obj = self.job(name)
        assert obj is not None, f"{name} is gone"
        return dict(obj.get("status") or {})

    def wait_status(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30, what: str = ""
    ) -> dict[str, Any]:
        """Wait until the job's status satisfies `predicate`; the failure shows the last status."""
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            obj = self.job(name)
            last = dict((obj or {}).get("status") or {})
            return bool(obj) and predicate(last)

        try:
            wait_for(check, timeout, 0.25, what or f"status of {name}")
        except TimeoutError as exc:
            raise AssertionError(f"{what or 'condition'} not met; last status:\n{json.dumps(last, indent=1)}") from exc
        return last

    def pods(self, job: str) -> list[dict[str, Any]]:
        listing = self.core.list_namespaced_pod(self.ns, label_selector=f"cron.openclaw.io/job={job}")
        return [self.client.sanitize_for_serialization(p) for p in listing.items]

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        items = json.loads(self.kubectl("get", "events", "-o", "json").stdout)["items"]
        return [e for e in items if kind is None or e["involvedObject"].get("kind") == kind]

    def annotate(self, name: str, value: str) -> None:
        self.kubectl("annotate", "--overwrite", PLURAL, name, f"cron.openclaw.io/run-now={value}")

    def patch_spec(self, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch: custom resources support no strategic merge patch."""
        self.kubectl("patch", PLURAL, name, "--type", "merge", "-p", json.dumps({"spec": patch}))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """A fresh namespace with crds/, the token Secret, the operator (and maybe the simulated kubelet)."""
    env = E2E(tmp_path_factory.mktemp("e2e"))
    _CURRENT.append(env)
    try:
        env.setup()
        yield env
    finally:
        env.teardown()
        _CURRENT.remove(env)
