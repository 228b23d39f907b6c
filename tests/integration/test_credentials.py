"""Every credential form users have, against an API server that checks them (tests/support/authn.py).

The operator's own client (`openclaw_cron.kube.Kube` with `credentials.Credentials`) and kopf each
authenticate with: a kubeconfig token, a token file that is rotated (the new token is used at once
after a 401, and within the refresh interval without one), a client certificate, exec credential
plugins (a token, and a client certificate), and the in-cluster ServiceAccount files. The API
server says who it saw (SelfSubjectReview, and the user and credential recorded per call); a
request without credentials, or with a token nobody issued, is a 401.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader

from openclaw_cron import credentials as creds_module
from openclaw_cron.credentials import Credentials
from openclaw_cron.kube import USER_AGENT, Kube
from support import Cluster, wait_for
from support.authn import credential_id
from support.cluster import write_kubeconfig

WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def kubeconfig_loader(path: Path) -> Callable[[Any], None]:
    def load(conf: Any) -> None:
        config.load_kube_config(config_file=str(path), client_configuration=conf)  # type: ignore[no-untyped-call]

    return load


def in_cluster_loader(cluster: Cluster, directory: Path, refresh: timedelta | None = None) -> Callable[[Any], None]:
    """The official in-cluster loader with the ServiceAccount files in `directory`, as a Pod sees them."""
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(cluster.port)}

    def load(conf: Any) -> None:
        loader = InClusterConfigLoader(str(directory / "token"), str(directory / "ca.crt"), environ=environ)
        if refresh is not None:
            loader._token_refresh_period = refresh
        loader.load_and_set(conf)

    return load


async def whoami(kube: Kube) -> dict[str, Any]:
    review = await kube.request("POST", WHOAMI, operation="whoami", body=REVIEW)
    return dict(review["status"]["userInfo"])


def exec_plugin(tmp_path: Path, status: dict[str, Any], name: str = "plugin") -> dict[str, Any]:
    """A client.authentication.k8s.io/v1 credential plugin script printing `status` (as EKS/GKE/AKS do)."""
    script = tmp_path / f"{name}.py"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}
    script.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({credential!r}))\n")
    script.chmod(0o755)
    return {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Never"}


def calls_of(cluster: Cluster, agent: str, since: float = 0.0) -> list[Any]:
    return [
        c
        for c in cluster.call(lambda: list(cluster.emulator.calls))
        if c.user_agent.startswith(agent) and c.when >= since
    ]


# --- the operator's client -------------------------------------------------------------------------


async def test_kube_with_a_kubeconfig_token(cluster: Cluster) -> None:
    kube = Kube(credentials=Credentials(loader=kubeconfig_loader(cluster.kubeconfig_for("alice", ("team-a",)))))
    try:
        assert await whoami(kube) == {"username": "alice", "groups": ["team-a", "system:authenticated"]}
    finally:
        await kube.close()


async def test_kube_with_a_client_certificate(cluster: Cluster) -> None:
    path = cluster.kubeconfig_for("carol", ("ops", "oncall"), via="cert")
    kube = Kube(credentials=Credentials(loader=kubeconfig_loader(path)))
    try:
        assert await whoami(kube) == {"username": "carol", "groups": ["ops", "oncall", "system:authenticated"]}
        assert calls_of(cluster, USER_AGENT)[-1].credential.startswith("x509-serial:")
    finally:
        await kube.close()


async def test_kube_with_exec_plugins_for_a_token_and_for_a_client_certificate(
    cluster: Cluster, tmp_path: Path
) -> None:
    token = cluster.issue_token("eks-user", ("eks:admins",))
    path = write_kubeconfig(tmp_path / "token.kubeconfig", cluster.url, "default", None, ca_pem=cluster.ca.pem,
                            exec_config=exec_plugin(tmp_path, {"token": token}, "token-plugin"))  # fmt: skip
    kube = Kube(credentials=Credentials(loader=kubeconfig_loader(path)))
    try:
        assert (await whoami(kube))["username"] == "eks-user"
    finally:
        await kube.close()
    issued = cluster.client_ca.issue("gke-user", organizations=("gke:devs",))
    status = {"clientCertificateData": issued.cert_pem, "clientKeyData": issued.key_pem}
    path = write_kubeconfig(tmp_path / "cert.kubeconfig", cluster.url, "default", None, ca_pem=cluster.ca.pem,
                            exec_config=exec_plugin(tmp_path, status, "cert-plugin"))  # fmt: skip
    kube = Kube(credentials=Credentials(loader=kubeconfig_loader(path)))
    try:
        assert await whoami(kube) == {"username": "gke-user", "groups": ["gke:devs", "system:authenticated"]}
    finally:
        await kube.close()


async def test_kube_in_cluster_with_the_service_account_files(cluster: Cluster, tmp_path: Path) -> None:
    sa = tmp_path / "serviceaccount"
    cluster.write_service_account_files(sa, "team-a", "runner")
    kube = Kube(credentials=Credentials(loader=in_cluster_loader(cluster, sa)))
    try:
        assert await whoami(kube) == {
            "username": "system:serviceaccount:team-a:runner",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"],
        }
    finally:
        await kube.close()


async def test_kube_follows_a_rotated_service_account_token(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubelet rotates the projected token: used within the refresh interval without a 401, and at
    once after one (the old token revoked before the interval is up)."""
    monkeypatch.setattr(creds_module, "REFRESH_SECONDS", 0.5)  # client-go's minute, shortened
    sa = tmp_path / "serviceaccount"
    first = cluster.write_service_account_files(sa, "team-a", "runner")
    # the official client's own re-read period is a minute too; ours is what is measured
    kube = Kube(credentials=Credentials(loader=in_cluster_loader(cluster, sa, refresh=timedelta(0))))
    try:
        await whoami(kube)
        second = cluster.write_service_account_files(sa, "team-a", "runner")  # rotated; `first` still valid
        await whoami(kube)
        assert calls_of(cluster, USER_AGENT)[-1].credential == credential_id(first)  # cached, no read per call
        await asyncio.sleep(0.6)
        began = time.time()
        await whoami(kube)
        assert calls_of(cluster, USER_AGENT, began)[-1].credential == credential_id(second)
        assert not [c for c in calls_of(cluster, USER_AGENT, began) if c.code == 401]  # no 401 needed for it

        monkeypatch.setattr(creds_module, "REFRESH_SECONDS", 3600.0)
        third = cluster.write_service_account_files(sa, "team-a", "runner")
        cluster.revoke_token(second)
        with cluster.expect_rejections() as refused:
            began = time.time()
            assert (await whoami(kube))["username"] == "system:serviceaccount:team-a:runner"
        assert [c.credential for c in refused] == [credential_id(second)]  # one 401, then the new file at once
        assert calls_of(cluster, USER_AGENT, began)[-1].credential == credential_id(third)
    finally:
        await kube.close()


async def test_kube_follows_a_rotated_kubeconfig_token_file_after_a_401(cluster: Cluster, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    old = cluster.service_account_token("team-a", "ci")
    token_file.write_text(old)
    path = write_kubeconfig(tmp_path / "kubeconfig", cluster.url, "default", None, ca_pem=cluster.ca.pem,
                            token_file=token_file)  # fmt: skip
    kube = Kube(credentials=Credentials(loader=kubeconfig_loader(path)))
    try:
        assert (await whoami(kube))["username"] == "system:serviceaccount:team-a:ci"
        new = cluster.service_account_token("team-a", "ci")
        token_file.write_text(new)
        cluster.revoke_token(old)
        with cluster.expect_rejections() as refused:
            assert (await whoami(kube))["username"] == "system:serviceaccount:team-a:ci"
        assert [c.code for c in refused] == [401]
        assert calls_of(cluster, USER_AGENT)[-1].credential == credential_id(new)
    finally:
        await kube.close()


async def test_no_credentials_or_an_unknown_token_is_401(cluster: Cluster, tmp_path: Path) -> None:
    conf = client.Configuration()
    conf.host, conf.ssl_ca_cert = cluster.url, str(cluster.ca_file)
    bare = Kube(conf)
    unknown = Kube(credentials=Credentials(loader=kubeconfig_loader(
        write_kubeconfig(tmp_path / "k", cluster.url, "default", "never-issued", ca_pem=cluster.ca.pem))))  # fmt: skip
    try:
        with cluster.expect_rejections() as refused:
            for kube in (bare, unknown):
                with pytest.raises(ApiException) as caught:
                    await kube.request("GET", "/api/v1/namespaces/default/pods", operation="list")
                assert caught.value.status == 401
                assert json.loads(caught.value.body) == {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "Unauthorized",
                    "reason": "Unauthorized",
                    "code": 401,
                }
        assert {c.user for c in refused} == {""} and len(refused) >= 2
        assert "" in {c.credential for c in refused}  # no Authorization header at all
        assert credential_id("never-issued") in {c.credential for c in refused}
    finally:
        await bare.close()
        await unknown.close()


def test_kubectl_with_a_certificate_from_another_ca_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    """A certificate the client CA did not sign never authenticates (the TLS handshake refuses it here)."""
    from support.pki import CA

    forged = CA("emulated-client-ca").issue("kubernetes-admin", organizations=("system:masters",))
    path = write_kubeconfig(tmp_path / "forged", cluster.url, "default", None, ca_pem=cluster.ca.pem, cert=forged)
    began = time.time()
    r = cluster.kubectl("--kubeconfig", str(path), "get", "pods", check=False)
    assert r.returncode != 0 and not r.stdout, r.stderr  # TLS 1.3: the server's alert reads as a reset
    assert not calls_of(cluster, "kubectl", began)  # never got as far as a request


# --- kopf -------------------------------------------------------------------------------------------

KOPF_SCRIPT = """
import kopf

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.posting.enabled = False

@kopf.on.create("configmaps", labels={"credentials-test": "yes"})
def seen(patch, **_):
    patch.metadata.annotations["seen-by"] = "kopf"
"""

#: Runs kopf with the in-cluster ServiceAccount files somewhere else than /var/run/secrets.
IN_CLUSTER_MAIN = """
import os, sys
import kubernetes.config.incluster_config as ic
ic.SERVICE_TOKEN_FILENAME = os.path.join(os.environ["SA_DIR"], "token")
ic.SERVICE_CERT_FILENAME = os.path.join(os.environ["SA_DIR"], "ca.crt")
from kopf.cli import main
sys.argv[0] = "kopf"
main()
"""


def start_kopf(cluster: Cluster, tmp_path: Path, *, kubeconfig: Path | None = None, env: dict[str, str] | None = None,
               in_cluster: bool = False) -> Any:  # fmt: skip
    script = tmp_path / "kopf_operator.py"
    script.write_text(textwrap.dedent(KOPF_SCRIPT))
    args = ["run", "--standalone", "-n", "default", str(script)]
    if in_cluster:
        main = tmp_path / "in_cluster_main.py"
        main.write_text(textwrap.dedent(IN_CLUSTER_MAIN))
        argv = [sys.executable, str(main), *args]
    else:
        argv = [sys.executable, "-m", "kopf", *args]
    return cluster.start_process(argv, name=f"kopf-{tmp_path.name}", kubeconfig=kubeconfig, env=env)


def kopf_handles(cluster: Cluster, name: str) -> None:
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"credentials-test": "yes"}}}
    )

    def annotated() -> bool:
        cm = cluster.get("v1", "configmaps", "default", name) or {}
        return (cm.get("metadata", {}).get("annotations") or {}).get("seen-by") == "kopf"

    wait_for(annotated, 60, 0.1, f"kopf to handle configmap {name}")


def kopf_users(cluster: Cluster) -> set[str]:
    return {c.user for c in calls_of(cluster, "kopf/") if c.code < 400}


def _forms(cluster: Cluster, tmp_path: Path) -> dict[str, dict[str, Any]]:
    masters = ("system:masters",)
    token = cluster.issue_token("kopf-exec", masters)
    issued = cluster.client_ca.issue("kopf-exec-cert", organizations=masters)
    cert_status = {"clientCertificateData": issued.cert_pem, "clientKeyData": issued.key_pem}

    def exec_kc(name: str, status: dict[str, Any]) -> Path:
        return write_kubeconfig(tmp_path / f"{name}.kubeconfig", cluster.url, "default", None, ca_pem=cluster.ca.pem,
                                exec_config=exec_plugin(tmp_path, status, name))  # fmt: skip

    return {
        "token": {"kubeconfig": cluster.kubeconfig_for("kopf-token", masters), "user": "kopf-token"},
        "cert": {"kubeconfig": cluster.kubeconfig_for("kopf-cert", masters, via="cert"), "user": "kopf-cert"},
        "exec-token": {"kubeconfig": exec_kc("exec-token", {"token": token}), "user": "kopf-exec"},
        "exec-cert": {"kubeconfig": exec_kc("exec-cert", cert_status), "user": "kopf-exec-cert"},
    }


@pytest.mark.parametrize("form", ["token", "cert", "exec-token", "exec-cert"])
def test_kopf_with_each_kubeconfig_credential_form(cluster: Cluster, tmp_path: Path, form: str) -> None:
    chosen = _forms(cluster, tmp_path)[form]
    operator = start_kopf(cluster, tmp_path, kubeconfig=chosen["kubeconfig"])
    kopf_handles(cluster, f"cm-{form}")
    assert kopf_users(cluster) == {chosen["user"]}
    operator.stop()


def test_kopf_in_cluster_and_after_its_token_is_rotated(cluster: Cluster, tmp_path: Path) -> None:
    """In-cluster ServiceAccount files; the kubelet rotates the token and the old one is revoked:
    kopf's next request gets a 401, it logs in again (re-reading the file) and carries on."""
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kopf-test-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "kopf", "namespace": "default"}],
        }
    )
    sa = tmp_path / "serviceaccount"
    old = cluster.write_service_account_files(sa, "default", "kopf")
    env = {"SA_DIR": str(sa), "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(cluster.port),
           "KUBECONFIG": str(tmp_path / "no-kubeconfig")}  # fmt: skip
    operator = start_kopf(cluster, tmp_path, env=env, in_cluster=True)
    kopf_handles(cluster, "cm-in-cluster")
    assert kopf_users(cluster) == {"system:serviceaccount:default:kopf"}
    new = cluster.write_service_account_files(sa, "default", "kopf")
    with cluster.expect_rejections() as refused:
        cluster.revoke_token(old)
        began = time.time()
        kopf_handles(cluster, "cm-rotated")
    assert refused and {c.credential for c in refused} == {credential_id(old)}
    assert {c.credential for c in calls_of(cluster, "kopf/", began) if c.code < 400} >= {credential_id(new)}
    assert operator.running(), operator.logs()[-3000:]
    operator.stop()


def test_the_operator_runs_as_the_charts_service_account(cluster: Cluster) -> None:
    """`start_operator()` authenticates with a token of the chart's ServiceAccount, under the chart's RBAC."""
    operator = cluster.start_operator("--standalone", env={"OPENCLAW_CRON_METRICS_PORT": "0"})
    wait_for(lambda: calls_of(cluster, USER_AGENT) or not operator.running(), 60, 0.1, "the operator's first call")
    users = {c.user for c in calls_of(cluster, USER_AGENT)} | {c.user for c in calls_of(cluster, "kopf/")}
    assert users == {"system:serviceaccount:openclaw-cron-system:openclaw-cron-operator"}, users
    binding = cluster.get("rbac.authorization.k8s.io/v1", "clusterrolebindings", None, "openclaw-cron-operator")
    assert binding and binding["subjects"][0]["namespace"] == "openclaw-cron-system"
    operator.stop()
