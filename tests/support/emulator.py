"""An emulated kube-apiserver: kmock's `KubernetesEmulator`, made faithful where we rely on it.

kmock gives us the HTTP server, request recording, its reaction DSL (used here for fault
injection: user reactions win over the emulation) and the `objects` store with history.
kmock's emulation itself is a dict-merging store; an operator tested against that would
pass tests a real cluster fails. So this subclass replaces the object semantics with the
API server's: uid/creationTimestamp/resourceVersion/generation, the status subresource,
AlreadyExists/NotFound/Conflict/Invalid Status bodies, generateName, label and field
selectors, finalizers and deletionTimestamp, owner garbage collection, graceful Pod
deletion, namespaces (and their termination), CRDs that become served resources (with
pruning and OpenAPI validation, not CEL), merge/strategic/JSON/apply patches, no-op
writes that do not bump resourceVersion, resumable watches (410 when too old), and the
server-side Tables `kubectl get` prints. Gaps are listed in tests/support/__init__.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering

from . import authn, rbac
from .apimachinery import (
    JSON,
    ApiError,
    JsonPatchTestFailed,
    already_exists,
    apply_defaults,
    bad_request,
    builtin_table,
    conflict,
    crd_table,
    decode_protobuf,
    invalid,
    json_patch,
    label_problems,
    merge_patch,
    not_found,
    parse_field_selector,
    parse_label_selector,
    prune,
    rfc3339,
    strategic_merge_patch,
    table,
    validate,
)
from .costs import CostModel, Pacer, PriorityLevels, Quantizer, Seats
from .faults import FaultPlan
from .policy import bootstrap_policy

logger = logging.getLogger(__name__)

#: Where the authenticated identity is kept on a request (for the aggregation layer, SelfSubjectReview).
IDENTITY = aiohttp.web.RequestKey("identity", authn.Identity)
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet
SERVER_VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-emulated",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-08-27T00:00:00Z",
    "goVersion": "go1.24.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass
class ResourceType:
    """One served group/version/resource, as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    printer_columns: list[JSON] | None = None
    schema: JSON | None = None
    generation: bool = False
    custom: bool = False
    #: storage (group, version, plural); events.k8s.io/v1 events live in core/v1 events.
    storage: tuple[str, str, str] | None = None
    to_storage: Callable[[JSON], JSON] | None = None
    from_storage: Callable[[JSON], JSON] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_alias(self) -> bool:
        """Served from another resource's storage (events.k8s.io events, non-storage CRD versions)."""
        return self.storage is not None and self.storage != (self.group, self.version, self.plural)

    @property
    def key(self) -> kmock.resource:
        group, version, plural = self.storage or (self.group, self.version, self.plural)
        return kmock.resource(group, version, plural)

    def discovery(self) -> list[JSON]:
        main: JSON = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(ALL_VERBS),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        subs = []
        for sub in self.subresources:
            verbs = ["get", "patch", "update"] if sub in ("status", "finalize") else ["get"]
            if sub in ("eviction", "binding"):
                verbs = ["create"]
            subs.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": {"eviction": "Eviction", "binding": "Binding"}.get(sub, self.kind),
                    "verbs": verbs,
                }
            )
        return [main, *subs]


def _event_to_core(v1: JSON) -> JSON:
    """events.k8s.io/v1 → core/v1 (the API server stores one and converts)."""
    core = {k: v for k, v in v1.items() if k in ("metadata", "reason", "type", "action", "eventTime", "related")}
    core["apiVersion"], core["kind"] = "v1", "Event"
    core["involvedObject"] = v1.get("regarding", {})
    core["message"] = v1.get("note", "")
    core["reportingComponent"] = v1.get("reportingController", "")
    core["reportingInstance"] = v1.get("reportingInstance", "")
    core["source"] = {"component": v1.get("reportingController", ""), "host": v1.get("reportingInstance", "")}
    for old, new in (
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ):
        if new in v1:
            core[old] = v1[new]
    if "series" in v1:
        core["series"] = {"count": v1["series"].get("count"), "lastObservedTime": v1["series"].get("lastObservedTime")}
    return core


def _event_from_core(core: JSON) -> JSON:
    v1 = {k: v for k, v in core.items() if k in ("metadata", "reason", "type", "action", "eventTime", "related")}
    v1["apiVersion"], v1["kind"] = "events.k8s.io/v1", "Event"
    v1["regarding"] = core.get("involvedObject", {})
    v1["note"] = core.get("message", "")
    v1["reportingController"] = core.get("reportingComponent") or core.get("source", {}).get("component", "")
    v1["reportingInstance"] = core.get("reportingInstance") or core.get("source", {}).get("host", "")
    for old, new in (
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ):
        if old in core:
            v1[new] = core[old]
    return v1


BUILTIN_TYPES = [
    ResourceType(
        "", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status", "finalize")
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "eviction", "binding"),
        generation=True,
    ),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",), subresources=("status",)
    ),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType("", "v1", "services", "Service", short_names=("svc",), categories=("all",), subresources=("status",)),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        short_names=("ev",),
        storage=("", "v1", "events"),
        to_storage=_event_to_core,
        from_storage=_event_from_core,
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    # Not stored: a create is answered by evaluating the RBAC objects above (tests/support/rbac.py).
    ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False),
    # Not stored: answers who the caller is (`kubectl auth whoami`).
    ResourceType("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        generation=True,
    ),
]

KOPF_PEERING_CRDS: list[JSON] = [
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    for kind, plural, scope in (
        ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        ("KopfPeering", "kopfpeerings", "Namespaced"),
    )
]


@dataclass
class ApiCall:
    """One API request as an audit log would record it (verb as in RBAC)."""

    when: float
    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str | None
    name: str | None
    user_agent: str
    code: int = 0
    #: The authenticated user (after impersonation); "" when the request was not authenticated.
    user: str = ""
    #: Which credential authenticated it (authn.credential_id: a token's digest, a certificate's serial).
    credential: str = ""
    #: A refusal the test announced (`Cluster.expect_rejections()`); the harness's guard skips it.
    expected: bool = False


@dataclass
class Fault:
    """Make matching requests fail (or stall) `times` times; see `EmulatedApiServer.inject`."""

    verb: str | None = None  # RBAC verb: create, patch, update, delete, get, list, watch
    resource: str | None = None  # plural or plural/subresource
    namespace: str | None = None
    name_prefix: str | None = None
    code: int = 500
    reason: str = "InternalError"
    message: str = "Internal error occurred: injected fault"
    times: int = 1
    delay: float = 0.0
    hits: int = 0

    def matches(self, call: ApiCall) -> bool:
        return (
            self.times > 0
            and (self.verb is None or self.verb == call.verb)
            and (self.resource is None or self.resource == call.resource)
            and (self.namespace is None or self.namespace == call.namespace)
            and (self.name_prefix is None or (call.name or "").startswith(self.name_prefix))
        )


@dataclass
class _Change:
    rv: int
    key: kmock.resource
    type: str
    obj: JSON
    old: JSON | None


@dataclass
class _Path:
    group: str | None = None
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_api_path(path: str) -> _Path:
    """/api/v1/namespaces/x is the namespace x (kmock's parser takes it for a namespace scope)."""
    parts = [p for p in path.strip("/").split("/") if p]
    result = _Path()
    if len(parts) >= 2 and parts[0] == "api":
        result.group, result.version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        result.group, result.version, rest = parts[1], parts[2], parts[3:]
    else:
        return result
    if len(rest) == 3 and rest[0] == "namespaces" and rest[2] in ("status", "finalize"):
        result.plural, result.name, result.subresource = rest
        return result
    if len(rest) >= 3 and rest[0] == "namespaces":
        result.namespace, rest = rest[1], rest[2:]
    if rest:
        result.plural = rest[0]
        result.name = rest[1] if len(rest) > 1 else None
        result.subresource = "/".join(rest[2:]) or None
    return result


def _rbac_verb(method: str, path: _Path, params: dict[str, str]) -> str:
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if path.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if path.name else "deletecollection"
    return method.lower()


def request_attributes(method: str, raw_path: str, path: _Path, params: dict[str, str], verb: str) -> JSON:
    """What the authorizer is asked, as kube-apiserver's RequestInfoFactory derives it.

    Discovery (/api, /apis/g/v), /version, /openapi, /healthz are non-resource URLs with the
    HTTP method as verb; `/api/v1/namespaces/x` is the namespace x *in* namespace x; a list or
    watch with `fieldSelector=metadata.name=n` is about the object n.
    """
    if path.plural is None:
        return {"verb": method.lower(), "path": raw_path}
    attrs: JSON = {"verb": verb, "group": path.group or "", "resource": path.plural}
    if path.subresource:
        attrs["subresource"] = path.subresource.split("/")[0]
    namespace = path.namespace
    if path.group == "" and path.plural == "namespaces" and path.name:
        namespace = path.name
    if namespace:
        attrs["namespace"] = namespace
    name = path.name
    if name is None and verb in ("list", "watch"):
        for term in (params.get("fieldSelector") or "").split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name":
                name = value.removeprefix("=").strip()
    if name:
        attrs["name"] = name
    return attrs


@attrs.define(kw_only=True)
class EmulatedApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with kube-apiserver semantics; serve it with `kmock.Server(emulator)`."""

    #: Versions kept per object in `objects[...].history` (None: all; bounds memory in benchmarks).
    history_limit: int | None = 50
    #: Watch events kept for resuming watches; older resourceVersions get 410 Gone.
    watch_cache_size: int = 100_000
    #: Keep every request in kmock's request log (`emulator.requests`); off for long benchmarks.
    record_requests: bool = True
    #: Serves `pods/log`: (namespace, name, container) → text or None; the kubelet provides it.
    log_provider: Callable[[str, str, str | None], str | None] | None = None
    #: Seeded faults (tests/support/faults.py) applied to every request after `faults`.
    fault_plan: FaultPlan | None = None
    #: API groups served by extension servers through the aggregation layer (aggregator.py): group → Aggregated.
    aggregated: dict[str, Any] = attrs.field(factory=dict)
    #: Bearer tokens the server accepts (authn.py); client certificates are checked by the listener's TLS.
    tokens: authn.TokenRegistry = attrs.field(factory=authn.TokenRegistry)
    #: kube-apiserver's --anonymous-auth: requests without credentials become system:anonymous (off: 401).
    anonymous: bool = False
    #: Authorize every request against the stored RBAC objects (system:masters bypasses, as in a cluster).
    authorization: bool = True
    #: What a real server charges per request (costs.py): off by default (tests); the bench turns it on.
    costs: CostModel = attrs.field(factory=CostModel.off)

    calls: list[ApiCall] = attrs.field(factory=list, init=False)
    #: Requests refused by authentication (401) or authorization (403), discovery included.
    rejected: list[ApiCall] = attrs.field(factory=list, init=False)
    authorizer: rbac.Authorizer = attrs.field(init=False)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    #: The seats of `costs`: the cores (in use, peak, queued: what the cost model did) and the
    #: priority levels' (API Priority and Fairness) that admit requests to them.
    seats: Seats = attrs.field(init=False)
    levels: PriorityLevels = attrs.field(init=False)
    #: Turns `costs` service times into sleeps; `service.total` is the time charged so far.
    service: Quantizer = attrs.field(factory=Quantizer, init=False)
    #: Seconds charged to watch streams for the events they sent (`costs.watch_event` each).
    watch_charged: float = attrs.field(default=0.0, init=False)
    _types: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict, init=False)
    _rv: int = attrs.field(default=1, init=False)
    _log: list[_Change] = attrs.field(factory=list, init=False)
    _changed: asyncio.Event | None = attrs.field(default=None, init=False)
    _open: asyncio.Event | None = attrs.field(default=None, init=False)
    _paused: bool = attrs.field(default=False, init=False)
    _watch_epoch: int = attrs.field(default=0, init=False)
    _uids: dict[str, tuple[kmock.resource, str | None, str]] = attrs.field(factory=dict, init=False)
    #: Every uid ever named in an ownerReference (a superset: deleting others skips the GC scan).
    _owners: set[str] = attrs.field(factory=set, init=False)
    _tasks: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.authorizer = rbac.Authorizer(self.list_objects)
        self.seats = Seats(self.costs.seats)
        self.levels = PriorityLevels(self.costs.server_concurrency)
        for rt in BUILTIN_TYPES:
            self._types[rt.group, rt.version, rt.plural] = rt
        now = rfc3339()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._bootstrap(
                self._type("", "v1", "namespaces"),
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                now,
            )
            self._bootstrap(
                self._type("", "v1", "serviceaccounts"),
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": ns},
                },
                now,
            )
        for obj in bootstrap_policy():
            group, _, version = obj["apiVersion"].rpartition("/")
            plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles"}
            self._bootstrap(self._type(group, version, plural[obj["kind"]]), obj, now)
        for crd in KOPF_PEERING_CRDS:
            self._bootstrap(
                self._type("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
                self._crd_defaults(copy.deepcopy(crd)),
                now,
            )
        self._refresh_crds()

    # --- public, test-facing -----------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> JSON | None:
        """The stored object as the API would return it (for assertions; no HTTP, no call record)."""
        group, _, version = api_version.rpartition("/")
        rt = self._types.get((group, version, plural))
        return None if rt is None else self._read(rt, namespace, name)

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[JSON]:
        group, _, version = api_version.rpartition("/")
        rt = self._types.get((group, version, plural))
        return [] if rt is None else self._list(rt, namespace)

    def create_object(self, api_version: str, plural: str, namespace: str | None, body: JSON) -> JSON:
        """Create an object exactly as a POST would, without HTTP and without a call record.

        Same path as the API (uid, resourceVersion, generation, creationTimestamp, defaults,
        schema pruning and validation, a watch event), so seeding 10,000 objects for a
        benchmark takes seconds instead of minutes of kubectl. Call it on the emulator's loop.
        """
        group, _, version = api_version.rpartition("/")
        return self._create(self._type(group, version, plural), namespace, body)

    def writes(self, user_agent: str | None = None, exclude: tuple[str, ...] = ()) -> Counter[tuple[str, str]]:
        """Successful writes by (verb, resource); only/except some clients (User-Agent prefixes).

        kubectl sends `kubectl/…`, kopf `kopf/…`, the kubelet `simulated-kubelet/…`.
        """
        return Counter(
            (c.verb, c.resource)
            for c in list(self.calls)
            if c.verb in ("create", "update", "patch", "delete", "deletecollection")
            and c.code < 400
            and (user_agent is None or c.user_agent.startswith(user_agent))
            and not any(c.user_agent.startswith(prefix) for prefix in exclude)
        )

    def inject(self, fault: Fault) -> Fault:
        """Fail matching requests; the fault's `hits` counts what it caught."""
        self.faults.append(fault)
        return fault

    def pause(self) -> None:
        """New requests hang until `resume()` (an API outage as clients see it)."""
        self._paused = True
        if self._open is not None:
            self._open.clear()

    def resume(self) -> None:
        self._paused = False
        if self._open is not None:
            self._open.set()

    def disconnect_watches(self) -> None:
        """End every open watch stream cleanly, as an API server restart or LB timeout does."""
        self._watch_epoch += 1
        self._notify()

    # --- HTTP entry --------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock's own parser cannot parse /api/v1/namespaces; parse the path ourselves.
        if self._open is None:
            self._open = asyncio.Event()
            if not self._paused:
                self._open.set()
            self._changed = asyncio.Event()
        await self._open.wait()
        body = await raw_request.read()
        text = body.decode("utf-8", "replace")
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        path = parse_api_path(raw_request.path)
        params = dict(raw_request.query)
        verb = _rbac_verb(raw_request.method, path, params)
        request = rendering.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=params,
            headers=dict(raw_request.headers),
            cookies=dict(raw_request.cookies),
            data=data,
            body=body,
            text=text,
            action=self._kmock_action(verb),
            namespace=path.namespace,
            name=path.name,
            subresource=path.subresource,
            resource=None if path.plural is None else kmock.resource(path.group, path.version, path.plural),
        )
        if self.record_requests:
            self._requests.append(request)
        call = ApiCall(
            when=time.time(),
            verb=verb,
            group=path.group or "",
            resource=f"{path.plural}/{path.subresource}" if path.subresource else (path.plural or raw_request.path),
            namespace=path.namespace,
            name=path.name,
            user_agent=raw_request.headers.get("User-Agent", ""),
        )
        try:
            refused = self._admit(raw_request, path, params, verb, call)
            response = refused if refused is not None else await self._charged(request, path, call)
        except ApiError as e:
            response = aiohttp.web.json_response(e.status(), status=e.code)
        except kmock.KubernetesError as e:
            response = await self._render_error(e)
        except Exception as e:
            logger.exception("emulated API server failed on %s %s", raw_request.method, raw_request.path_qs)
            err = ApiError(500, "InternalError", f"Internal error occurred: {e!r}")
            response = aiohttp.web.json_response(err.status(), status=500)
        call.code = response.status
        if path.plural is not None:
            self.calls.append(call)
        return response

    # --- authentication and authorization (authn.py, rbac.py) ---------------------------

    def _authorize(self, identity: authn.Identity, attrs: JSON) -> tuple[bool, str]:
        if not self.authorization:
            return True, ""
        return self.authorizer.authorize(identity.user, identity.groups, attrs)

    def _admit(
        self, raw: aiohttp.web.BaseRequest, path: _Path, params: dict[str, str], verb: str, call: ApiCall
    ) -> aiohttp.web.StreamResponse | None:
        """Who is asking, and may they: None to serve the request, else the 401/403 answer.

        The identity is kept on the request (`raw[IDENTITY]`) for the aggregation layer.
        """
        transport = raw.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        identity = authn.authenticate(raw.headers, peercert, self.tokens, anonymous=self.anonymous)
        if identity is None:
            token = authn.bearer(raw.headers)
            call.credential = authn.credential_id(token) if token else ""
            call.code = 401
            self.rejected.append(call)
            return aiohttp.web.json_response(authn.UNAUTHORIZED, status=401)
        wanted = authn.Impersonation.of(raw.headers)
        if wanted is not None:
            if not wanted.user:
                raise bad_request("requested impersonation of groups without impersonating a user")
            impersonated, denied = authn.impersonate(identity, wanted, self._authorize)
            if impersonated is None:
                call.user, call.code = identity.user, 403
                self.rejected.append(call)
                return aiohttp.web.json_response(rbac.forbidden_status(identity.user, denied), status=403)
            identity = impersonated
        call.user, call.credential = identity.user, identity.credential
        raw[IDENTITY] = identity
        attrs = request_attributes(raw.method, raw.path, path, params, verb)
        allowed, _ = self._authorize(identity, attrs)
        if not allowed:
            call.code = 403
            self.rejected.append(call)
            return aiohttp.web.json_response(rbac.forbidden_status(identity.user, attrs), status=403)
        return None

    async def _charged(self, request: rendering.Request, path: _Path, call: ApiCall) -> aiohttp.web.StreamResponse:
        """Serve a request as the cost model says (costs.py): admitted by its priority level (fairly
        among users once the level is full), then a seat of the cores (FIFO), held for the verb's
        service time and the answer.
        A watch holds no seat; its events are paced."""
        if call.verb == "watch" or not self.costs.enabled:
            return await self._dispatch(request, path, call)
        async with self.levels.hold(call.user), self.seats.hold():
            busy = self.seats.in_use
            await self._hold(self.costs.service_time(call.verb, busy=busy))
            before = self._rv
            response = await self._dispatch(request, path, call)
            if call.verb == "deletecollection":  # one delete per object removed (each its own commit)
                await self._hold(self.costs.service_time(call.verb, removed=self._rv - before, busy=busy))
        return response

    async def _hold(self, seconds: float) -> None:
        if wait := self.service(seconds):  # whole milliseconds, averaging `seconds` (costs.Quantizer)
            await asyncio.sleep(wait)

    @staticmethod
    def _kmock_action(verb: str) -> kmock.action | None:
        mapping = {
            "get": "FETCH",
            "list": "LIST",
            "watch": "WATCH",
            "create": "CREATE",
            "patch": "UPDATE",
            "update": "UPDATE",
            "delete": "DELETE",
        }
        return kmock.action(mapping[verb]) if verb in mapping else None

    async def _dispatch(self, request: rendering.Request, path: _Path, call: ApiCall) -> aiohttp.web.StreamResponse:
        # 1. Reactions a test declared with kmock's DSL (`emulator['post', ...] << 500`) win.
        user = [p for p in self._payloads if not (p.priorities and p.priorities[0] == -math.inf)]
        user.sort(key=lambda p: tuple(-x for x in p.priorities))
        for payload in user:
            if request in payload._source and not payload._disabled.is_set():
                try:
                    return await payload(request)
                except rendering.ReactionMismatchError:
                    payload._disabled.set()
                except NotImplementedError:
                    pass
        # 2. Injected faults.
        for fault in self.faults:
            if fault.matches(call):
                fault.times -= 1
                fault.hits += 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.code:
                    raise ApiError(fault.code, fault.reason, fault.message)
        # 3. A fault plan may fail, stall, reset or cut the answer of the emulated API (4).
        if self.fault_plan is not None:
            return await self.fault_plan.handle(request, call, lambda: self._serve(request, path))
        return await self._serve(request, path)

    async def _serve(self, request: rendering.Request, path: _Path) -> aiohttp.web.StreamResponse:
        if path.group and path.group in self.aggregated:
            upstream = self.aggregated[path.group]
            identity = request._raw_request[IDENTITY] if request._raw_request is not None else None
            return await upstream.proxy(
                str(request.method.value).upper(), request.url.path_qs, request.headers, identity
            )  # type: ignore[no-any-return]
        if path.plural is not None:
            return await self._serve_resource(request, path)
        return await self._serve_discovery(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            body = ApiError(exc.status, exc.reason or "InternalError", exc.message or repr(exc), exc.details)
            return aiohttp.web.json_response(body.status(), status=exc.status)
        return await super()._render_error(exc)

    # --- discovery ---------------------------------------------------------------------

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            if group and version not in groups.setdefault(group, []):
                groups[group].append(version)
        return groups

    def _group_json(self, group: str, versions: list[str]) -> JSON:
        versions = sorted(versions, key=_version_priority)
        return {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
        }

    async def _serve_discovery(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        body: JSON
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/version":
            body = SERVER_VERSION
        elif path.startswith("/openapi/v3"):
            body = self._openapi_v3(path.removeprefix("/openapi/v3").strip("/"))
        elif path == "/api":
            host = request.url.host or "127.0.0.1"
            body = {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{request.url.port}"}
                ],
            }
        elif path == "/apis":
            body = {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group_json(g, vs) for g, vs in sorted(self._groups().items())],
            }
        elif len(parts) == 2 and parts[0] == "apis":
            versions = self._groups().get(parts[1])
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            body = {"kind": "APIGroup", "apiVersion": "v1", **self._group_json(parts[1], versions)}
        elif (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            types = [rt for (g, v, _), rt in sorted(self._types.items()) if (g, v) == (group, version)]
            if not types:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            body = {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": [r for rt in types for r in rt.discovery()],
            }
        elif path == "/":
            paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
            for group, versions in self._groups().items():
                paths |= {f"/apis/{group}"} | {f"/apis/{group}/{v}" for v in versions}
            body = {"paths": sorted(paths)}
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return aiohttp.web.json_response(body)

    def _openapi_v3(self, group_version: str) -> JSON:
        """Just enough OpenAPI v3 for kubectl to see that the server validates fields itself.

        kubectl looks for a `fieldValidation` query parameter on each kind's PATCH; finding it,
        it sends `fieldValidation=Strict` instead of validating client-side (which would need
        full schemas). Schemas are not served: `kubectl explain` is a known gap.
        """
        gvs = sorted({(g, v) for g, v, _ in self._types})
        if not group_version:
            paths = {}
            for g, v in gvs:
                name = f"apis/{g}/{v}" if g else f"api/{v}"
                digest = uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(self._openapi_v3(name), sort_keys=True)).hex
                paths[name] = {"serverRelativeURL": f"/openapi/v3/{name}?hash={digest.upper()}"}
            return {"paths": paths}
        parts = group_version.split("/")
        group, version = (
            ("", parts[1])
            if parts[0] == "api" and len(parts) == 2
            else ((parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else (None, None))
        )
        if (group, version) not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        paths = {}
        for (g, v, _), rt in sorted(self._types.items()):
            if (g, v) != (group, version):
                continue
            scope = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
            gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
            params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
            operation = {"x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {}}
            paths[scope] = {"post": operation}
            paths[f"{scope}/{{name}}"] = {"patch": operation, "put": operation}
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths,
            "components": {"schemas": {}},
        }

    # --- resources ---------------------------------------------------------------------

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self._types.get((group, version, plural))
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return rt

    async def _serve_resource(self, request: rendering.Request, path: _Path) -> aiohttp.web.StreamResponse:
        assert path.group is not None and path.version is not None and path.plural is not None
        rt = self._type(path.group, path.version, path.plural)
        params, method = dict(request.params), str(request.method.value).upper()
        sub = path.subresource
        if sub is not None and sub not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if rt.namespaced is False and path.namespace is not None and rt.plural != "namespaces":
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        ns = path.namespace if rt.namespaced else None
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await self._watch(request, rt, ns, path.name, params)
        if method == "GET" and sub == "log":
            return self._serve_log(rt, ns, path.name or "", params)
        if method == "GET" and path.name is None:
            return self._respond(request, rt, self._list_response(rt, ns, params), listing=True)
        if method == "GET":
            obj = self._read(rt, ns, path.name)
            if obj is None:
                raise not_found(rt.plural, rt.group, path.name or "")
            return self._respond(request, rt, obj)
        if rt.namespaced and ns is None and method in ("POST", "PUT", "PATCH", "DELETE"):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "POST" and rt.plural == "selfsubjectreviews":
            assert request._raw_request is not None
            identity = request._raw_request[IDENTITY]
            info = {"username": identity.user, "groups": list(identity.groups)}
            review = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {}, "status": {"userInfo": info}}
            return aiohttp.web.json_response(review, status=201)
        dry_run = "dryRun" in params
        if "protobuf" in request.headers.get("Content-Type", ""):
            request = attrs.evolve(request, data=decode_protobuf(request.body))
        if method == "POST" and path.name is None:
            if not isinstance(request.data, dict):
                raise bad_request("the body of the request was in an unknown format")
            if rt.plural == "subjectaccessreviews":
                return aiohttp.web.json_response(self.authorizer.review(request.data), status=201)
            obj = self._create(rt, ns, request.data, dry_run=dry_run, strict=_strict(params))
            return self._respond(request, rt, obj, code=201)
        if method == "POST" and sub == "eviction":
            self._delete(rt, ns, path.name or "", {}, dry_run=dry_run)
            return aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}, status=201
            )
        if method == "POST" and sub == "binding":
            return aiohttp.web.json_response(self._bind(rt, ns, path.name or "", request.data), status=201)
        if method == "PUT" and path.name:
            if not isinstance(request.data, dict):
                raise bad_request("the body of the request was in an unknown format")
            obj = self._update(rt, ns, path.name, request.data, sub, dry_run=dry_run, strict=_strict(params))
            return self._respond(request, rt, obj)
        if method == "PATCH" and path.name:
            obj, code = self._patch(rt, ns, path.name, request, sub, dry_run=dry_run)
            return self._respond(request, rt, obj, code=code)
        if method == "DELETE" and path.name:
            options = dict(request.data) if isinstance(request.data, dict) else {}
            for key in ("gracePeriodSeconds", "propagationPolicy"):
                if key in params:
                    options[key] = int(params[key]) if key == "gracePeriodSeconds" else params[key]
            obj = self._delete(rt, ns, path.name, options, dry_run=dry_run)
            return self._respond(request, rt, obj)
        if method == "DELETE":
            options = dict(request.data) if isinstance(request.data, dict) else {}
            items = self._select(rt, ns, params)
            for item in items:
                self._delete(rt, item["metadata"].get("namespace"), item["metadata"]["name"], options, dry_run=dry_run)
            return self._respond(
                request,
                rt,
                {
                    "kind": f"{rt.kind}List",
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                },
                listing=True,
            )
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _respond(
        self, request: rendering.Request, rt: ResourceType, body: JSON, *, code: int = 200, listing: bool = False
    ) -> aiohttp.web.StreamResponse:
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept and request.method.value == "GET":
            items = body["items"] if listing else [body]
            continue_token = body.get("metadata", {}).get("continue") if listing else None
            body = self._table(rt, items, str(self._rv), request.params.get("includeObject", "Metadata"))
            if continue_token:
                body["metadata"]["continue"] = continue_token
        return aiohttp.web.json_response(body, status=code)

    def _table(self, rt: ResourceType, items: list[JSON], rv: str, include: str) -> JSON:
        columns, row = crd_table(rt.printer_columns) if rt.custom else builtin_table(rt.plural)
        if rt.group == "events.k8s.io":
            items = [_event_to_core(i) for i in items]
        return table(columns, row, items, rv, include)

    def _serve_log(self, rt: ResourceType, ns: str | None, name: str, params: dict[str, str]) -> aiohttp.web.Response:
        pod = self._read(rt, ns, name)
        if pod is None:
            raise not_found(rt.plural, rt.group, name)
        text = self.log_provider(ns or "", name, params.get("container")) if self.log_provider else None
        if text is None:
            phase = pod.get("status", {}).get("phase")
            container = (pod.get("spec", {}).get("containers") or [{}])[0].get("name", "")
            if phase == "Pending":
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
            text = ""
        if "tailLines" in params:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(params["tailLines"]) :]) if int(params["tailLines"]) else ""
        if "limitBytes" in params:  # as the kubelet does: the first bytes of what tailLines selected
            text = text.encode()[: int(params["limitBytes"])].decode("utf-8", "ignore")
        return aiohttp.web.Response(text=text, content_type="text/plain")

    # --- store -------------------------------------------------------------------------

    def _ns_key(self, rt: ResourceType, ns: str | None) -> str | None:
        return ns if rt.namespaced else None

    def _read(self, rt: ResourceType, ns: str | None, name: str | None) -> JSON | None:
        key = (rt.key, self._ns_key(rt, ns), name or "")
        if key not in self._objects or self._objects[key].deleted:
            return None
        return self._encode(rt, copy.deepcopy(self._objects[key].raw))

    def _encode(self, rt: ResourceType, obj: JSON) -> JSON:
        if rt.from_storage is not None:
            return rt.from_storage(obj)
        obj["apiVersion"] = rt.api_version
        return obj

    def _list(self, rt: ResourceType, ns: str | None) -> list[JSON]:
        want = rt.key  # built once: a kmock.resource per comparison was most of a list's cost
        items = [
            self._encode(rt, copy.deepcopy(obj.raw))
            for (key, obj_ns, _), obj in list(self._objects.items())
            if key == want and not obj.deleted and (ns is None or obj_ns == ns)
        ]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def _select(self, rt: ResourceType, ns: str | None, params: dict[str, str]) -> list[JSON]:
        labels = parse_label_selector(params.get("labelSelector"))
        fields = parse_field_selector(params.get("fieldSelector"))
        if params.get("labelSelector") and rt.from_storage is None:
            # Labels are matched before copying, as kube-apiserver's watch cache does: a
            # deletecollection of one run's Pods must not deep-copy the whole namespace.
            want = rt.key
            raw = [
                obj.raw
                for (key, obj_ns, _), obj in list(self._objects.items())
                if key == want and not obj.deleted and (ns is None or obj_ns == ns)
            ]
            chosen = [self._encode(rt, copy.deepcopy(o)) for o in raw if labels(o["metadata"].get("labels") or {})]
            chosen.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return [o for o in chosen if fields(o)]
        return [o for o in self._list(rt, ns) if labels(o["metadata"].get("labels") or {}) and fields(o)]

    def _list_response(self, rt: ResourceType, ns: str | None, params: dict[str, str]) -> JSON:
        items = self._select(rt, ns, params)
        meta: JSON = {"resourceVersion": str(self._rv)}
        start = 0
        if params.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(params["continue"].encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError) as e:
                raise bad_request("continue key is not valid") from e
        limit = int(params.get("limit") or 0)
        if limit > 0:
            page = items[start : start + limit]
            if start + limit < len(items):
                meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit}).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def _bootstrap(self, rt: ResourceType, obj: JSON, now: str) -> None:
        meta = obj["metadata"]
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now, resourceVersion=str(self._rv))
        if rt.generation:
            meta["generation"] = 1
        key = (rt.key, self._ns_key(rt, meta.get("namespace")), meta["name"])
        self._objects[key] = obj
        self._uids[meta["uid"]] = key

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _commit(self, rt: ResourceType, obj: JSON, type_: str, old: JSON | None) -> JSON:
        """Store one version: a new resourceVersion, a watch event, the uid index."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        meta = obj["metadata"]
        stored = rt.to_storage(copy.deepcopy(obj)) if rt.to_storage else copy.deepcopy(obj)
        key = (rt.key, self._ns_key(rt, meta.get("namespace")), meta["name"])
        if type_ == "DELETED":
            self._objects[key].history.append(stored)
            self._objects[key].delete()
            self._uids.pop(meta.get("uid", ""), None)
        elif key not in self._objects:
            self._objects[key] = stored
        else:
            history = self._objects[key].history
            history.append(stored)
            if self.history_limit and len(history) > self.history_limit:
                del history[: len(history) - self.history_limit]
        if type_ == "ADDED":
            self._uids[meta["uid"]] = key
        if type_ != "DELETED":
            self._owners.update(ref.get("uid") for ref in meta.get("ownerReferences") or [])
        old_stored = (rt.to_storage(copy.deepcopy(old)) if rt.to_storage else old) if old else None
        if rt.group == "rbac.authorization.k8s.io":
            self.authorizer.invalidate()
        self._log.append(_Change(self._rv, rt.key, type_, stored, old_stored))
        if len(self._log) > self.watch_cache_size:
            del self._log[: len(self._log) - self.watch_cache_size]
        self._notify()
        return obj

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- create ------------------------------------------------------------------------

    def _create(
        self, rt: ResourceType, ns: str | None, body: JSON, *, dry_run: bool = False, strict: bool = False
    ) -> JSON:
        obj = copy.deepcopy(body)
        if rt.to_storage is not None:
            obj = rt.from_storage(rt.to_storage(obj)) if rt.from_storage else obj
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
            namespace = self._read(self._type("", "v1", "namespaces"), None, ns)
            if namespace is None:
                raise not_found("namespaces", "", ns or "")
            if namespace["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403,
                    "Forbidden",
                    f'{rt.plural} "{meta.get("name") or meta.get("generateName", "")}" '
                    f"is forbidden: unable to create new content in namespace {ns} because it is being "
                    "terminated",
                    {"name": meta.get("name", ""), "kind": rt.plural},
                )
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(
                    rt.kind, rt.group, "", [("metadata.name", "Required value: name or generateName is required")]
                )
            meta["name"] = meta["generateName"][:58] + "".join(random.choices(_NAME_CHARS, k=5))
        name = meta["name"]
        if self._read(rt, ns, name) is not None:
            raise already_exists(rt.plural, rt.group, name)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for drop in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "managedFields"):
            meta.pop(drop, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339()
        if rt.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        self._prepare_create(rt, obj, strict)
        self._validate(rt, obj, None)
        if dry_run:
            return obj
        result = self._commit(rt, obj, "ADDED", None)
        self._after_create(rt, obj)
        return copy.deepcopy(result)

    def _prepare_create(self, rt: ResourceType, obj: JSON, strict: bool = False) -> None:
        kind = (rt.group, rt.plural)
        if "status" in rt.subresources and kind != ("", "namespaces"):
            obj.pop("status", None)
        if kind == ("", "pods"):
            self._pod_defaults(obj)
        elif kind == ("", "namespaces"):
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif kind == ("", "secrets"):
            self._secret_data(obj)
            obj.setdefault("type", "Opaque")
        elif kind == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._crd_defaults(obj)
        elif rt.custom:
            self._prune(rt, obj, strict)

    def _pod_defaults(self, pod: JSON) -> None:
        spec = pod.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec["serviceAccount"] = spec["serviceAccountName"]
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image = container.get("image", "")
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            container.setdefault("imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        sa = spec["serviceAccountName"]
        ns = pod["metadata"]["namespace"]
        if self._read(self._type("", "v1", "serviceaccounts"), ns, sa) is None:
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{pod["metadata"]["name"]}" is forbidden: error looking up '
                f'service account {ns}/{sa}: serviceaccount "{sa}" not found',
                {"name": pod["metadata"]["name"], "kind": "pods"},
            )

    @staticmethod
    def _secret_data(secret: JSON) -> None:
        string_data = secret.pop("stringData", None) or {}
        data = secret.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data

    def _after_create(self, rt: ResourceType, obj: JSON) -> None:
        kind = (rt.group, rt.plural)
        if kind == ("", "namespaces"):
            sa_type = self._type("", "v1", "serviceaccounts")
            self._create(
                sa_type,
                obj["metadata"]["name"],
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            )
        elif kind == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._refresh_crds()
        owners = [ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []]
        if owners and not any(uid in self._uids for uid in owners):
            # The garbage collector deletes dependents whose owners are all gone.
            self._spawn(self._gc_orphan(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"]))

    # --- update / patch ----------------------------------------------------------------

    def _update(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: JSON,
        sub: str | None,
        *,
        dry_run: bool = False,
        strict: bool = False,
    ) -> JSON:
        old = self._read(rt, ns, name)
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        return self._apply_change(rt, old, copy.deepcopy(body), sub, dry_run=dry_run, strict=strict)

    def _patch(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        request: rendering.Request,
        sub: str | None,
        *,
        dry_run: bool = False,
    ) -> tuple[JSON, int]:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        strict = _strict(dict(request.params))
        old = self._read(rt, ns, name)
        if ctype == "application/apply-patch+yaml":
            try:
                applied = yaml.safe_load(request.text)
            except yaml.YAMLError as e:
                raise bad_request(f"error decoding YAML: {e}") from e
            if not isinstance(applied, dict):
                raise bad_request("the body of the request was in an unknown format")
            if old is None:
                if sub:
                    raise not_found(rt.plural, rt.group, name)
                applied.setdefault("metadata", {})["name"] = name
                return self._create(rt, ns, applied, dry_run=dry_run, strict=strict), 201
            new = merge_patch(old, _drop_nulls(applied))
            return self._apply_change(rt, old, new, sub, dry_run=dry_run, strict=strict), 200
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        patch = request.data
        if ctype == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("the body of the request was in an unknown format")
            new = merge_patch(old, patch)
        elif ctype == "application/strategic-merge-patch+json":
            if rt.custom:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                )
            if not isinstance(patch, dict):
                raise bad_request("the body of the request was in an unknown format")
            new = strategic_merge_patch(old, patch)
        elif ctype == "application/json-patch+json":
            if not isinstance(patch, list):
                raise bad_request("the body of the request was in an unknown format")
            try:
                new = json_patch(old, patch)
            except JsonPatchTestFailed as e:
                raise ApiError(
                    422, "Invalid", f"the server rejected our request due to an error in our request: {e}"
                ) from e
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - "
                f"accepted media types include: application/json-patch+json, "
                f"application/merge-patch+json, application/apply-patch+yaml (got {ctype!r})",
            )
        rv = ((patch or {}).get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if not isinstance(new, dict):
            raise bad_request("the patch did not produce an object")
        return self._apply_change(rt, old, new, sub, dry_run=dry_run, strict=strict), 200

    def _apply_change(
        self, rt: ResourceType, old: JSON, new: JSON, sub: str | None, *, dry_run: bool, strict: bool = False
    ) -> JSON:
        """What an update of the main resource or a subresource may change, then commit it."""
        name = old["metadata"]["name"]
        if sub == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            new = result
        else:
            if "status" in rt.subresources:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new.setdefault("metadata", {})
            for keep in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if keep in old["metadata"]:
                    meta[keep] = old["metadata"][keep]
                else:
                    meta.pop(keep, None)
            if old["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
                if added:
                    raise invalid(
                        rt.kind,
                        rt.group,
                        name,
                        [
                            (
                                "metadata.finalizers",
                                "Forbidden: no new finalizers can "
                                "be added if the object is being deleted, found new "
                                f"finalizers {sorted(added)!r}",
                            )
                        ],
                    )
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if (rt.group, rt.plural) == ("", "secrets"):
            self._secret_data(new)
        if rt.custom:
            self._prune(rt, new, strict)
        if (rt.group, rt.plural) == ("", "pods") and sub is None:
            self._check_pod_update(old, new)
        self._validate(rt, new, old)
        if rt.generation and sub != "status" and _spec_of(new) != _spec_of(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if new == old:
            return old  # a no-op write: no new resourceVersion, no watch event (like etcd3 store)
        if dry_run:
            return new
        result = self._commit(rt, new, "MODIFIED", old)
        if (rt.group, rt.plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._refresh_crds()
        meta = result["metadata"]
        # Pods on a node go away when the kubelet confirms (DELETE with grace 0), not here.
        graceful_pod = (rt.group, rt.plural) == ("", "pods") and meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not graceful_pod:
            return self._remove(rt, result)
        return copy.deepcopy(result)

    def _bind(self, rt: ResourceType, ns: str | None, name: str, binding: Any) -> JSON:
        """pods/binding: the scheduler's only way to set spec.nodeName."""
        pod = self._read(rt, ns, name)
        if pod is None:
            raise not_found(rt.plural, rt.group, name)
        node = ((binding or {}).get("target") or {}).get("name")
        if not node:
            raise invalid("Binding", "", name, [("target.name", "Required value")])
        if pod["spec"].get("nodeName"):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is '
                f'already assigned to node "{pod["spec"]["nodeName"]}"',
                {"name": name, "kind": "pods"},
            )
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node
        conditions = [c for c in new.setdefault("status", {}).get("conditions", []) if c.get("type") != "PodScheduled"]
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": rfc3339()}
        )
        new["status"]["conditions"] = conditions
        self._commit(rt, new, "MODIFIED", pod)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _check_pod_update(self, old: JSON, new: JSON) -> None:
        def mutable_out(spec: JSON) -> JSON:
            spec = copy.deepcopy(spec)
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                c.pop("image", None)
            return spec

        if mutable_out(new.get("spec", {})) != mutable_out(old.get("spec", {})):
            raise invalid(
                "Pod",
                "",
                old["metadata"]["name"],
                [
                    (
                        "spec",
                        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                        "(allow it to be set to 1 if it was previously negative)",
                    )
                ],
            )

    def _validate(self, rt: ResourceType, obj: JSON, old: JSON | None) -> None:
        name = obj["metadata"].get("name", "")
        problems = label_problems(obj["metadata"].get("labels") or {})
        if len(name) > 253:
            problems.append(("metadata.name", "Invalid value: must be no more than 253 characters"))
        if rt.custom and rt.schema:
            body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            schema = dict(rt.schema)
            schema["properties"] = {
                k: v
                for k, v in (rt.schema.get("properties") or {}).items()
                if k not in ("apiVersion", "kind", "metadata")
            }
            schema["required"] = [
                r for r in rt.schema.get("required", []) if r not in ("apiVersion", "kind", "metadata")
            ]
            problems += validate(body, schema)
        if problems:
            raise invalid(rt.kind, rt.group, name, problems)

    def _prune(self, rt: ResourceType, obj: JSON, strict: bool = False) -> None:
        """Drop undeclared fields; with `fieldValidation=Strict` (kubectl's default) refuse them."""
        if not rt.schema:
            return
        before = copy.deepcopy(obj) if strict else None
        for key in list(obj):
            if key in ("apiVersion", "kind", "metadata"):
                continue
            props = rt.schema.get("properties") or {}
            if key not in props and not rt.schema.get("x-kubernetes-preserve-unknown-fields"):
                del obj[key]
            elif key in props:
                obj[key] = prune(apply_defaults(obj[key], props[key]), props[key])
        if before is not None:
            unknown = _removed_paths(before, obj)
            if unknown:
                raise bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict '
                    "decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)
                )

    # --- delete / gc -------------------------------------------------------------------

    def _delete(self, rt: ResourceType, ns: str | None, name: str, options: JSON, *, dry_run: bool = False) -> JSON:
        old = self._read(rt, ns, name)
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}",
                {"name": name, "kind": rt.plural},
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if dry_run:
            return old
        meta = old["metadata"]
        grace = options.get("gracePeriodSeconds")
        if (rt.group, rt.plural) == ("", "namespaces"):
            if meta.get("deletionTimestamp"):
                return old
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = rfc3339()
            new["status"] = {"phase": "Terminating"}
            result = self._commit(rt, new, "MODIFIED", old)
            self._spawn(self._terminate_namespace(name))
            return copy.deepcopy(result)
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        pod_graceful = (
            (rt.group, rt.plural) == ("", "pods")
            and old.get("spec", {}).get("nodeName")
            and old.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        )
        if pod_graceful:
            period = int(grace if grace is not None else old["spec"].get("terminationGracePeriodSeconds", 30))
            if meta.get("deletionTimestamp"):
                if period != 0 or meta.get("finalizers"):
                    return old
                return self._remove(rt, old)
            if period > 0:
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = rfc3339(datetime.now(UTC) + timedelta(seconds=period))
                new["metadata"]["deletionGracePeriodSeconds"] = period
                return copy.deepcopy(self._commit(rt, new, "MODIFIED", old))
        if meta.get("deletionTimestamp"):
            if (rt.group, rt.plural) == ("", "pods") and grace == 0 and not meta.get("finalizers"):
                return self._remove(rt, old)  # the kubelet confirming a graceful deletion
            return old
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers and self._dependents(meta["uid"]):
            finalizers.append("orphan")
        if finalizers:
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["finalizers"] = finalizers
            result = self._commit(rt, new, "MODIFIED", old)
            if "foregroundDeletion" in finalizers or "orphan" in finalizers:
                self._spawn(self._gc_owner(rt, result))
            return copy.deepcopy(result)
        return self._remove(rt, old)

    def _remove(self, rt: ResourceType, obj: JSON) -> JSON:
        result = self._commit(rt, copy.deepcopy(obj), "DELETED", obj)
        uid = obj["metadata"]["uid"]
        if uid in self._owners and self._dependents(uid):  # no scan of every object for a Pod
            self._spawn(self._gc_dependents(uid))
        if (rt.group, rt.plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._drop_crd_objects(obj)
            self._refresh_crds()
        return copy.deepcopy(result)

    def _dependents(self, uid: str) -> list[tuple[ResourceType, JSON]]:
        found = []
        for (key, _, _), stored in list(self._objects.items()):
            if stored.deleted:
                continue
            refs = stored.raw.get("metadata", {}).get("ownerReferences") or []
            if any(ref.get("uid") == uid for ref in refs):
                rt = self._storage_type(key)
                if rt is not None:
                    found.append((rt, self._encode(rt, copy.deepcopy(stored.raw))))
        return found

    def _storage_type(self, key: kmock.resource) -> ResourceType | None:
        rt = self._types.get((key.group or "", key.version or "", key.plural or ""))
        return rt if rt is not None and rt.key == key else None

    async def _gc_dependents(self, owner_uid: str) -> None:
        """Background propagation: dependents with no remaining live owner are deleted."""
        await asyncio.sleep(0.01)
        for rt, obj in self._dependents(owner_uid):
            live = [r for r in obj["metadata"].get("ownerReferences", []) if r.get("uid") in self._uids]
            if not live:
                with contextlib.suppress(ApiError):
                    self._delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], {})

    async def _gc_orphan(self, rt: ResourceType, ns: str | None, name: str) -> None:
        await asyncio.sleep(0.05)
        obj = self._read(rt, ns, name)
        refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
        if obj is not None and refs and not any(r.get("uid") in self._uids for r in refs):
            with contextlib.suppress(ApiError):
                self._delete(rt, ns, name, {})

    async def _gc_owner(self, rt: ResourceType, owner: JSON) -> None:
        """Foreground deletion and orphaning: act on dependents, then release the owner's finalizer."""
        uid, ns, name = owner["metadata"]["uid"], owner["metadata"].get("namespace"), owner["metadata"]["name"]
        orphan = "orphan" in owner["metadata"].get("finalizers", [])
        for _ in range(6000):
            dependents = self._dependents(uid)
            for drt, dep in dependents:
                dns, dname = dep["metadata"].get("namespace"), dep["metadata"]["name"]
                with contextlib.suppress(ApiError):
                    if orphan:
                        refs = [r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != uid]
                        self._apply_change(
                            drt,
                            dep,
                            merge_patch(dep, {"metadata": {"ownerReferences": refs or None}}),
                            None,
                            dry_run=False,
                        )
                    elif not dep["metadata"].get("deletionTimestamp"):
                        self._delete(drt, dns, dname, {"propagationPolicy": "Foreground"})
            if orphan or not dependents:
                break
            await asyncio.sleep(0.05)
        current = self._read(rt, ns, name)
        if current is not None:
            finalizers = [
                f for f in current["metadata"].get("finalizers", []) if f not in ("orphan", "foregroundDeletion")
            ]
            new = merge_patch(current, {"metadata": {"finalizers": finalizers or None}})
            with contextlib.suppress(ApiError):
                self._apply_change(rt, current, new, None, dry_run=False)

    async def _terminate_namespace(self, name: str) -> None:
        """The namespace controller: delete everything inside, then the namespace."""
        for _ in range(6000):
            remaining = 0
            for rt in list(self._types.values()):
                if not rt.namespaced or rt.is_alias:
                    continue
                for obj in self._list(rt, name):
                    remaining += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        with contextlib.suppress(ApiError):
                            self._delete(rt, name, obj["metadata"]["name"], {})
            if not remaining:
                break
            await asyncio.sleep(0.05)
        ns_type = self._type("", "v1", "namespaces")
        current = self._read(ns_type, None, name)
        if current is not None:
            self._remove(ns_type, current)

    # --- CRDs --------------------------------------------------------------------------

    @staticmethod
    def _crd_defaults(crd: JSON) -> JSON:
        spec = crd.get("spec", {})
        names = dict(spec.get("names", {}))
        names.setdefault("singular", names.get("kind", "").lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        crd["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage")],
            "conditions": [
                {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": rfc3339()}
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }
        return crd

    def _refresh_crds(self) -> None:
        """Serve exactly the versions the stored CRDs declare (as apiextensions-apiserver does)."""
        for key in [k for k, rt in self._types.items() if rt.custom]:
            del self._types[key]
        crd_type = self._types[("apiextensions.k8s.io", "v1", "customresourcedefinitions")]
        for crd in self._list(crd_type, None):
            spec = crd.get("spec", {})
            names = spec.get("names", {})
            versions = spec.get("versions", [])
            storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "")
            for version in versions:
                if not version.get("served", True):
                    continue
                rt = ResourceType(
                    group=spec["group"],
                    version=version["name"],
                    plural=names["plural"],
                    kind=names["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    singular=names.get("singular", names["kind"].lower()),
                    short_names=tuple(names.get("shortNames", [])),
                    categories=tuple(names.get("categories", [])),
                    subresources=("status",) if "status" in (version.get("subresources") or {}) else (),
                    printer_columns=version.get("additionalPrinterColumns"),
                    schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                    generation=True,
                    custom=True,
                    storage=(spec["group"], storage, names["plural"]),
                )
                self._types[rt.group, rt.version, rt.plural] = rt

    def _drop_crd_objects(self, crd: JSON) -> None:
        spec = crd.get("spec", {})
        for version in spec.get("versions", []):
            rt = self._types.get((spec.get("group", ""), version["name"], spec.get("names", {}).get("plural", "")))
            if rt is None:
                continue
            for obj in self._list(rt, None):
                self._commit(rt, obj, "DELETED", obj)

    # --- watch -------------------------------------------------------------------------

    async def _watch(
        self, request: rendering.Request, rt: ResourceType, ns: str | None, name: str | None, params: dict[str, str]
    ) -> aiohttp.web.StreamResponse:
        labels = parse_label_selector(params.get("labelSelector"))
        fields = parse_field_selector(params.get("fieldSelector"))

        def matches(obj: JSON | None) -> bool:
            if obj is None:
                return False
            meta = obj.get("metadata", {})
            return (
                (ns is None or meta.get("namespace") == ns)
                and (name is None or meta.get("name") == name)
                and labels(meta.get("labels") or {})
                and fields(obj)
            )

        as_table = "as=Table" in request.headers.get("Accept", "")
        include = params.get("includeObject", "Metadata")
        rv_param = params.get("resourceVersion", "")
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        deadline = None if timeout is None else time.monotonic() + timeout
        epoch = self._watch_epoch

        initial: list[JSON] = []
        start_rv = self._rv
        if rv_param in ("", "0") or params.get("sendInitialEvents") == "true":
            initial = [{"type": "ADDED", "object": o} for o in self._list(rt, ns) if matches(o)]
        else:
            try:
                start_rv = int(rv_param)
            except ValueError as e:
                raise bad_request(f"invalid resource version: {rv_param}") from e
        oldest = self._log[0].rv if self._log else self._rv + 1
        if rv_param not in ("", "0") and start_rv < oldest - 1 and start_rv < self._rv:
            gone = ApiError(410, "Expired", f"too old resource version: {start_rv} ({oldest - 1})").status()
            initial = [{"type": "ERROR", "object": gone}]
            deadline = time.monotonic()
        if params.get("sendInitialEvents") == "true":
            initial.append(
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rt.kind,
                        "apiVersion": rt.api_version,
                        "metadata": {
                            "resourceVersion": str(self._rv),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            )

        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        assert request._raw_request is not None
        await response.prepare(request._raw_request)

        pacer = Pacer()  # each event costs the stream `costs.watch_event` (0 when the model is off)

        async def send(event: JSON) -> None:
            if self.costs.watch_event:
                self.watch_charged += self.costs.watch_event
                await pacer.charge(self.costs.watch_event)
            if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                event = {"type": event["type"], "object": self._table(rt, [event["object"]], str(self._rv), include)}
            await response.write(json.dumps(event).encode() + b"\n")

        want = rt.key  # built once: a kmock.resource per log entry made each resume scan the cache slowly
        try:
            for event in initial:
                await send(event)
            last_rv = start_rv
            while deadline is None or time.monotonic() < deadline:
                if self._watch_epoch != epoch:
                    break
                while self._log:
                    index = last_rv + 1 - self._log[0].rv  # resourceVersions in the log are contiguous
                    if index < 0:
                        raise ConnectionError("fell out of the watch cache")  # the client re-lists, as after 410
                    if index >= len(self._log):
                        break
                    change = self._log[index]
                    last_rv = change.rv
                    if change.key != want:
                        continue
                    new = self._encode(rt, copy.deepcopy(change.obj))
                    old = self._encode(rt, copy.deepcopy(change.old)) if change.old else None
                    if change.type == "MODIFIED":
                        now_in, was_in = matches(new), matches(old)
                        kind = "MODIFIED" if now_in and was_in else "ADDED" if now_in else "DELETED" if was_in else ""
                    else:
                        kind = change.type if matches(new) else ""
                    if kind:
                        await send({"type": kind, "object": new})
                transport = request._raw_request.transport
                if transport is None or transport.is_closing():
                    break
                waiter = self._changed
                assert waiter is not None
                wait = 5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), wait)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.disconnect_watches()


def _spec_of(obj: JSON) -> JSON:
    """What `metadata.generation` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _strict(params: dict[str, str]) -> bool:
    return params.get("fieldValidation") == "Strict"


def _removed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        if isinstance(before, list) and isinstance(after, list):
            return [
                p
                for i, (b, a) in enumerate(zip(before, after, strict=False))
                for p in _removed_paths(b, a, f"{prefix}[{i}]")
            ]
        return []
    paths = []
    for key, value in before.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in after:
            paths.append(path)
        else:
            paths += _removed_paths(value, after[key], path)
    return paths


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor)
