"""Browser tier: the console in Debian's headless Chromium, driven by Playwright (never its own browsers).

One world per module: the emulated API server (HTTPS, authentication, RBAC), the simulated kubelet,
the real operator process serving the archive's aggregated listener (front-proxy certificate, a
SubjectAccessReview per namespace), ~50 jobs in two namespaces and ~2,000 archived runs seeded
through the operator's own store code (SqliteStore.put) before it starts. Each user reaches the
console as a person would: `kubectl openclaw console --no-browser` with their own kubeconfig,
which runs the real `kubectl proxy`.

The tier skips, saying why, only where no browser can start (no /usr/bin/chromium, no playwright).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support import Cluster, OperatorProcess, wait_for
from support.frontproxy import FrontProxy, binding

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PLUGIN = str(Path(sys.executable).parent / "kubectl-openclaw")
API = "cron.openclaw.io/v1alpha1"
XSS = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2;alert(2)</script>'
#: Where the tests save their screenshots: a temporary folder, so a test run leaves the tree clean;
#: `make console-screenshots` points it at docs/console to refresh the ones the docs show.
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="console-shots-"))
NAMESPACES = {"team-a": 30, "team-b": 20}
RUNS_PER_JOB = 40


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _why_no_browser() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no browser: {CHROMIUM} is missing (hack/install-system-deps.sh installs Debian's chromium as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no browser driver: the playwright package is missing (pip install -e '.[test]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    cluster: Cluster
    operator: OperatorProcess
    direct: str  # the archive's direct listener (what `summary` reads), for expected figures
    entries: list[Any]
    now: datetime
    proxies: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def console(self, user: str) -> str:
        """`kubectl openclaw console --no-browser` as `user`: its printed URL (the overview of team-a)."""
        if user in self.urls:
            return self.urls[user]
        kubeconfig = self.cluster.kubeconfig_for(user, namespace="team-a")
        env = {**self.cluster.env(), "PATH": f"{ROOT / '.tools' / 'bin'}:{os.environ['PATH']}"}
        proc = subprocess.Popen(
            [PLUGIN, "--kubeconfig", str(kubeconfig), "console", "--no-browser", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"Console: (http://127\.0\.0\.1:\d+/\S+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        self.proxies[user] = proc
        self.urls[user] = match.group(1)
        return match.group(1)


def _job(ns: str, name: str, i: int) -> dict[str, Any]:
    schedules = [
        {"kind": "cron", "expr": f"{i % 60} */2 * * *", "tz": "Europe/Berlin"},
        {"kind": "every", "every": "6h", "staggerSeconds": 600},
        {"kind": "cron", "expr": "30 9 * * 1-5", "tz": "America/New_York"},
    ]
    spec: dict[str, Any] = {
        "schedule": schedules[i % 3],
        "payload": {"kind": "command", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi"]},
    }
    if name == "runner":
        spec = {
            "schedule": {"kind": "every", "every": "24h"},
            "payload": {
                "kind": "command",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "echo ran from the console"],
            },
            "history": {"successfulPodsLimit": 1, "failedPodsLimit": 1, "statusLimit": 5},
        }
    return {"apiVersion": API, "kind": "OpenClawCronJob", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _entries(now: datetime) -> list[Any]:
    from openclaw_cron.archive.model import RunEntry

    rng = random.Random(19)
    out: list[RunEntry] = []
    for ns, count in NAMESPACES.items():
        for j in range(count):
            job = f"{ns[-1]}-job-{j:02d}" if j else "brief"
            if ns == "team-a" and j == 1:
                continue  # "runner" has no history yet
            for k in range(RUNS_PER_JOB):
                scheduled = (now - timedelta(hours=2 + k * 4 + rng.random())).replace(microsecond=0)
                result = rng.choice(["Succeeded"] * 7 + ["Failed", "TimedOut", "Skipped"])
                trigger = "Dependency" if j % 7 == 3 else "Schedule"
                duration = round(rng.uniform(1, 900), 1)
                started = scheduled + timedelta(seconds=rng.randint(0, 30))
                run_id = f"{job}-{int(scheduled.timestamp())}"
                ran = result != "Skipped"
                xss = job == "brief" and k == 0
                out.append(
                    RunEntry(
                        namespace=ns, job=job, job_uid=f"uid-{ns}-{job}", run_id=run_id, attempt=1, trigger=trigger,
                        result=result, scheduled_time=scheduled, start_time=started if ran else None,
                        completion_time=started + timedelta(seconds=duration) if ran else None,
                        duration_seconds=duration if ran else None, reason="" if result == "Succeeded" else result,
                        pod_name=f"{run_id}" if ran else "", node="emulated-node" if ran else "",
                        gateway_run_id=f"gw-{run_id}" if xss else "",
                        reply=f"Morning brief: three meetings. {XSS}" if xss else "",
                        delivery={"status": "delivered", "delivered": True} if xss else {},
                        log=f"starting {run_id}\n{XSS}\nthe end\n" if xss else f"log of {run_id}\n",
                    )
                )  # fmt: skip
                if result == "Failed" and rng.random() < 0.6:  # its retry, after the delay
                    again = started + timedelta(seconds=duration + 60)
                    d2 = round(rng.uniform(1, 300), 1)
                    out.append(
                        RunEntry(
                            namespace=ns, job=job, job_uid=f"uid-{ns}-{job}", run_id=run_id, attempt=2,
                            trigger="Retry", result="Succeeded", scheduled_time=scheduled, start_time=again,
                            completion_time=again + timedelta(seconds=d2), duration_seconds=d2,
                            pod_name=f"{run_id}-2", node="emulated-node", log=f"retry of {run_id}\n",
                        )
                    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def browser_reason() -> str | None:
    return _why_no_browser()


@pytest.fixture(scope="module")
def world(browser_reason: str | None) -> Iterator[World]:
    if browser_reason:
        pytest.skip(browser_reason)
    from openclaw_cron.archive.sqlite import SqliteStore

    workdir = Path(tempfile.mkdtemp(prefix="console-browser-"))
    with Cluster(workdir) as cluster:
        cluster.kubelet.script(name_prefix="runner-", execute=True)
        proxy = FrontProxy(cluster, workdir / "pki")
        cluster.apply(
            *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES),
            binding("RoleBinding", "alice-view", "view", "alice", "team-a"),
            binding("RoleBinding", "bob-view", "view", "bob", "team-a"),
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "ocj-operate", "namespace": "team-a"},
                "rules": [
                    {
                        "apiGroups": ["cron.openclaw.io"],
                        "resources": ["openclawcronjobs"],
                        "verbs": ["get", "list", "watch", "patch"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "alice-operate", "namespace": "team-a"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ocj-operate"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
            },
        )
        jobs = [
            _job(ns, (f"{ns[-1]}-job-{j:02d}" if j else "brief") if not (ns == "team-a" and j == 1) else "runner", j)
            for ns, count in NAMESPACES.items()
            for j in range(count)
        ]
        cluster.apply(*jobs)
        now = datetime.now(UTC)
        entries = _entries(now)
        db = workdir / "archive.db"
        store = SqliteStore(str(db))
        store.put(entries)
        store.close()
        port, direct = _free_port(), _free_port()
        env = {
            "OPENCLAW_CRON_ARCHIVE_URL": f"sqlite:///{db}",
            "OPENCLAW_CRON_METRICS_PORT": "0",
            "OPENCLAW_CRON_GATEWAY_URL": "http://127.0.0.1:9",
            **proxy.operator_env(port, direct_port=direct),
        }
        operator = cluster.start_operator("--standalone", env=env)
        proxy.register(port)
        wait_for(lambda: "read API on" in operator.logs(), 60, 0.5, "the archive API listening")
        world = World(cluster, operator, f"http://127.0.0.1:{direct}", entries, now)
        try:
            yield world
        finally:
            for proc in world.proxies.values():
                proc.terminate()
                proc.wait(10)
            print(operator.logs()[-4000:])
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    with sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
                viewport={"width": 1400, "height": 900},
            )  # fmt: skip
        except Exception as exc:  # the one place the tier may skip: the browser cannot start here
            pytest.skip(f"chromium cannot start: {exc}")
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
