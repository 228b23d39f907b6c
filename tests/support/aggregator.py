"""The kube-apiserver's aggregation layer, for the emulated API server: proxy an API group to its server.

What kube-aggregator does for an available APIService, reduced to what the archive API needs:
the request is authenticated here (bearer token → user and groups, `system:anonymous` for an
unknown token, as with anonymous auth on; `Impersonate-User` as if the caller may impersonate),
then forwarded over TLS with the front-proxy client
certificate and the identity in X-Remote-User / X-Remote-Group; any X-Remote-* header the client
sent is dropped first, as the real proxy does. The answer is passed back unchanged.

    emulator.aggregated["archive.cron.openclaw.io"] = Aggregated(url, ssl_context, tokens)
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import aiohttp.web


@dataclass
class Aggregated:
    #: The extension server, e.g. https://127.0.0.1:8443 (the APIService's Service).
    url: str
    #: Trusts the extension server's CA (the APIService's caBundle) and presents the front-proxy client certificate.
    ssl_context: ssl.SSLContext
    #: bearer token → (user, groups); `system:authenticated` is added as the API server does.
    tokens: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def identity(self, headers: Mapping[str, str]) -> tuple[str, list[str]]:
        """Impersonation (`kubectl --as`; kubectl sends no bearer token over plain HTTP), else the token's user."""
        if headers.get("Impersonate-User"):
            groups = [g for g in (headers.get("Impersonate-Group") or "").split(",") if g]
            return headers["Impersonate-User"], [*groups, "system:authenticated"]
        authorization = headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        if token in self.tokens:
            user, groups = self.tokens[token]
            return user, [*groups, "system:authenticated"]
        return "system:anonymous", ["system:unauthenticated"]

    async def proxy(self, method: str, path_qs: str, headers: Mapping[str, str]) -> aiohttp.web.Response:
        user, groups = self.identity(headers)
        forwarded = [(k, v) for k, v in headers.items() if k.lower() in ("accept", "user-agent")]
        forwarded += [("X-Remote-User", user), *(("X-Remote-Group", g) for g in groups)]
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path_qs, headers=forwarded, ssl=self.ssl_context) as resp,
        ):
            body = await resp.read()
            return aiohttp.web.Response(
                body=body, status=resp.status, headers={"Content-Type": resp.headers.get("Content-Type", "")}
            )
