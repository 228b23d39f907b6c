"""A simulated node: schedules and "runs" Pods through the API, like a kubelet would.

It only talks HTTP to the API server (list/watch pods, `pods/binding`, PATCH `pods/status`,
GET secrets/configmaps, DELETE with grace 0 to confirm a graceful deletion), so the
operator sees exactly the Pod status transitions a real node produces: Pending →
Running → Succeeded/Failed with container `terminated` states, `DeadlineExceeded` for
`activeDeadlineSeconds`, `CreateContainerConfigError` for a missing secret, waiting
reasons such as `ErrImagePull`, restarts for restartPolicy Always/OnFailure.

What a container does is scripted per test (`Script`); runner Pods (command
`openclaw-cron-runner`) by default really execute the runner locally with the Pod's
resolved env, its result file becoming the termination message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from .apimachinery import rfc3339

logger = logging.getLogger(__name__)
JSON = dict[str, Any]

RUNNER = "openclaw-cron-runner"
RESULT_ENV = "OPENCLAW_CRON_RESULT_PATH"
SCRIPT_ANNOTATION = "kubelet.emulated/script"
DEFAULT_RUNNER = Path(sys.executable).parent / RUNNER
MAX_MESSAGE = 4096  # the kubelet caps a container's termination message
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048  # FallbackToLogsOnError tail
#: Idle connections are kept this long, just under kube-apiserver's 90 s idle timeout: a real
#: kubelet's HTTP/2 connection is never idle that long (its Lease is renewed every 10 s).
KEEPALIVE = 80.0


@dataclass(frozen=True)
class Script:
    """What a container does on the simulated node.

    `execute` None means the default: runner Pods execute the real runner, other Pods
    are simulated (sleep `run_seconds`, print `output`, exit `exit_code`).
    """

    run_seconds: float = 0.1
    exit_code: int = 0
    termination_message: str | None = None
    output: str = ""
    stay_pending_reason: str | None = None  # e.g. ErrImagePull: waiting forever, never starts
    stay_pending_message: str = ""
    start_delay: float = 0.05  # Pending (ContainerCreating) before Running
    execute: bool | None = None
    command: list[str] | None = None  # run this locally instead of the container's command

    @classmethod
    def from_json(cls, text: str) -> Script:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class _Rule:
    script: Script
    name_prefix: str | None = None
    labels: Mapping[str, str] | None = None
    env: Mapping[str, str] | None = None

    def matches(self, pod: JSON) -> bool:
        meta = pod.get("metadata", {})
        if self.name_prefix is not None and not meta.get("name", "").startswith(self.name_prefix):
            return False
        if self.labels and any((meta.get("labels") or {}).get(k) != v for k, v in self.labels.items()):
            return False
        if self.env:
            literal = {
                e["name"]: e.get("value")
                for c in pod.get("spec", {}).get("containers", [])
                for e in c.get("env") or []
                if "value" in e
            }
            if any(literal.get(k) != v for k, v in self.env.items()):
                return False
        return True


class ConfigError(Exception):
    """The container cannot be created yet (CreateContainerConfigError)."""


@dataclass
class _Container:
    name: str
    spec: JSON
    started_at: str | None = None
    state: JSON = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    restarts: int = 0
    ready: bool = False
    last_state: JSON = field(default_factory=dict)

    def status(self, pod_uid: str) -> JSON:
        image = self.spec.get("image", "")
        started = "running" in self.state
        return {
            "name": self.name,
            "image": image,
            "imageID": f"{image}@sha256:{'0' * 64}" if started or "terminated" in self.state else "",
            "containerID": f"containerd://{pod_uid.replace('-', '')}{self.name}"
            if started or "terminated" in self.state
            else None,
            "ready": self.ready,
            "started": started,
            "restartCount": self.restarts,
            "state": self.state,
            "lastState": self.last_state,
        }


class SimulatedKubelet:
    """Drives Pods on one emulated node through the API; start()/stop() on the server's loop or any loop."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        node_name: str = "emulated-node",
        workdir: Path | None = None,
        runner_command: list[str] | None = None,
        execute_runner: bool = True,
        execute_commands: bool = False,
        default_script: Script | None = None,
        namespaces: set[str] | None = None,
        restart_backoff: float = 1.0,
        extra_env: Mapping[str, str] | None = None,
        post_events: bool = True,
        connections: int = 0,
    ) -> None:
        self.server = server.rstrip("/")
        #: Credentials: a client certificate in `ssl_context` (a kubelet's), or a bearer `token`.
        self.token = token
        self._ssl = ssl_context
        self.node_name = node_name
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="kubelet-"))
        self.runner_command = runner_command or ([str(DEFAULT_RUNNER)] if DEFAULT_RUNNER.exists() else None)
        self.execute_runner = execute_runner
        self.execute_commands = execute_commands
        self.default_script = default_script or Script()
        self.namespaces = namespaces
        self.restart_backoff = restart_backoff
        self.extra_env = dict(extra_env or {})
        self.post_events = post_events
        #: Connections opened at start and kept (0: opened as requests need them). A real kubelet
        #: sends every request over one HTTP/2 connection it holds open, so a burst of Pods costs
        #: the server no TLS handshakes. This client speaks HTTP/1.1, one request a connection, and
        #: runs on the emulated server's thread: each connection it opens in a burst is a handshake
        #: at both ends there (~3 ms), which a cluster never pays. The bench opens its pool up front.
        self.connections = connections
        self.rules: list[_Rule] = []
        self.history: list[tuple[str, str, str]] = []  # (namespace/name, event, detail) for assertions
        self._logs: dict[tuple[str, str], dict[str, str]] = {}
        self._workers: dict[str, _PodWorker] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ip = 10

    # --- scripting -------------------------------------------------------------------------

    def script(
        self,
        script: Script | None = None,
        *,
        name_prefix: str | None = None,
        labels: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Script:
        """Script Pods matching a name prefix / labels / literal env; the latest matching rule wins.

        Thread-safe enough to call from a test thread (a list append).
        """
        script = replace(script or Script(), **fields)
        self.rules.append(_Rule(script, name_prefix, labels, env))
        return script

    def script_for(self, pod: JSON) -> Script:
        text = (pod.get("metadata", {}).get("annotations") or {}).get(SCRIPT_ANNOTATION)
        if text:
            return Script.from_json(text)
        for rule in reversed(self.rules):
            if rule.matches(pod):
                return rule.script
        return self.default_script

    def logs(self, namespace: str, name: str, container: str | None = None) -> str | None:
        per_pod = self._logs.get((namespace, name))
        if per_pod is None:
            return None
        if container is None:
            return next(iter(per_pod.values()), "")
        return per_pod.get(container)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        headers = {"User-Agent": f"simulated-kubelet/{self.node_name}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._session = aiohttp.ClientSession(
            self.server,
            connector=aiohttp.TCPConnector(
                ssl=self._ssl or True, limit=max(100, self.connections), keepalive_timeout=KEEPALIVE
            ),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        # As many requests at once as connections wanted: each opens one, then all are kept idle.
        await asyncio.gather(*(self.api("GET", "/version") for _ in range(self.connections)))
        self._task = asyncio.create_task(self._watch_pods(), name="kubelet-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        workers = list(self._workers.values())
        for worker in workers:
            worker.task.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker.task
            await worker.kill_all()
        if self._session is not None:
            await self._session.close()

    # --- API -------------------------------------------------------------------------------

    async def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        assert self._session is not None
        data = None if body is None else json.dumps(body)
        async with self._session.request(
            method, path, data=data, params=params, headers={"Content-Type": content_type}
        ) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text) if text else None
            except ValueError:
                return response.status, text

    async def patch_status(self, pod: JSON, status: JSON) -> None:
        meta = pod["metadata"]
        code, body = await self.api(
            "PATCH",
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
            {"status": status},
            "application/merge-patch+json",
        )
        if code >= 400 and code != 404:
            logger.warning("kubelet: status patch of %s failed: %s %s", meta["name"], code, body)

    async def event(
        self, pod: JSON, reason: str, message: str, kind: str = "Normal", component: str = "kubelet"
    ) -> None:
        """A core/v1 Event about the Pod, as the scheduler and kubelet post them."""
        if not self.post_events:
            return
        meta = pod["metadata"]
        now = rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component, "host": self.node_name if component == "kubelet" else ""},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": self.node_name if component == "kubelet" else "",
        }
        await self.api("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body)

    async def _watch_pods(self) -> None:
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    code, listing = await self.api("GET", "/api/v1/pods")
                    if code != 200:
                        raise ConnectionError(f"pod list failed: {code}")
                    rv = listing["metadata"]["resourceVersion"]
                    for pod in listing["items"]:
                        self._observe("ADDED", pod)
                assert self._session is not None
                params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "300"}
                async with self._session.get("/api/v1/pods", params=params) as response:
                    if response.status != 200:
                        rv = None
                        raise ConnectionError(f"pod watch failed: {response.status}")
                    while line := await response.content.readline():
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            rv = None
                            break
                        rv = event["object"]["metadata"].get("resourceVersion", rv)
                        self._observe(event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.debug("kubelet watch restarts: %r", e)
                await asyncio.sleep(0.2)

    def _observe(self, kind: str, pod: JSON) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        if self.namespaces is not None and meta.get("namespace") not in self.namespaces:
            return
        if spec.get("nodeName") not in (None, self.node_name):
            return
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        uid = meta["uid"]
        worker = self._workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.gone.set()
                worker.deleting.set()
            return
        if worker is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return
            worker = _PodWorker(self, pod)
            self._workers[uid] = worker
            worker.task = asyncio.create_task(worker.run(), name=f"kubelet-{meta['name']}")
            worker.task.add_done_callback(lambda _t, u=uid: self._workers.pop(u, None))
        worker.pod = pod
        if meta.get("deletionTimestamp"):
            worker.deleting.set()

    def _record(self, pod: JSON, event: str, detail: str = "") -> None:
        meta = pod["metadata"]
        self.history.append((f"{meta['namespace']}/{meta['name']}", event, detail))

    def _next_ip(self) -> str:
        self._ip += 1
        return f"10.244.{self._ip // 250}.{self._ip % 250 + 2}"


class _PodWorker:
    def __init__(self, kubelet: SimulatedKubelet, pod: JSON) -> None:
        self.kubelet = kubelet
        self.pod = pod
        self.task: asyncio.Task[None]
        self.deleting = asyncio.Event()
        self.gone = asyncio.Event()
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.containers = [_Container(c["name"], c) for c in pod.get("spec", {}).get("containers", [])]
        self.start_time: str | None = None
        self.started_mono: float | None = None
        self.pod_ip = ""
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None

    @property
    def ns(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    # --- status ----------------------------------------------------------------------------

    def _conditions(self) -> list[JSON]:
        now = rfc3339()
        ready = bool(self.containers) and all(c.ready for c in self.containers)
        completed = self.phase in ("Succeeded", "Failed")

        def cond(kind: str, ok: bool, reason: str | None = None) -> JSON:
            c: JSON = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            if reason:
                c["reason"] = reason
            return c

        not_ready = "PodCompleted" if completed else None if ready else "ContainersNotReady"
        return [
            cond("PodReadyToStartContainers", self.start_time is not None),
            cond("Initialized", True, "PodCompleted" if completed else None),
            cond("Ready", ready, not_ready),
            cond("ContainersReady", ready, not_ready),
            cond("PodScheduled", True),
        ]

    async def push(self) -> None:
        status: JSON = {
            "phase": self.phase,
            "conditions": self._conditions(),
            "hostIP": "192.168.0.10",
            "hostIPs": [{"ip": "192.168.0.10"}],
            "containerStatuses": [c.status(self.pod["metadata"]["uid"]) for c in self.containers],
            "qosClass": self.pod.get("status", {}).get("qosClass", "BestEffort"),
        }
        if self.start_time:
            status["startTime"] = self.start_time
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.reason:
            status["reason"] = self.reason
            status["message"] = self.message or ""
        await self.kubelet.patch_status(self.pod, status)

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("kubelet: pod worker %s crashed", self.name)

    async def _run(self) -> None:
        kubelet = self.kubelet
        if not self.pod.get("spec", {}).get("nodeName"):
            code, body = await kubelet.api(
                "POST",
                f"/api/v1/namespaces/{self.ns}/pods/{self.name}/binding",
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": self.name, "namespace": self.ns},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": kubelet.node_name},
                },
            )
            if code >= 400:
                logger.debug("kubelet: binding %s failed: %s %s", self.name, code, body)
                return
        kubelet._record(self.pod, "Scheduled", kubelet.node_name)
        await kubelet.event(
            self.pod,
            "Scheduled",
            f"Successfully assigned {self.ns}/{self.name} to {kubelet.node_name}",
            component="default-scheduler",
        )
        script = kubelet.script_for(self.pod)

        # Waiting: image pulls that never succeed, or env that cannot be resolved yet.
        if script.stay_pending_reason:
            for c in self.containers:
                c.state = {"waiting": {"reason": script.stay_pending_reason, "message": script.stay_pending_message}}
            await self.push()
            kubelet._record(self.pod, "Waiting", script.stay_pending_reason)
            image = self.containers[0].spec.get("image", "") if self.containers else ""
            await kubelet.event(
                self.pod,
                "Failed",
                f'Failed to pull image "{image}": {script.stay_pending_message}'
                if "Image" in script.stay_pending_reason
                else script.stay_pending_message,
                "Warning",
            )
            await self.deleting.wait()
            await self._confirm_deletion()
            return
        envs: dict[str, dict[str, str]] = {}
        while True:
            try:
                for c in self.containers:
                    envs[c.name] = await self._resolve_env(c.spec)
                break
            except ConfigError as e:
                for c in self.containers:
                    c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}}
                await self.push()
                kubelet._record(self.pod, "Waiting", f"CreateContainerConfigError: {e}")
                await kubelet.event(self.pod, "Failed", f"Error: {e}", "Warning")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.deleting.wait(), 1.0)
                if self.deleting.is_set():
                    await self._confirm_deletion()
                    return
        await asyncio.sleep(script.start_delay)

        # Running until every container terminates for good, the deadline passes, or deletion.
        self.start_time = rfc3339()
        self.started_mono = time.monotonic()
        self.pod_ip = kubelet._next_ip()
        self.phase = "Running"
        deadline = self.pod.get("spec", {}).get("activeDeadlineSeconds")
        runs = [asyncio.create_task(self._container_loop(c, script, envs[c.name])) for c in self.containers]
        stop_waiters = [asyncio.create_task(self.deleting.wait())]
        if deadline is not None:
            stop_waiters.append(asyncio.create_task(asyncio.sleep(max(0.0, float(deadline)))))
        everything = asyncio.gather(*runs)
        done, _ = await asyncio.wait([everything, *stop_waiters], return_when=asyncio.FIRST_COMPLETED)
        for waiter in stop_waiters:
            waiter.cancel()
        if everything in done:
            failed = any(c.state.get("terminated", {}).get("exitCode", 0) != 0 for c in self.containers)
            self.phase = "Failed" if failed else "Succeeded"
            for c in self.containers:
                c.ready = False
            await self.push()
            kubelet._record(self.pod, self.phase)
            await self.deleting.wait()
            return
        # Killed: by the active deadline, or by a graceful deletion.
        by_deadline = not self.deleting.is_set()
        grace = 0 if by_deadline else int(self.pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        if by_deadline:
            await kubelet.event(
                self.pod, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline", "Warning"
            )
        for c in self.containers:
            await kubelet.event(self.pod, "Killing", f"Stopping container {c.name}")
        await self.kill_all(grace=min(grace, 5))
        everything.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await everything
        now = rfc3339()
        for c in self.containers:
            if "terminated" not in c.state:
                code = 137 if by_deadline else 143
                c.state = {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Error",
                        "startedAt": c.started_at or now,
                        "finishedAt": now,
                        "containerID": c.status(self.pod["metadata"]["uid"])["containerID"],
                    }
                }
            c.ready = False
        self.phase = "Failed"
        if by_deadline:
            self.reason, self.message = (
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
            )
        await self.push()
        kubelet._record(self.pod, "DeadlineExceeded" if by_deadline else "Killed")
        if by_deadline:
            await self.deleting.wait()
            return
        await self._confirm_deletion()

    async def _confirm_deletion(self) -> None:
        """A kubelet finishes a graceful deletion with DELETE gracePeriodSeconds=0."""
        if self.gone.is_set():
            return
        uid = self.pod["metadata"]["uid"]
        await self.kubelet.api(
            "DELETE",
            f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
        )
        self.kubelet._record(self.pod, "Deleted")

    async def _container_loop(self, c: _Container, script: Script, env: dict[str, str]) -> None:
        policy = self.pod.get("spec", {}).get("restartPolicy", "Always")
        while True:
            c.started_at = rfc3339()
            c.state = {"running": {"startedAt": c.started_at}}
            c.ready = True
            await self.push()
            self.kubelet._record(self.pod, "Started", c.name)
            if c.restarts == 0:
                image = c.spec.get("image", "")
                await self.kubelet.event(self.pod, "Pulled", f'Container image "{image}" already present on machine')
                await self.kubelet.event(self.pod, "Created", f"Created container: {c.name}")
            await self.kubelet.event(self.pod, "Started", f"Started container {c.name}")
            code, message, reason = await self._execute(c, script, env)
            finished = rfc3339()
            c.ready = False
            terminated: JSON = {
                "exitCode": code,
                "reason": reason,
                "startedAt": c.started_at,
                "finishedAt": finished,
                "containerID": c.status(self.pod["metadata"]["uid"])["containerID"],
            }
            if message:
                terminated["message"] = message
            c.state = {"terminated": terminated}
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                c.last_state = {"terminated": terminated}
                c.restarts += 1
                c.state = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off restarting failed container {c.name}",
                    }
                }
                await self.push()
                await asyncio.sleep(self.kubelet.restart_backoff)
                continue
            return

    # --- executing -------------------------------------------------------------------------

    def _is_runner(self, spec: JSON) -> bool:
        argv = (spec.get("command") or []) + (spec.get("args") or [])
        return bool(argv) and Path(argv[0]).name == RUNNER

    async def _execute(self, c: _Container, script: Script, env: dict[str, str]) -> tuple[int, str, str]:
        """Run or simulate one container; returns (exit code, termination message, reason)."""
        kubelet = self.kubelet
        spec = c.spec
        runner = self._is_runner(spec)
        execute = (
            script.execute
            if script.execute is not None
            else (
                (runner and kubelet.execute_runner and kubelet.runner_command is not None) or kubelet.execute_commands
            )
        )
        log_key = (self.ns, self.name)
        kubelet._logs.setdefault(log_key, {})[c.name] = ""
        if not execute or (
            runner and script.command is None and kubelet.runner_command is None and script.execute is None
        ):
            if script.output:
                kubelet._logs[log_key][c.name] = script.output
            await asyncio.sleep(script.run_seconds)
            return self._outcome(
                spec, script.exit_code, script.termination_message or "", kubelet._logs[log_key][c.name]
            )

        argv = list(script.command or [])
        if not argv:
            argv = (spec.get("command") or []) + (spec.get("args") or [])
            if runner and kubelet.runner_command:
                command_len = len(spec.get("command") or []) or 1
                argv = kubelet.runner_command + argv[command_len:]
            argv = [_expand(a, env) for a in argv]
        if not argv:
            raise RuntimeError(f"pod {self.name}: container {c.name} has no command to execute locally")
        sandbox, result_path, cwd = self._sandbox(spec)
        proc_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(sandbox),
            "LANG": "C.UTF-8",
            "HOSTNAME": self.name,
            **kubelet.extra_env,
            **env,
            RESULT_ENV: str(result_path),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=proc_env,
                cwd=cwd,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            message = f'failed to create containerd task: exec: "{argv[0]}": {e.strerror}'
            return 128, message, "StartError"
        self.processes[c.name] = process
        kubelet._record(self.pod, "Executing", " ".join(argv))
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = kubelet._logs[log_key].get(c.name, "") + line.decode(errors="replace")
            kubelet._logs[log_key][c.name] = text[-1_000_000:]
        code = await process.wait()
        self.processes.pop(c.name, None)
        if code < 0:
            code = 128 - code  # killed by a signal: 128 + signum, as a container runtime reports
        message = _read_text(result_path)
        return self._outcome(spec, code, message, kubelet._logs[log_key][c.name])

    def _sandbox(self, spec: JSON) -> tuple[Path, Path, str]:
        """A private HOME, the termination-log file, and the working directory for one run."""
        sandbox = Path(tempfile.mkdtemp(prefix=f"{self.name[:40]}-", dir=self.kubelet.workdir))
        result_path = sandbox / "termination-log"
        result_path.write_text("")
        workdir = spec.get("workingDir")
        return sandbox, result_path, workdir if workdir and os.path.isdir(workdir) else str(sandbox)

    @staticmethod
    def _outcome(spec: JSON, code: int, message: str, logs: str) -> tuple[int, str, str]:
        if not message and code != 0 and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = "\n".join(logs.splitlines()[-FALLBACK_LINES:])
            message = tail.encode()[-FALLBACK_BYTES:].decode(errors="ignore")
            if logs.endswith("\n") and message:
                message += "\n"
        message = message.encode()[:MAX_MESSAGE].decode(errors="ignore")
        return code, message, "Completed" if code == 0 else "Error"

    async def kill_all(self, grace: float = 0) -> None:
        for process in list(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), max(grace, 0.5))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), 5)
        self.processes.clear()

    async def _resolve_env(self, spec: JSON) -> dict[str, str]:
        """Container env as the kubelet builds it: envFrom, then env with valueFrom and $(VAR)."""
        env: dict[str, str] = {}
        for source in spec.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, plural in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
                ref = source.get(kind)
                if ref:
                    data = await self._read_data(plural, ref["name"], bool(ref.get("optional")))
                    env.update({prefix + k: v for k, v in data.items()})
        for var in spec.get("env") or []:
            name = var["name"]
            if "value" in var:
                env[name] = _expand(str(var["value"]), env)
                continue
            source = var.get("valueFrom") or {}
            if "secretKeyRef" in source or "configMapKeyRef" in source:
                kind = "secretKeyRef" if "secretKeyRef" in source else "configMapKeyRef"
                ref = source[kind]
                data = await self._read_data(
                    "secrets" if kind == "secretKeyRef" else "configmaps", ref["name"], bool(ref.get("optional"))
                )
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not ref.get("optional"):
                    what = "secret" if kind == "secretKeyRef" else "configmap"
                    raise ConfigError(f"couldn't find key {ref['key']} in {what.capitalize()} {self.ns}/{ref['name']}")
            elif "fieldRef" in source:
                env[name] = self._field(source["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in source:
                env[name] = "0"
            else:
                env[name] = ""
        return env

    async def _read_data(self, plural: str, name: str, optional: bool) -> dict[str, str]:
        code, body = await self.kubelet.api("GET", f"/api/v1/namespaces/{self.ns}/{plural}/{name}")
        if code == 404:
            if optional:
                return {}
            raise ConfigError(f'{"secret" if plural == "secrets" else "configmap"} "{name}" not found')
        if code >= 400:
            raise ConfigError(f"failed to read {plural}/{name}: {code}")
        if plural == "secrets":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (body.get("data") or {}).items()}
        return dict(body.get("data") or {})

    def _field(self, path: str) -> str:
        meta, spec = self.pod["metadata"], self.pod.get("spec", {})
        if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
            return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
        values: dict[str, Callable[[], Any]] = {
            "metadata.name": lambda: meta["name"],
            "metadata.namespace": lambda: meta["namespace"],
            "metadata.uid": lambda: meta["uid"],
            "spec.nodeName": lambda: self.kubelet.node_name,
            "spec.serviceAccountName": lambda: spec.get("serviceAccountName", "default"),
            "status.podIP": lambda: self.pod_ip,
            "status.hostIP": lambda: "192.168.0.10",
        }
        return str(values[path]()) if path in values else ""


def _read_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _expand(text: str, env: Mapping[str, str]) -> str:
    """$(VAR) expansion of command, args and env values; $$(VAR) escapes."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )
