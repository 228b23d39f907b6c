"""Plugin verbs for orchestration — backfill, resume, notify test — as subprocesses against the emulated API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openclaw_cron import naming as n
from openclaw_cron.cli.backfill import request_text

support = pytest.importorskip("support", reason="tests/support (the emulated API server) is missing")

PLUGIN = Path(sys.executable).parent / "kubectl-openclaw"
API_VERSION = "cron.openclaw.io/v1alpha1"
REF = "openclawcronjob.cron.openclaw.io"


def ocj(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "schedule": {"kind": "cron", "expr": "0 2 * * *", "tz": "UTC"},
        "payload": {"kind": "agentTurn", "message": "hi"},
    }
    return {"apiVersion": API_VERSION, "kind": "OpenClawCronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {**body, **spec}}  # fmt: skip


def set_status(cluster: Any, name: str, status: dict[str, Any]) -> None:
    from kubernetes import client

    api = cluster.api_client()
    try:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            "cron.openclaw.io", "v1alpha1", "default", "openclawcronjobs", name, {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    finally:
        api.close()


def get(cluster: Any, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.get(API_VERSION, "openclawcronjobs", "default", name)
    return obj


def plugin(cluster: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PLUGIN), *args], capture_output=True, text=True, env=cluster.env(), timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with support.Cluster(tmp_path_factory.mktemp("cli-orch")) as c:
        c.apply(ocj("nightly"), ocj("failing"), ocj("both", suspend=True), ocj("plain"))
        yield c


NOW = datetime.now(UTC).replace(microsecond=0)
DAY = NOW.replace(hour=0, minute=0, second=0) - timedelta(days=30)


def test_backfill_requests_once_and_refuses_bad_ranges(cluster: Any) -> None:
    start, end = n.rfc3339(DAY), n.rfc3339(DAY + timedelta(days=19, hours=23))
    r = plugin(cluster, "backfill", "nightly", "--from", start, "--to", end)
    assert r.returncode == 0, r.stderr
    text = request_text(DAY, DAY + timedelta(days=19, hours=23), 100, None)
    rid = json.loads(text)["id"]
    assert r.stdout.strip() == f"{REF}/nightly backfill {rid} requested ({start} .. {end})"
    assert get(cluster, "nightly")["metadata"]["annotations"]["cron.openclaw.io/backfill"] == text
    again = plugin(cluster, "backfill", "nightly", "--from", start, "--to", end)
    assert again.stdout.strip() == f"{REF}/nightly backfill {rid} already requested (each slot runs once)"

    reversed_ = plugin(cluster, "backfill", "nightly", "--from", end, "--to", start)
    assert reversed_.returncode == 2
    assert (
        reversed_.stderr.strip() == f"error: annotation cron.openclaw.io/backfill: from ({end}) is after to ({start})"
    )
    big = plugin(cluster, "backfill", "nightly", "--from", start, "--to", end, "--max", "5")
    assert big.returncode == 2
    assert big.stderr.strip() == (
        f"error: annotation cron.openclaw.io/backfill: the range {start} .. {end} has more than max=5 slots;"
        " narrow it or raise max (at most 1000)"
    )
    assert plugin(cluster, "backfill", "ghost", "--from", start, "--to", end).returncode == 2


def test_backfill_wait_reports_progress_from_status(cluster: Any) -> None:
    start, end = DAY + timedelta(days=1), DAY + timedelta(days=3)
    text = request_text(start, end, 100, "feb")
    set_status(cluster, "nightly", {"backfill": {"id": "feb", "from": n.rfc3339(start), "to": n.rfc3339(end),
                                                 "total": 3, "started": 3, "state": "Completed"}})  # fmt: skip
    r = plugin(cluster, "backfill", "nightly", "--from", n.rfc3339(start), "--to", n.rfc3339(end), "--id", "feb",
               "--wait", "--timeout", "5")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"{REF}/nightly backfill feb already requested (each slot runs once)",
        "backfill feb: Completed, 3/3 started",
        "backfill feb: Completed, 3/3 started",
    ]
    assert json.loads(text)["id"] == "feb"


def test_resume_unpauses_by_annotation_and_unsuspends_by_spec(cluster: Any) -> None:
    set_status(cluster, "failing", {"state": "Paused", "paused": {"since": n.rfc3339(NOW), "consecutiveFailures": 3}})
    before = get(cluster, "failing")["metadata"]["generation"]
    r = plugin(cluster, "resume", "failing")
    assert r.returncode == 0 and r.stdout.strip() == f"{REF}/failing resumed (unpaused)"
    obj = get(cluster, "failing")
    assert "cron.openclaw.io/resume" in obj["metadata"]["annotations"]
    assert obj["metadata"]["generation"] == before  # the spec is untouched: no GitOps drift
    set_status(cluster, "both", {"state": "Paused", "paused": {"since": n.rfc3339(NOW), "consecutiveFailures": 3}})
    r = plugin(cluster, "resume", "both")
    assert r.stdout.strip() == f"{REF}/both resumed (unsuspended and unpaused)"
    assert get(cluster, "both")["spec"]["suspend"] is False
    assert plugin(cluster, "resume", "plain").stdout.strip() == f"{REF}/plain resumed (no change)"


class Hook(BaseHTTPRequestHandler):
    got: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.got.append(body)
        self.send_response(500 if self.path.startswith("/down") else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.got = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_notify_test_sends_through_the_configured_channel(cluster: Any, hook: str, tmp_path: Path) -> None:
    config = {"channels": {"ops": {"type": "webhook", "url": f"{hook}/ok?token=SECRET123"},
                           "down": {"type": "webhook", "url": f"{hook}/down?token=SECRET123"}}}  # fmt: skip
    path = tmp_path / "notify.yaml"
    path.write_text(json.dumps(config))
    r = plugin(cluster, "notify", "test", "ops", "--config", str(path))
    assert (r.returncode, r.stdout.strip()) == (0, "channel ops (webhook): test message sent")
    assert Hook.got[0]["job"] == "notify-test" and "kubectl openclaw notify test ops" in Hook.got[0]["output"]
    r = plugin(cluster, "notify", "test", "down", "--config", str(path))
    assert r.returncode == 1 and r.stdout.startswith("channel down (webhook): FAILED:")
    assert "SECRET123" not in r.stdout + r.stderr
    r = plugin(cluster, "notify", "test", "nope", "--config", str(path))
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: no channel 'nope' in the notify config (configured: down, ops)",
    )
    # the operator's own Secret, as the chart mounts it
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ops-notify", "namespace": "default"},
                   "data": {"notify.yaml": base64.b64encode(json.dumps(config).encode()).decode()}})  # fmt: skip
    r = plugin(cluster, "notify", "test", "ops", "--secret", "default/ops-notify")
    assert r.returncode == 0, r.stderr
    assert len(Hook.got) == 3
    r = plugin(cluster, "notify", "test", "ops", "--secret", "default/missing")
    assert r.returncode == 2 and r.stderr.startswith("error: cannot read Secret default/missing: 404")
