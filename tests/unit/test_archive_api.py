"""The archive API over real HTTPS, with identity and RBAC decided as behind a kube-apiserver.

The kube-apiserver's part is played faithfully where it matters: the client certificate a test
presents is what the aggregator presents (signed by the requestheader client CA published in
`kube-system/extension-apiserver-authentication`, CN in the allowed names), and every
SubjectAccessReview the server sends is evaluated by the emulated API server against real
Role/ClusterRole/RoleBinding/ClusterRoleBinding objects (tests/support/rbac.py), including the
aggregation of the chart's ClusterRoles into `view`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

import support
from openclaw_cron.archive.model import RunEntry
from openclaw_cron.archive.server import ArchiveServerSettings, Runner, start_server
from openclaw_cron.archive.sqlite import SqliteStore
from openclaw_cron.kube import Kube
from support.frontproxy import FrontProxy, binding

ROOT = Path(__file__).resolve().parents[2]
BASE = "/apis/archive.cron.openclaw.io/v1alpha1"
NOW = datetime.now(UTC).replace(microsecond=0)


def entry(ns: str, job: str, n: int, result: str = "Succeeded", log: str = "", trigger: str = "Schedule") -> RunEntry:
    scheduled = NOW - timedelta(hours=n)
    return RunEntry(
        namespace=ns,
        job=job,
        job_uid=f"uid-{ns}-{job}",
        run_id=f"{job}-{int(scheduled.timestamp())}",
        attempt=1,
        trigger=trigger,
        result=result,
        scheduled_time=scheduled,
        start_time=scheduled + timedelta(seconds=1),
        completion_time=scheduled + timedelta(seconds=11),
        duration_seconds=10.0,
        exit_code=0 if result == "Succeeded" else 3,
        reason="" if result == "Succeeded" else "Error",
        message="" if result == "Succeeded" else "exit code 3",
        pod_name=f"{job}-{int(scheduled.timestamp())}",
        log=log or f"log of {job} run {n}\n",
        delivery={"delivered": True, "replyDisposition": "sent"} if job == "brief" else {},
        reply="The brief, as the agent wrote it." if job == "brief" else "",
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.Cluster]:
    with support.Cluster(tmp_path_factory.mktemp("archive-api"), kubelet=False, install_crd=False) as c:
        yield c


@pytest.fixture(scope="module")
def pki(cluster: support.Cluster, tmp_path_factory: pytest.TempPathFactory) -> FrontProxy:
    """The front-proxy CA in kube-system, view/edit/admin aggregating the chart's roles, and bindings."""
    fp = FrontProxy(cluster, tmp_path_factory.mktemp("pki"))
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}},
        binding("RoleBinding", "alice-view", "view", "alice", "team-a"),
        binding("ClusterRoleBinding", "carol-view", "view", "carol"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "runs-list-only"},
            "rules": [{"apiGroups": ["archive.cron.openclaw.io"], "resources": ["runs"], "verbs": ["get", "list"]}],
        },
        binding("RoleBinding", "dave-list", "runs-list-only", "dave", "team-a"),
    )
    return fp


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path_factory.mktemp("archive-db") / "archive.db"))
    s.put(
        [
            entry("team-a", "backup", 1),
            entry("team-a", "backup", 2, "Failed", log="disk full\n"),
            entry("team-a", "backup", 3),
            entry("team-a", "brief", 4, trigger="Manual"),
            entry("team-b", "secret-job", 1, log="team-b's private output\n"),
        ]
    )
    yield s
    s.close()


@pytest.fixture
async def server(cluster: support.Cluster, store: SqliteStore, pki: FrontProxy) -> AsyncIterator[Runner]:
    import kubernetes

    conf = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=conf)
    kube = Kube(conf)
    cert, key = pki.serving
    settings = ArchiveServerSettings(
        port=_free_port(), bind="127.0.0.1", tls_cert=str(cert), tls_key=str(key), direct_port=0
    )
    runner = await start_server(settings, store, kube)
    yield runner
    await runner.stop()
    await kube.close()


def client_ssl(pki: FrontProxy, cert: str | None = "proxy_client") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=pki.serving_ca.pem)
    if cert:
        crt, key = getattr(pki, cert)
        ctx.load_cert_chain(str(crt), str(key))
    return ctx


async def get(
    runner: Runner,
    pki: FrontProxy,
    path: str,
    *,
    user: str | None = "alice",
    groups: tuple[str, ...] = ("system:authenticated",),
    cert: str | None = "proxy_client",
    params: dict[str, str] | None = None,
    accept: str = "application/json",
) -> tuple[int, str, str]:
    headers = {"Accept": accept}
    if user:
        headers["X-Remote-User"] = user
    url = f"https://127.0.0.1:{runner.ports['aggregated']}{path}"
    async with aiohttp.ClientSession() as session:
        hdrs = list(headers.items()) + [("X-Remote-Group", g) for g in groups]
        async with session.get(url, ssl=client_ssl(pki, cert), headers=hdrs, params=params) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


# --- identity ---------------------------------------------------------------------------------


async def test_served_with_the_front_proxy_certificate(server: Runner, pki: FrontProxy) -> None:
    code, ctype, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs")
    assert code == 200, text
    body = json.loads(text)
    assert body["kind"] == "RunList" and body["apiVersion"] == "archive.cron.openclaw.io/v1alpha1"
    assert [(i["job"], i["result"]) for i in body["items"]] == [
        ("backup", "Succeeded"),
        ("backup", "Failed"),
        ("backup", "Succeeded"),
        ("brief", "Succeeded"),
    ]
    assert {i["metadata"]["namespace"] for i in body["items"]} == {"team-a"}
    failed = next(i for i in body["items"] if i["result"] == "Failed")
    assert failed["metadata"]["name"] == f"backup~{failed['runId']}~1"
    code, ctype, log = await get(server, pki, f"{BASE}/namespaces/team-a/runs/{failed['metadata']['name']}/log")
    assert (code, ctype, log) == (200, "text/plain; charset=utf-8", "disk full\n")


async def test_without_a_certificate_nothing_is_served(server: Runner, pki: FrontProxy) -> None:
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs", cert=None, user="carol")
    assert code == 401
    body = json.loads(text)
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized" and "items" not in body
    assert "no client certificate" in body["message"]
    assert "backup" not in text


async def test_a_bare_remote_user_header_is_not_an_identity(server: Runner, pki: FrontProxy) -> None:
    for path in (f"{BASE}/runs", f"{BASE}/namespaces/team-b/runs", BASE):
        code, _, text = await get(server, pki, path, cert=None, user="system:admin", groups=("system:masters",))
        assert code == 401, (path, text)
        assert "secret-job" not in text


async def test_a_foreign_certificate_is_refused_by_the_handshake(server: Runner, pki: FrontProxy) -> None:
    # TLS 1.3: the client learns of the refusal as the server's alert/close, before any HTTP answer.
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientSSLError, aiohttp.ClientOSError)):
        await get(server, pki, f"{BASE}/namespaces/team-a/runs", cert="foreign", user="carol")


async def test_a_certificate_of_the_right_ca_but_not_an_allowed_name_is_refused(
    server: Runner, pki: FrontProxy
) -> None:
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs", cert="wrong_cn", user="carol")
    assert code == 401
    assert "'not-the-aggregator' is not an allowed front-proxy name" in json.loads(text)["message"]
    assert "backup" not in text


async def test_discovery_and_health(server: Runner, pki: FrontProxy) -> None:
    # The aggregator's availability checks carry its certificate but no user.
    code, _, text = await get(server, pki, BASE, user=None)
    assert code == 200
    resources = {r["name"]: r for r in json.loads(text)["resources"]}
    assert resources["runs"]["namespaced"] is True and sorted(resources["runs"]["verbs"]) == ["get", "list"]
    assert resources["runs/log"]["verbs"] == ["get"]
    code, _, text = await get(server, pki, "/apis", user=None)
    assert json.loads(text)["groups"][0]["preferredVersion"]["groupVersion"] == "archive.cron.openclaw.io/v1alpha1"
    assert (await get(server, pki, "/openapi/v2", user=None))[0] == 200
    assert (await get(server, pki, BASE, user=None, cert=None))[0] == 401
    assert (await get(server, pki, "/healthz", user=None, cert=None))[:1] == (200,)  # kubelet probes


# --- authorization (RBAC as the API server decides it) ------------------------------------------


async def test_a_user_without_rbac_on_a_namespace_sees_nothing_of_it(server: Runner, pki: FrontProxy) -> None:
    # alice: `view` through a RoleBinding in team-a only (view aggregates the chart's archive role).
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-b/runs")
    assert code == 403
    message = json.loads(text)["message"]
    assert message.startswith('runs.archive.cron.openclaw.io is forbidden: User "alice" cannot list resource "runs"')
    assert 'in the namespace "team-b"' in message and "secret-job" not in text
    name = "secret-job~x~1"
    assert (await get(server, pki, f"{BASE}/namespaces/team-b/runs/{name}/log"))[0] == 403
    # all namespaces: a cluster-scoped review, which a RoleBinding cannot grant
    code, _, text = await get(server, pki, f"{BASE}/runs")
    assert code == 403 and "at the cluster scope" in json.loads(text)["message"]
    # bob: no binding at all
    assert (await get(server, pki, f"{BASE}/namespaces/team-a/runs", user="bob"))[0] == 403


async def test_a_cluster_wide_viewer_reads_every_namespace(server: Runner, pki: FrontProxy) -> None:
    code, _, text = await get(server, pki, f"{BASE}/runs", user="carol")
    assert code == 200
    assert {i["metadata"]["namespace"] for i in json.loads(text)["items"]} == {"team-a", "team-b"}


async def test_logs_need_the_log_subresource(server: Runner, pki: FrontProxy) -> None:
    # dave may list and get `runs` in team-a, but was never granted `runs/log`.
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs", user="dave")
    assert code == 200
    name = json.loads(text)["items"][0]["metadata"]["name"]
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs/{name}/log", user="dave")
    assert code == 403 and 'cannot get resource "runs/log"' in json.loads(text)["message"]
    assert (await get(server, pki, f"{BASE}/namespaces/team-a/runs/{name}/log", user="alice"))[0] == 200


# --- reading ------------------------------------------------------------------------------------


async def test_filters_csv_and_paging(server: Runner, pki: FrontProxy) -> None:
    ns = f"{BASE}/namespaces/team-a/runs"
    code, ctype, text = await get(server, pki, ns, params={"result": "failed", "format": "csv"})
    assert code == 200 and ctype.startswith("text/csv")
    lines = text.splitlines()
    assert lines[0].startswith("namespace,job,runId,attempt,trigger,result,scheduledTime")
    assert len(lines) == 2 and ",Failed," in lines[1] and lines[1].startswith("team-a,backup,")
    _, ctype, _ = await get(server, pki, ns, accept="text/csv")
    assert ctype.startswith("text/csv")
    body = json.loads((await get(server, pki, ns, params={"job": "backup", "since": "150m"}))[2])
    assert [i["result"] for i in body["items"]] == ["Succeeded", "Failed"]
    body = json.loads((await get(server, pki, ns, params={"trigger": "manual"}))[2])
    assert [i["job"] for i in body["items"]] == ["brief"]
    page = json.loads((await get(server, pki, ns, params={"limit": "3"}))[2])
    assert len(page["items"]) == 3 and page["metadata"]["continue"]
    rest = json.loads((await get(server, pki, ns, params={"limit": "3", "continue": page["metadata"]["continue"]}))[2])
    seen = [i["metadata"]["name"] for i in page["items"] + rest["items"]]
    assert len(rest["items"]) == 1 and len(set(seen)) == 4 and "continue" not in rest["metadata"]


async def test_kubectl_get_asks_for_a_table(server: Runner, pki: FrontProxy) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs", params={"job": "backup"}, accept=accept)
    body = json.loads(text)
    assert code == 200 and body["kind"] == "Table"
    assert [c["name"] for c in body["columnDefinitions"]][:3] == ["Name", "Job", "Result"]
    assert [r["cells"][2] for r in body["rows"]] == ["Succeeded", "Failed", "Succeeded"]
    assert body["rows"][0]["object"]["metadata"]["namespace"] == "team-a"


async def test_get_one_run_with_its_reply(server: Runner, pki: FrontProxy) -> None:
    ns = f"{BASE}/namespaces/team-a/runs"
    brief = json.loads((await get(server, pki, ns, params={"job": "brief"}))[2])["items"][0]
    code, _, text = await get(server, pki, f"{ns}/brief~{brief['runId']}")  # latest attempt
    body = json.loads(text)
    assert code == 200 and body["reply"] == "The brief, as the agent wrote it."
    assert body["delivery"] == {"delivered": True, "replyDisposition": "sent"}
    code, _, text = await get(server, pki, f"{ns}/brief~nope~1")
    assert code == 404 and json.loads(text)["message"] == 'runs.archive.cron.openclaw.io "brief~nope~1" not found'


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "since: expected an RFC 3339 time"),
        ({"from": "2026-13-01T00:00:00Z"}, "from: expected an RFC 3339 time"),
        ({"until": "2026-01-01T10:00:00"}, "until: the time needs a zone"),
        ({"since": "1d", "from": "2d"}, "since: give either since or from, not both"),
        ({"since": "1h", "until": "2h"}, "until: must be after since"),
        ({"result": "ok"}, "result: unknown value 'ok'; expected one of Succeeded, Failed, TimedOut"),
        ({"trigger": "cron"}, "trigger: unknown value 'cron'"),
        ({"limit": "ten"}, "limit: expected a whole number, got 'ten'"),
        ({"limit": "0"}, "limit: must be between 1 and 1000, got 0"),
        ({"continue": "garbage!"}, "continue: 'garbage!' is not a cursor this archive returned"),
        ({"job": "a~b"}, "job: not a job name"),
    ],
)
async def test_malformed_filters_get_400_naming_the_parameter(
    server: Runner, pki: FrontProxy, params: dict[str, str], message: str
) -> None:
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs", params=params)
    body = json.loads(text)
    assert (code, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
    assert body["message"].startswith(message), body["message"]


async def test_a_malformed_run_name_gets_400(server: Runner, pki: FrontProxy) -> None:
    code, _, text = await get(server, pki, f"{BASE}/namespaces/team-a/runs/backup")
    assert code == 400 and json.loads(text)["message"].startswith("name: expected <job>~<runId>~<attempt>")


async def test_the_direct_listener_serves_plain_http_on_loopback(store: SqliteStore) -> None:
    settings = ArchiveServerSettings(port=0, direct_port=_free_port())
    runner = await start_server(settings, store)
    try:
        assert "aggregated" not in runner.ports
        url = f"http://127.0.0.1:{runner.ports['direct']}{BASE}/runs"
        async with aiohttp.ClientSession() as session, session.get(url, params={"job": "secret-job"}) as resp:
            assert resp.status == 200
            assert [i["metadata"]["namespace"] for i in (await resp.json())["items"]] == ["team-b"]
    finally:
        await runner.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- end to end: real kubectl through the emulated aggregation layer ------------------------------

KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
PLUGIN = Path(sys.executable).parent / "kubectl-openclaw"


@pytest.fixture
async def aggregated(server: Runner, pki: FrontProxy, cluster: support.Cluster) -> AsyncIterator[dict[str, Path]]:
    """The archive registered with the emulated API server's aggregator; a kubeconfig per user
    ("stranger" has a token the API server never issued), and the cluster admin's."""
    pki.register(server.ports["aggregated"])
    yield {"admin": cluster.kubeconfig, **{user: pki.kubeconfig(user) for user in ("alice", "carol", "stranger")}}
    pki.unregister()


async def sh(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """A real binary, off the event loop (the archive server answers on this loop meanwhile)."""
    return await asyncio.to_thread(subprocess.run, [str(a) for a in argv], capture_output=True, text=True, timeout=60)


async def test_kubectl_through_the_aggregation_layer(aggregated: dict[str, Path], cluster: support.Cluster) -> None:
    # The admin (system:masters, so allowed to impersonate) acts as alice: the identity forwarded is hers.
    alice = ["--kubeconfig", aggregated["admin"], "--as", "alice"]
    r = await sh(KUBECTL, *alice, "get", "--raw", f"{BASE}/namespaces/team-a/runs?result=failed")
    assert r.returncode == 0, r.stderr
    assert [i["job"] for i in json.loads(r.stdout)["items"]] == ["backup"]
    r = await sh(KUBECTL, *alice, "get", "--raw", f"{BASE}/namespaces/team-b/runs")
    assert r.returncode != 0 and "secret-job" not in r.stdout + r.stderr
    assert "Error from server (Forbidden)" in r.stderr
    with cluster.expect_rejections() as refused:
        r = await sh(KUBECTL, "--kubeconfig", aggregated["stranger"], "get", "--raw", f"{BASE}/namespaces/team-a/runs")
    assert r.returncode != 0 and "Unauthorized" in r.stderr, r.stderr  # an unknown token: 401, not anonymous
    assert refused and {c.code for c in refused} == {401}
    r = await sh(
        KUBECTL, "--kubeconfig", aggregated["alice"], "--as", "carol", "get", "--raw", f"{BASE}/namespaces/team-a/runs"
    )
    assert r.returncode != 0
    assert 'users "carol" is forbidden: User "alice" cannot impersonate resource "users" in API group ""' in r.stderr


async def test_the_plugin_through_the_aggregation_layer(aggregated: dict[str, Path]) -> None:
    r = await sh(
        PLUGIN, "--kubeconfig", aggregated["alice"], "history", "-n", "team-a", "--result", "failed", "-o", "csv"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].startswith("team-a,backup,") and len(r.stdout.splitlines()) == 2
    r = await sh(PLUGIN, "--kubeconfig", aggregated["alice"], "history", "-n", "team-b")
    assert r.returncode == 2 and not r.stdout
    assert r.stderr.startswith(
        'Error from server (Forbidden): runs.archive.cron.openclaw.io is forbidden: User "alice"'
    )
    r = await sh(PLUGIN, "--kubeconfig", aggregated["carol"], "history", "-A", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert {i["metadata"]["namespace"] for i in json.loads(r.stdout)["items"]} == {"team-a", "team-b"}
    failed = json.loads((await sh(PLUGIN, "--kubeconfig", aggregated["alice"], "history", "-n", "team-a", "--result",
                                  "failed", "-o", "json")).stdout)["items"][0]  # fmt: skip
    r = await sh(
        PLUGIN, "--kubeconfig", aggregated["alice"], "logs", "backup", "-n", "team-a", "--run", failed["runId"]
    )
    assert (r.returncode, r.stdout) == (0, "disk full\n"), r.stderr


async def test_a_port_in_use_does_not_stop_the_operator(store: SqliteStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        runner = await start_server(ArchiveServerSettings(port=0, direct_port=taken.getsockname()[1]), store)
        try:
            assert runner.ports == {}
        finally:
            await runner.stop()


# --- identity details ---------------------------------------------------------------------------


def test_identity_headers_as_the_configmap_names_them() -> None:
    from multidict import CIMultiDict

    from openclaw_cron.archive.auth import FrontProxy as Proxy
    from openclaw_cron.archive.auth import user_from_headers

    proxy = Proxy.from_configmap(
        {
            "requestheader-client-ca-file": "PEM",
            "requestheader-allowed-names": "[]",
            "requestheader-username-headers": '["X-Forwarded-User", "X-Remote-User"]',
            "requestheader-group-headers": '["X-Remote-Group"]',
            "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        }
    )
    assert proxy.allowed_names == [] and proxy.username_headers == ["X-Forwarded-User", "X-Remote-User"]
    headers = CIMultiDict(
        [
            ("X-Remote-User", "alice"),
            ("X-Remote-Group", "devs"),
            ("X-Remote-Group", "system:authenticated"),
            ("X-Remote-Extra-Scopes", "a"),
            ("X-Remote-Extra-Scopes", "b"),
            ("X-Remote-Extra-Example.com%2fteam", "blue"),
        ]
    )
    user = user_from_headers(headers, proxy)
    assert user is not None
    assert (user.name, user.groups) == ("alice", ("devs", "system:authenticated"))
    assert dict(user.extra) == {"scopes": ("a", "b"), "example.com/team": ("blue",)}
    assert user_from_headers(CIMultiDict([("X-Remote-Group", "devs")]), proxy) is None
    assert user_from_headers(CIMultiDict([("X-Forwarded-User", "bob"), ("X-Remote-User", "x")]), proxy).name == "bob"  # type: ignore[union-attr]


async def test_decisions_are_cached_per_identity(server: Runner, pki: FrontProxy, cluster: support.Cluster) -> None:
    def reviews() -> int:
        return sum(1 for c in cluster.emulator.calls if c.resource == "subjectaccessreviews")

    before = reviews()
    for _ in range(3):
        assert (await get(server, pki, f"{BASE}/namespaces/team-a/runs", user="carol"))[0] == 200
    assert reviews() == before + 1
    await get(server, pki, f"{BASE}/namespaces/team-a/runs", user="carol", groups=("other",))
    await get(server, pki, f"{BASE}/namespaces/team-b/runs", user="carol")
    assert reviews() == before + 3
