"""The fault machinery itself (tests/support/faults.py): each fault looks to a client as it would
from a real, misbehaving kube-apiserver, and nothing else is touched.

Raw `http.client` where the exact wire behaviour matters (a reset is not an HTTP answer; urllib3
would retry a GET behind our back), the official client where its view is the point.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import weakref
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support import Cluster, FaultPlan, wait_for
from support.emulator import ApiCall

CM_PATH = "/api/v1/namespaces/default/configmaps"
_ADMIN_SSL: weakref.WeakKeyDictionary[Cluster, ssl.SSLContext] = weakref.WeakKeyDictionary()


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def connect(cluster: Cluster, timeout: float) -> http.client.HTTPSConnection:
    """HTTPS as the admin (a system:masters client certificate), one context per cluster."""
    if cluster not in _ADMIN_SSL:
        _ADMIN_SSL[cluster] = cluster.client_ssl()
    return http.client.HTTPSConnection("127.0.0.1", cluster.port, timeout=timeout, context=_ADMIN_SSL[cluster])


def request(
    cluster: Cluster, method: str, path: str, body: Any = None, timeout: float = 10
) -> http.client.HTTPResponse:
    conn = connect(cluster, timeout)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "User-Agent": "fault-probe/1"}
    conn.request(method, path, body=data, headers=headers)
    return conn.getresponse()


def stored_cm(cluster: Cluster, name: str) -> dict[str, Any] | None:
    return cluster.get("v1", "configmaps", "default", name)


@pytest.fixture
def bare(cluster_factory: Any) -> Cluster:
    return cluster_factory(kubelet=False, install_crd=False)


def test_error_answers_carry_status_and_retry_after_then_stop(bare: Cluster) -> None:
    rule = bare.faults.add("error", verb="create", resource="configmaps", code=429, retry_after=3, times=2)
    for _ in range(2):
        resp = request(bare, "POST", CM_PATH, cm("a"))
        body = json.loads(resp.read())
        assert resp.status == 429 and resp.getheader("Retry-After") == "3"
        assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 3}
        assert stored_cm(bare, "a") is None  # a refused write changes nothing
    resp = request(bare, "POST", CM_PATH, cm("a"))
    assert resp.status == 201 and rule.hits == 2 and rule.times == 0
    # The official client sees a 5xx as an ApiException with the Status body.
    bare.faults.add("error", verb="get", resource="configmaps", code=503)
    with bare.api_client() as api, pytest.raises(ApiException) as exc:
        client.CoreV1Api(api).read_namespaced_config_map("a", "default")
    assert exc.value.status == 503 and json.loads(exc.value.body)["reason"] == "ServiceUnavailable"
    assert [h.code for h in bare.faults.hits] == [429, 429, 503]


def test_kubectl_and_kubelet_are_exempt_unless_named(bare: Cluster) -> None:
    bare.faults.add("error", code=500, times=None)
    assert bare.kubectl("get", "cm").returncode == 0
    assert request(bare, "GET", CM_PATH).status == 500
    bare.faults.clear()
    bare.faults.add("error", code=500, clients=("kubectl",), times=None)
    assert bare.kubectl("get", "cm", check=False).returncode != 0
    assert request(bare, "GET", CM_PATH).status == 200


def _call(verb: str = "get", resource: str = "pods") -> ApiCall:
    return ApiCall(0.0, verb, "", resource, "default", "x", "probe/1")


def test_probability_is_seeded_and_reproducible() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(seed=seed)
        plan.add("error", probability=0.3, times=None)
        return [plan._pick(_call(), "/api/v1/pods", {}) is not None for _ in range(200)]

    first = pattern(7)
    assert first == pattern(7) and first != pattern(8)
    assert 40 <= sum(first) <= 80  # ≈ 30 % of 200
    # Selection by verb, resource, path regex and count.
    plan = FaultPlan()
    rule = plan.add("error", verb="patch", resource="openclawcronjobs/status", times=1)
    assert plan._pick(_call("get", "openclawcronjobs/status"), "/x", {}) is None
    assert plan._pick(_call("patch", "openclawcronjobs/status"), "/x", {}) is rule
    assert plan._pick(_call("patch", "openclawcronjobs/status"), "/x", {}) is None  # used up
    by_path = plan.add("error", path=r"^/apis$", times=None)
    assert plan._pick(_call("get", "/apis"), "/apis", {}) is by_path
    assert plan._pick(_call("get", "/api"), "/api", {}) is None
    with pytest.raises(ValueError, match="unknown fault action"):
        FaultPlan().add("explode")  # type: ignore[arg-type]


def test_slow_answer_outlives_the_client_timeout_and_still_applies(bare: Cluster) -> None:
    bare.faults.add("slow", verb="create", resource="configmaps", seconds=1.5)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        request(bare, "POST", CM_PATH, cm("late"), timeout=0.5).read()
    assert stored_cm(bare, "late") is None  # not yet: the server is still "thinking"
    wait_for(lambda: stored_cm(bare, "late"), 5, message="the late write to land")
    assert time.monotonic() - began >= 1.4
    # A retry by the client now meets the object its first try created.
    assert request(bare, "POST", CM_PATH, cm("late")).status == 409


@pytest.mark.parametrize("after_apply", [False, True], ids=["before-apply", "after-apply"])
def test_reset_loses_the_answer_and_maybe_the_write(bare: Cluster, after_apply: bool) -> None:
    bare.faults.add("reset", verb="create", resource="configmaps", after_apply=after_apply)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        request(bare, "POST", CM_PATH, cm("r")).read()
    assert (stored_cm(bare, "r") is not None) is after_apply
    assert request(bare, "GET", CM_PATH + "/r").status == (200 if after_apply else 404)


def _watch(
    cluster: Cluster, rv: str = "", timeout: float = 10
) -> tuple[http.client.HTTPResponse, http.client.HTTPSConnection]:
    conn = connect(cluster, timeout)
    conn.request("GET", f"{CM_PATH}?watch=true&resourceVersion={rv}", headers={"User-Agent": "fault-probe/1"})
    return conn.getresponse(), conn


def test_dropped_watch_stream_ends_without_a_clean_eof(bare: Cluster) -> None:
    bare.faults.add("drop-watch", resource="configmaps", seconds=0.5)
    assert request(bare, "POST", CM_PATH, cm("w")).status == 201  # a create is not a watch: untouched
    resp, _ = _watch(bare)
    began = time.monotonic()
    assert json.loads(resp.readline())["type"] == "ADDED"
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError, http.client.HTTPException)):
        while True:
            if not resp.read1(65536):
                pytest.fail("the stream ended cleanly: a drop must not look like the server's timeout")
    assert time.monotonic() - began >= 0.4
    # The next watch is served normally.
    resp, conn = _watch(bare)
    assert json.loads(resp.readline())["object"]["metadata"]["name"] == "w"
    conn.close()


def test_gone_answers_only_resumes(bare: Cluster) -> None:
    assert request(bare, "POST", CM_PATH, cm("g")).status == 201
    rv = str(bare.emulator.resource_version)
    rule = bare.faults.add("gone", resource="configmaps", times=None)
    resp, _ = _watch(bare, rv)
    event = json.loads(resp.readline())
    assert resp.status == 200 and event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert resp.read() == b""  # and the stream ends
    resp, conn = _watch(bare)  # a fresh watch (no resourceVersion) is not a resume
    assert json.loads(resp.readline())["type"] == "ADDED" and rule.hits == 1
    conn.close()


def test_restart_keeps_port_objects_and_resource_versions(bare: Cluster) -> None:
    assert request(bare, "POST", CM_PATH, cm("before")).status == 201
    port, rv = bare.port, bare.emulator.resource_version
    uid = stored_cm(bare, "before")["metadata"]["uid"]  # type: ignore[index]
    resp, _ = _watch(bare, str(rv))
    refused = threading.Event()

    def probe() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not refused.is_set():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                refused.set()
            time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    down = bare.restart_api(down=0.5)
    prober.join()
    assert refused.is_set(), "the listener never went away"
    assert 0.5 <= down < 5
    # The watch open across the restart ends (cut or clean); a hang would raise TimeoutError.
    with contextlib.suppress(http.client.HTTPException, ConnectionError):
        resp.read()
    assert bare.port == port
    got = json.loads(request(bare, "GET", CM_PATH + "/before").read())
    assert got["metadata"]["uid"] == uid and got["metadata"]["resourceVersion"] == str(rv)
    # A watch resumed from before the restart sees what happened after it; resourceVersions go on.
    resumed, conn = _watch(bare, str(rv))
    assert request(bare, "POST", CM_PATH, cm("after")).status == 201
    event = json.loads(resumed.readline())
    assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "after"
    assert int(event["object"]["metadata"]["resourceVersion"]) == rv + 1
    conn.close()
