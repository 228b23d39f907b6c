"""The RBAC objects a cluster starts with (kube-apiserver's bootstrap policy), for the emulator.

The subset tests meet: cluster-admin (bound to system:masters), the discovery and public-info
roles every user has, system:basic-user, system:auth-delegator, the aggregating view/edit/admin
roles with the built-in rules they aggregate (as `system:aggregate-to-*`), the role that lets
extension servers read `kube-system/extension-apiserver-authentication`, and the simulated
node's access (see `node_policy`). Rules follow k8s.io/kubernetes/plugin/pkg/auth/authorizer/
rbac/bootstrappolicy for these resources; resources the emulator does not serve are left out.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
RBAC = "rbac.authorization.k8s.io/v1"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
#: The simulated kubelet's user and group (a client certificate, as a kubelet has).
NODE_GROUP = "system:nodes"


def _meta(name: str, labels: dict[str, str] | None = None, namespace: str | None = None) -> JSON:
    meta: JSON = {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def _role(name: str, rules: list[JSON], labels: dict[str, str] | None = None, aggregate: str = "") -> JSON:
    role: JSON = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": _meta(name, labels), "rules": rules}
    if aggregate:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{aggregate}": "true"}}]
        }
    return role


def _binding(name: str, role: str, *groups: str) -> JSON:
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups],
    }


def _rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> JSON:
    rule: JSON = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def node_policy() -> list[JSON]:
    """The simulated kubelet's access: what it does through the API (its pods, their status, the
    Secrets and ConfigMaps they reference, Events) plus `pods/binding`, since it also schedules.

    A real cluster authorizes kubelets with the Node authorizer (and NodeRestriction admission),
    which the emulator does not have; an RBAC binding of group system:nodes to this role is the
    stand-in, so the kubelet is still checked rather than running as system:masters.
    """
    return [
        _role(
            "system:node",
            [
                _rule([""], ["pods"], [*READ, "delete"]),
                _rule([""], ["pods/status"], ["patch", "update"]),
                _rule([""], ["pods/binding"], ["create"]),
                _rule([""], ["secrets", "configmaps", "persistentvolumeclaims", "services"], READ),
                _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
                _rule([""], ["nodes", "nodes/status"], [*READ, "create", "patch", "update"]),
                _rule(["coordination.k8s.io"], ["leases"], [*READ, "create", "patch", "update"]),
            ],
        ),
        _binding("emulated:node", "system:node", NODE_GROUP),
    ]


def bootstrap_policy() -> list[JSON]:
    """Default ClusterRoles, ClusterRoleBindings and Roles (new objects each call)."""
    view_core = ["pods", "pods/log", "pods/status", "configmaps", "endpoints", "persistentvolumeclaims",
                 "persistentvolumeclaims/status", "services", "services/status", "serviceaccounts", "events",
                 "namespaces", "namespaces/status", "limitranges", "resourcequotas", "resourcequotas/status",
                 "replicationcontrollers", "replicationcontrollers/status", "bindings"]  # fmt: skip
    edit_core = ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "configmaps", "events",
                 "persistentvolumeclaims", "replicationcontrollers", "services", "services/proxy", "secrets",
                 "serviceaccounts", "endpoints"]  # fmt: skip
    discovery = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                 "/version", "/version/"]  # fmt: skip
    public = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    objects = [
        _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _binding("cluster-admin", "cluster-admin", "system:masters"),
        _role("system:discovery", [{"nonResourceURLs": discovery, "verbs": ["get"]}]),
        _binding("system:discovery", "system:discovery", "system:authenticated"),
        _role("system:public-info-viewer", [{"nonResourceURLs": public, "verbs": ["get"]}]),
        _binding(
            "system:public-info-viewer", "system:public-info-viewer", "system:authenticated", "system:unauthenticated"
        ),
        _role(
            "system:basic-user",
            [
                _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
                _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        _binding("system:basic-user", "system:basic-user", "system:authenticated"),
        _role(
            "system:auth-delegator",
            [
                _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
                _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
            ],
        ),
        _role("admin", [], aggregate="admin"),
        _role("edit", [], {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}, aggregate="edit"),
        _role("view", [], {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}, aggregate="view"),
        _role(
            "system:aggregate-to-admin",
            [
                _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
                _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [*READ, *WRITE]),
            ],
            {"rbac.authorization.k8s.io/aggregate-to-admin": "true"},
        ),
        _role(
            "system:aggregate-to-edit",
            [
                _rule([""], ["pods/eviction"], ["create"]),
                _rule([""], edit_core, WRITE),
                _rule([""], ["secrets"], READ),
                _rule([""], ["serviceaccounts"], ["impersonate"]),
                _rule([""], ["serviceaccounts/token"], ["create"]),
                _rule(["coordination.k8s.io"], ["leases"], [*READ, *WRITE]),
            ],
            {"rbac.authorization.k8s.io/aggregate-to-edit": "true"},
        ),
        _role(
            "system:aggregate-to-view",
            [_rule([""], view_core, READ), _rule(["events.k8s.io"], ["events"], READ)],
            {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
        ),
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": _meta("extension-apiserver-authentication-reader", namespace="kube-system"),
            "rules": [_rule([""], ["configmaps"], READ, ["extension-apiserver-authentication"])],
        },
        *node_policy(),
    ]
    return objects
