"""KubeReader, what gather_inputs reads through, against the emulated API server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openclaw_cron.kube import Kube
from openclaw_cron.scheduler.kube_reader import KubeReader

support = pytest.importorskip("support", reason="tests/support (the emulated API server) is missing")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with support.Cluster(tmp_path_factory.mktemp("reader"), kubelet=False) as c:
        c.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": "default"},
             "data": {"enabled": "yes"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "feature", "namespace": "default"},
             "data": {"on": base64.b64encode("tr\u00fce".encode()).decode()}},
        )  # fmt: skip
        yield c


async def test_configmaps_secrets_and_jobs(cluster: Any) -> None:
    import kubernetes

    conf = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(Path(cluster.kubeconfig)), client_configuration=conf)
    kube = Kube(conf)
    bodies = [{"metadata": {"name": "a", "namespace": "default"}}, {"metadata": {"name": "b", "namespace": "other"}}]
    reader = KubeReader(kube, lambda ns: [b for b in bodies if b["metadata"]["namespace"] == ns])
    try:
        assert await reader.get_configmap("default", "flags") == {"enabled": "yes"}
        assert await reader.get_configmap("default", "nope") is None
        assert await reader.get_secret_key("default", "feature", "on") == "tr\u00fce"
        assert await reader.get_secret_key("default", "feature", "off") is None
        assert await reader.get_secret_key("default", "missing", "on") is None
        assert [j["metadata"]["name"] for j in await reader.jobs_in_namespace("default")] == ["a"]
    finally:
        await reader.close()
        await kube.close()
