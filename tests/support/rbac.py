"""RBAC the way kube-apiserver's RBAC authorizer evaluates it, for SubjectAccessReviews.

Follows k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac: ClusterRoleBindings apply everywhere,
RoleBindings only to requests in their namespace (roleRef a Role there or a ClusterRole);
subjects are User, Group or ServiceAccount (`system:serviceaccount:<ns>:<name>`); a rule matches
on verbs, apiGroups, resources (`*`, `resource/subresource`, `*/subresource`) and resourceNames,
or on nonResourceURLs (`*` suffix) for non-resource requests. Aggregated ClusterRoles take the
rules of every ClusterRole their `clusterRoleSelectors` select (what the aggregation controller
writes into `rules`). RBAC only allows: no rule means "no opinion", and the review says denied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

JSON = dict[str, Any]
#: (apiVersion, plural, namespace or None for all) -> objects
Lister = Callable[[str, str, str | None], list[JSON]]
RBAC = "rbac.authorization.k8s.io/v1"


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _selects(selector: JSON, labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def cluster_role_rules(role: JSON, cluster_roles: list[JSON], seen: frozenset[str] = frozenset()) -> list[JSON]:
    """A ClusterRole's rules, aggregated ones included."""
    rules = list(role.get("rules") or [])
    aggregation = role.get("aggregationRule") or {}
    name = role["metadata"]["name"]
    for selector in aggregation.get("clusterRoleSelectors") or []:
        for other in cluster_roles:
            other_name = other["metadata"]["name"]
            if other_name == name or other_name in seen:
                continue
            if _selects(selector, other["metadata"].get("labels") or {}):
                rules.extend(cluster_role_rules(other, cluster_roles, seen | {name}))
    return rules


def rule_allows(rule: JSON, attrs: JSON) -> bool:
    verb = attrs.get("verb", "")
    if not _has(rule.get("verbs"), verb):
        return False
    if "path" in attrs:  # a non-resource request
        for url in rule.get("nonResourceURLs") or []:
            if url == attrs["path"] or url == "*" or (url.endswith("*") and attrs["path"].startswith(url[:-1])):
                return True
        return False
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    if not _has(rule.get("apiGroups"), attrs.get("group", "")):
        return False
    resource, sub = attrs.get("resource", ""), attrs.get("subresource", "")
    combined = f"{resource}/{sub}" if sub else resource
    resource_ok = False
    for r in rule.get("resources") or []:
        if r in ("*", combined) or (sub and r == f"*/{sub}"):
            resource_ok = True
            break
    if not resource_ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.get("name", "") in names


def _subject_matches(subject: JSON, user: str, groups: list[str], binding_ns: str | None) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user == name)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns or ""
        return bool(user == f"system:serviceaccount:{ns}:{name}")
    return False


def review(sar: JSON, list_objects: Lister) -> JSON:
    """The SubjectAccessReview `sar` with its `status` filled in as RBAC decides."""
    spec = sar.get("spec") or {}
    user, groups = spec.get("user", ""), list(spec.get("groups") or [])
    if "resourceAttributes" in spec:
        attrs = dict(spec["resourceAttributes"])
    else:
        attrs = dict(spec.get("nonResourceAttributes") or {})
        attrs.setdefault("path", "")
    namespace = attrs.get("namespace") or None
    cluster_roles = list_objects(RBAC, "clusterroles", None)
    by_name = {r["metadata"]["name"]: r for r in cluster_roles}

    def rules_of(ref: JSON, binding_ns: str | None) -> list[JSON]:
        if ref.get("kind") == "ClusterRole":
            role = by_name.get(ref.get("name", ""))
            return cluster_role_rules(role, cluster_roles) if role else []
        if ref.get("kind") == "Role" and binding_ns:
            roles = [r for r in list_objects(RBAC, "roles", binding_ns) if r["metadata"]["name"] == ref.get("name")]
            return list(roles[0].get("rules") or []) if roles else []
        return []

    bindings = [("ClusterRoleBinding", b, None) for b in list_objects(RBAC, "clusterrolebindings", None)]
    if namespace and "path" not in attrs:
        bindings += [("RoleBinding", b, namespace) for b in list_objects(RBAC, "rolebindings", namespace)]
    allowed, reason = False, ""
    for kind, binding, ns in bindings:
        subjects = binding.get("subjects") or []
        subject = next((s for s in subjects if _subject_matches(s, user, groups, ns)), None)
        if subject is None:
            continue
        ref = binding.get("roleRef") or {}
        if any(rule_allows(rule, attrs) for rule in rules_of(ref, ns)):
            where = f' in namespace "{ns}"' if ns else ""
            allowed = True
            reason = (
                f'RBAC: allowed by {kind} "{binding["metadata"]["name"]}/{ns or ""}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {subject.get("kind")} "{subject.get("name")}"{where}'
            )
            break
    answer = dict(sar)
    answer.setdefault("apiVersion", "authorization.k8s.io/v1")
    answer.setdefault("kind", "SubjectAccessReview")
    answer.setdefault("metadata", {})
    answer["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
    return answer
