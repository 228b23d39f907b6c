"""The emulated API server authenticates and authorizes as kube-apiserver does (tests/support/authn.py,
rbac.py, policy.py): who a request is, what a user may do, and the exact words of a refusal."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import Cluster
from support.authn import (
    Identity,
    Impersonation,
    TokenRegistry,
    authenticate,
    certificate_identity,
    impersonate,
)
from support.emulator import _Path, request_attributes
from support.policy import bootstrap_policy
from support.rbac import Authorizer, forbidden_message, forbidden_status

OPERATOR = "system:serviceaccount:openclaw-cron-system:openclaw-cron-operator"


# --- authentication ----------------------------------------------------------------------------------


def test_tokens_and_service_accounts_get_the_groups_the_api_server_adds() -> None:
    tokens = TokenRegistry()
    alice = tokens.issue("alice", ("team-a",))
    sa = tokens.service_account("openclaw-cron-system", "openclaw-cron-operator")
    assert authenticate({"Authorization": f"Bearer {alice}"}, None, tokens) == Identity(
        "alice", ("team-a", "system:authenticated")
    )
    assert authenticate({"Authorization": f"bearer {sa}"}, None, tokens) == Identity(
        OPERATOR,
        ("system:serviceaccounts", "system:serviceaccounts:openclaw-cron-system", "system:authenticated"),
    )
    tokens.revoke(alice)
    assert authenticate({"Authorization": f"Bearer {alice}"}, None, tokens) is None  # revoked: 401


def test_no_credentials_an_unknown_token_or_another_scheme_is_unauthenticated() -> None:
    tokens = TokenRegistry()
    assert authenticate({}, None, tokens) is None
    assert authenticate({"Authorization": "Bearer nobody-issued-this"}, None, tokens) is None
    assert authenticate({"Authorization": "Basic dTpw"}, None, tokens) is None
    # --anonymous-auth=true: only a request without any credentials becomes system:anonymous
    assert authenticate({}, None, tokens, anonymous=True) == Identity("system:anonymous", ("system:unauthenticated",))
    assert authenticate({"Authorization": "Bearer bad"}, None, tokens, anonymous=True) is None


def test_a_verified_client_certificate_is_cn_and_organizations_and_wins_over_a_token() -> None:
    cert = {
        "subject": ((("organizationName", "system:nodes"),), (("commonName", "system:node:n1"),)),
        "serialNumber": "AB",
    }
    assert certificate_identity(cert) == Identity("system:node:n1", ("system:nodes", "system:authenticated"))
    tokens = TokenRegistry()
    got = authenticate({"Authorization": "Bearer unknown"}, cert, tokens)
    assert got is not None and got.user == "system:node:n1" and got.credential == "x509-serial:AB"
    assert certificate_identity({"subject": ((("organizationName", "x"),),)}) is None  # no CN: not a user


# --- authorization --------------------------------------------------------------------------------


def rbac_store(*objects: dict[str, Any]) -> Any:
    """A lister over bootstrap policy plus `objects` (as the emulator's store answers)."""
    stored = [*bootstrap_policy(), *objects]
    kinds = {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding", "roles": "Role",
             "rolebindings": "RoleBinding"}  # fmt: skip

    def list_objects(api_version: str, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return [
            o
            for o in stored
            if o["kind"] == kinds[plural] and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]

    return list_objects, stored


def binding(kind: str, name: str, role: str, subject: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "roleRef": ref,
            "subjects": [subject]}  # fmt: skip


def test_masters_bypass_and_discovery_is_for_everyone_authenticated() -> None:
    lister, _ = rbac_store()
    authz = Authorizer(lister)
    assert authz.authorize("root", ["system:masters"], {"verb": "delete", "group": "", "resource": "nodes"})[0]
    user = ["system:authenticated"]
    assert authz.authorize("bob", user, {"verb": "get", "path": "/apis/cron.openclaw.io/v1alpha1"})[0]
    assert authz.authorize("bob", user, {"verb": "get", "path": "/version"})[0]
    assert authz.authorize("anon", ["system:unauthenticated"], {"verb": "get", "path": "/healthz"})[0]
    assert not authz.authorize("anon", ["system:unauthenticated"], {"verb": "get", "path": "/api"})[0]
    assert not authz.authorize("bob", user, {"verb": "list", "group": "", "resource": "pods"})[0]


def test_view_and_edit_aggregate_as_bootstrapped() -> None:
    lister, _ = rbac_store(
        binding("RoleBinding", "v", "view", {"kind": "User", "name": "val"}, "team-a"),
        binding("RoleBinding", "e", "edit", {"kind": "User", "name": "ed"}, "team-a"),
    )
    authz = Authorizer(lister)
    g = ["system:authenticated"]
    pods = {"group": "", "resource": "pods", "namespace": "team-a"}
    assert authz.authorize("val", g, {**pods, "verb": "watch"})[0]
    assert not authz.authorize("val", g, {**pods, "verb": "create"})[0]
    assert not authz.authorize("val", g, {"verb": "get", "group": "", "resource": "secrets", "namespace": "team-a"})[0]
    assert authz.authorize("ed", g, {**pods, "verb": "deletecollection"})[0]
    assert authz.authorize("ed", g, {**pods, "verb": "list"})[0]  # view aggregates into edit
    assert not authz.authorize("ed", g, {**pods, "verb": "list", "namespace": "team-b"})[0]


def test_cached_rules_follow_rbac_writes_after_invalidate() -> None:
    lister, stored = rbac_store()
    authz = Authorizer(lister)
    attrs = {"verb": "list", "group": "", "resource": "pods", "namespace": "x"}
    assert not authz.authorize("zed", [], attrs)[0]
    stored.append(binding("ClusterRoleBinding", "z", "view", {"kind": "User", "name": "zed"}))
    assert not authz.authorize("zed", [], attrs)[0]  # cached until an RBAC write says otherwise
    authz.invalidate()
    allowed, reason = authz.authorize("zed", [], attrs)
    assert allowed and reason == 'RBAC: allowed by ClusterRoleBinding "z/" of ClusterRole "view" to User "zed"'


def test_impersonation_needs_the_impersonate_verb() -> None:
    lister, _ = rbac_store(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "as-alice"},
            "rules": [
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]}
            ],
        },
        binding("ClusterRoleBinding", "b", "as-alice", {"kind": "User", "name": "bob"}),
    )
    authz = Authorizer(lister)

    def ask(identity: Identity, attrs: dict[str, Any]) -> tuple[bool, str]:
        return authz.authorize(identity.user, identity.groups, attrs)

    bob = Identity.of("bob")
    got, denied = impersonate(bob, Impersonation("alice", ()), ask)
    assert got == Identity("alice", ("system:authenticated",)) and not denied
    got, denied = impersonate(bob, Impersonation("alice", ("system:masters",)), ask)
    assert got is None
    assert forbidden_message("bob", denied) == (
        'groups "system:masters" is forbidden: User "bob" cannot impersonate resource "groups" in API group "" '
        "at the cluster scope"
    )
    got, _ = impersonate(Identity.of("root", ("system:masters",)), Impersonation("system:serviceaccount:a:b", ()), ask)
    assert got is not None and "system:serviceaccounts:a" in got.groups


# --- request attributes and the words of a refusal ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "raw", "parsed", "params", "verb", "expected"),
    [
        ("GET", "/api/v1/pods", _Path("", "v1", "pods"), {}, "list",
         {"verb": "list", "group": "", "resource": "pods"}),
        ("GET", "/api/v1/namespaces/default/pods", _Path("", "v1", "pods", "default"), {"watch": "true"}, "watch",
         {"verb": "watch", "group": "", "resource": "pods", "namespace": "default"}),
        ("GET", "/api/v1/namespaces/x", _Path("", "v1", "namespaces", None, "x"), {}, "get",
         {"verb": "get", "group": "", "resource": "namespaces", "namespace": "x", "name": "x"}),
        ("GET", "/api/v1/namespaces/d/pods/p/log", _Path("", "v1", "pods", "d", "p", "log"), {}, "get",
         {"verb": "get", "group": "", "resource": "pods", "subresource": "log", "namespace": "d", "name": "p"}),
        ("GET", "/apis/kopf.dev/v1/clusterkopfpeerings", _Path("kopf.dev", "v1", "clusterkopfpeerings"),
         {"fieldSelector": "metadata.name=default"}, "list",
         {"verb": "list", "group": "kopf.dev", "resource": "clusterkopfpeerings", "name": "default"}),
        ("GET", "/apis/cron.openclaw.io/v1alpha1", _Path("cron.openclaw.io", "v1alpha1"), {}, "list",
         {"verb": "get", "path": "/apis/cron.openclaw.io/v1alpha1"}),
    ],
)  # fmt: skip
def test_request_attributes_as_the_request_info_factory(
    method: str, raw: str, parsed: _Path, params: dict[str, str], verb: str, expected: dict[str, Any]
) -> None:
    assert request_attributes(method, raw, parsed, params, verb) == expected


def test_forbidden_messages_are_kube_apiservers() -> None:
    pods = {"verb": "list", "group": "", "resource": "pods"}
    assert forbidden_message(OPERATOR, pods) == (
        f'pods is forbidden: User "{OPERATOR}" cannot list resource "pods" in API group "" at the cluster scope'
    )
    assert forbidden_message("bob", {**pods, "namespace": "default"}) == (
        'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"'
    )
    ocj = {"verb": "patch", "group": "cron.openclaw.io", "resource": "openclawcronjobs", "subresource": "status",
           "namespace": "a", "name": "x"}  # fmt: skip
    assert forbidden_message("bob", ocj) == (
        'openclawcronjobs.cron.openclaw.io "x" is forbidden: User "bob" cannot patch resource '
        '"openclawcronjobs/status" in API group "cron.openclaw.io" in the namespace "a"'
    )
    assert forbidden_message("bob", {"verb": "get", "path": "/metrics"}) == (
        'forbidden: User "bob" cannot get path "/metrics"'
    )
    assert forbidden_status("bob", ocj)["details"] == {
        "name": "x",
        "group": "cron.openclaw.io",
        "kind": "openclawcronjobs",
    }


# --- over HTTPS, end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("authn"), kubelet=False, install_crd=False) as c:
        yield c


def get(cluster: Cluster, path: str, token: str | None = None) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(cluster.ca_file))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(cluster.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_https_401_and_403_bodies(cluster: Cluster) -> None:
    with cluster.expect_rejections() as refused:
        assert get(cluster, "/api/v1/namespaces/default/pods") == (401, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized",
            "reason": "Unauthorized", "code": 401})  # fmt: skip
        token = cluster.service_account_token("openclaw-cron-system", "openclaw-cron-operator")
        code, body = get(cluster, "/api/v1/pods", token)
    assert code == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        f'pods is forbidden: User "{OPERATOR}" cannot list resource "pods" in API group "" at the cluster scope'
    )
    assert [(c.code, c.user) for c in refused] == [(401, ""), (403, OPERATOR)]
    assert get(cluster, "/version", token)[0] == 200  # discovery and /version: system:authenticated


def test_the_charts_rbac_lets_its_service_account_list_pods(cluster: Cluster) -> None:
    cluster.apply_chart_rbac()
    token = cluster.service_account_token("openclaw-cron-system", "openclaw-cron-operator")
    code, body = get(cluster, "/api/v1/pods", token)
    assert code == 200 and body["kind"] == "PodList"


def test_kubeconfigs_for_users_by_token_and_certificate(cluster: Cluster, tmp_path: Path) -> None:
    for via in ("token", "cert"):
        path = cluster.kubeconfig_for("dana", ("devs",), via=via)
        r = cluster.kubectl("--kubeconfig", str(path), "auth", "whoami", "-o", "json")
        info = json.loads(r.stdout)["status"]["userInfo"]
        assert info == {"username": "dana", "groups": ["devs", "system:authenticated"]}
    token_kc = cluster.kubeconfig_for("dana", via="token")
    token = yaml.safe_load(token_kc.read_text())["users"][0]["user"]["token"]
    cluster.revoke_token(token)
    with cluster.expect_rejections():
        r = cluster.kubectl("--kubeconfig", str(token_kc), "get", "pods", check=False)
    assert r.returncode != 0 and "Unauthorized" in r.stderr
