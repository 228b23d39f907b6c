"""End to end: the real operator schedules run Pods, the simulated kubelet really runs the runner
in them (env resolved from the Pod, token from a Secret), and the runner calls a real gateway.

One emulated cluster and one operator serve every test here (module scope); each test uses its
own job. Schedules are `every 1h` and runs are started with the run-now annotation, so every
Pod in a test is one the test asked for.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openclaw_gateway as harness
import pytest

from openclaw_cron.naming import ANNOTATION_RUN_NOW as RUN_NOW
from openclaw_cron.naming import ENV_HOOKS_TOKEN, ENV_IDEMPOTENCY_KEY, LABEL_ATTEMPT, LABEL_JOB, parse_time, run_tag
from support import Cluster, OperatorProcess, wait_for

pytestmark = pytest.mark.gateway

API = "cron.openclaw.io/v1alpha1"
PLURAL = "openclawcronjobs"
NS = "default"
TOKEN_SECRET = "openclaw-hooks"
WRONG_SECRET = "openclaw-hooks-wrong"
WRONG_TOKEN = "hooks-not-the-right-token"


class Env:
    """The cluster, the operator and the gateway one module's tests share."""

    def __init__(self, cluster: Cluster, operator: OperatorProcess, gateway: harness.Gateway, archive: str) -> None:
        self.cluster, self.operator, self.gateway, self.archive = cluster, operator, gateway, archive

    def run_job(self, name: str, spec: dict[str, Any], *, annotate_at_creation: bool = False) -> None:
        """Create a job that only runs on demand and ask for one run now (`kubectl annotate`, or at creation)."""
        run_now = {RUN_NOW: uuid.uuid4().hex[:8]}
        body = {"schedule": {"kind": "every", "every": "1h"}, **spec}
        meta = {"name": name, "namespace": NS, **({"annotations": run_now} if annotate_at_creation else {})}
        self.cluster.apply({"apiVersion": API, "kind": "OpenClawCronJob", "metadata": meta, "spec": body})
        if not annotate_at_creation:
            self.cluster.kubectl("annotate", "ocj", name, "-n", NS, f"{RUN_NOW}={run_now[RUN_NOW]}")

    def job(self, name: str) -> dict[str, Any]:
        obj = self.cluster.get(API, PLURAL, NS, name)
        assert obj is not None, f"{name} is gone"
        return obj

    def wait_run(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """The status once the first run is settled (recorded in recentRuns, nothing active or pending)."""
        last: dict[str, Any] = {}

        def settled() -> bool:
            nonlocal last
            last = dict(self.job(name).get("status") or {})
            return bool(last.get("recentRuns")) and not last.get("active") and not last.get("pending")

        try:
            wait_for(settled, timeout, 0.2, f"a settled run of {name}")
        except TimeoutError as exc:
            raise AssertionError(
                f"{name}: no settled run in {timeout}s; last status:\n{json.dumps(last, indent=1)}\n"
                f"operator log tail:\n{self.operator.logs()[-3000:]}"
            ) from exc
        return last

    def pods(self, name: str) -> list[dict[str, Any]]:
        pods = [p for p in self.cluster.pods(NS) if p["metadata"].get("labels", {}).get(LABEL_JOB) == name]
        return sorted(pods, key=lambda p: int(p["metadata"]["labels"][LABEL_ATTEMPT]))

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.cluster.kubectl_json("get", "events", "-n", NS)["items"]
        return [
            e
            for e in items
            if e["involvedObject"].get("kind") == "OpenClawCronJob" and e["involvedObject"].get("name") == name
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in pod["spec"]["containers"][0].get("env", [])}


def termination(pod: dict[str, Any]) -> dict[str, Any]:
    """The runner's JSON result, as the kubelet put it in the Pod's status."""
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return dict(json.loads(state["message"]))


def secret(name: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": {"token": token},
    }


@pytest.fixture(scope="module")
def env(openclaw: harness.Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """An emulated cluster with the hooks-token Secrets and the operator pointed at the gateway."""
    work = Path(tmp_path_factory.mktemp("operator-gateway"))
    cluster = Cluster(work).start()
    try:
        cluster.apply(secret(TOKEN_SECRET, openclaw.hooks_token), secret(WRONG_SECRET, WRONG_TOKEN))
        # the gateway's full-access token, for the operator alone (in a cluster: a Secret mounted
        # into the operator's Pod); the run Pods get only the hooks token
        admin_token = work / "gateway-admin-token"
        admin_token.write_text(openclaw.gateway_token)
        archive_port = free_port()
        operator = cluster.start_operator(
            "--standalone",
            env={
                "OPENCLAW_CRON_GATEWAY_URL": openclaw.url,
                "OPENCLAW_CRON_METRICS_PORT": "0",
                "OPENCLAW_CRON_NORMAL_EVENTS": "true",
                "OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILE": str(admin_token),
                "OPENCLAW_CRON_ARCHIVE_URL": f"sqlite:///{work}/archive.db",
                "OPENCLAW_CRON_ARCHIVE_PORT": "0",
                "OPENCLAW_CRON_ARCHIVE_DIRECT_PORT": str(archive_port),
            },
        )
        yield Env(cluster, operator, openclaw, f"http://127.0.0.1:{archive_port}")
    finally:
        cluster.stop()


def agent_spec(message: str, **extra: Any) -> dict[str, Any]:
    # next-heartbeat and no delivery: a turn then starts no extra model calls in the background.
    return {"payload": {"kind": "agentTurn", "message": message}, "wakeMode": "next-heartbeat", **extra}


def timed(what: str) -> Callable[[], None]:
    started = time.monotonic()
    return lambda: print(f"{what}: {time.monotonic() - started:.1f}s")


def test_agent_turn_records_the_gateway_run_id(env: Env, stub_model: harness.StubModel) -> None:
    done = timed("agent turn")
    marker = uuid.uuid4().hex
    env.run_job("turn", agent_spec(f"Summarize the day {marker}"))
    st = env.wait_run("turn")
    done()
    rec = st["recentRuns"][0]
    assert (rec["result"], rec["trigger"], rec["attempts"]) == ("Succeeded", "Manual", 1), rec
    assert rec["reason"] == "Completed" and rec["gatewayRunId"], rec
    assert uuid.UUID(rec["gatewayRunId"])
    assert st["lastRunResult"] == "Succeeded" and st["consecutiveFailures"] == 0
    assert stub_model.completions_with(marker) >= 1, "the turn must have reached the model"

    [pod] = env.pods("turn")
    assert rec["podName"] == pod["metadata"]["name"]
    assert termination(pod)["gatewayRunId"] == rec["gatewayRunId"], "the run id is the one the gateway answered"
    variables = env_of(pod)
    uid = env.job("turn")["metadata"]["uid"]
    scheduled = int(parse_time(rec["scheduledTime"]).timestamp())
    tag = run_tag(rec["runId"])  # a manual run: the hash of its run-now value
    assert tag is not None
    assert variables[ENV_IDEMPOTENCY_KEY] == {"name": ENV_IDEMPOTENCY_KEY, "value": f"ocj-{uid}-{scheduled}-{tag}-1"}
    token_var = variables[ENV_HOOKS_TOKEN]
    assert "value" not in token_var
    assert token_var["valueFrom"] == {"secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}}

    token = env.gateway.hooks_token
    assert token not in json.dumps(pod), "the Pod carries the token only as a secretKeyRef"
    assert token not in json.dumps(env.job("turn")), "the resource"
    assert token not in json.dumps(env.cluster.kubectl_json("get", "events", "-n", NS)), "any Event"
    assert token not in env.operator.logs(), "the operator log"
    assert "Succeeded" in {e["reason"] for e in env.events("turn")}


def test_system_event_reports_the_wake_outcome(env: Env) -> None:
    done = timed("system event")
    text = f"Calendar check {uuid.uuid4().hex}"
    env.run_job("wake", {"payload": {"kind": "systemEvent", "text": text}, "wakeMode": "next-heartbeat"})
    st = env.wait_run("wake")
    done()
    rec = st["recentRuns"][0]
    assert (rec["result"], rec["reason"], rec["attempts"]) == ("Succeeded", "Queued", 1), rec
    assert "eventOutcome=queued" in rec["message"], rec
    assert len(env.pods("wake")) == 1


def test_agent_error_is_retried_with_a_new_idempotency_key(env: Env, stub_model: harness.StubModel) -> None:
    done = timed("agent error, retried once")
    marker = uuid.uuid4().hex
    env.run_job(
        "failing",
        agent_spec(
            f"{harness.FAIL_MARKER} {marker}",
            retry={"limit": 1, "delaySeconds": 1},
            history={"failedPodsLimit": 5},
        ),
    )
    st = env.wait_run("failing")
    done()
    rec = st["recentRuns"][0]
    assert (rec["result"], rec["reason"], rec["attempts"]) == ("Failed", "AgentError", 2), rec
    assert rec["gatewayRunId"], rec
    assert st["consecutiveFailures"] == 1 and st["lastRunResult"] == "Failed"
    pods = env.pods("failing")
    assert [p["metadata"]["labels"][LABEL_ATTEMPT] for p in pods] == ["1", "2"]
    keys = [env_of(p)[ENV_IDEMPOTENCY_KEY]["value"] for p in pods]
    assert keys[0].endswith("-1") and keys[1].endswith("-2") and keys[0][:-2] == keys[1][:-2]
    run_ids = [termination(p)["gatewayRunId"] for p in pods]
    assert run_ids[0] != run_ids[1], "each attempt is its own gateway run"
    assert rec["gatewayRunId"] == run_ids[1]
    assert stub_model.completions_with(marker) >= 2, "both attempts reached the model"


def test_wrong_token_is_unauthorized_and_not_retried(env: Env) -> None:
    done = timed("wrong token")
    env.run_job(
        "badtoken",
        agent_spec(
            "never runs",
            gateway={"tokenSecretRef": {"name": WRONG_SECRET, "key": "token"}},
            retry={"limit": 2, "delaySeconds": 1},
            history={"failedPodsLimit": 5},
        ),
    )
    st = env.wait_run("badtoken")
    done()
    rec = st["recentRuns"][0]
    assert (rec["result"], rec["reason"], rec["attempts"]) == ("Failed", "Unauthorized", 1), rec
    time.sleep(2.5)  # a retry (delay 1 s) would have a Pod by now
    assert len(env.pods("badtoken")) == 1
    assert termination(env.pods("badtoken")[0])["httpStatus"] == 401
    assert WRONG_TOKEN not in json.dumps(env.job("badtoken")) + json.dumps(env.events("badtoken"))
    assert WRONG_TOKEN not in env.operator.logs()


def test_a_run_started_on_first_sight_has_a_started_event(env: Env) -> None:
    """Run-now set at creation: the operator's first pass starts the run while kopf patches the object."""
    env.run_job(
        "firstsight",
        {"payload": {"kind": "systemEvent", "text": f"first sight {uuid.uuid4().hex}"}, "wakeMode": "next-heartbeat"},
        annotate_at_creation=True,
    )
    rec = env.wait_run("firstsight")["recentRuns"][0]
    assert rec["result"] == "Succeeded", rec
    reasons = [e["reason"] for e in env.events("firstsight")]
    assert "Started" in reasons, f"a run was started (pod {rec['podName']}) but its Events are {reasons}"


def test_the_agents_reply_and_delivery_verdict_are_archived(env: Env, stub_model: harness.StubModel) -> None:
    """The operator reads the reply from the gateway after the attempt, with its own token."""
    marker = uuid.uuid4().hex
    env.run_job("archived", agent_spec(f"Report status {harness.ECHO_MARKER}{marker}"))
    rec = env.wait_run("archived")["recentRuns"][0]
    assert rec["result"] == "Succeeded", rec
    plugin = str(Path(sys.executable).parent / "kubectl-openclaw")

    def history() -> list[dict[str, Any]]:
        done = subprocess.run(
            [plugin, "--kubeconfig", str(env.cluster.kubeconfig), "history", "archived", "-n", NS,
             "--since", "1h", "-o", "json", "--archive-url", env.archive],
            capture_output=True, text=True, timeout=60, env=env.cluster.env(), check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        return list(data["items"] if isinstance(data, dict) else data)

    runs = wait_for(history, 60, 0.5, "the run in the archive")
    [run] = runs
    assert run["runId"] == rec["runId"] and run["result"] == "Succeeded"
    assert run["reply"] == f"{harness.REPLY} echo {marker}", run  # the stand-in model's answer
    assert run["gatewayRunId"] == rec["gatewayRunId"]
    assert run["delivery"].get("replyDisposition") == "visible", run
    assert "replyNote" not in run, run
    token = env.gateway.gateway_token
    assert token not in json.dumps(env.pods("archived")), "the full-access token never reaches a run Pod"
    assert token not in json.dumps(env.job("archived")) and token not in env.operator.logs()
