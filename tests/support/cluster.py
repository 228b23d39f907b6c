"""A whole emulated cluster for tests: API server + simulated kubelet in a background thread.

The operator under test is a separate process (as in production) that reaches the
emulator through a kubeconfig; tests talk to it the same way (kubectl, the official
client) and, for assertions and fault injection, through `Cluster` directly.

Each client has its own credentials, as in a cluster: the API is HTTPS with a per-cluster CA
(`cluster.ca_file`); `cluster.kubeconfig` is an admin's (client certificate in system:masters),
the kubelet is `system:node:<node>` (group system:nodes), and the operator runs as the chart's
ServiceAccount with a token, after the chart's RBAC (as `helm template` renders it) is applied.
Any request without valid credentials, and any request of the operator, kopf or the kubelet
refused with 401/403, fails the test at `stop()` unless the test said it expects them
(`cluster.expect_rejections()`).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import concurrent.futures
import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import kmock
import yaml

from . import chart
from .emulator import ApiCall, EmulatedApiServer, Fault
from .faults import FaultPlan, Listener
from .kubelet import SimulatedKubelet
from .pki import CA, Issued

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
KUBECTL = os.environ.get("KUBECTL") or str(REPO / ".tools" / "bin" / "kubectl")
CRD_FILE = REPO / "crds" / "cron.openclaw.io_openclawcronjobs.yaml"
TOKEN = "emulated-cluster-token"
#: The admin kubeconfig's user (a client certificate in system:masters, as kubeadm's admin.conf).
ADMIN = "kubernetes-admin"
#: Clients whose refused requests fail a test (the code under test, and the test world's kubelet).
GUARDED_AGENTS = ("openclaw-cron-operator/", "kopf/", "simulated-kubelet/")
SERVING_HOSTS = ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
#: The operator's periodic resync in tests: effectively off (DESIGN §7), so every wake a test
#: needs must come from an event; a test of the safety net itself passes a short one.
RESYNC_SECONDS = "86400"


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, message: str = "condition"
) -> T:
    """Poll until `predicate()` is truthy and return it; generous but bounded for loaded CI."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a transient read failure is another poll, not a test failure
            last_error = e
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {message}"
                + (f" (last error: {last_error!r})" if last_error else "")
            )
        time.sleep(interval)


def write_kubeconfig(
    path: Path,
    server: str,
    namespace: str = "default",
    token: str | None = TOKEN,
    *,
    ca_pem: str | None = None,
    cert: Issued | None = None,
    token_file: Path | None = None,
    exec_config: Mapping[str, Any] | None = None,
) -> Path:
    """A kubeconfig for `server`: a bearer `token` (or `token_file`, a client `cert`, an `exec_config`
    credential plugin), trusting `ca_pem` when the server is HTTPS. Everything is inlined (`-data`),
    so the file works wherever it is mounted."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = b64(ca_pem)
    user: dict[str, Any] = {}
    if cert is not None:
        user["client-certificate-data"] = b64(cert.cert_pem)
        user["client-key-data"] = b64(cert.key_pem)
    elif token_file is not None:
        user["tokenFile"] = str(token_file)
    elif exec_config is not None:
        user["exec"] = dict(exec_config)
    elif token:
        user["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulated", "cluster": cluster}],
        "users": [{"name": "emulated", "user": user}],
        "contexts": [
            {"name": "emulated", "context": {"cluster": "emulated", "user": "emulated", "namespace": namespace}}
        ],
        "current-context": "emulated",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def ocj_crd() -> dict[str, Any]:
    """The project's generated CRD (`make crds`)."""
    docs = [d for d in yaml.safe_load_all(CRD_FILE.read_text()) if d]
    return dict(docs[0])


class Cluster:
    """Emulated API server (+ kubelet) on 127.0.0.1:<free port>, run in a daemon thread.

    Thread rule: the emulator and kubelet live on the cluster's event loop; from a test,
    reach them through `call()` / `run()` (or the helpers here), never directly mutate.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        kubelet: bool = True,
        port: int = 0,
        install_crd: bool = True,
        emulator_options: Mapping[str, Any] | None = None,
        kubelet_options: Mapping[str, Any] | None = None,
        emulator: EmulatedApiServer | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="emulated-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        #: `emulator`: an instance to serve instead (e.g. a benchmark's recording subclass).
        self.emulator = emulator if emulator is not None else EmulatedApiServer(**dict(emulator_options or {}))
        #: Seeded API faults (tests/support/faults.py); add rules with `cluster.faults.add(...)`.
        self.faults = FaultPlan(seed=int(os.environ.get("FAULT_SEED", "0")))
        self.emulator.fault_plan = self.faults
        #: Serving CA (the kubeconfigs' certificate-authority) and client CA (kube-apiserver's --client-ca-file).
        self.ca, self.client_ca = CA("emulated-cluster-ca"), CA("emulated-client-ca")
        self.ca_file = self.workdir / "pki" / "ca.crt"
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        self.ca_file.write_text(self.ca.pem)
        self._serving = self.ca.issue("kube-apiserver", server=True, hosts=SERVING_HOSTS)
        self._listener = Listener(self.emulator, port or None, self._server_ssl())
        self._kubeconfigs = itertools.count()
        self._operator_kubeconfigs: dict[tuple[str, ...], Path] = {}
        self._expect_rejections = 0
        self.kubelet: SimulatedKubelet | None = None
        self._want_kubelet = kubelet
        self._kubelet_options = dict(kubelet_options or {})
        self._port = port
        self._install_crd = install_crd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self.kubeconfig = self.workdir / "kubeconfig"
        self._processes: list[OperatorProcess] = []

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _server_ssl(self) -> ssl.SSLContext:
        """kube-apiserver's serving: its certificate, and client certificates asked for (verified if sent)."""
        cert, key = self._serving.write(self.workdir / "pki", "apiserver")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        ctx.load_verify_locations(cadata=self.client_ca.pem)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def client_ssl(self, user: str = ADMIN, groups: tuple[str, ...] = ("system:masters",)) -> ssl.SSLContext:
        """An SSLContext trusting the cluster's CA with a client certificate for `user` (in-process clients)."""
        issued = self.client_ca.issue(user, organizations=groups)
        cert, key = issued.write(self.workdir / "pki", f"client-{next(self._kubeconfigs)}")
        ctx = ssl.create_default_context(cadata=self.ca.pem)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="emulated-cluster", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the emulated cluster did not start: {self._error!r}")
        admin = self.client_ca.issue(ADMIN, organizations=("system:masters",))
        write_kubeconfig(self.kubeconfig, self.url, ca_pem=self.ca.pem, cert=admin)
        if self._install_crd:
            self.apply(ocj_crd())
        return self

    def stop(self) -> None:
        """Stop everything; then fail if a request went unauthenticated or a guarded client was refused."""
        for process in list(self._processes):
            process.stop()
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        unexpected = self.unexpected_rejections()
        if unexpected:
            lines = "\n".join(
                f"  {c.code} {c.verb} {c.resource} ns={c.namespace} name={c.name} user={c.user!r} agent={c.user_agent}"
                for c in unexpected[:20]
            )
            raise AssertionError(
                f"{len(unexpected)} request(s) refused by the API server's authentication/authorization "
                f"(use cluster.expect_rejections() where a test means it):\n{lines}"
            )

    # --- identities ------------------------------------------------------------------------

    def unexpected_rejections(self) -> builtins.list[ApiCall]:
        """401s of any client and 401/403s of the operator, kopf or the kubelet, not announced as expected."""
        return [
            c
            for c in list(self.emulator.rejected)
            if not c.expected and (c.code == 401 or c.user_agent.startswith(GUARDED_AGENTS))
        ]

    @contextlib.contextmanager
    def expect_rejections(self) -> Iterator[builtins.list[ApiCall]]:
        """Refusals during the block are meant (e.g. a test of bad credentials); yields the list of them."""
        seen = len(self.emulator.rejected)
        caught: builtins.list[ApiCall] = []
        try:
            yield caught
        finally:
            for call in list(self.emulator.rejected)[seen:]:
                call.expected = True
                caught.append(call)

    def issue_token(self, user: str, groups: tuple[str, ...] = ()) -> str:
        """A bearer token the API server maps to `user` in `groups` (a static token file's line)."""
        return self.emulator.tokens.issue(user, groups)

    def service_account_token(self, namespace: str, name: str) -> str:
        """A token for ServiceAccount `namespace/name` (user system:serviceaccount:NS:NAME); the
        ServiceAccount object itself is not required, as with a token minted before it is created."""
        return self.emulator.tokens.service_account(namespace, name)

    def revoke_token(self, token: str) -> None:
        """From now on the token is unknown: requests bearing it get 401."""
        self.emulator.tokens.revoke(token)

    def kubeconfig_for(
        self,
        user: str,
        groups: tuple[str, ...] = (),
        *,
        via: str = "token",
        namespace: str = "default",
        path: Path | None = None,
    ) -> Path:
        """A kubeconfig authenticating as `user` in `groups`: `via="token"` (a bearer token) or `"cert"`
        (a client certificate from the cluster's client CA, CN = user, O = groups)."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", user)
        path = path or self.workdir / "kubeconfigs" / f"{stem}-{via}-{next(self._kubeconfigs)}.kubeconfig"
        if via == "token":
            return write_kubeconfig(path, self.url, namespace, self.issue_token(user, groups), ca_pem=self.ca.pem)
        if via == "cert":
            cert = self.client_ca.issue(user, organizations=groups)
            return write_kubeconfig(path, self.url, namespace, None, ca_pem=self.ca.pem, cert=cert)
        raise ValueError(f"via must be 'token' or 'cert', not {via!r}")

    def write_service_account_files(self, directory: Path, namespace: str, name: str) -> str:
        """What a kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount: `token` (a new one
        for the ServiceAccount), `ca.crt`, `namespace`. Returns the token; call again to rotate (the
        old token stays valid until `revoke_token`, as a projected token does until it expires)."""
        token = self.service_account_token(namespace, name)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_text(self.ca.pem)
        (directory / "namespace").write_text(namespace)
        tmp = directory / ".token.tmp"
        tmp.write_text(token)
        tmp.replace(directory / "token")  # atomically, as the kubelet's atomic writer swaps it
        return token

    def apply_chart_rbac(self, watch_namespaces: tuple[str, ...] = (), values: tuple[str, ...] = ()) -> None:
        """The chart's ServiceAccount and RBAC (`helm template`, release and namespace as the docs install it)."""
        objects = chart.rbac_objects(watch_namespaces, values=values)
        wanted = {chart.NAMESPACE, *watch_namespaces} - {o["metadata"]["name"] for o in self.list("v1", "namespaces")}
        namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in sorted(wanted)]
        self.apply(*namespaces, *objects)

    def operator_kubeconfig(self, watch_namespaces: tuple[str, ...] = ()) -> Path:
        """A token kubeconfig for the chart's ServiceAccount, with the chart's RBAC for these watched
        namespaces (all when empty) applied first; made once per set of namespaces."""
        key = tuple(sorted(watch_namespaces))
        if key not in self._operator_kubeconfigs:
            self.apply_chart_rbac(key)
            token = self.service_account_token(chart.NAMESPACE, chart.SERVICE_ACCOUNT)
            path = self.workdir / "kubeconfigs" / f"operator-{'-'.join(key) or 'all'}.kubeconfig"
            self._operator_kubeconfigs[key] = write_kubeconfig(path, self.url, "default", token, ca_pem=self.ca.pem)
        return self._operator_kubeconfigs[key]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.emulator:
            self.port = await self._listener.start()
            if self._want_kubelet:
                node = str(self._kubelet_options.get("node_name", "emulated-node"))
                options = {"ssl_context": self.client_ssl(f"system:node:{node}", ("system:nodes",))}
                self.kubelet = SimulatedKubelet(
                    self.url, workdir=self.workdir / "kubelet", **{**options, **self._kubelet_options}
                )
                self.emulator.log_provider = self.kubelet.logs
                await self.kubelet.start()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                if self.kubelet is not None:
                    await self.kubelet.stop()
                await self.emulator.aclose()
                await self._listener.stop()

    # --- crossing into the cluster's loop ------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the cluster's loop thread and return its result."""

        async def wrapper() -> T:
            return fn(*args, **kwargs)

        return self.run(wrapper())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        assert self._loop is not None, "the cluster is not started"
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    # --- object helpers (no HTTP, no API call records) -----------------------------------

    def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.call(self.emulator.get_object, api_version, plural, namespace, name)

    def list(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.call(self.emulator.list_objects, api_version, plural, namespace)

    def history(self, api_version: str, plural: str, namespace: str | None, name: str) -> list[dict[str, Any] | None]:
        """Every stored version of an object (None marks a deletion), via kmock's `objects` store."""

        def versions() -> list[dict[str, Any] | None]:
            group, _, version = api_version.rpartition("/")
            key = (kmock.resource(group, version, plural), namespace, name)
            if key not in self.emulator.objects:
                return []
            return [None if v is None else json.loads(json.dumps(v.raw)) for v in self.emulator.objects[key].history]

        return self.call(versions)

    def pods(self, namespace: str | None = "default") -> list[dict[str, Any]]:
        return self.list("v1", "pods", namespace)

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.get("v1", "pods", namespace, name)

    def inject(self, fault: Fault) -> Fault:
        return self.call(self.emulator.inject, fault)

    def pause(self) -> None:
        self.call(self.emulator.pause)

    def resume(self) -> None:
        self.call(self.emulator.resume)

    def disconnect_watches(self) -> None:
        self.call(self.emulator.disconnect_watches)

    def connections_opened(self) -> builtins.list[float]:
        """When the API server accepted each connection so far (each one a TLS handshake)."""
        return self.call(lambda: builtins.list(self._listener.opened))

    def restart_api(self, down: float = 0.0) -> float:
        """Restart the API server's listener (same port, same objects and resourceVersions)."""
        return self.run(self._listener.restart(down))

    def writes(self, user_agent: str | None = None, exclude: tuple[str, ...] = ()) -> dict[tuple[str, str], int]:
        """Successful API writes by (verb, resource); e.g. `exclude=("kubectl", "simulated-kubelet")`."""
        return dict(self.call(self.emulator.writes, user_agent, exclude))

    # --- clients -------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client process: KUBECONFIG, a private kubectl cache, PATH with kubectl."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.workdir / "kube-cache")
        env["PATH"] = os.pathsep.join(
            [str(Path(KUBECTL).parent), str(Path(sys.executable).parent), env.get("PATH", "")]
        )
        env.update(extra)
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against the emulator; raises with its stderr when `check` fails."""
        result = subprocess.run(
            [KUBECTL, *args], input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, *objects: Mapping[str, Any]) -> None:
        """Client-side `kubectl apply` of manifests (what users do)."""
        # JSON documents: kubectl's YAML 1.1 parser would read an unquoted `y` as a boolean.
        self.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """An official `kubernetes.client.ApiClient` configured from this cluster's (admin) kubeconfig."""
        import kubernetes

        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(kubeconfig or self.kubeconfig), client_configuration=configuration
        )
        return kubernetes.client.ApiClient(configuration)

    # --- the operator (or any kopf script) as a separate process --------------------------

    def start_process(
        self,
        args: Iterable[str],
        *,
        name: str = "operator",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        kubeconfig: Path | None = None,
    ) -> OperatorProcess:
        """Any process with KUBECONFIG (the admin's unless `kubeconfig` names another)."""
        extra = {**({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {}), **dict(env or {})}
        process = OperatorProcess(list(args), self.env(**extra), self.workdir / f"{name}.log", cwd=cwd)
        self._processes.append(process)
        return process

    def start_operator(
        self, *args: str, env: Mapping[str, str] | None = None, kubeconfig: Path | None = None, name: str = "operator"
    ) -> OperatorProcess:
        """`openclaw-cron-operator` (the console script) against this cluster, by default as the chart's
        ServiceAccount with the chart's RBAC for the namespaces in `args` (`-n`) or env (all by default)."""
        exe = Path(sys.executable).parent / "openclaw-cron-operator"
        if kubeconfig is None:
            kubeconfig = self.operator_kubeconfig(watched_namespaces(args, env or {}))
        env = {"OPENCLAW_CRON_RESYNC_SECONDS": RESYNC_SECONDS, **(env or {})}
        return self.start_process([str(exe), *args], env=env, kubeconfig=kubeconfig, name=name)

    def start_operator_in_image(
        self,
        image: str,
        *args: str,
        engine: Iterable[str] = ("podman",),
        run_args: Iterable[str] = ("--network=host", "--user", "65532:65532", "--read-only"),
        env: Mapping[str, str] | None = None,
        name: str = "operator",
        kubeconfig: Path | None = None,
    ) -> ContainerProcess:
        """`openclaw-cron-operator` from the container image with the kubeconfig mounted read-only.
        `engine` is the container CLI (`podman --runtime ...`); `run_args` say how the container runs
        (the image tier: as the chart runs it, host network since the emulator is on 127.0.0.1)."""
        container = f"ocj-test-{os.getpid()}-{name}-{len(self._processes)}"
        if kubeconfig is None:
            kubeconfig = self.operator_kubeconfig(watched_namespaces(args, env or {}))
        argv = [*engine, "run", "--rm", "--name", container, "--label", f"{CONTAINER_PARENT_LABEL}={os.getpid()}"]
        argv += [*run_args, "-v", f"{kubeconfig}:/etc/kube/config:ro", "-e", "KUBECONFIG=/etc/kube/config"]
        for key, value in {"OPENCLAW_CRON_RESYNC_SECONDS": RESYNC_SECONDS, **(env or {})}.items():
            argv += ["-e", f"{key}={value}"]
        process = ContainerProcess(
            [*argv, image, *args], self.env(), self.workdir / f"{name}.log", engine=list(engine), container=container
        )
        self._processes.append(process)
        return process


def watched_namespaces(args: Iterable[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """The namespaces an operator command line (`-n X`, `--namespace=X`) or OPENCLAW_CRON_NAMESPACES selects."""
    args = list(args)
    found: list[str] = []
    for i, arg in enumerate(args):
        if arg in ("-n", "--namespace") and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--namespace="):
            found.append(arg.partition("=")[2])
    if "-A" in args or "--all-namespaces" in args:
        return ()
    if not found:
        found = [n.strip() for n in env.get("OPENCLAW_CRON_NAMESPACES", "").split(",") if n.strip()]
    return tuple(found)


#: Label on containers the tests start: the test process's PID, so leftovers of a dead one are known.
CONTAINER_PARENT_LABEL = "io.openclaw.cron.test-parent"
PR_SET_PDEATHSIG = 1
# Looked up now, not in the forked child: a dlopen() there could deadlock on a lock another thread
# (the cluster's loop) held at fork time. None where there is no prctl (not Linux).
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


def die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when the thread that started it exits, so an operator
    never outlives a crashed or killed test run (it would go on writing to a reused port). Start
    processes from a thread that lives as long as they should (the main thread, in tests)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class OperatorProcess:
    """A subprocess whose combined output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            args,
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        if not self._log.closed:  # after stop() the file holds everything already
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: text in self.logs() or not self.running(), timeout, 0.1, f"{text!r} in {self.log_path}")
        if text not in self.logs():
            raise AssertionError(
                f"process exited ({self.process.returncode}) before logging {text!r}:\n{self.logs()[-4000:]}"
            )

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


class ContainerProcess(OperatorProcess):
    """`<engine> run` in the foreground: SIGTERM reaches the container through the CLI's signal proxy;
    `stop()` then removes the container, which a killed CLI (SIGKILL, or its parent's death) leaves."""

    def __init__(
        self, args: list[str], env: Mapping[str, str], log_path: Path, *, engine: list[str], container: str
    ) -> None:
        super().__init__(args, env, log_path)
        self.engine, self.container = engine, container

    def stop(self, timeout: float = 15) -> int:
        code = super().stop(timeout)
        subprocess.run([*self.engine, "rm", "--force", "--time", "0", self.container], capture_output=True, timeout=60)
        return code
