"""The emulated API server's RBAC evaluator (tests/support/rbac.py) decides as kube-apiserver's RBAC authorizer.

Each case is a rule of plugin/pkg/auth/authorizer/rbac that the archive tests lean on; the
expected answers are what a real cluster gives for the same objects (`kubectl auth can-i`).
"""

from __future__ import annotations

from typing import Any

import pytest

from support.rbac import review

RBAC = "rbac.authorization.k8s.io/v1"
BOT, OTHER_BOT = "system:serviceaccount:team-a:bot", "system:serviceaccount:team-b:bot"


def role(kind: str, name: str, rules: list[dict[str, Any]], ns: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {}), "labels": extra.pop("labels", {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules, **extra}


def bind(
    kind: str, name: str, ref_kind: str, ref: str, subject: dict[str, Any], ns: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "roleRef": {"kind": ref_kind, "name": ref},
            "subjects": [subject]}  # fmt: skip


RUNS = {"apiGroups": ["archive.cron.openclaw.io"], "resources": ["runs"], "verbs": ["get", "list"]}
OBJECTS: list[dict[str, Any]] = [
    role("ClusterRole", "view", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "view"}}]}),
    role("ClusterRole", "archive-view", [{**RUNS, "resources": ["runs", "runs/log"]}], labels={"agg": "view"}),
    role("ClusterRole", "runs-only", [RUNS]),
    role("ClusterRole", "all-logs", [{"apiGroups": ["*"], "resources": ["*/log"], "verbs": ["get"]}]),
    role("ClusterRole", "one-run", [{**RUNS, "resourceNames": ["backup~1~1"], "verbs": ["get"]}]),
    role("Role", "local", [RUNS], ns="team-a"),
    bind("RoleBinding", "alice", "ClusterRole", "view", {"kind": "User", "name": "alice"}, ns="team-a"),
    bind("RoleBinding", "devs", "Role", "local", {"kind": "Group", "name": "devs"}, ns="team-a"),
    bind("ClusterRoleBinding", "carol", "ClusterRole", "runs-only", {"kind": "User", "name": "carol"}),
    bind("ClusterRoleBinding", "logs", "ClusterRole", "all-logs", {"kind": "User", "name": "logger"}),
    bind("RoleBinding", "sa", "ClusterRole", "one-run", {"kind": "ServiceAccount", "name": "bot"}, ns="team-a"),
]


def lister(api_version: str, plural: str, namespace: str | None) -> list[dict[str, Any]]:
    kinds = {"roles": "Role", "rolebindings": "RoleBinding", "clusterroles": "ClusterRole",
             "clusterrolebindings": "ClusterRoleBinding"}  # fmt: skip
    assert api_version == RBAC
    return [
        o
        for o in OBJECTS
        if o["kind"] == kinds[plural] and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]


def allowed(user: str, verb: str, ns: str | None, sub: str = "", name: str = "", groups: tuple[str, ...] = ()) -> bool:
    attrs = {"group": "archive.cron.openclaw.io", "resource": "runs", "verb": verb, "subresource": sub, "name": name}
    if ns:
        attrs["namespace"] = ns
    sar = {"spec": {"user": user, "groups": list(groups), "resourceAttributes": attrs}}
    answer = review(sar, lister)
    assert answer["kind"] == "SubjectAccessReview" and answer["spec"] == sar["spec"]
    return bool(answer["status"]["allowed"])


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        ("aggregated ClusterRole via RoleBinding", ("alice", "list", "team-a"), True),
        ("aggregated subresource", ("alice", "get", "team-a", "log"), True),
        ("RoleBinding does not reach another namespace", ("alice", "list", "team-b"), False),
        ("RoleBinding does not grant the cluster scope", ("alice", "list", None), False),
        ("verb not in the rule", ("alice", "delete", "team-a"), False),
        ("Role through a Group subject", ("bob", "list", "team-a", "", "", ("devs",)), True),
        ("a group the user is not in", ("bob", "list", "team-a", "", "", ("ops",)), False),
        ("ClusterRoleBinding: every namespace", ("carol", "list", "team-b"), True),
        ("ClusterRoleBinding: cluster scope", ("carol", "list", None), True),
        ("runs does not cover runs/log", ("carol", "get", "team-b", "log"), False),
        ("*/log and apiGroups *", ("logger", "get", "team-b", "log"), True),
        ("*/log is no runs", ("logger", "get", "team-b"), False),
        ("ServiceAccount subject, resourceNames hit", (BOT, "get", "team-a", "", "backup~1~1"), True),
        ("resourceNames miss", (BOT, "get", "team-a", "", "backup~2~1"), False),
        ("resourceNames never allow list", (BOT, "list", "team-a"), False),
        ("a ServiceAccount of another namespace", (OTHER_BOT, "get", "team-a", "", "backup~1~1"), False),
        ("nobody", ("mallory", "list", "team-a"), False),
    ],
)  # fmt: skip
def test_rbac_decisions(case: str, args: tuple[Any, ...], expected: bool) -> None:
    assert allowed(*args) is expected, case


def test_the_reason_names_the_binding() -> None:
    sar = {"spec": {"user": "carol", "resourceAttributes": {"group": "archive.cron.openclaw.io", "resource": "runs",
                                                             "verb": "list"}}}  # fmt: skip
    reason = review(sar, lister)["status"]["reason"]
    assert reason.startswith('RBAC: allowed by ClusterRoleBinding "carol/" of ClusterRole "runs-only" to User "carol"')
