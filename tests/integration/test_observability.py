"""Metrics over HTTP and notifications to a real webhook server, from the running operator."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scenarios import NS, command_job, runs, start, wait_status

from support import Cluster, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on 127.0.0.1 collecting the JSON it is sent."""
    handler = type("Receiver", (_Receiver,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler.received
    server.shutdown()
    server.server_close()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_metrics_after_scripted_runs(cluster: Cluster) -> None:
    port = _free_port()
    cluster.kubelet.script(name_prefix="metered-ok", exit_code=0)
    cluster.kubelet.script(name_prefix="metered-bad", exit_code=2)
    start(cluster, OPENCLAW_CRON_METRICS_PORT=str(port))
    cluster.apply(command_job("metered-ok"), command_job("metered-bad", concurrencyPolicy="Allow"))
    wait_status(cluster, "metered-ok", lambda s: len(runs(s, "Succeeded")) >= 2, 30, "successes")
    wait_status(cluster, "metered-bad", lambda s: len(runs(s, "Failed")) >= 2, 30, "failures")
    text = _scrape(port)
    assert _value(text, "openclaw_cron_runs_total", namespace=NS, job="metered-ok", result="Succeeded") >= 2
    assert _value(text, "openclaw_cron_runs_total", namespace=NS, job="metered-bad", result="Failed") >= 2
    assert _value(text, "openclaw_cron_runs_started_total", namespace=NS, job="metered-ok", trigger="Schedule") >= 2
    assert _value(text, "openclaw_cron_job_consecutive_failures", namespace=NS, job="metered-bad") >= 2
    assert _value(text, "openclaw_cron_job_next_run_timestamp_seconds", namespace=NS, job="metered-ok") > 1.7e9
    assert _value(text, "openclaw_cron_schedule_lag_seconds_count", namespace=NS) >= 4
    assert _value(text, "openclaw_cron_run_duration_seconds_count", namespace=NS, job="metered-ok") >= 2
    # a deleted job's series go away
    cluster.kubectl("delete", "ocj", "metered-bad", "-n", NS)
    wait_for(lambda: 'job="metered-bad"' not in _scrape(port), 20, message="series of a deleted job removed")


def test_failure_alert_and_recovery_reach_a_webhook(
    cluster: Cluster, tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    config = tmp_path / "notify.yaml"
    config.write_text(json.dumps({"channels": {"ops": {"type": "webhook", "url": url}}}))
    cluster.kubelet.script(name_prefix="alerting-", exit_code=1, output="it broke\n")
    start(cluster, OPENCLAW_CRON_NOTIFY_CONFIG=str(config))
    job = command_job(
        "alerting",
        every="1s",
        notify={"channels": ["ops"], "alertAfterConsecutiveFailures": 3, "template": {"title": "{{job}} {{result}}"}},
    )
    cluster.apply(job)
    wait_status(cluster, "alerting", lambda s: s.get("consecutiveFailures", 0) >= 5, 30, "five failures")
    wait_for(lambda: any(m.get("kind") == "alert" for m in received), 15, message="an alert")
    kinds = [m["kind"] for m in received]
    assert kinds.count("alert") == 1, kinds
    assert kinds.count("failure") == 2, kinds  # below the threshold only: no storm
    alert = next(m for m in received if m["kind"] == "alert")
    assert alert["job"] == "alerting" and alert["namespace"] == NS
    st = wait_status(
        cluster,
        "alerting",
        lambda s: any(c["type"] == "Healthy" and c["status"] == "False" for c in s.get("conditions", [])),
        10,
        "unhealthy",
    )
    assert st["alerting"] is True
    cluster.kubelet.script(name_prefix="alerting-", exit_code=0)
    wait_for(lambda: any(m.get("kind") == "recovery" for m in received), 30, message="a recovery message")
    assert [m["kind"] for m in received].count("recovery") == 1
    first_fail = next(m for m in received if m["kind"] == "failure")
    assert first_fail["title"] == "alerting Failed"
