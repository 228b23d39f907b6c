"""Who is asking: kube-apiserver's authentication and impersonation, for the emulated API server.

As kube-apiserver's union authenticator: a client certificate verified against the cluster's
client CA (the TLS layer checked the chain; the user is its CN, the groups its O values), else
a bearer token from the emulator's registry (static tokens for named users, ServiceAccount
tokens `system:serviceaccount:NS:NAME` in `system:serviceaccounts` and
`system:serviceaccounts:NS`). Everyone authenticated is also in `system:authenticated`. No
credentials, or a token nobody issued (or one revoked since), is a 401 with the real Status
body; anonymous requests (`--anonymous-auth`) are off, as in most managed clusters.

Impersonation (`Impersonate-User`, `Impersonate-Group`, `kubectl --as/--as-group`) is honoured
when the caller may `impersonate` the user (or the ServiceAccount) and each group; the
authorizer is asked, so system:masters or an RBAC rule with the verb `impersonate` decides.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"
SA_PREFIX = "system:serviceaccount:"

UNAUTHORIZED: dict[str, Any] = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@dataclass(frozen=True)
class Identity:
    """An authenticated user as the API server's `user.Info` (name, groups)."""

    user: str
    groups: tuple[str, ...] = ()
    #: How it was authenticated: "x509", "token", "anonymous", or "impersonated:<by user>".
    via: str = field(default="", compare=False)
    #: Which credential (as audit's authentication.kubernetes.io/credential-id): a token's digest, a serial.
    credential: str = field(default="", compare=False)

    @classmethod
    def of(cls, user: str, groups: tuple[str, ...] | list[str] = (), via: str = "", credential: str = "") -> Identity:
        """`groups` plus what the API server adds (system:authenticated; a ServiceAccount's groups)."""
        extra: list[str] = []
        if user.startswith(SA_PREFIX):
            namespace = user.removeprefix(SA_PREFIX).partition(":")[0]
            extra = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        if user != ANONYMOUS:
            extra.append(AUTHENTICATED)
        merged = list(dict.fromkeys([*groups, *extra]))
        return cls(user, tuple(merged), via, credential)

    @property
    def masters(self) -> bool:
        return MASTERS in self.groups


def credential_id(token: str) -> str:
    """How a token is named in records: a digest, never the token itself."""
    return "token-sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


class TokenRegistry:
    """Bearer tokens the API server accepts (thread-safe: tests issue and revoke from their thread)."""

    def __init__(self) -> None:
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def issue(self, user: str, groups: tuple[str, ...] | list[str] = (), token: str | None = None) -> str:
        """A new token for `user` (the static token file's line, or a minted ServiceAccount token)."""
        token = token or secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = Identity.of(user, tuple(groups), "token", credential_id(token))
        return token

    def service_account(self, namespace: str, name: str) -> str:
        return self.issue(service_account_user(namespace, name))

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def lookup(self, token: str) -> Identity | None:
        with self._lock:
            return self._tokens.get(token)


def certificate_identity(peercert: Mapping[str, Any] | None) -> Identity | None:
    """CN → user, every O → a group, from the verified certificate `ssl` returns (getpeercert())."""
    if not peercert:
        return None
    cn, orgs = "", []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    serial = f"x509-serial:{peercert.get('serialNumber', '')}"
    return Identity.of(cn, tuple(orgs), "x509", serial) if cn else None


def bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token of an Authorization header; "" for another scheme, None for none."""
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(
    headers: Mapping[str, str],
    peercert: Mapping[str, Any] | None,
    tokens: TokenRegistry,
    *,
    anonymous: bool = False,
) -> Identity | None:
    """The request's user, or None for a 401 (kube-apiserver's union: x509 first, then tokens)."""
    identity = certificate_identity(peercert)
    if identity is not None:
        return identity
    token = bearer(headers)
    if token:
        return tokens.lookup(token)
    if token is None and anonymous:
        return Identity(ANONYMOUS, (UNAUTHENTICATED,), "anonymous")
    return None


@dataclass(frozen=True)
class Impersonation:
    """What `Impersonate-*` headers ask for."""

    user: str
    groups: tuple[str, ...]

    @classmethod
    def of(cls, headers: Any) -> Impersonation | None:
        """From the request headers (a multidict: one Impersonate-Group header per group)."""
        getall = getattr(headers, "getall", None)
        user = headers.get("Impersonate-User")
        groups: list[str] = list(getall("Impersonate-Group", [])) if getall else []
        if not groups and headers.get("Impersonate-Group"):
            groups = [headers["Impersonate-Group"]]
        if not user and not groups:
            return None
        return cls(user or "", tuple(groups))


#: (identity, attributes) -> (allowed, reason): the authorizer impersonation asks.
Authorize = Callable[[Identity, dict[str, Any]], tuple[bool, str]]


def impersonate(
    caller: Identity, wanted: Impersonation, authorize: Authorize
) -> tuple[Identity | None, dict[str, Any]]:
    """The impersonated identity, or None and the attributes that were denied (for the 403)."""
    checks: list[dict[str, Any]] = []
    if wanted.user.startswith(SA_PREFIX):
        namespace, _, name = wanted.user.removeprefix(SA_PREFIX).partition(":")
        checks.append(
            {"verb": "impersonate", "group": "", "resource": "serviceaccounts", "namespace": namespace, "name": name}
        )
    else:
        checks.append({"verb": "impersonate", "group": "", "resource": "users", "name": wanted.user})
    checks += [{"verb": "impersonate", "group": "", "resource": "groups", "name": g} for g in wanted.groups]
    for attrs in checks:
        allowed, _ = authorize(caller, attrs)
        if not allowed:
            return None, attrs
    return Identity.of(wanted.user, wanted.groups, f"impersonated:{caller.user}", caller.credential), {}
