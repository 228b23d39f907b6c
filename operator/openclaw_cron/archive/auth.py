"""Who is asking, and may they: the archive API behind the Kubernetes aggregation layer.

Identity comes ONLY from the kube-apiserver's front-proxy: a TLS client certificate signed by
the requestheader client CA and with a CN in the allowed names, both published in ConfigMap
`kube-system/extension-apiserver-authentication`. Only on such a connection are the
X-Remote-User/-Group/-Extra-* headers (names also from that ConfigMap) believed; a bare header
is worth nothing. Certificates from other CAs are refused by the TLS handshake itself (Python's
ssl verifies any certificate a client offers against the loaded CA). Authorization is asked of
the API server with a SubjectAccessReview on group `archive.cron.openclaw.io`, resource `runs`
(subresource `log` for logs), so RBAC decides per namespace exactly as for any built-in resource.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

logger = logging.getLogger(__name__)

GROUP = "archive.cron.openclaw.io"
VERSION = "v1alpha1"
RESOURCE = "runs"
AUTH_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")


class ApiRequester(Protocol):
    """The operator's API client (`kube.Kube`): one JSON request, raising on an error answer."""

    async def request(self, method: str, path: str, *, operation: str, body: Any = None) -> Any: ...


@dataclass
class FrontProxy:
    """The requestheader settings of `extension-apiserver-authentication`."""

    client_ca: str = ""  # PEM bundle; empty: the cluster has no front-proxy configured
    allowed_names: list[str] = field(default_factory=list)  # empty: any CN the CA signed
    username_headers: list[str] = field(default_factory=lambda: ["X-Remote-User"])
    group_headers: list[str] = field(default_factory=lambda: ["X-Remote-Group"])
    extra_prefixes: list[str] = field(default_factory=lambda: ["X-Remote-Extra-"])
    uid_headers: list[str] = field(default_factory=list)

    @classmethod
    def from_configmap(cls, data: Mapping[str, str]) -> FrontProxy:
        def names(key: str, default: list[str]) -> list[str]:
            import json

            raw = data.get(key)
            if not raw:
                return default
            value = json.loads(raw)
            return [str(v) for v in value] if isinstance(value, list) else default

        return cls(
            client_ca=data.get("requestheader-client-ca-file", ""),
            allowed_names=names("requestheader-allowed-names", []),
            username_headers=names("requestheader-username-headers", ["X-Remote-User"]),
            group_headers=names("requestheader-group-headers", ["X-Remote-Group"]),
            extra_prefixes=names("requestheader-extra-headers-prefix", ["X-Remote-Extra-"]),
            uid_headers=names("requestheader-uid-headers", []),
        )


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    uid: str = ""


class Unauthenticated(Exception):
    """No trustworthy identity on this request (401)."""


def _common_name(peercert: Mapping[str, Any] | None) -> str | None:
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def front_proxy_cn(peercert: Mapping[str, Any] | None, proxy: FrontProxy) -> str:
    """The verified front-proxy CN of a connection, or Unauthenticated."""
    if not peercert:
        raise Unauthenticated("no client certificate: requests must come through the Kubernetes API server")
    cn = _common_name(peercert)
    if cn is None:
        raise Unauthenticated("the client certificate has no common name")
    if proxy.allowed_names and cn not in proxy.allowed_names:
        raise Unauthenticated(f"the client certificate's common name {cn!r} is not an allowed front-proxy name")
    return cn


def user_from_headers(headers: Mapping[str, str] | Any, proxy: FrontProxy) -> User | None:
    """The user the front-proxy vouches for; None when it sent none (its own discovery checks)."""
    name = next((headers.get(h) for h in proxy.username_headers if headers.get(h)), None)
    if not name:
        return None
    groups: list[str] = []
    for header in proxy.group_headers:
        values = headers.getall(header, []) if hasattr(headers, "getall") else [headers.get(header) or ""]
        groups.extend(str(v) for v in values)
    extra: dict[str, list[str]] = {}
    for key in headers:
        for prefix in proxy.extra_prefixes:
            if key.lower().startswith(prefix.lower()) and len(key) > len(prefix):
                values = headers.getall(key, []) if hasattr(headers, "getall") else [headers[key]]
                extra.setdefault(unquote(key[len(prefix) :]).lower(), []).extend(values)
    uid = next((headers.get(h) for h in proxy.uid_headers if headers.get(h)), "")
    return User(
        name=str(name),
        groups=tuple(g for g in groups if g),
        extra=tuple(sorted((k, tuple(v)) for k, v in extra.items())),
        uid=str(uid or ""),
    )


def server_ssl_context(cert_file: str, key_file: str, proxy: FrontProxy) -> ssl.SSLContext:
    """TLS with an optional client certificate that, when offered, must chain to the front-proxy CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    if proxy.client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cadata=proxy.client_ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE  # no front-proxy CA: no client is ever authenticated
    return ctx


@dataclass
class Authorizer:
    """SubjectAccessReviews, with decisions cached for `ttl` seconds (as the webhook authorizer does)."""

    api: ApiRequester
    ttl: float = 10.0
    _cache: dict[tuple[Any, ...], tuple[float, bool, str]] = field(default_factory=dict)

    async def allowed(
        self,
        user: User,
        verb: str,
        namespace: str | None,
        subresource: str = "",
        name: str = "",
        *,
        group: str = GROUP,
        version: str = VERSION,
        resource: str = RESOURCE,
    ) -> tuple[bool, str]:
        """(allowed, reason) for `verb` on runs[/subresource] in `namespace` (None: all namespaces).

        `group`/`version`/`resource` name another resource (the console asks for core Events too).
        """
        key = (user, verb, namespace or "", subresource, name, group, resource)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        attributes: dict[str, Any] = {"group": group, "version": version, "resource": resource, "verb": verb}
        if namespace:
            attributes["namespace"] = namespace
        if subresource:
            attributes["subresource"] = subresource
        if name:
            attributes["name"] = name
        spec: dict[str, Any] = {"resourceAttributes": attributes, "user": user.name, "groups": list(user.groups)}
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        if user.uid:
            spec["uid"] = user.uid
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = await self.api.request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            operation="subjectaccessreviews.create",
            body=body,
        )
        status = (answer or {}).get("status") or {}
        decision = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or "")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, decision, reason)
        return decision, reason


async def load_front_proxy(api: ApiRequester) -> FrontProxy:
    """Read `kube-system/extension-apiserver-authentication` (the Role `extension-apiserver-authentication-reader`)."""
    ns, name = AUTH_CONFIGMAP
    cm = await api.request("GET", f"/api/v1/namespaces/{ns}/configmaps/{name}", operation="configmaps.get")
    return FrontProxy.from_configmap((cm or {}).get("data") or {})
