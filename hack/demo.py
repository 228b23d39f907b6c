"""Self-contained demo: emulated API server, simulated kubelet, a gateway stand-in, the operator.

    make demo                      # or: .venv/bin/python hack/demo.py
    .venv/bin/python hack/demo.py --real-gateway   # a real OpenClaw gateway (~1 GB RAM, ~30 s start)

No cluster needed. It applies crds/, the hooks token Secret and the jobs in manifests/demo/,
starts `openclaw-cron-operator --standalone` and prints how to look at runs, status and
history with kubectl, plus a compact job table every ~10 s. Ctrl-C stops everything it
started (operator, gateway stand-in, cluster); `--duration N` stops after N seconds. Exits 1
if the operator dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "hack"))

from support import Cluster, OperatorProcess  # noqa: E402
from support.frontproxy import FrontProxy  # noqa: E402

API = "cron.openclaw.io/v1alpha1"
PLURAL = "openclawcronjobs"
NAMESPACE = "default"
DEMO_DIR = REPO / ".cache" / "demo"
JOBS_DIR = REPO / "manifests" / "demo"
CRDS_DIR = REPO / "crds"
BIN = Path(sys.executable).parent
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
SECRET = "openclaw-hooks"
KICK = ("demo-hello", "demo-flaky", "demo-wake", "demo-agent")  # not demo-once: a run would delete it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the gateway stand-in ------------------------------------------------------------------


class HooksStandIn:
    """Answers POST /hooks/wake and /hooks/agent like an OpenClaw gateway (bearer token checked)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: dict[str, int] = {"wake": 0, "agent": 0}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply(200, {"ok": True}) if self.path in ("/readyz", "/healthz") else self._reply(404, {})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {stand_in.token}" and self.headers.get("x-openclaw-token") != stand_in.token:
                    self._reply(401, {"ok": False, "error": "Unauthorized"})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._reply(400, {"ok": False, "error": "invalid JSON body"})
                    return
                if self.path == "/hooks/wake":
                    stand_in.calls["wake"] += 1
                    self._reply(200, {"ok": True, "mode": body.get("mode", "now"), "eventOutcome": "queued"})
                elif self.path == "/hooks/agent":
                    stand_in.calls["agent"] += 1
                    completion = {"status": "ok", "delivered": False}
                    self._reply(200, {"ok": True, "runId": str(uuid.uuid4()), "completion": completion})
                else:
                    self._reply(404, {"ok": False, "error": "Not Found"})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hooks-stand-in", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> HooksStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextlib.contextmanager
def gateway(real: bool, state: Path) -> Iterator[tuple[str, str, str]]:
    """(url, hooks token, description) of the stand-in, or of a real gateway with a stub model."""
    if not real:
        stand_in = HooksStandIn("demo-" + secrets.token_hex(8)).start()
        try:
            yield stand_in.url, stand_in.token, "hooks stand-in (answers like the gateway)"
        finally:
            stand_in.stop()
        return
    import openclaw_gateway as og

    if not (og.NODE.exists() and og.ENTRY.exists()):
        raise SystemExit("no OpenClaw gateway installed: run `bash hack/install-gateway.sh` first")
    say("starting the real OpenClaw gateway with a stand-in model (needs ~1 GB RAM, takes ~30 s) ...")
    base = Path(tempfile.mkdtemp(prefix="openclaw-gateway-", dir=state))
    with og.running(base) as (_model, gw):
        yield gw.url, gw.hooks_token, f"real OpenClaw gateway (log {gw.log_path})"


# --- output --------------------------------------------------------------------------------


def say(text: str = "") -> None:
    """Print and flush; a closed stdout (`| head`) must not skip the cleanup."""
    with contextlib.suppress(BrokenPipeError, ValueError, OSError):
        print(text, flush=True)


def _age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "-"
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    seconds = int((now - then).total_seconds())
    if seconds >= 0:
        return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"
    return f"in {-seconds}s" if -seconds < 120 else f"in {-seconds // 60}m"


def job_table(jobs: list[dict[str, Any]], now: datetime | None = None) -> str:
    """A compact `kubectl get ocj` with the run counters."""
    now = now or datetime.now(UTC)
    headers = ["NAME", "SCHEDULE", "STATE", "LAST RUN", "RESULT", "NEXT RUN", "RUNS", "OK", "FAILED", "ACTIVE"]
    rows = [headers]
    for obj in sorted(jobs, key=lambda o: o["metadata"]["name"]):
        st = obj.get("status") or {}
        counters = st.get("counters") or {}
        rows.append(
            [
                obj["metadata"]["name"],
                st.get("schedule", "-"),
                st.get("state", "-"),
                _age(st.get("lastScheduleTime"), now),
                st.get("lastRunResult", "-"),
                _age(st.get("nextRunTime"), now),
                str(counters.get("runs", 0)),
                str(counters.get("succeeded", 0)),
                str(counters.get("failed", 0)),
                str(len(st.get("active") or [])),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def instructions(kubeconfig: Path, metrics_port: int, gateway_text: str, log: Path, console: str) -> str:
    path = f"{BIN}:{KUBECTL.parent}"
    return f"""
The demo is running: operator, emulated API server + simulated kubelet, {gateway_text}, the run archive.
Console (through a kubectl proxy the demo started): {console}
In another terminal:

  export PATH="{path}:$PATH" KUBECONFIG={kubeconfig}
  kubectl get ocj -w                              # schedule, state, last result, next run
  kubectl openclaw runs demo-flaky                # run history: results, attempts, exit codes
  kubectl openclaw run demo-hello --wait          # run a job now
  kubectl get pods -l cron.openclaw.io/job=demo-hello
  kubectl describe ocj demo-agent                 # conditions, recent runs, events
  kubectl get events --field-selector involvedObject.kind=OpenClawCronJob
  curl -s http://127.0.0.1:{metrics_port}/metrics | grep ^openclaw_cron
  kubectl openclaw history --since 1h             # the run archive (aggregated API, RBAC per namespace)
  kubectl openclaw logs demo-flaky --archive      # a run's log from the archive
  kubectl openclaw summary --since 1h             # runs, success rate, p50/p95 per job
  kubectl openclaw console                        # the web console (its own kubectl proxy)

Jobs (each ran once at start via run-now): demo-hello (every 10s), demo-flaky (cron */15
seconds, fails every other time, retries once after 3s), demo-wake (systemEvent, 20s),
demo-agent (agentTurn, 30s), demo-once (at +45s, deletes itself). Operator log: {log}. Ctrl-C stops everything.
"""


# --- the demo ------------------------------------------------------------------------------


def kubectl(cluster: Cluster, *args: str, input: str | None = None) -> None:
    result = subprocess.run(
        [str(KUBECTL), *args], input=input, capture_output=True, text=True, env=cluster.env(), timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")


def start_console_proxy(cluster: Cluster, kubeconfig: Path) -> tuple[subprocess.Popen[str], str]:
    """`kubectl proxy` as `kubectl openclaw console` starts it (admin's kubeconfig): the process and the URL."""
    from openclaw_cron.cli.console import console_url, proxy_argv

    port = free_port()
    proc = subprocess.Popen(
        [*proxy_argv(str(KUBECTL), port, str(kubeconfig), None)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cluster.env(),
    )
    return proc, console_url(port, NAMESPACE)


def setup(cluster: Cluster, token: str) -> None:
    """crds/ (server-side), the hooks token Secret, then the demo jobs."""
    kubectl(cluster, "apply", "--server-side", "-f", str(CRDS_DIR))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "stringData": {"token": token},
    }
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(secret))
    kubectl(cluster, "apply", "-n", NAMESPACE, "-f", str(JOBS_DIR))


def _await_chain(coro: Any) -> list[str]:
    """function:line of each coroutine a task is suspended in, outermost first."""
    where = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


def diagnose(cluster: Cluster) -> str:
    """What the cluster thread is doing (SIGUSR1): each kubelet task's await point, the Pods'
    phases and the kubelet's last steps; or, when its loop does not answer, every thread's stack."""

    async def state() -> str:
        lines = ["--- diagnose: kubelet tasks"]
        for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
            if task.get_name().startswith("kubelet"):
                lines.append(f"{task.get_name()}: {' > '.join(_await_chain(task.get_coro()))}")
        lines.append("--- diagnose: pods (phase, node)")
        for pod in cluster.emulator.list_objects("v1", "pods", NAMESPACE):
            st = pod.get("status") or {}
            lines.append(f"{pod['metadata']['name']}: {st.get('phase', '-')} {pod['spec'].get('nodeName', '-')}")
        lines.append("--- diagnose: kubelet history (last 30)")
        history = cluster.kubelet.history[-30:] if cluster.kubelet else []
        lines += [f"{pod} {event} {detail.splitlines()[0][:80] if detail else ''}" for pod, event, detail in history]
        return "\n".join(lines)

    try:
        return cluster.run(state(), timeout=5)
    except TimeoutError:
        faulthandler.dump_traceback(sys.stdout, all_threads=True)
        return "--- diagnose: the cluster's loop did not answer in 5 s (thread stacks above)"


def summary(jobs: list[dict[str, Any]], deleted: set[str]) -> str:
    lines = []
    for obj in sorted(jobs, key=lambda o: o["metadata"]["name"]):
        counters = (obj.get("status") or {}).get("counters") or {}
        lines.append(
            f"summary {obj['metadata']['name']} runs={counters.get('runs', 0)} "
            f"succeeded={counters.get('succeeded', 0)} failed={counters.get('failed', 0)}"
        )
    lines += [f"summary {name} deleted-after-run" for name in sorted(deleted)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    parser.add_argument("--quiet", action="store_true", help="no job table every 10 s")
    parser.add_argument("--real-gateway", action="store_true", help="a real OpenClaw gateway (~1 GB RAM, ~30 s)")
    parser.add_argument("--port", type=int, default=0, help="API server port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between job tables")
    parser.add_argument(
        "--state-dir", type=Path, default=DEMO_DIR, help="kubeconfig, logs and kubelet sandboxes (default .cache/demo)"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    wanted = threading.Event()  # SIGUSR1: print diagnose() (the smoke test asks when a job never succeeds)
    signal.signal(signal.SIGUSR1, lambda signum, frame: wanted.set())

    started = time.monotonic()
    state: Path = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    workdir = state / "run"
    shutil.rmtree(workdir, ignore_errors=True)
    kubeconfig = state / "kubeconfig"
    code = 0
    with gateway(args.real_gateway, state) as (gateway_url, token, gateway_text):
        cluster = Cluster(workdir, port=args.port, install_crd=False, kubelet_options={"execute_commands": True})
        cluster.start()
        operator: OperatorProcess | None = None
        console_proxy: subprocess.Popen[str] | None = None
        try:
            shutil.copyfile(cluster.kubeconfig, kubeconfig)  # the admin's: CA and a system:masters certificate
            setup(cluster, token)
            metrics_port = free_port()
            # The run archive and its aggregated API, registered as an APIService would be (front-proxy CA in
            # kube-system/extension-apiserver-authentication, the chart's archive roles), so every archive
            # verb and the console work here as on a cluster installed with Helm.
            access = FrontProxy(cluster, workdir / "pki")
            archive_port = free_port()
            env = {
                "OPENCLAW_CRON_GATEWAY_URL": gateway_url,
                "OPENCLAW_CRON_START_TIMEOUT_SECONDS": "30",
                "OPENCLAW_CRON_ARCHIVE_URL": f"sqlite:///{workdir / 'archive.db'}",
                **access.operator_env(archive_port),
            }
            operator = cluster.start_operator("--standalone", "--metrics-port", str(metrics_port), env=env)
            access.register(archive_port)
            console_proxy, console = start_console_proxy(cluster, kubeconfig)
            # One run of each recurring job right away (run-now), so the first results show in seconds.
            for name in KICK:
                kubectl(cluster, "annotate", "-n", NAMESPACE, PLURAL, name, "cron.openclaw.io/run-now=demo-start")
            say(f"ready {cluster.url} {kubeconfig} (started in {time.monotonic() - started:.1f}s)")
            say(instructions(kubeconfig, metrics_port, gateway_text, operator.log_path, console))
            seen: set[str] = set()
            deleted: set[str] = set()
            next_table = time.monotonic() + min(args.interval, 5.0)
            ready = time.monotonic()  # --duration counts from here (a real gateway takes ~30 s before)
            deadline = ready + args.duration if args.duration > 0 else None
            while not stop.wait(0.5):
                if not operator.running():
                    say(f"the operator exited ({operator.process.returncode}); last log lines:")
                    say("\n".join(operator.logs().splitlines()[-30:]))
                    code = 1
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if wanted.is_set():
                    wanted.clear()
                    say(diagnose(cluster))
                jobs = cluster.list(API, PLURAL, NAMESPACE)
                names = {o["metadata"]["name"] for o in jobs}
                for name in sorted(seen - names - deleted):
                    deleted.add(name)
                    say(f"{datetime.now(UTC):%H:%M:%S} {name}: ran and deleted itself (deleteAfterRun)")
                seen |= names
                if not args.quiet and time.monotonic() >= next_table:
                    next_table = time.monotonic() + args.interval
                    say(f"--- {datetime.now(UTC):%H:%M:%S} UTC, {time.monotonic() - started:.0f}s")
                    say(job_table(jobs))
            say(summary(cluster.list(API, PLURAL, NAMESPACE), deleted))
        finally:
            say("stopping: operator, cluster, gateway ...")
            if console_proxy is not None and console_proxy.poll() is None:
                console_proxy.terminate()
                console_proxy.wait(10)
            if operator is not None and operator.running():
                operator.stop(timeout=10)  # before the cluster, so it does not retry a vanished API
            cluster.stop()
    say(f"stopped; the operator log stays in {workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
