"""A cluster's front-proxy, for reaching the archive API as the kube-apiserver does (tests of any tier).

    access = FrontProxy(cluster, workdir)          # CAs, certificates, the auth ConfigMap, view roles
    env = access.operator_env(port)                 # give these to the operator process
    access.register(port)                           # the emulated aggregator now proxies the group
    kubeconfig = access.kubeconfig("alice")         # bearer token "alice-token" → user alice

It publishes `kube-system/extension-apiserver-authentication` with the front-proxy CA, makes the
serving certificate the APIService's caBundle would pin, and applies the chart's archive
ClusterRoles as `helm template` renders them (they aggregate into the emulator's bootstrap
`view`/`edit`/`admin`), so RBAC bindings in a test decide exactly as in a cluster.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from . import chart
from .aggregator import Aggregated
from .cluster import Cluster, write_kubeconfig
from .pki import CA

GROUP = "archive.cron.openclaw.io"
PROXY_CN = "front-proxy-client"


def default_roles() -> list[dict[str, Any]]:
    """The chart's archive ClusterRoles as `helm template` renders them (they aggregate into the
    emulator's bootstrap view/edit/admin)."""
    roles = [d for d in chart.render() if d.get("kind") == "ClusterRole" and "archive" in d["metadata"]["name"]]
    if not roles:
        raise RuntimeError("the chart renders no archive ClusterRoles")
    return roles


def binding(kind: str, name: str, role: str, user: str, namespace: str | None = None) -> dict[str, Any]:
    """A (Cluster)RoleBinding of ClusterRole `role` to User `user`."""
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


class FrontProxy:
    def __init__(self, cluster: Cluster, workdir: Path, *, apply: bool = True) -> None:
        self.cluster = cluster
        self.dir = workdir
        self.proxy_ca, self.serving_ca, self.foreign_ca = CA("front-proxy-ca"), CA("archive-serving-ca"), CA("other")
        self.serving = self.serving_ca.issue("archive.svc", server=True, hosts=("127.0.0.1", "localhost")).write(
            workdir, "serving"
        )
        self.proxy_client = self.proxy_ca.issue(PROXY_CN).write(workdir, "proxy")
        self.wrong_cn = self.proxy_ca.issue("not-the-aggregator").write(workdir, "wrong-cn")
        self.foreign = self.foreign_ca.issue(PROXY_CN).write(workdir, "foreign")
        if apply:
            cluster.apply(self.configmap(), *default_roles())

    def configmap(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
            "data": {
                "requestheader-client-ca-file": self.proxy_ca.pem,
                "requestheader-allowed-names": json.dumps([PROXY_CN]),
                "requestheader-username-headers": json.dumps(["X-Remote-User"]),
                "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
                "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
            },
        }

    def client_ssl(self, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """What the aggregator holds: the caBundle, and (by default) the front-proxy client certificate."""
        ctx = ssl.create_default_context(cadata=self.serving_ca.pem)
        crt, key = cert or self.proxy_client
        ctx.load_cert_chain(str(crt), str(key))
        return ctx

    def operator_env(self, port: int, direct_port: int = 0) -> dict[str, str]:
        cert, key = self.serving
        return {
            "OPENCLAW_CRON_ARCHIVE_PORT": str(port),
            "OPENCLAW_CRON_ARCHIVE_TLS_CERT": str(cert),
            "OPENCLAW_CRON_ARCHIVE_TLS_KEY": str(key),
            "OPENCLAW_CRON_ARCHIVE_DIRECT_PORT": str(direct_port),
        }

    def register(self, port: int, users: tuple[str, ...] = ("alice", "bob", "carol", "admin")) -> None:
        """The emulated API server proxies the archive group to https://127.0.0.1:`port`; bearer
        tokens `<user>-token` authenticate `users` (a static token file's entries)."""
        for user in users:
            self.cluster.emulator.tokens.issue(user, token=f"{user}-token")
        self.cluster.emulator.aggregated[GROUP] = Aggregated(f"https://127.0.0.1:{port}", self.client_ssl())

    def unregister(self) -> None:
        self.cluster.emulator.aggregated.pop(GROUP, None)

    def kubeconfig(self, user: str, namespace: str = "default") -> Path:
        """Bearer token `<user>-token` (unknown, hence 401, for a user `register` was not given)."""
        path = self.dir / f"{user}.kubeconfig"
        return write_kubeconfig(path, self.cluster.url, namespace, f"{user}-token", ca_pem=self.cluster.ca.pem)
