"""Integration tier fixtures: an emulated cluster per test, the official client bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import scenarios

from support import Cluster

_FAILED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True


def _dump_logs(cluster: Cluster) -> None:
    """On failure, the processes' log tails go to the captured output pytest shows."""
    for process in cluster._processes:
        print(f"----- {process.log_path.name} (last 6000 chars) -----")
        print(process.logs()[-6000:])
    if cluster.kubelet is not None:
        print("----- kubelet history -----")
        for entry in cluster.kubelet.history[-50:]:
            print(entry)


@pytest.fixture
def cluster_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """Start clusters with custom options: `cluster_factory(kubelet=False, emulator_options={...})`."""
    started: list[Cluster] = []

    def factory(**options: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", **options).start()
        started.append(cluster)
        return cluster

    yield factory
    failed = request.node.stash.get(_FAILED, False)
    try:
        if not failed and request.node.get_closest_marker("safety_net") is None:
            for cluster in started:  # the corrections metric stays 0 in normal scenarios
                for process in cluster._processes:
                    scenarios.assert_no_corrections(process)
    finally:
        for cluster in started:
            if failed:
                _dump_logs(cluster)
            cluster.stop()


@pytest.fixture
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    """API server + kubelet + the OpenClawCronJob CRD, on 127.0.0.1:<free port>."""
    return cluster_factory()


@pytest.fixture
def kube(cluster: Cluster) -> Iterator[Any]:
    """`kubernetes.client.ApiClient` for `cluster` (what the operator's own code uses)."""
    client = cluster.api_client()
    yield client
    client.close()
