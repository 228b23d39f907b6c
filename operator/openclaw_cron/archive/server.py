"""The archive's read-only HTTP API, shaped as the aggregated API group `archive.cron.openclaw.io/v1alpha1`.

Two listeners share one app. The aggregated one (TLS, `port`) is what the kube-apiserver proxies
`kubectl get --raw /apis/archive.cron.openclaw.io/...` to; it trusts only the front-proxy
certificate (auth.py) and asks RBAC per namespace. The direct one (plain HTTP on 127.0.0.1,
`direct_port`) answers without authentication: it is reachable only from inside the operator's
Pod, i.e. by `kubectl port-forward` (which needs pods/portforward in the operator's namespace, an
admin's right) and by tests.

Runs are named `<job>~<runId>~<attempt>` (`~` appears in neither a job name nor a run id);
`<job>~<runId>` means the latest attempt.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .auth import (
    GROUP,
    RESOURCE,
    VERSION,
    ApiRequester,
    Authorizer,
    FrontProxy,
    Unauthenticated,
    User,
    front_proxy_cn,
    load_front_proxy,
    server_ssl_context,
    user_from_headers,
)
from .model import CSV_FIELDS, RESULTS, Query, RunEntry
from .store import MAX_QUERY_LIMIT, InvalidQuery, Store, StoreError

logger = logging.getLogger(__name__)

GROUP_VERSION = f"{GROUP}/{VERSION}"
#: Adds routes to a listener's app (the console), under the same guard as the archive API.
Mount = Callable[[web.Application], None]
BASE = f"/apis/{GROUP}/{VERSION}"
TRIGGERS = ("Schedule", "Manual", "CatchUp", "Retry", "Dependency", "Backfill")
DEFAULT_LIMIT = 100
SEP = "~"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PUBLIC = ("/healthz", "/readyz", "/livez")


@dataclass(frozen=True)
class ArchiveServerSettings:
    """Where the API listens; from OPENCLAW_CRON_ARCHIVE_* (see `from_env`)."""

    port: int = 8443  # aggregated API, TLS; 0 = off
    tls_cert: str = ""  # PEM files of the serving certificate (the APIService's caBundle signs it)
    tls_key: str = ""
    bind: str = "0.0.0.0"
    direct_port: int = 8444  # plain HTTP on 127.0.0.1 for port-forward and tests; 0 = off
    direct_bind: str = "127.0.0.1"
    auth_cache_seconds: float = 10.0
    #: How often the front-proxy CA and allowed names are re-read (CA rotation).
    front_proxy_refresh_seconds: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArchiveServerSettings:
        env = os.environ if env is None else env
        prefix = "OPENCLAW_CRON_ARCHIVE_"

        def port(name: str, default: int) -> int:
            raw = env.get(prefix + name, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{prefix}{name}: expected a port number, got {raw!r}") from None
            if not 0 <= value <= 65535:
                raise ValueError(f"{prefix}{name}: expected a port number 0-65535, got {raw!r}")
            return value

        return cls(
            port=port("PORT", cls.port),
            tls_cert=env.get(prefix + "TLS_CERT", ""),
            tls_key=env.get(prefix + "TLS_KEY", ""),
            direct_port=port("DIRECT_PORT", cls.direct_port),
        )


# --- request parsing ------------------------------------------------------------------------


class BadRequest(Exception):
    """A malformed parameter; the message names it."""


def parse_instant(param: str, raw: str, now: datetime) -> datetime:
    """RFC 3339 (`2026-01-02T03:04:05Z`, a bare date) or an age (`90s`, `30m`, `12h`, `7d`, `2w`) before now."""
    text = raw.strip()
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{param}: expected an RFC 3339 time (2026-01-02T03:04:05Z) or an age like 30m, 12h, 7d; got {raw!r}"
        ) from None
    if when.tzinfo is None:
        if "T" in text or " " in text:
            raise BadRequest(f"{param}: the time needs a zone (Z or +01:00), got {raw!r}")
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _choice(param: str, raw: str, allowed: tuple[str, ...]) -> str:
    for value in allowed:
        if value.lower() == raw.strip().lower():
            return value
    raise BadRequest(f"{param}: unknown value {raw!r}; expected one of {', '.join(allowed)}")


def parse_query(params: Mapping[str, str], namespace: str | None, now: datetime) -> Query:
    """The list filters; BadRequest names the first wrong parameter."""

    def one(*names: str) -> tuple[str, str] | None:
        given = [(n, params[n]) for n in names if n in params]
        if len(given) > 1:
            raise BadRequest(f"{given[0][0]}: give either {given[0][0]} or {given[1][0]}, not both")
        return given[0] if given else None

    since = until = None
    if (p := one("since", "from")) is not None:
        since = parse_instant(*p, now)
    if (p := one("until", "to")) is not None:
        until = parse_instant(*p, now)
    if since and until and since >= until:
        raise BadRequest(f"until: must be after since ({since.isoformat()}), got {until.isoformat()}")
    job = params.get("job")
    if job is not None and (not job or SEP in job or "/" in job):
        raise BadRequest(f"job: not a job name: {job!r}")
    result = _choice("result", params["result"], RESULTS) if "result" in params else None
    trigger = _choice("trigger", params["trigger"], TRIGGERS) if "trigger" in params else None
    limit = DEFAULT_LIMIT
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise BadRequest(f"limit: expected a whole number, got {params['limit']!r}") from None
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise BadRequest(f"limit: must be between 1 and {MAX_QUERY_LIMIT}, got {limit}")
    cursor = params.get("continue") or None
    return Query(
        namespace=namespace,
        job=job or None,
        since=since,
        until=until,
        result=result,
        trigger=trigger,
        limit=limit,
        cursor=cursor,
    )


def run_name(entry: RunEntry) -> str:
    return f"{entry.job}{SEP}{entry.run_id}{SEP}{entry.attempt}"


def parse_run_name(name: str) -> tuple[str, str, int | None]:
    """(job, run id, attempt or None for the latest) from `<job>~<runId>[~<attempt>]`."""
    parts = name.split(SEP)
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], None
    if len(parts) == 3 and all(parts[:2]) and parts[2].isdigit() and int(parts[2]) >= 1:
        return parts[0], parts[1], int(parts[2])
    raise BadRequest(f"name: expected <job>{SEP}<runId>{SEP}<attempt> (attempt optional), got {name!r}")


# --- rendering ------------------------------------------------------------------------------


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_json(entry: RunEntry, *, detail: bool = False) -> dict[str, Any]:
    """One run as a Kubernetes-style object (the log has its own endpoint; `detail` adds its size)."""
    body: dict[str, Any] = {
        "kind": "Run",
        "apiVersion": GROUP_VERSION,
        "metadata": {
            "name": run_name(entry),
            "namespace": entry.namespace,
            "creationTimestamp": _time(entry.scheduled_time),
            "labels": {"cron.openclaw.io/job": entry.job[:63]},
        },
        "job": entry.job,
        "jobUid": entry.job_uid,
        "runId": entry.run_id,
        "attempt": entry.attempt,
        "trigger": entry.trigger,
        "result": entry.result,
        "scheduledTime": _time(entry.scheduled_time),
        "startTime": _time(entry.start_time),
        "completionTime": _time(entry.completion_time),
        "durationSeconds": entry.duration_seconds,
        "reason": entry.reason,
        "message": entry.message,
        "output": entry.output,
        "exitCode": entry.exit_code,
        "podName": entry.pod_name,
        "node": entry.node,
        "image": entry.image,
        "gatewayRunId": entry.gateway_run_id,
        "delivery": dict(entry.delivery),
        "reply": entry.reply,
        "replyNote": entry.reply_note,
    }
    if detail:
        body["logBytes"] = len(entry.log.encode())
        body["logTruncated"] = entry.log_truncated
    return {k: v for k, v in body.items() if v not in (None, "", {})}


def entries_csv(entries: list[RunEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for e in entries:
        d = e.delivery
        writer.writerow(
            [
                e.namespace,
                e.job,
                e.run_id,
                e.attempt,
                e.trigger,
                e.result,
                _time(e.scheduled_time),
                _time(e.start_time) or "",
                _time(e.completion_time) or "",
                "" if e.duration_seconds is None else f"{e.duration_seconds:g}",
                "" if e.exit_code is None else e.exit_code,
                e.reason,
                e.message,
                e.pod_name,
                e.node,
                "" if d.get("delivered") is None else str(bool(d.get("delivered"))).lower(),
                d.get("replyDisposition") or "",
            ]
        )
    return out.getvalue()


def entries_table(entries: list[RunEntry], cont: str | None) -> dict[str, Any]:
    """meta.k8s.io/v1 Table, so `kubectl get runs.archive.cron.openclaw.io` prints columns."""
    columns = [
        ("Name", "string", "name"),
        ("Job", "string", ""),
        ("Result", "string", ""),
        ("Trigger", "string", ""),
        ("Scheduled", "string", "date-time"),
        ("Duration", "string", ""),
        ("Reason", "string", ""),
    ]
    rows = []
    for e in entries:
        duration = "" if e.duration_seconds is None else f"{e.duration_seconds:g}s"
        rows.append(
            {
                "cells": [run_name(e), e.job, e.result, e.trigger, _time(e.scheduled_time), duration, e.reason],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": entry_json(e)["metadata"],
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"continue": cont} if cont else {},
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": n, "priority": 0} for n, t, f in columns
        ],
        "rows": rows,
    }


def status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


def _wants_csv(request: web.Request) -> bool:
    if request.query.get("format", "").lower() == "csv":
        return True
    return "text/csv" in request.headers.get("Accept", "")


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


# --- discovery ------------------------------------------------------------------------------


def _group() -> dict[str, Any]:
    gv = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {"name": RESOURCE, "singularName": "run", "namespaced": True, "kind": "Run", "verbs": ["get", "list"]},
            {"name": f"{RESOURCE}/log", "singularName": "", "namespaced": True, "kind": "Run", "verbs": ["get"]},
        ],
    }


def _openapi_v2() -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": GROUP, "version": VERSION}, "paths": {}, "definitions": {}}


def _openapi_v3_index() -> dict[str, Any]:
    return {"paths": {f"apis/{GROUP}/{VERSION}": {"serverRelativeURL": f"/openapi/v3/apis/{GROUP}/{VERSION}"}}}


def _openapi_v3() -> dict[str, Any]:
    return {"openapi": "3.0.0", "info": {"title": GROUP, "version": VERSION}, "paths": {}, "components": {}}


# --- the app --------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Guard:
    """Per-listener authentication and authorization; `None` proxy/authorizer = the direct listener."""

    def __init__(self, proxy: FrontProxy | None, authorizer: Authorizer | None) -> None:
        self.proxy = proxy
        self.authorizer = authorizer

    @property
    def direct(self) -> bool:
        return self.proxy is None

    async def user(self, request: web.Request, *, anonymous_ok: bool = False) -> User | web.Response | None:
        """Who the API server vouches for; None on the direct listener (or with `anonymous_ok`
        when the front-proxy named nobody: its own discovery checks); else the 401 answer."""
        if self.direct:
            return None
        assert self.proxy is not None
        try:
            cn = front_proxy_cn(request.transport.get_extra_info("peercert") if request.transport else None, self.proxy)
        except Unauthenticated as exc:
            return status(401, "Unauthorized", f"Unauthorized: {exc}")
        user = user_from_headers(request.headers, self.proxy)
        if user is None and not anonymous_ok:
            return status(401, "Unauthorized", f"Unauthorized: the front-proxy ({cn}) named no user")
        return user

    async def may(
        self,
        user: User | None,
        verb: str,
        namespace: str | None,
        sub: str = "",
        *,
        group: str = GROUP,
        version: str = VERSION,
        resource: str = RESOURCE,
    ) -> web.Response | None:
        """None when `user` (None: the direct listener) may, else the 403 (or 500) as the API server words it."""
        if self.direct or user is None:
            return None
        assert self.authorizer is not None
        try:
            allowed, reason = await self.authorizer.allowed(
                user, verb, namespace, sub, group=group, version=version, resource=resource
            )
        except Exception as exc:
            logger.warning("SubjectAccessReview failed: %s", exc)
            return status(500, "InternalError", "authorization check failed; try again")
        if allowed:
            return None
        what = f"{resource}/{sub}" if sub else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        qualified = f"{what}.{group}" if group else what
        msg = (
            f'{qualified} is forbidden: User "{user.name}" cannot {verb} resource "{what}" '
            f'in API group "{group}" {scope}'
        )
        return status(403, "Forbidden", msg + (f": {reason}" if reason else ""))

    async def check(self, request: web.Request, verb: str, namespace: str | None, sub: str = "") -> web.Response | None:
        """None when the request may read these runs, else the 401/403 answer (no data)."""
        user = await self.user(request, anonymous_ok=not verb)
        if isinstance(user, web.Response):
            return user
        if not verb:  # discovery: the front-proxy itself may ask (its availability checks send no user)
            return None
        return await self.may(user, verb, namespace, sub)


GUARD = web.AppKey("guard", Guard)


class ArchiveApi:
    """The routes over one store; `clock` is injectable for tests of relative times."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock

    def app(self, guard: Guard, mount: Mount | None = None) -> web.Application:
        """The routes; `mount` adds more under the group (the console) before the catch-all 404."""
        app = web.Application()
        app[GUARD] = guard
        if mount is not None:
            mount(app)
        r = app.router
        r.add_get("/healthz", self.health)
        r.add_get("/readyz", self.health)
        r.add_get("/livez", self.health)
        r.add_get("/apis", self.discovery(lambda: {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group()]}))
        r.add_get(f"/apis/{GROUP}", self.discovery(lambda: {"kind": "APIGroup", "apiVersion": "v1", **_group()}))
        r.add_get(BASE, self.discovery(resource_list))
        r.add_get("/openapi/v2", self.discovery(_openapi_v2))
        r.add_get("/openapi/v3", self.discovery(_openapi_v3_index))
        r.add_get(f"/openapi/v3/apis/{GROUP}/{VERSION}", self.discovery(_openapi_v3))
        r.add_get(f"{BASE}/{RESOURCE}", self.list_runs)
        r.add_get(f"{BASE}/namespaces/{{namespace}}/{RESOURCE}", self.list_runs)
        r.add_get(f"{BASE}/namespaces/{{namespace}}/{RESOURCE}/{{name}}", self.get_run)
        r.add_get(f"{BASE}/namespaces/{{namespace}}/{RESOURCE}/{{name}}/log", self.get_log)
        app.middlewares.append(_not_found)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def discovery(self, body: Callable[[], dict[str, Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            denied = await request.app[GUARD].check(request, "", None)
            if denied is not None:
                return denied
            return web.json_response(body())

        return handler

    async def list_runs(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info.get("namespace")
        denied = await request.app[GUARD].check(request, "list", namespace)
        if denied is not None:
            return denied
        try:
            query = parse_query(request.query, namespace, self.clock())
        except BadRequest as exc:
            return status(400, "BadRequest", str(exc))
        try:
            entries, cont = await asyncio.to_thread(self.store.query, query)
        except InvalidQuery as exc:  # the store names its field; the API's parameter is `continue`
            message = str(exc)
            return status(400, "BadRequest", "continue:" + message[7:] if message.startswith("cursor:") else message)
        except StoreError as exc:
            return status(503, "ServiceUnavailable", f"the run archive is unavailable: {exc}")
        if _wants_csv(request):
            headers = {"X-Continue": cont} if cont else {}
            return web.Response(text=entries_csv(entries), content_type="text/csv", headers=headers)
        if _wants_table(request):
            return web.json_response(entries_table(entries, cont))
        body = {
            "kind": "RunList",
            "apiVersion": GROUP_VERSION,
            "metadata": {"continue": cont} if cont else {},
            "items": [entry_json(e) for e in entries],
        }
        return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _entry(self, request: web.Request, sub: str) -> RunEntry | web.Response:
        namespace = request.match_info["namespace"]
        denied = await request.app[GUARD].check(request, "get", namespace, sub)
        if denied is not None:
            return denied
        name = request.match_info["name"]
        try:
            job, run_id, attempt = parse_run_name(name)
        except BadRequest as exc:
            return status(400, "BadRequest", str(exc))
        try:
            entry = await asyncio.to_thread(self.store.get, namespace, job, run_id, attempt)
        except StoreError as exc:
            return status(503, "ServiceUnavailable", f"the run archive is unavailable: {exc}")
        if entry is None:
            return status(404, "NotFound", f'{RESOURCE}.{GROUP} "{name}" not found')
        return entry

    async def get_run(self, request: web.Request) -> web.StreamResponse:
        entry = await self._entry(request, "")
        if isinstance(entry, web.Response):
            return entry
        return web.json_response(entry_json(entry, detail=True), dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def get_log(self, request: web.Request) -> web.StreamResponse:
        entry = await self._entry(request, "log")
        if isinstance(entry, web.Response):
            return entry
        headers = {"X-Log-Truncated": "true"} if entry.log_truncated else {}
        return web.Response(text=entry.log, content_type="text/plain", headers=headers)


@web.middleware
async def _not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return status(404, "NotFound", "the server could not find the requested resource")
    except web.HTTPMethodNotAllowed:
        return status(405, "MethodNotAllowed", "the archive API is read-only")


# --- running it -----------------------------------------------------------------------------


class Runner:
    """The running listeners; `stop()` closes them."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}
        self._refresh: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()


async def _listen(
    runner: Runner, name: str, app: web.Application, host: str, port: int, ctx: ssl.SSLContext | None
) -> None:
    """Bind one listener; a port in use is logged, not fatal (the archive API must not stop scheduling)."""
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    site = web.TCPSite(app_runner, host, port, ssl_context=ctx)
    try:
        await site.start()
    except OSError as exc:
        logger.error("archive API: cannot listen on %s:%s (%s): %s", host, port, name, exc)
        await app_runner.cleanup()
        return
    runner.runners.append(app_runner)
    server = site._server  # the bound port when 0 was asked for
    sockets = getattr(server, "sockets", None) or []
    runner.ports[name] = sockets[0].getsockname()[1] if sockets else port


async def _refresh_front_proxy(api: ApiRequester, proxy: FrontProxy, ctx: ssl.SSLContext, every: float) -> None:
    """Follow CA rotation: new CAs are added to the context, allowed names replaced in place."""
    while True:
        await asyncio.sleep(every)
        try:
            fresh = await load_front_proxy(api)
        except Exception as exc:
            logger.warning("could not re-read the front-proxy configuration: %s", exc)
            continue
        if fresh.client_ca and fresh.client_ca != proxy.client_ca:
            ctx.load_verify_locations(cadata=fresh.client_ca)
        for attr in (
            "client_ca",
            "allowed_names",
            "username_headers",
            "group_headers",
            "extra_prefixes",
            "uid_headers",
        ):
            setattr(proxy, attr, getattr(fresh, attr))


async def start_server(
    settings: ArchiveServerSettings,
    store: Store,
    api: ApiRequester | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    mount: Mount | None = None,
) -> Runner:
    """Start the listeners. The aggregated (TLS) one needs `api` (the operator's API client) and a certificate.

    `mount` adds routes to each listener's app (the console), guarded by the same `GUARD`.
    """
    routes = ArchiveApi(store, clock) if clock else ArchiveApi(store)
    runner = Runner()
    try:
        if settings.direct_port:
            await _listen(
                runner, "direct", routes.app(Guard(None, None), mount), settings.direct_bind, settings.direct_port, None
            )
        if settings.port and settings.tls_cert:
            if api is None:
                raise ValueError("the aggregated archive API needs the operator's API client (api=...)")
            proxy = await load_front_proxy(api)
            if not proxy.client_ca:
                logger.warning(
                    "kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: "
                    "the aggregated archive API will refuse every request"
                )
            ctx = server_ssl_context(settings.tls_cert, settings.tls_key, proxy)
            guard = Guard(proxy, Authorizer(api, ttl=settings.auth_cache_seconds))
            await _listen(runner, "aggregated", routes.app(guard, mount), settings.bind, settings.port, ctx)
            if settings.front_proxy_refresh_seconds > 0:
                runner._refresh = asyncio.create_task(
                    _refresh_front_proxy(api, proxy, ctx, settings.front_proxy_refresh_seconds)
                )
    except BaseException:
        await runner.stop()
        raise
    return runner
