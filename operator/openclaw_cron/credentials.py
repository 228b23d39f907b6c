"""Who the operator is to the API server: the official client's loaders, re-read as client-go does.

Every form users have goes through the `kubernetes` package's own loaders, so the operator
authenticates exactly as `kubectl` and kopf do with the same files:

- in a Pod, the projected ServiceAccount token (`/var/run/secrets/kubernetes.io/serviceaccount`),
  which the kubelet rotates: it is re-read every `REFRESH_SECONDS`, and at once after a 401;
- elsewhere the kubeconfig (`KUBECONFIG` or `~/.kube/config`): a token or `tokenFile`, client
  certificates, basic auth, or an exec credential plugin (EKS, GKE, AKS), which the client
  re-runs when its credential expires; a 401 loads the kubeconfig again, which re-runs the
  plugin and re-reads a `tokenFile`.

The official client keeps a bearer token under `api_key["BearerToken"]` and only
`Configuration.auth_settings()` knows every place it may be; reading it any other way sends
no credentials at all (the API server then sees `system:anonymous`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config

#: How long a read Authorization header is reused (client-go re-reads its token file every minute).
REFRESH_SECONDS = 60.0
#: A burst of 401s reloads the credentials once, not once per failed request.
RELOAD_DEBOUNCE_SECONDS = 1.0

Loader = Callable[[Any], None]
log = logging.getLogger("openclaw_cron")


def _in_cluster(conf: Any) -> None:
    config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]


def _kubeconfig(conf: Any) -> None:
    config.load_kube_config(client_configuration=conf)  # type: ignore[no-untyped-call]


def discover() -> Loader:
    """The loader that applies here: in-cluster when the Pod's ServiceAccount files are there, else the kubeconfig."""
    try:
        _in_cluster(client.Configuration())
    except config.ConfigException:
        return _kubeconfig
    return _in_cluster


def authorization_of(conf: Any) -> str:
    """The Authorization header the official client would send with `conf` ("" for none: certificates only)."""
    bearer = (conf.auth_settings().get("BearerToken") or {}).get("value")
    if bearer:
        return str(bearer)
    if conf.username or conf.password:
        return str(conf.get_basic_auth_token())
    return ""


class Credentials:
    """The current configuration (server, TLS files) and Authorization header, cheap per call.

    `loader` fills a fresh `Configuration`; without one (a configuration handed in by a test or
    a tool) the configuration's own refresh hook is all there is.
    """

    def __init__(self, conf: Any | None = None, loader: Loader | None = None, *, clock: Any = time.monotonic) -> None:
        if conf is None:
            loader = loader or discover()
            conf = client.Configuration()
            loader(conf)
        self.conf = conf
        self._loader = loader
        self._clock = clock
        self._header: tuple[float, str] | None = None
        self._reloaded = -RELOAD_DEBOUNCE_SECONDS
        #: Bumped whenever the TLS material may have changed (an exec plugin's new client certificate).
        self.generation = 0

    def tls(self) -> tuple[str | None, str | None, str | None, bool]:
        """CA file, client certificate and key files, verify: what the HTTP session is built from."""
        conf = self.conf
        return conf.ssl_ca_cert or None, conf.cert_file or None, conf.key_file or None, bool(conf.verify_ssl)

    def authorization(self) -> str:
        """The Authorization header, asked of the client at most every REFRESH_SECONDS.

        The official client's refresh hook re-reads a projected token file when a minute has
        passed and re-runs an exec plugin when its credential expired; asking it per call cost
        more than the request itself.
        """
        now = self._clock()
        if self._header is None or now - self._header[0] > REFRESH_SECONDS:
            self._header = (now, authorization_of(self.conf))
        return self._header[1]

    def reload(self) -> None:
        """After a 401: read every credential again now (rotated token, expired plugin credential)."""
        self._header = None
        now = self._clock()
        if self._loader is None or now - self._reloaded < RELOAD_DEBOUNCE_SECONDS:
            return
        self._reloaded = now
        fresh = client.Configuration()
        try:
            self._loader(fresh)
        except (config.ConfigException, OSError) as exc:
            # keep what we had; the next 401 tries again (the official client's message names no secret)
            log.warning("the API server refused our credentials and reading them again failed: %s", exc)
            return
        before = self.tls()
        self.conf = fresh
        if self.tls() != before:
            self.generation += 1
