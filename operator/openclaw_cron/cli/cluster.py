"""The few API calls the plugin makes, and the context every verb receives."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..api import GROUP, PLURAL, VERSION
from .common import RESOURCE, CliError


class Cluster:
    """The few API calls the plugin makes; bodies stay plain dicts."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        from kubernetes import client, config

        try:
            config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
            _contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            if context:
                active = next((c for c in _contexts if c.get("name") == context), active)
            current_ns = ((active or {}).get("context") or {}).get("namespace") or "default"
        except config.ConfigException as exc:
            if kubeconfig or context:
                raise CliError(f"kubeconfig: {exc}") from None
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                raise CliError(f"no usable kubeconfig: {exc}") from None
            current_ns = _incluster_namespace()
        self.namespace: str = namespace or current_ns
        self.custom = client.CustomObjectsApi()
        self._core: Any = None

    @property
    def core(self) -> Any:
        """CoreV1Api, created on first use: importing it costs ~2 s, most verbs never need it."""
        if self._core is None:
            from kubernetes import client

            self._core = client.CoreV1Api()
        return self._core

    @staticmethod
    def _json(resp: Any) -> Any:
        return json.loads(resp.data)

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or self.namespace
        resp = _api(
            lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, _preload_content=False),
            name,
        )
        data: dict[str, Any] = self._json(resp)
        return data

    def jobs(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            resp = _api(lambda: self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, _preload_content=False))
        else:
            resp = _api(
                lambda: self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, _preload_content=False
                )
            )
        items: list[dict[str, Any]] = self._json(resp).get("items") or []
        return sorted(items, key=lambda j: (j["metadata"].get("namespace", ""), j["metadata"]["name"]))

    def merge_patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = _api(
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body,
                _content_type="application/merge-patch+json",
                _preload_content=False,
            ),
            name,
        )
        data: dict[str, Any] = self._json(resp)
        return data

    def pods(self, selector: str) -> list[dict[str, Any]]:
        resp = _api(
            lambda: self.core.list_namespaced_pod(self.namespace, label_selector=selector, _preload_content=False)
        )
        items: list[dict[str, Any]] = self._json(resp).get("items") or []
        return items

    def stream_logs(self, pod: str, container: str | None, follow: bool, out: TextIO) -> None:
        resp = _api(
            lambda: self.core.read_namespaced_pod_log(
                pod, self.namespace, container=container, follow=follow, _preload_content=False
            ),
            pod,
            kind="pods",
        )
        try:
            for chunk in resp.stream(4096) if hasattr(resp, "stream") else [resp.data]:
                out.write(chunk.decode(errors="replace") if isinstance(chunk, bytes) else str(chunk))
                out.flush()
        finally:
            if hasattr(resp, "release_conn"):
                resp.release_conn()


def _incluster_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else "default"


def _api(call: Callable[[], Any], name: str | None = None, kind: str = RESOURCE) -> Any:
    """Run an API call; failures become kubectl-like 'Error from server (Reason): message'."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call()
    except ApiException as exc:
        message, reason = str(exc.reason or ""), ""
        try:
            body = json.loads(exc.body or "{}")
            message, reason = body.get("message", message), body.get("reason", "")
        except (TypeError, ValueError):
            pass
        if exc.status == 404 and name and not message:
            message = f'{kind} "{name}" not found'
        raise CliError(f"Error from server ({reason or exc.status}): {message}") from None
    except (HTTPError, OSError) as exc:
        raise CliError(f"unable to reach the API server: {exc}") from None


@dataclass
class Ctx:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep
    _cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            a = self.args
            self._cluster = Cluster(getattr(a, "kubeconfig", None), getattr(a, "context", None), a.namespace)
        return self._cluster
