"""RBAC the way kube-apiserver's RBAC authorizer evaluates it, for SubjectAccessReviews.

Follows k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac: ClusterRoleBindings apply everywhere,
RoleBindings only to requests in their namespace (roleRef a Role there or a ClusterRole);
subjects are User, Group or ServiceAccount (`system:serviceaccount:<ns>:<name>`); a rule matches
on verbs, apiGroups, resources (`*`, `resource/subresource`, `*/subresource`) and resourceNames,
or on nonResourceURLs (`*` suffix) for non-resource requests. Aggregated ClusterRoles take the
rules of every ClusterRole their `clusterRoleSelectors` select (what the aggregation controller
writes into `rules`). RBAC only allows: no rule means "no opinion", and the review says denied.
Before RBAC, as in kube-apiserver's authorizer chain, members of `system:masters` are allowed
everything. `bootstrap_roles()` are the default roles and bindings a cluster starts with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def _subject_matches(subject: JSON, user: str, groups: Iterable[str], binding_ns: str | None) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user == name)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns or ""
        return bool(user == f"system:serviceaccount:{ns}:{name}")
    return False


@dataclass
class _Grant:
    """Rules one binding gives a subject, and the words of the reason an allow gives."""

    rules: list[JSON]
    reason: str


class Authorizer:
    """The RBAC authorizer over a lister of stored objects, behind the system:masters authorizer.

    Per (user, groups, namespace) the bound rules are resolved once and kept until an RBAC
    object changes (`invalidate()`; the emulator calls it on every RBAC write), so a request
    costs a scan of that subject's rules, not of every role and binding in the cluster.
    """

    def __init__(self, list_objects: Lister) -> None:
        self.list_objects = list_objects
        self._grants: dict[tuple[str, tuple[str, ...], str | None], list[_Grant]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._grants.clear()

    def _resolve(self, user: str, groups: tuple[str, ...], namespace: str | None) -> list[_Grant]:
        cluster_roles = self.list_objects(RBAC, "clusterroles", None)
        by_name = {r["metadata"]["name"]: r for r in cluster_roles}
        grants: list[_Grant] = []
        bindings = [("ClusterRoleBinding", b, None) for b in self.list_objects(RBAC, "clusterrolebindings", None)]
        if namespace:
            bindings += [("RoleBinding", b, namespace) for b in self.list_objects(RBAC, "rolebindings", namespace)]
        for kind, binding, ns in bindings:
            subject = next((s for s in binding.get("subjects") or [] if _subject_matches(s, user, groups, ns)), None)
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            rules: list[JSON] = []
            if ref.get("kind") == "ClusterRole":
                role = by_name.get(ref.get("name", ""))
                rules = cluster_role_rules(role, cluster_roles) if role else []
            elif ref.get("kind") == "Role" and ns:
                roles = [r for r in self.list_objects(RBAC, "roles", ns) if r["metadata"]["name"] == ref.get("name")]
                rules = list(roles[0].get("rules") or []) if roles else []
            where = f' in namespace "{ns}"' if ns else ""
            reason = (
                f'RBAC: allowed by {kind} "{binding["metadata"]["name"]}/{ns or ""}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {subject.get("kind")} "{subject.get("name")}"{where}'
            )
            grants.append(_Grant(rules, reason))
        return grants

    def authorize(self, user: str, groups: Iterable[str], attrs: JSON) -> tuple[bool, str]:
        """(allowed, reason) for request attributes (verb, group, resource, subresource, namespace,
        name; or verb and path for a non-resource URL)."""
        groups = tuple(groups)
        if "system:masters" in groups:
            return True, ""
        namespace = None if "path" in attrs else (attrs.get("namespace") or None)
        key = (user, groups, namespace)
        with self._lock:
            grants = self._grants.get(key)
        if grants is None:
            grants = self._resolve(user, groups, namespace)
            with self._lock:
                self._grants[key] = grants
        for grant in grants:
            if any(rule_allows(rule, attrs) for rule in grant.rules):
                return True, grant.reason
        return False, ""

    def review(self, sar: JSON) -> JSON:
        """The SubjectAccessReview `sar` with its `status` filled in as the authorizer decides."""
        spec = sar.get("spec") or {}
        if "resourceAttributes" in spec:
            attrs = dict(spec["resourceAttributes"])
        else:
            attrs = dict(spec.get("nonResourceAttributes") or {})
            attrs.setdefault("path", "")
        allowed, reason = self.authorize(spec.get("user", ""), spec.get("groups") or [], attrs)
        answer = dict(sar)
        answer.setdefault("apiVersion", "authorization.k8s.io/v1")
        answer.setdefault("kind", "SubjectAccessReview")
        answer.setdefault("metadata", {})
        answer["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
        return answer


def review(sar: JSON, list_objects: Lister) -> JSON:
    """The SubjectAccessReview `sar` with its `status` filled in as RBAC decides (uncached)."""
    return Authorizer(list_objects).review(sar)


def forbidden_message(user: str, attrs: JSON) -> str:
    """kube-apiserver's words for a denial (responsewriters.forbiddenMessage + apierrors.NewForbidden)."""
    verb = attrs.get("verb", "")
    if "path" in attrs:
        return f'forbidden: User "{user}" cannot {verb} path "{attrs["path"]}"'
    resource, group, name = attrs.get("resource", ""), attrs.get("group", ""), attrs.get("name", "")
    shown = f"{resource}/{attrs['subresource']}" if attrs.get("subresource") else resource
    namespace = attrs.get("namespace") or ""
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    detail = f'User "{user}" cannot {verb} resource "{shown}" in API group "{group}" {scope}'
    qualified = f"{resource}.{group}" if group else resource
    return f'{qualified} "{name}" is forbidden: {detail}' if name else f"{qualified} is forbidden: {detail}"


def forbidden_status(user: str, attrs: JSON) -> JSON:
    """The 403 Status body, details as apierrors.NewForbidden fills them."""
    details: JSON = {}
    if "path" not in attrs:
        details = {
            k: v
            for k, v in (("name", attrs.get("name")), ("group", attrs.get("group")), ("kind", attrs.get("resource")))
            if v
        }
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_message(user, attrs),
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }
