"""Reading the run archive: through the API server (kubectl's credentials, RBAC per namespace) or a direct URL.

Through the API server the plugin GETs `/apis/archive.cron.openclaw.io/v1alpha1/...`, which
the aggregation layer proxies to the operator; `--archive-url http://127.0.0.1:8444` (after
`kubectl -n <ns> port-forward deploy/<operator> 8444`) talks to the operator directly.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from .cluster import Ctx, _api
from .common import CliError

BASE = "/apis/archive.cron.openclaw.io/v1alpha1"
SEP = "~"
RESOURCE = "runs.archive.cron.openclaw.io"
#: Runs fetched per request while paging.
PAGE = 500
#: What an API server answers for a path no API serves (and the archive for a path it does not know).
_NOT_SERVED = "the server could not find the requested resource"
MISSING = (
    "the run archive API (archive.cron.openclaw.io/v1alpha1) is not served by this cluster: install the "
    "operator with Helm (archive.enabled and archive.api.enabled, the defaults; see docs/archive.md), or read "
    "the archive directly with --archive-url after `kubectl port-forward`"
)


def run_name(job: str, run_id: str, attempt: int | None = None) -> str:
    return f"{job}{SEP}{run_id}" + (f"{SEP}{attempt}" if attempt else "")


def namespace_of(ctx: Ctx) -> str:
    """-n, else the kubeconfig's namespace; with --archive-url and no usable kubeconfig, `default`."""
    if ctx.args.namespace:
        return str(ctx.args.namespace)
    try:
        return ctx.cluster.namespace
    except CliError:
        if getattr(ctx.args, "archive_url", None):
            return "default"
        raise


class Archive:
    """GETs against the archive API; errors become the same messages kubectl prints."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.url = (getattr(ctx.args, "archive_url", None) or "").rstrip("/")

    def _path(self, namespace: str | None, name: str = "", sub: str = "") -> str:
        path = f"{BASE}/namespaces/{quote(namespace)}/runs" if namespace else f"{BASE}/runs"
        if name:
            path += f"/{quote(name)}"
        if sub:
            path += f"/{sub}"
        return path

    def _get(self, path: str, query: dict[str, str], what: str | None = None) -> bytes:
        if self.url:
            return self._direct(path, query)
        cluster = self.ctx.cluster
        client = cluster.custom.api_client

        def call() -> bytes:
            from kubernetes.client.exceptions import ApiException

            request = client.param_serialize(
                "GET",
                path,
                query_params=list(query.items()),
                header_params={"Accept": "application/json, text/plain"},
                auth_settings=["BearerToken"],
            )
            resp = client.call_api(*request, _request_timeout=60)
            data: bytes = resp.read()
            if not 200 <= resp.status <= 299:
                raise ApiException(status=resp.status, reason=resp.reason, body=data.decode(errors="replace"))
            return data

        try:
            result: bytes = _api(call, what, kind=RESOURCE)
        except CliError as exc:
            if str(exc) in (f"Error from server (NotFound): {_NOT_SERVED}", "Error from server (404): Not Found"):
                raise CliError(MISSING) from None
            raise
        return result

    def check_served(self) -> None:
        """CliError(MISSING) unless the API server serves the archive group (its discovery document)."""
        self._get(BASE, {})

    def _direct(self, path: str, query: dict[str, str]) -> bytes:
        import urllib.error
        import urllib.request

        url = self.url + path + (("?" + urlencode(query)) if query else "")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {}
            reason, message = body.get("reason") or exc.code, body.get("message") or exc.reason
            raise CliError(f"Error from server ({reason}): {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CliError(f"unable to reach the archive at {self.url}: {exc}") from None

    def runs(self, namespace: str | None, query: dict[str, str], limit: int) -> list[dict[str, Any]]:
        """Up to `limit` runs, newest first, following `continue` across pages."""
        items: list[dict[str, Any]] = []
        cont = ""
        while len(items) < limit:
            q = {**query, "limit": str(min(PAGE, limit - len(items)))}
            if cont:
                q["continue"] = cont
            page = json.loads(self._get(self._path(namespace), q))
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue") or ""
            if not cont:
                break
        return items

    def log(self, namespace: str, name: str) -> str:
        return self._get(self._path(namespace, name, "log"), {}, name).decode(errors="replace")
