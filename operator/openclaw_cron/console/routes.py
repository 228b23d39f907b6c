"""The console's pages, served on the archive's listeners under the archive API group.

Every page is `GET /apis/archive.cron.openclaw.io/v1alpha1/namespaces/NS/console/PAGE` with its
parameters in the query, so the API server sees an ordinary namespaced request for resource
`console` (name = the page) and RBAC can grant it like any resource (the chart aggregates
`get`/`list` on `console` into `view`). The operator then authorizes the data shown exactly as
the archive API does: `list runs` in each namespace shown, `get runs` for a run, `get runs/log`
for its log, and `list events` for a job's Events.

Actions are not served here: the browser PATCHes the OpenClawCronJob on the API server itself
(static/console.js), as the user, so Kubernetes RBAC decides.

Pages are Jinja2 templates with autoescaping; replies, logs and messages are untrusted text and
are only ever escaped. Responses carry a strict Content-Security-Policy (no inline script or
style), so even markup that slipped through could not run.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from .. import naming as n
from ..api import GROUP as JOB_GROUP
from ..api import PLURAL
from ..api import VERSION as JOB_VERSION
from ..archive.model import Query, RunEntry
from ..archive.server import BASE, GUARD, TRIGGERS, BadRequest, parse_instant, parse_run_name, run_name
from ..archive.sql import SqlStore
from ..archive.store import StoreError
from ..humanize import relative, run_duration
from . import charts, queries
from .access import Viewer, viewer
from .jobs import JobRow, JobSource, job_row, spec_words
from .upcoming import upcoming

HTMX_VERSION = "2.0.11"
STATIC = {
    f"htmx-{HTMX_VERSION}.min.js": ("htmx.min.js", "text/javascript"),
    "console.js": ("console.js", "text/javascript"),
    "console.css": ("console.css", "text/css"),
}
PAGES = ("overview", "timeline", "job", "run", "log")
#: Rows per page: jobs on the overview, job rows on the timeline, runs in a job's history.
OVERVIEW_PAGE = 100
TIMELINE_PAGE = 50
HISTORY_PAGE = 50
#: Bytes of a log shown on the run page (the whole archived tail is the download).
LOG_SHOWN = 64 * 1024
MAX_WINDOW = timedelta(days=31)
STATS_WINDOW = timedelta(days=7)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATES = ("Scheduled", "Running", "Suspended", "Paused", "Invalid", "Completed")
RESULTS = ("Succeeded", "Failed", "TimedOut", "Skipped", "Missed")

#: Reads a job's Events with the operator's client: (namespace, job name) → Event objects.
EventReader = Callable[[str, str], Awaitable[list[Mapping[str, Any]]]]


def console_base(namespace: str) -> str:
    return f"{BASE}/namespaces/{quote(namespace, safe='')}/console"


def job_api_path(namespace: str, name: str) -> str:
    """Where the browser PATCHes a job (the API server, same origin through the proxy)."""
    return f"/apis/{JOB_GROUP}/{JOB_VERSION}/namespaces/{quote(namespace, safe='')}/{PLURAL}/{quote(name, safe='')}"


def page_url(namespace: str, view: str, /, **params: Any) -> str:
    query = {k: str(v) for k, v in params.items() if v not in (None, "", False)}
    return f"{console_base(namespace)}/{view}" + (f"?{urlencode(query)}" if query else "")


def _fmt_time(when: datetime | None) -> str:
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(when: datetime | None) -> str:
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float | None) -> str:
    return run_duration(seconds, none="—")


def _relative(when: datetime | None, now: datetime) -> str:
    return relative(when, now, none="—")


def _rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{math.floor(value * 1000) / 10:.1f}%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("openclaw_cron.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(time=_fmt_time, iso=_iso, duration=_duration, rate=_rate, rclass=charts.result_class)
    env.globals.update(
        page_url=page_url,
        job_api_path=job_api_path,
        htmx=f"htmx-{HTMX_VERSION}.min.js",
        RUN_NOW=n.ANNOTATION_RUN_NOW,
        RESUME=n.ANNOTATION_RESUME,
        BACKFILL=n.ANNOTATION_BACKFILL,
    )
    return env


class Console:
    """The console over one archive store and the operator's view of the jobs."""

    def __init__(
        self,
        store: SqlStore,
        jobs: JobSource,
        events: EventReader | None = None,
        *,
        default_tz: str = "UTC",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.events = events
        self.default_tz = default_tz
        self.clock = clock
        self.env = _environment()
        self._static: dict[str, bytes] = {}

    def mount(self, app: web.Application) -> None:
        r = app.router
        r.add_get(f"{BASE}/namespaces/{{namespace}}/console", self.index)
        r.add_get(f"{BASE}/namespaces/{{namespace}}/console/", self.index)
        r.add_get(f"{BASE}/namespaces/{{namespace}}/console/{{page}}", self.page)
        app.middlewares.append(_headers)

    # -- plumbing ------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(page_url(request.match_info["namespace"], "overview"))

    async def page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["page"]
        namespace = request.match_info["namespace"]
        if name in STATIC:
            return await self.static(request, name)
        if name not in PAGES:
            return self.render("error.html", 404, namespace=namespace, title="Not found",
                               message=f"no console page {name!r}")  # fmt: skip
        who = await viewer(request)
        if isinstance(who, web.Response):
            return who
        handler = {
            "overview": self.overview,
            "timeline": self.timeline,
            "job": self.job,
            "run": self.run,
            "log": self.log,
        }[name]
        try:
            return await handler(request, who, namespace)
        except BadRequest as exc:
            return self.render("error.html", 400, namespace=namespace, title="Bad request", message=str(exc))
        except StoreError as exc:
            return self.render("error.html", 503, namespace=namespace, title="Archive unavailable",
                               message=f"the run archive is unavailable: {exc}")  # fmt: skip

    async def static(self, request: web.Request, name: str) -> web.StreamResponse:
        guard_answer = await request.app[GUARD].user(request, anonymous_ok=True)  # no data: only the proxy's cert
        if isinstance(guard_answer, web.Response):
            return guard_answer
        file, content_type = STATIC[name]
        if file not in self._static:
            self._static[file] = resources.files("openclaw_cron.console").joinpath("static", file).read_bytes()
        return web.Response(
            body=self._static[file],
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    def render(self, template: str, code: int = 200, **context: Any) -> web.Response:
        context.setdefault("now", self.clock())
        body = self.env.get_template(template).render(**context)
        response = web.Response(text=body, status=code, content_type="text/html", charset="utf-8")
        response.enable_compression()  # gzip/deflate when the browser accepts it (the SVGs compress ~10x)
        return response

    def denied(self, namespace: str, answer: web.Response) -> web.Response:
        """The archive's 401/403 answer as a page: the same code and the API server's wording."""
        title = {401: "Unauthorized", 403: "Forbidden"}.get(answer.status, "Error")
        return self.render("error.html", answer.status, namespace=namespace, title=title, message=_message(answer))

    async def _read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, self.store, *args, **kwargs)

    async def _scope(self, request: web.Request, who: Viewer, namespace: str) -> list[str] | web.Response:
        """The namespaces a page shows: the URL's, or (`?scope=all`) every readable one."""
        if request.query.get("scope") == "all":
            now = self.clock()
            known = {job_row(j).namespace for j in self.jobs(None)}
            known |= set(await self._read(queries.namespaces, now - STATS_WINDOW))
            return await who.readable(known)
        answer = await who.denial(namespace)
        if answer is not None:
            return self.denied(namespace, answer)
        return [namespace]

    def _rows(self, namespaces: list[str], request: web.Request) -> list[JobRow]:
        allowed = set(namespaces)
        source = self.jobs(namespaces[0] if len(namespaces) == 1 else None)
        rows = [job_row(j, self.default_tz) for j in source]
        rows = [r for r in rows if r.namespace in allowed]
        text = request.query.get("q", "").strip().lower()
        state = request.query.get("state", "")
        result = request.query.get("result", "")
        if text:
            rows = [r for r in rows if text in r.name.lower() or text in r.namespace.lower()]
        if state:
            rows = [r for r in rows if r.state == state]
        if result:
            rows = [r for r in rows if r.last_result == result]
        return sorted(rows, key=lambda r: (r.namespace, r.name))

    @staticmethod
    def _page_number(request: web.Request, total: int, size: int) -> tuple[int, int]:
        raw = request.query.get("page", "1")
        if not raw.isdigit() or int(raw) < 1:
            raise BadRequest(f"page: expected a whole number from 1, got {raw!r}")
        pages = max(1, math.ceil(total / size))
        return min(int(raw), pages), pages

    # -- pages ---------------------------------------------------------------------------------

    async def overview(self, request: web.Request, who: Viewer, namespace: str) -> web.StreamResponse:
        scope = await self._scope(request, who, namespace)
        if isinstance(scope, web.Response):
            return scope
        now = self.clock()
        rows = self._rows(scope, request)
        page, pages = self._page_number(request, len(rows), OVERVIEW_PAGE)
        shown = rows[(page - 1) * OVERVIEW_PAGE : page * OVERVIEW_PAGE]
        since = now - STATS_WINDOW
        totals = await self._read(
            queries.job_stats, scope, since, now + timedelta(seconds=1), None, sorted({r.name for r in shown})
        )
        strip = await self._read(
            queries.strips, sorted({r.namespace for r in shown}), sorted({r.name for r in shown}), since,
            now + timedelta(seconds=1),
        )  # fmt: skip
        params = {k: request.query.get(k, "") for k in ("scope", "q", "state", "result")}
        context = {
            "namespace": namespace,
            "scope": scope,
            "all": request.query.get("scope") == "all",
            "viewer": who.name,
            "rows": shown,
            "total_rows": len(rows),
            "page": page,
            "pages": pages,
            "params": params,
            "totals": totals,
            "stats": totals.by_job,
            "strips": {
                key: charts.strip_svg(runs, page_url(key[0], "job", name=key[1])) for key, runs in strip.items()
            },
            "relative": _relative,
            "states": STATES,
            "results": RESULTS,
            "now": now,
        }
        template = "_jobs.html" if request.query.get("partial") else "overview.html"
        return self.render(template, **context)

    def _window(self, request: web.Request, now: datetime) -> tuple[datetime, datetime]:
        q = request.query
        start = parse_instant("from", q["from"], now) if q.get("from") else now - timedelta(hours=24)
        if q.get("to"):
            to_raw = q["to"]
            if to_raw.startswith("+"):  # an age after now, e.g. +24h
                end = now + (now - parse_instant("to", to_raw[1:], now))
            else:
                end = parse_instant("to", to_raw, now)
        else:
            end = now + timedelta(hours=24)
        if end <= start:
            raise BadRequest(f"to: must be after from ({_iso(start)}), got {_iso(end)}")
        if end - start > MAX_WINDOW:
            raise BadRequest(f"to: the window may span at most {MAX_WINDOW.days} days, got {end - start}")
        return start, end

    async def timeline(self, request: web.Request, who: Viewer, namespace: str) -> web.StreamResponse:
        scope = await self._scope(request, who, namespace)
        if isinstance(scope, web.Response):
            return scope
        now = self.clock()
        start, end = self._window(request, now)
        rows = self._rows(scope, request)
        page, pages = self._page_number(request, len(rows), TIMELINE_PAGE)
        shown = rows[(page - 1) * TIMELINE_PAGE : page * TIMELINE_PAGE]
        buckets = await self._read(
            queries.timeline, sorted({r.namespace for r in shown}), sorted({r.name for r in shown}), start, end,
            charts.PLOT // 2,
        )  # fmt: skip
        ahead: dict[tuple[str, str], tuple[list[datetime], bool]] = {}
        horizon = min(end, now + timedelta(hours=24)) if end > now else end
        if end > now:
            for r in shown:
                ahead[(r.namespace, r.name)] = upcoming(r, max(now, start), horizon, self.default_tz)
        svg = charts.timeline_svg(
            [(r.namespace, r.name) for r in shown],
            buckets,
            ahead,
            start,
            end,
            now,
            # relative links within the page's namespace keep the many bars' markup small
            lambda ns, job: f"job?{urlencode({'name': job})}" if ns == namespace else page_url(ns, "job", name=job),
            lambda ns, run: f"run?{urlencode({'name': run})}" if ns == namespace else page_url(ns, "run", name=run),
        )
        span = end - start
        center = start + span / 2
        base = {k: request.query.get(k, "") for k in ("scope", "q", "state", "result")}

        def link(a: datetime, b: datetime) -> str:
            return page_url(namespace, "timeline", **base, **{"from": _iso(a), "to": _iso(b)})

        nav = {
            "earlier": link(start - span / 2, end - span / 2),
            "later": link(start + span / 2, end + span / 2),
            "zoom_in": link(center - span / 4, center + span / 4),
            "zoom_out": link(center - span, center + span) if span * 2 <= MAX_WINDOW else "",
            "day": link(now - timedelta(hours=24), now + timedelta(hours=24)),
            "week": link(now - timedelta(days=7), now + timedelta(hours=24)),
            "hour": link(now - timedelta(hours=1), now + timedelta(hours=1)),
        }
        return self.render(
            "timeline.html",
            namespace=namespace,
            scope=scope,
            all=request.query.get("scope") == "all",
            viewer=who.name,
            svg=svg,
            start=start,
            end=end,
            nav=nav,
            page=page,
            pages=pages,
            total_rows=len(rows),
            params={**base, "from": request.query.get("from", ""), "to": request.query.get("to", "")},
            bars=len(buckets),
        )

    def _find(self, namespace: str, name: str) -> JobRow | None:
        for body in self.jobs(namespace):
            row = job_row(body, self.default_tz)
            if row.namespace == namespace and row.name == name:
                return row
        return None

    async def job(self, request: web.Request, who: Viewer, namespace: str) -> web.StreamResponse:
        answer = await who.denial(namespace)
        if answer is not None:
            return self.denied(namespace, answer)
        name = request.query.get("name", "")
        if not name or "~" in name or "/" in name:
            raise BadRequest(f"name: not a job name: {name!r}")
        now = self.clock()
        row = self._find(namespace, name)
        q = request.query
        result = q.get("result") or None
        trigger = q.get("trigger") or None
        if result and result not in RESULTS:
            raise BadRequest(f"result: unknown value {result!r}; expected one of {', '.join(RESULTS)}")
        if trigger and trigger not in TRIGGERS:
            raise BadRequest(f"trigger: unknown value {trigger!r}; expected one of {', '.join(TRIGGERS)}")
        query = Query(namespace=namespace, job=name, result=result, trigger=trigger, limit=HISTORY_PAGE,
                      cursor=q.get("continue") or None)  # fmt: skip
        try:
            history, cont = await asyncio.to_thread(self.store.query, query)
        except ValueError as exc:
            raise BadRequest(str(exc).replace("cursor:", "continue:")) from None
        since = now - STATS_WINDOW
        totals = await self._read(queries.job_stats, [namespace], since, now + timedelta(seconds=1), [name])
        points = await self._read(queries.durations, namespace, name, since, now + timedelta(seconds=1))
        events: list[Mapping[str, Any]] | None = None
        events_note = ""
        if self.events is None:
            events_note = "Events are not available on this listener."
        elif not await who.may_events(namespace):
            events_note = f'You may not list events in namespace "{namespace}".'
        elif row is not None:
            try:
                events = sorted(
                    await self.events(namespace, name),
                    key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""),
                    reverse=True,
                )[:20]
            except Exception as exc:  # Events are an extra: the page still shows
                events_note = f"Events could not be read: {exc}"
        context = {
            "namespace": namespace,
            "viewer": who.name,
            "name": name,
            "row": row,
            "words": spec_words(row.body, self.default_tz) if row else [],
            "conditions": list((row.body.get("status") or {}).get("conditions") or []) if row else [],
            "status": dict(row.body.get("status") or {}) if row else {},
            "history": history,
            "run_name": run_name,
            "next_url": page_url(namespace, "job", name=name, result=result, trigger=trigger, **{"continue": cont})
            if cont
            else "",
            "filters": {"result": result or "", "trigger": trigger or ""},
            "stats": totals.by_job.get((namespace, name)),
            "chart": charts.duration_svg(points, since, now),
            "events": events,
            "events_note": events_note,
            "relative": _relative,
            "results": RESULTS,
            "triggers": TRIGGERS,
            "now": now,
        }
        template = "_job_live.html" if q.get("partial") else "job.html"
        return self.render(template, **context)

    async def _entry(self, request: web.Request, who: Viewer, namespace: str, sub: str
                     ) -> RunEntry | web.Response:  # fmt: skip
        answer = await who.denial(namespace, "get", sub)
        if answer is not None:
            return self.denied(namespace, answer)
        job, run_id, attempt = parse_run_name(request.query.get("name", ""))
        entry = await asyncio.to_thread(self.store.get, namespace, job, run_id, attempt)
        if entry is None:
            return self.render("error.html", 404, namespace=namespace, title="Not archived",
                               message=f"run {request.query.get('name')!r} is not in the archive (yet): "
                               "runs are archived when an attempt finishes")  # fmt: skip
        return entry

    async def run(self, request: web.Request, who: Viewer, namespace: str) -> web.StreamResponse:
        entry = await self._entry(request, who, namespace, "")
        if isinstance(entry, web.Response):
            return entry
        log_denied = await who.denial(namespace, "get", "log")
        attempts = await self._read(queries.attempts, namespace, entry.job, entry.run_id)
        row = self._find(namespace, entry.job)
        upstream, downstream = [], []
        for dep in row.depends_on if row else ():
            found = await self._read(queries.nearest_run, namespace, dep, entry.scheduled_time, before=True)
            upstream.append((dep, found))
        for body in self.jobs(namespace):
            other = job_row(body, self.default_tz)
            if entry.job in other.depends_on and other.namespace == namespace:
                found = await self._read(queries.nearest_run, namespace, other.name, entry.scheduled_time,
                                         before=False)  # fmt: skip
                downstream.append((other.name, found))
        log = entry.log
        cut = len(log) > LOG_SHOWN
        return self.render(
            "run.html",
            namespace=namespace,
            viewer=who.name,
            e=entry,
            name=run_name(entry),
            attempts=attempts,
            delivery=dict(entry.delivery),
            log=log[-LOG_SHOWN:] if log_denied is None else "",
            log_cut=cut,
            log_denied=_message(log_denied),
            upstream=upstream,
            downstream=downstream,
        )

    async def log(self, request: web.Request, who: Viewer, namespace: str) -> web.StreamResponse:
        entry = await self._entry(request, who, namespace, "log")
        if isinstance(entry, web.Response):
            return entry
        filename = f"{entry.job}-{entry.run_id}-{entry.attempt}.log".replace('"', "")
        return web.Response(
            text=entry.log,
            content_type="text/plain",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def _message(answer: web.Response | None) -> str:
    if answer is None:
        return ""
    try:
        return str(json.loads(answer.text or "{}").get("message") or "")
    except ValueError:
        return answer.reason or ""


@web.middleware
async def _headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:  # fmt: skip
    """Security headers on every console answer (the archive API's JSON answers keep theirs)."""
    console = "/console/" in request.path or request.path.endswith("/console")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if console:
            _secure(exc)
        raise
    if console:
        _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
