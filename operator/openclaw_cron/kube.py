"""The few Kubernetes API calls the operator makes: an async client on the hot path.

Credentials and the server come from the official client's config loaders (`credentials.py`:
the in-cluster ServiceAccount token, or the kubeconfig with its client certificates, tokens and
exec plugins); requests go out on one aiohttp session in kopf's event loop, so a burst of Pod creates costs
no thread hand-offs. Like kube-controller-manager's client, every request passes a token
bucket (`qps`/`burst`; Pod creates go first when requests queue for it, and as many are in
flight as the server answers quickly: `throttle.py`), and transient failures (429 with
Retry-After, 5xx, resets, timeouts) are retried with exponential backoff and full jitter. Bodies travel as plain dicts.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kubernetes.client.exceptions import ApiException

from . import metrics
from .api import GROUP, PLURAL, VERSION
from .credentials import Credentials
from .throttle import FIRST, NORMAL, AdaptiveLimit, TokenBucket

MERGE = "application/merge-patch+json"
COMPONENT = "openclaw-cron-operator"
USER_AGENT = f"{COMPONENT}/0.1"
#: Retry budget for one call: attempts, and the backoff's base and cap (seconds).
ATTEMPTS = 5
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0
REQUEST_TIMEOUT = 30.0
#: Connections to the API server at most (HTTP/1.1: one request each): the adaptive create
#: limit's most (256) and room for the status writes and reads beside them.
CONNECTIONS = 320
#: How long an idle connection is kept (seconds): long enough that a job due every minute finds
#: the last burst's connections open (a burst that must open hundreds spends its first half
#: second on TLS handshakes), short of kube-apiserver's idle timeout (90 s, Go's default
#: transport's), so the client closes first and never reuses one the server is closing.
KEEPALIVE = 60.0


#: The key of a request's `sent` callback in aiohttp's per-request trace context.
SENT = "sent"


def _on_the_wire() -> aiohttp.TraceConfig:
    """Calls a request's `sent` (its trace context's) as its body is first written to a connection;
    taken out of the context as it is called, so a retry's or a second chunk's write calls nothing."""

    async def chunk_sent(_: aiohttp.ClientSession, ctx: Any, __: aiohttp.TraceRequestChunkSentParams) -> None:
        if isinstance(request := ctx.trace_request_ctx, MutableMapping) and (sent := request.pop(SENT, None)):
            sent()

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(chunk_sent)
    return trace


class Conflict(Exception):
    """The resource changed since we read it (optimistic concurrency)."""


def retry_delay(attempt: int, retry_after: str | None, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1-based): the server's Retry-After, else full jitter."""
    if retry_after:
        try:
            return min(BACKOFF_CAP * 4, max(0.0, float(retry_after)))
        except ValueError:
            pass
    cap = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return (rng or random).uniform(0, cap)


class Kube:
    """Async facade over the handful of endpoints the operator needs.

    `configuration`: an official client `Configuration` to use as it is (tests, tools); without
    one, the credentials are discovered (in-cluster, else the kubeconfig) and reloaded after a 401.
    """

    def __init__(
        self,
        configuration: Any | None = None,
        *,
        qps: float = 0.0,
        burst: int = 1,
        creates: AdaptiveLimit | None = None,
        timeout: float = REQUEST_TIMEOUT,
        credentials: Credentials | None = None,
    ) -> None:
        self.credentials = credentials or Credentials(configuration)
        self.timeout = timeout
        self.host = str(self.conf.host).rstrip("/")
        self.bucket = TokenBucket(qps, burst)
        #: Pod creates in flight, as many as the server answers quickly (see throttle.py).
        self.creates = creates or AdaptiveLimit()
        self._session: aiohttp.ClientSession | None = None
        self._session_generation = -1
        self._retired: list[aiohttp.ClientSession] = []
        #: API writes by kind, for the benchmark's writes-per-run figure.
        self.writes: dict[str, int] = {}
        #: When the last Pod create ended (monotonic): see `connections_kept`.
        self._last_create = -math.inf

    @property
    def conf(self) -> Any:
        return self.credentials.conf

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.host.startswith("https"):
            return False
        ca, cert, key, verify = self.credentials.tls()
        if not verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def session(self) -> aiohttp.ClientSession:
        generation = self.credentials.generation
        if self._session is not None and not self._session.closed and generation != self._session_generation:
            self._retired.append(self._session)  # new client certificate: new connections (in-flight ones finish)
            self._session = None
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=KEEPALIVE, ssl=self._ssl())
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT},
                trace_configs=[_on_the_wire()],
            )
            self._session_generation = generation
        return self._session

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if token := self.credentials.authorization():
            headers["Authorization"] = token
        return headers

    def _transport(self) -> dict[str, Any]:
        """Per-request options from the kubeconfig: `tls-server-name` and `proxy-url`."""
        options: dict[str, Any] = {}
        if self.conf.tls_server_name:
            options["server_hostname"] = self.conf.tls_server_name
        if self.conf.proxy:
            options["proxy"] = self.conf.proxy
        return options

    def reauthorize(self) -> None:
        """After a 401: read the credentials again (a rotated token, an expired plugin credential)."""
        self.credentials.reload()

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str | None = None,
        raw: bool = False,
        priority: int = NORMAL,
        sent: Callable[[], None] | None = None,
    ) -> Any:
        """One API call, rate-limited (by `priority` when it must wait) and retried; ApiException for a final error.

        `sent` is called once, as the body first goes on the wire (not for a request without one).
        """
        url = self.host + path + (("?" + urlencode(query)) if query else "")
        trace = None if sent is None else {SENT: sent}  # one for all attempts: see _on_the_wire
        data = None if body is None else json.dumps(body)
        if data is not None and content_type is None:
            content_type = "application/json"
        for attempt in range(1, ATTEMPTS + 1):
            await self.bucket.acquire(priority)
            retry_after: str | None = None
            try:
                async with self.session().request(
                    method,
                    url,
                    data=data,
                    headers=self._headers(content_type),
                    trace_request_ctx=trace,
                    **self._transport(),
                ) as resp:
                    text = await resp.text()
                    if resp.status < 400:
                        return text if raw else (json.loads(text) if text else {})
                    metrics.api_error(operation, str(resp.status))
                    if resp.status == 401 and attempt == 1:
                        self.reauthorize()  # a rotated token: read it again, once
                        continue
                    if resp.status == 429 or resp.status >= 500:
                        retry_after = resp.headers.get("Retry-After")
                        if attempt < ATTEMPTS:
                            await asyncio.sleep(retry_delay(attempt, retry_after))
                            continue
                    error = ApiException(status=resp.status, reason=resp.reason or "")
                    error.body, error.headers = text, dict(resp.headers)
                    raise error
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                metrics.api_error(operation, type(exc).__name__)
                if attempt >= ATTEMPTS:
                    raise
                await asyncio.sleep(retry_delay(attempt, None))
        raise AssertionError("unreachable")  # pragma: no cover

    def connections_kept(self, within: float) -> bool:
        """Whether the last burst's connections are still open `within` seconds from now (its last
        create is less than KEEPALIVE ago then): a job due every minute needs no warm-up, and its
        adaptive limit is what that burst taught it (a warm-up before such a burst made it slower
        at 1,000 jobs, docs/bench.md)."""
        return time.monotonic() + within - self._last_create < KEEPALIVE

    async def warm_up(self, creates: int, within: float) -> int:
        """Open connections for a burst of `creates` Pod creates due in `within` seconds, and start
        the adaptive limit at as many as answered by then.

        HTTP/1.1 carries one request a connection, so a burst's creates past the connections open
        each wait for a TLS handshake, which the server does while it is busiest (client-go sends
        all over one HTTP/2 connection and has none). So: `GET /version` at once on as many
        connections as the burst may use (every user may read it: system:public-info-viewer).
        They are requests like any other (the rate limit, a 401's credentials read again), no
        more than the limit gives back by the burst (`qps` x `within`, at most its `burst`), so
        the creates find it full. Idle connections are reused, so a warm install pays a cheap
        read each; one answered late is still open for the burst (it is not cancelled), but does
        not count. Returns how many answered within `within` seconds.
        """
        n = min(creates, self.creates.most)
        if self.bucket.qps > 0:
            n = min(n, self.bucket.burst, int(self.bucket.qps * within))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within

        async def one() -> bool:
            try:
                await self.request("GET", "/version", operation="version.get", raw=True)
            except (ApiException, aiohttp.ClientError, TimeoutError, OSError):
                return False
            return loop.time() <= deadline

        answered = sum(await asyncio.gather(*(one() for _ in range(n))))
        self.creates.prime(answered)
        metrics.pod_creates(self.creates.in_flight, self.creates.limit)
        return answered

    def _count(self, what: str) -> None:
        self.writes[what] = self.writes.get(what, 0) + 1

    @staticmethod
    def _pods(namespace: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{quote(namespace)}/pods" + (f"/{quote(name)}" if name else "")

    @staticmethod
    def _jobs(namespace: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace)}/{PLURAL}"
        return base + (f"/{quote(name)}" if name else "")

    async def create_pod(self, body: dict[str, Any], *, sent: Callable[[], None] | None = None) -> bool:
        """Create a Pod; False when it already exists (the run was started before).

        `sent` is called once, as the create goes on the wire: a caller that bounds its own work
        can count a create at the server as no longer its own. Not before: on Python 3.11 the
        body is written by a task of its own, and a slot given back sooner starts another pass
        whose work runs ahead of that write, so a burst's passes would all compute before any
        create left (a 200-job burst's first create 130 ms late).
        """
        self._count("pods.create")
        path = self._pods(body["metadata"]["namespace"])
        try:
            async with self.creates.slot() as answer:
                metrics.pod_creates(self.creates.in_flight, self.creates.limit)
                try:
                    await self.request("POST", path, operation="pods.create", body=body, priority=FIRST, sent=sent)
                except ApiException as exc:
                    if exc.status == 409:
                        return False
                    if exc.status is None or exc.status == 429 or exc.status >= 500:
                        answer.overloaded()
                    raise
                except (OSError, TimeoutError, aiohttp.ClientError):
                    answer.overloaded()
                    raise
            return True
        finally:
            self._last_create = time.monotonic()
            metrics.pod_creates(self.creates.in_flight, self.creates.limit)

    async def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete a Pod; False when it was already gone."""
        self._count("pods.delete")
        try:
            await self.request("DELETE", self._pods(namespace, name), operation="pods.delete")
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    def _pods_of(self, scope: str) -> str:
        return self._pods(scope) if scope else "/api/v1/pods"

    async def list_pods(self, scope: str, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        """Pods in one namespace ("": all), in pages, and the resourceVersion to watch from."""
        items: list[dict[str, Any]] = []
        cont, rv = "", ""
        while True:
            query = {"labelSelector": label_selector, "limit": "500", **({"continue": cont} if cont else {})}
            page = await self.request("GET", self._pods_of(scope), operation="pods.list", query=query)
            items += page.get("items") or []
            meta = page.get("metadata") or {}
            rv, cont = meta.get("resourceVersion") or rv, meta.get("continue") or ""
            if not cont:
                return items, rv

    async def watch_pods(
        self, scope: str, label_selector: str, resource_version: str, seconds: int
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events after `resource_version`, until the server ends the stream."""
        query = {
            "watch": "true",
            "labelSelector": label_selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        url = self.host + self._pods_of(scope) + "?" + urlencode(query)
        # No total timeout: a stream lasts `seconds`; silence well past that is a dead connection.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=seconds + self.timeout)
        await self.bucket.acquire()
        async with self.session().get(url, headers=self._headers(None), timeout=timeout, **self._transport()) as resp:
            if resp.status >= 400:
                metrics.api_error("pods.watch", str(resp.status))
                if resp.status == 401:
                    self.reauthorize()
                error = ApiException(status=resp.status, reason=resp.reason or "")
                error.body = await resp.text()
                raise error
            parts: list[bytes] = []  # one event per line; a line may span chunks
            async for chunk in resp.content.iter_any():
                while (end := chunk.find(b"\n")) >= 0:
                    parts.append(chunk[:end])
                    line, parts, chunk = b"".join(parts), [], chunk[end + 1 :]
                    if line.strip():
                        yield json.loads(line)
                parts.append(chunk)

    async def delete_pods(self, namespace: str, label_selector: str) -> None:
        """Prune several finished Pods in one write (deletecollection; the caller checks the selector)."""
        self._count("pods.deletecollection")
        await self.request(
            "DELETE", self._pods(namespace), operation="pods.deletecollection", query={"labelSelector": label_selector}
        )

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            pod: dict[str, Any] = await self.request("GET", self._pods(namespace, name), operation="pods.get")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return pod

    async def read_pod_log(
        self, namespace: str, name: str, limit_bytes: int, tail_lines: int | None = None
    ) -> str | None:
        """At most `limit_bytes` of a Pod's log (of its last `tail_lines` lines); None when it is gone."""
        query = {"limitBytes": str(limit_bytes)}
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        try:
            text: str = await self.request(
                "GET", self._pods(namespace, name) + "/log", operation="pods.log", query=query, raw=True
            )
        except ApiException as exc:
            if exc.status in (400, 404):
                return None
            raise
        return text

    async def read_log_tail(self, namespace: str, name: str, limit_bytes: int) -> str | None:
        """The END of a Pod's log in at most `limit_bytes` (the log API's `limitBytes` reads the head).

        When the head fills the limit, the log is read again from as many lines before its end
        as fitted in the head, and the last `limit_bytes` of that are kept.
        """
        head = await self.read_pod_log(namespace, name, limit_bytes)
        if head is None or len(head.encode()) < limit_bytes:
            return head
        tail = await self.read_pod_log(namespace, name, 2 * limit_bytes, tail_lines=max(1, head.count("\n")))
        if tail is None:
            return head
        return tail.encode()[-limit_bytes:].decode("utf-8", "ignore")

    async def secret_key_exists(self, namespace: str, name: str, key: str) -> bool | None:
        """True/False whether Secret `name` has `key`; None when the Secret does not exist.

        The value is never decoded, logged or kept.
        """
        try:
            data = await self.request(
                "GET", f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}", operation="secrets.get"
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return key in (data.get("data") or {}) or key in (data.get("stringData") or {})

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            job: dict[str, Any] = await self.request("GET", self._jobs(namespace, name), operation="jobs.get")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return job

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch /status, guarded by resourceVersion so a stale writer gets Conflict."""
        self._count("status.patch")
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            job: dict[str, Any] = await self.request(
                "PATCH",
                self._jobs(namespace, name) + "/status",
                operation="status.patch",
                body=body,
                content_type=MERGE,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"{namespace}/{name}") from exc
            raise
        return job

    async def delete_job(self, namespace: str, name: str, uid: str) -> None:
        """Delete the resource (deleteAfterRun), only if it is still the same object."""
        self._count("job.delete")
        try:
            await self.request(
                "DELETE",
                self._jobs(namespace, name),
                operation="jobs.delete",
                body={"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}},
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def create_event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        """A core/v1 Event on `obj` (the job), as `kubectl describe` and `get events` show them."""
        meta = obj.get("metadata") or {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'job')}.", "namespace": meta.get("namespace")},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._count("events.create")
        await self.request(
            "POST",
            f"/api/v1/namespaces/{quote(str(meta.get('namespace')))}/events",
            operation="events.create",
            body=event,
        )

    async def close(self) -> None:
        for session in [*self._retired, self._session]:
            if session is not None:
                await session.close()
