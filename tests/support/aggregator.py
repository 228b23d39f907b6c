"""The kube-apiserver's aggregation layer, for the emulated API server: proxy an API group to its server.

What kube-aggregator does for an available APIService, reduced to what the archive API needs:
the emulator has authenticated the request already (authn.py: client certificate or bearer
token, after impersonation) and authorized it against RBAC as kube-apiserver does before any
proxying; the identity is then forwarded over TLS with the front-proxy client certificate in
X-Remote-User / X-Remote-Group. Any X-Remote-* header the client sent is dropped first, as the
real proxy does. The extension server authorizes again itself (SubjectAccessReview). The answer
is passed back unchanged.

    emulator.aggregated["archive.cron.openclaw.io"] = Aggregated(url, ssl_context)
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import aiohttp.typedefs
import aiohttp.web

from .authn import Identity

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length", "content-encoding", "date", "server"}  # fmt: skip


@dataclass
class Aggregated:
    #: The extension server, e.g. https://127.0.0.1:8443 (the APIService's Service).
    url: str
    #: Trusts the extension server's CA (the APIService's caBundle) and presents the front-proxy client certificate.
    ssl_context: ssl.SSLContext
    #: The name the serving certificate must carry (the APIService's `<service>.<namespace>.svc`).
    server_hostname: str | None = None

    async def proxy(
        self, method: str, path_qs: str, headers: Mapping[str, str], identity: Identity
    ) -> aiohttp.web.Response:
        forwarded = [(k, v) for k, v in headers.items() if k.lower() in ("accept", "user-agent")]
        forwarded += [("X-Remote-User", identity.user), *(("X-Remote-Group", g) for g in identity.groups)]
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                self.url + path_qs,
                headers=forwarded,
                ssl=self.ssl_context,
                server_hostname=self.server_hostname,
            ) as resp,
        ):
            body = await resp.read()
            # As the real proxy (httputil.ReverseProxy) does: every answer header but the hop-by-hop ones
            # (Content-Security-Policy, Content-Disposition, Location... reach the client).
            headers = [(k, v) for k, v in resp.headers.items() if k.lower() not in _HOP_BY_HOP]
            return aiohttp.web.Response(body=body, status=resp.status, headers=aiohttp.typedefs.CIMultiDict(headers))
