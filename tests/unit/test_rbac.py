"""Least privilege: the operator's rendered Roles/ClusterRoles grant nothing beyond an allow-list.

Growing the operator's permissions must be a visible change to this file, with a reason.
The allow-list is also checked the other way round (everything the operator needs is granted)
so that a template that renders no rules at all cannot pass.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "openclaw-cron-operator"
HELM = ROOT / ".tools" / "bin" / "helm"

pytestmark = pytest.mark.skipif(not HELM.exists(), reason="helm not installed: make tools")

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def grants(group: str, resource: str, *verbs: str) -> set[Grant]:
    return {(group, resource, v) for v in verbs}


#: What the operator may do on the resources it serves (ClusterRole, or a Role per namespace).
NAMESPACED: set[Grant] = (
    grants("cron.openclaw.io", "openclawcronjobs", "get", "list", "watch", "patch", "update", "delete")
    | grants("cron.openclaw.io", "openclawcronjobs/status", "get", "patch", "update")
    | grants("cron.openclaw.io", "openclawcronjobs/finalizers", "update")  # blockOwnerDeletion on run Pods
    | grants("", "pods", "get", "list", "watch", "create", "delete", "deletecollection")
    | grants("", "pods/log", "get")  # the archive keeps each run's log tail
    | grants("", "secrets", "get")  # token Secret exists? never list/watch
    | grants("", "configmaps", "get")  # run conditions on a ConfigMap key
    | grants("", "events", "create", "patch", "list")  # list: a job's Events in the console, after a SAR
    | grants("events.k8s.io", "events", "create", "patch")
)
#: Cluster-scoped extras of an operator that serves all namespaces.
CLUSTER_WIDE: set[Grant] = (
    grants("apiextensions.k8s.io", "customresourcedefinitions", "get", "list", "watch")
    | grants("", "namespaces", "get", "list", "watch")
    | grants("kopf.dev", "clusterkopfpeerings", "get", "list", "watch", "patch")
)
#: Cluster-scoped extras when serving a list of namespaces (only CRD discovery).
DISCOVERY: set[Grant] = grants("apiextensions.k8s.io", "customresourcedefinitions", "get", "list", "watch")
NAMESPACED_PEERING: set[Grant] = grants("kopf.dev", "kopfpeerings", "get", "list", "watch", "patch")

#: The archive API (docs/archive.md) asks the API server whether the requesting user may read runs;
#: it reads the front-proxy CA through kube-system's `extension-apiserver-authentication-reader` Role.
ARCHIVE_AUTH: set[Grant] = grants("authorization.k8s.io", "subjectaccessreviews", "create")
ARCHIVE_BINDINGS = [
    ("", "ClusterRole", "ocj-openclaw-cron-operator-archive-auth"),
    ("kube-system", "Role", "extension-apiserver-authentication-reader"),
]
#: view/edit/admin users read the archive's runs and their logs, and the console's pages.
USER_ARCHIVE: set[Grant] = (
    grants("archive.cron.openclaw.io", "runs", "get", "list")
    | grants("archive.cron.openclaw.io", "runs/log", "get", "list")
    | grants("archive.cron.openclaw.io", "console", "get", "list")
)

#: The aggregated user-facing roles (admin/edit/view), not bound to the operator.
USER_EDIT: set[Grant] = grants(
    "cron.openclaw.io", "openclawcronjobs", "get", "list", "watch", "create", "update", "patch", "delete",
    "deletecollection",
) | grants("cron.openclaw.io", "openclawcronjobs/status", "get")  # fmt: skip
USER_VIEW: set[Grant] = grants("cron.openclaw.io", "openclawcronjobs", "get", "list", "watch") | grants(
    "cron.openclaw.io", "openclawcronjobs/status", "get", "list", "watch"
)


def render(*sets: str) -> list[dict[str, Any]]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"}
    args = [str(HELM), "template", "ocj", str(CHART), "--namespace", "ops"]
    for s in sets:
        args += ["--set", s]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def rules_of(role: dict[str, Any]) -> set[Grant]:
    out: set[Grant] = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {role['metadata']['name']}: {rule}"
                    out.add((group, resource, verb))
    return out


def by_name(objs: list[dict[str, Any]], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs if o["kind"] == kind}


def operator_bindings(objs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(namespace, roleRef kind, roleRef name) of every binding to the operator's ServiceAccount."""
    out = []
    for b in objs:
        if b["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert b["subjects"] == [
                {"kind": "ServiceAccount", "name": "ocj-openclaw-cron-operator", "namespace": "ops"}
            ]
            out.append((b["metadata"].get("namespace", ""), b["roleRef"]["kind"], b["roleRef"]["name"]))
    return out


def test_cluster_wide_operator_is_least_privilege() -> None:
    objs = render()
    roles = by_name(objs, "ClusterRole")
    bindings = operator_bindings(objs)
    assert sorted(bindings) == sorted([("", "ClusterRole", "ocj-openclaw-cron-operator"), *ARCHIVE_BINDINGS])
    assert rules_of(roles[("", "ocj-openclaw-cron-operator-archive-auth")]) == ARCHIVE_AUTH
    granted = rules_of(roles[("", "ocj-openclaw-cron-operator")])
    assert granted - (NAMESPACED | CLUSTER_WIDE) == set(), "operator ClusterRole grants more than the allow-list"
    assert granted == NAMESPACED | CLUSTER_WIDE
    assert not by_name(objs, "Role")


def test_namespaced_operator_is_least_privilege() -> None:
    objs = render("watch.namespaces={a,b}")
    bindings = operator_bindings(objs)
    assert sorted(bindings) == sorted(
        [
            ("", "ClusterRole", "ocj-openclaw-cron-operator"),
            ("a", "Role", "ocj-openclaw-cron-operator"),
            ("b", "Role", "ocj-openclaw-cron-operator"),
            *ARCHIVE_BINDINGS,
        ]
    )
    cluster = rules_of(by_name(objs, "ClusterRole")[("", "ocj-openclaw-cron-operator")])
    assert cluster == DISCOVERY, "namespaced mode must not need cluster-wide access beyond CRD discovery"
    roles = by_name(objs, "Role")
    assert sorted(roles) == [("a", "ocj-openclaw-cron-operator"), ("b", "ocj-openclaw-cron-operator")]
    for role in roles.values():
        assert rules_of(role) == NAMESPACED | NAMESPACED_PEERING


def test_secrets_are_only_read_by_name() -> None:
    for objs in (render(), render("watch.namespaces={a}")):
        for kind in ("ClusterRole", "Role"):
            for role in by_name(objs, kind).values():
                verbs = {v for g, r, v in rules_of(role) if r == "secrets"}
                assert verbs <= {"get"}


def test_aggregated_user_roles() -> None:
    roles = by_name(render(), "ClusterRole")
    edit = roles[("", "ocj-openclaw-cron-operator-edit")]
    view = roles[("", "ocj-openclaw-cron-operator-view")]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert rules_of(edit) == USER_EDIT
    assert rules_of(view) == USER_VIEW
    assert not {o["kind"] for o in render("rbac.aggregateToDefaultRoles=false")} - {o["kind"] for o in render()}
    assert ("", "ocj-openclaw-cron-operator-view") not in by_name(
        render("rbac.aggregateToDefaultRoles=false"), "ClusterRole"
    )


def test_archive_rbac() -> None:
    roles = by_name(render(), "ClusterRole")
    archive = roles[("", "ocj-openclaw-cron-operator-archive-view")]
    for role in ("view", "edit", "admin"):
        assert archive["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"
    assert rules_of(archive) == USER_ARCHIVE
    # Without the archive: no SubjectAccessReviews, no kube-system binding, no runs role.
    objs = render("archive.enabled=false")
    assert operator_bindings(objs) == [("", "ClusterRole", "ocj-openclaw-cron-operator")]
    assert not [n for _, n in by_name(objs, "ClusterRole") if "archive" in n]


def test_rbac_disabled_renders_no_rbac() -> None:
    kinds = {o["kind"] for o in render("rbac.create=false")}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
