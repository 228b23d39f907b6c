"""The harness itself: the emulated API server behaves like kube-apiserver where we rely on it.

Each semantic is checked through real clients — the kubectl binary and the official
`kubernetes` client (what the operator uses) — and kopf end to end, so that a test
passing on the emulator means something on a real cluster.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from support import Cluster, Fault, wait_for

GROUP, VERSION, PLURAL = "cron.openclaw.io", "v1alpha1", "openclawcronjobs"
API_VERSION = f"{GROUP}/{VERSION}"


def ocj(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "OpenClawCronJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedule": {"kind": "cron", "expr": "0 7 * * *"},
            "payload": {"kind": "agentTurn", "message": "hi"},
            **spec,
        },
    }


def pod(name: str, *, command: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36"}
    if command:
        container["command"] = command
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", **spec.pop("metadata", {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def api_error(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    return dict(json.loads(exc.value.body))


def custom(kube: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def get_ocj(kube: Any, name: str) -> dict[str, Any]:
    return dict(custom(kube).get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name))


# --- discovery and CRDs ----------------------------------------------------------------------


def test_discovery_serves_groups_and_applied_crds(cluster: Cluster, kube: Any) -> None:
    resources = cluster.kubectl("api-resources").stdout
    for expected in (
        "pods",
        "namespaces",
        "secrets",
        "leases",
        "customresourcedefinitions",
        "kopfpeerings",
        "clusterkopfpeerings",
        "openclawcronjobs",
    ):
        assert expected in resources
    assert " ocj " in resources
    groups = {g.name for g in client.ApisApi(kube).get_api_versions().groups}
    assert {"apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io", "kopf.dev", GROUP} <= groups
    ocj_resources = client.CustomObjectsApi(kube).get_api_resources(GROUP, VERSION).resources
    assert {r.name for r in ocj_resources} == {PLURAL, f"{PLURAL}/status"}

    # A CRD applied by a user becomes a served resource, and stops being one when deleted.
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wdg"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer", "maximum": 10}}}
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.apply(crd)
    established = cluster.kubectl_json("get", "crd", "widgets.example.com")["status"]["conditions"]
    assert {"type": "Established", "status": "True"}.items() <= established[-1].items()
    cluster.kubectl(
        "create",
        "-f",
        "-",
        input=yaml.safe_dump(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
        ),
    )
    assert cluster.kubectl("get", "wdg", "w", "-o", "jsonpath={.spec.size}").stdout == "3"
    # Structural schema: undeclared fields are refused by kubectl's strict validation, pruned otherwise.
    bad = cluster.kubectl(
        "apply",
        "-f",
        "-",
        check=False,
        input=yaml.safe_dump(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}, "spec": {"colour": 1}}
        ),
    )
    assert bad.returncode != 0 and 'unknown field "spec.colour"' in bad.stderr
    created = custom(kube).create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "y"}, "spec": {"size": 1, "colour": 2}},
    )
    assert created["spec"] == {"size": 1}
    with pytest.raises(ApiException) as exc:
        custom(kube).patch_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "y", {"spec": {"size": 11}}
        )
    assert exc.value.status == 422 and "should be less than or equal to 10" in api_error(exc)["message"]
    cluster.kubectl("delete", "crd", "widgets.example.com")
    assert cluster.kubectl("get", "wdg", check=False).returncode != 0


# --- object metadata, generation, status subresource -----------------------------------------


def test_apply_generation_and_status_subresource(cluster: Cluster, kube: Any) -> None:
    cluster.apply(ocj("morning"))
    first = get_ocj(kube, "morning")
    meta = first["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert "kubectl.kubernetes.io/last-applied-configuration" in meta["annotations"]
    rv = int(meta["resourceVersion"])

    # Spec changes bump generation; metadata changes bump only resourceVersion.
    cluster.kubectl("patch", "ocj", "morning", "--type", "merge", "-p", '{"spec": {"suspend": true}}')
    second = get_ocj(kube, "morning")
    assert second["metadata"]["generation"] == 2 and int(second["metadata"]["resourceVersion"]) > rv
    cluster.kubectl("annotate", "ocj", "morning", "example.com/note=x")
    cluster.kubectl("label", "ocj", "morning", "team=ops")
    third = get_ocj(kube, "morning")
    assert third["metadata"]["generation"] == 2
    assert third["metadata"]["labels"] == {"team": "ops"}
    assert int(third["metadata"]["resourceVersion"]) > int(second["metadata"]["resourceVersion"])

    # A no-op patch is not a write: same resourceVersion (and no watch event).
    same = custom(kube).patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "morning", {"metadata": {"labels": {"team": "ops"}}}
    )
    assert same["metadata"]["resourceVersion"] == third["metadata"]["resourceVersion"]

    # /status changes only status, and does not bump generation.
    patched = custom(kube).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "morning",
        {"status": {"state": "Scheduled"}, "spec": {"suspend": False}, "metadata": {"labels": {"x": "y"}}},
    )
    assert patched["status"]["state"] == "Scheduled"
    assert patched["spec"]["suspend"] is True and patched["metadata"]["labels"] == {"team": "ops"}
    assert patched["metadata"]["generation"] == 2

    # The main resource ignores status (PATCH and PUT alike).
    main = custom(kube).patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "morning", {"status": {"state": "Invalid"}}
    )
    assert main["status"]["state"] == "Scheduled"
    body = get_ocj(kube, "morning")
    body["status"] = {"state": "Running"}
    body["spec"]["suspend"] = False
    replaced = custom(kube).replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "morning", body)
    assert replaced["status"]["state"] == "Scheduled" and replaced["metadata"]["generation"] == 3

    # Optimistic concurrency: a stale resourceVersion is a 409 Conflict.
    body["metadata"]["resourceVersion"] = meta["resourceVersion"]
    with pytest.raises(ApiException) as exc:
        custom(kube).replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "morning", body)
    assert exc.value.status == 409 and api_error(exc)["reason"] == "Conflict"

    # kopf's JSON patch with a resourceVersion test: 422 when stale, applied when fresh.
    current = get_ocj(kube, "morning")["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]
    json_patch = "application/json-patch+json"
    with pytest.raises(ApiException) as exc:
        custom(kube).patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "morning", ops, _content_type=json_patch
        )
    assert exc.value.status == 422
    ops[0]["value"] = current
    done = custom(kube).patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "morning", ops, _content_type=json_patch
    )
    assert done["metadata"]["finalizers"] == ["x/y"]


def test_error_bodies_and_generate_name(cluster: Cluster, kube: Any) -> None:
    core = client.CoreV1Api(kube)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"token": "t0k"}}
    created = core.create_namespaced_secret("default", secret)
    assert created.data == {"token": "dDBr"}
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret("default", secret)
    assert exc.value.status == 409
    assert api_error(exc) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "s" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "s", "kind": "secrets"},
        "code": 409,
    }
    with pytest.raises(ApiException) as exc:
        custom(kube).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, ocj("dup")) and custom(
            kube
        ).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, ocj("dup"))
    assert api_error(exc)["details"] == {"name": "dup", "kind": PLURAL, "group": GROUP}
    assert api_error(exc)["message"] == f'{PLURAL}.{GROUP} "dup" already exists'
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("missing", "default")
    assert exc.value.status == 404
    assert api_error(exc)["reason"] == "NotFound" and api_error(exc)["message"] == 'pods "missing" not found'
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret("nowhere", secret)
    assert exc.value.status == 404 and api_error(exc)["message"] == 'namespaces "nowhere" not found'
    assert 'secrets "s" already exists' in cluster.kubectl("create", "secret", "generic", "s", check=False).stderr

    made = core.create_namespaced_secret(
        "default", {"metadata": {"generateName": "gen-", "labels": {"app": "x"}}, "type": "Opaque"}
    )
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret("default", {"metadata": {"name": "bad", "labels": {"l": "x" * 64}}})
    assert exc.value.status == 422 and api_error(exc)["reason"] == "Invalid"
    # A Pod naming a service account that does not exist is refused, like the admission plugin does.
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("default", pod("p", serviceAccountName="robot"))
    assert exc.value.status == 403 and 'serviceaccount "robot" not found' in api_error(exc)["message"]


def test_label_and_field_selectors(cluster_factory: Any) -> None:
    cluster = cluster_factory(kubelet=False)
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "x"}), ("c", {"app": "y", "tier": "db"})):
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})

    def names(*args: str) -> list[str]:
        return [i["metadata"]["name"] for i in cluster.kubectl_json("get", "cm", *args)["items"]]

    assert names("-l", "app=x,tier") == ["a"]
    assert names("-l", "app in (x,y),!tier") == ["b"]
    assert names("-l", "app!=x") == ["c"]
    assert names("--field-selector", "metadata.name=b") == ["b"]
    assert names("--field-selector", "metadata.name!=b", "-l", "app") == ["a", "c"]
    assert cluster.kubectl("get", "cm", "-l", "a b", check=False).returncode != 0
    # Paginated lists (kubectl asks for chunks of 500; here chunks of 1).
    assert names("--chunk-size", "1") == ["a", "b", "c"]


# --- deletion: finalizers, garbage collection, namespaces --------------------------------------


def test_finalizers_hold_deletion_until_removed(cluster: Cluster, kube: Any) -> None:
    cluster.apply(
        {**ocj("held"), "metadata": {"name": "held", "namespace": "default", "finalizers": ["example.com/cleanup"]}}
    )
    cluster.kubectl("delete", "ocj", "held", "--wait=false")
    held = get_ocj(kube, "held")
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == ["example.com/cleanup"]
    with pytest.raises(ApiException) as exc:  # no new finalizers once deleting
        custom(kube).patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "held", {"metadata": {"finalizers": ["a/b", "example.com/cleanup"]}}
        )
    assert exc.value.status == 422
    # Deleting again changes nothing; removing the last finalizer deletes it.
    cluster.kubectl("delete", "ocj", "held", "--wait=false")
    custom(kube).patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "held", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as exc:
        get_ocj(kube, "held")
    assert exc.value.status == 404


def test_owner_deletion_garbage_collects_pods(cluster_factory: Any) -> None:
    cluster = cluster_factory(kubelet=False)
    kube = cluster.api_client()
    core = client.CoreV1Api(kube)
    for name in ("owner", "keeper"):
        owner = custom(kube).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, ocj(name))
        ref = {
            "apiVersion": API_VERSION,
            "kind": "OpenClawCronJob",
            "name": name,
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        core.create_namespaced_pod("default", pod(f"{name}-run", metadata={"ownerReferences": [ref]}))
    core.create_namespaced_pod("default", pod("bystander"))
    # A dependent created for an owner that no longer exists is collected too.
    ghost = {"apiVersion": API_VERSION, "kind": "OpenClawCronJob", "name": "ghost", "uid": "0000-gone"}
    core.create_namespaced_pod("default", pod("orphan", metadata={"ownerReferences": [ghost]}))

    cluster.kubectl("delete", "ocj", "owner")
    custom(kube).delete_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "keeper", propagation_policy="Orphan"
    )
    wait_for(
        lambda: {p["metadata"]["name"] for p in cluster.pods()} == {"keeper-run", "bystander"},
        10,
        message="owner-run and orphan collected, keeper-run orphaned",
    )
    assert "ownerReferences" not in cluster.pod("keeper-run")["metadata"]

    # Deleting a namespace deletes its content, then the namespace.
    cluster.kubectl("create", "namespace", "scratch")
    cluster.kubectl("create", "configmap", "c", "-n", "scratch")
    cluster.kubectl("delete", "namespace", "scratch", "--timeout=20s")
    assert cluster.get("v1", "configmaps", "scratch", "c") is None
    kube.close()


# --- watches ---------------------------------------------------------------------------------


def test_watch_with_the_official_client(cluster_factory: Any) -> None:
    cluster = cluster_factory(kubelet=False, emulator_options={"watch_cache_size": 20})
    kube = cluster.api_client()
    api = custom(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, ocj("first"))
    listed = api.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, label_selector="w=1")
    assert listed["items"] == []
    since = listed["metadata"]["resourceVersion"]

    def changes() -> None:
        time.sleep(0.3)
        api.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, {**ocj("watched"), "metadata": {"name": "watched", "labels": {"w": "1"}}}
        )
        api.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "watched", {"spec": {"suspend": True}})
        api.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "first", {"metadata": {"labels": {"w": "1"}}}
        )  # starts matching: ADDED
        api.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "first", {"metadata": {"labels": {"w": "2"}}}
        )  # stops matching: DELETED
        api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "watched")

    writer = threading.Thread(target=changes)
    writer.start()
    seen = []
    stream = watch.Watch().stream(
        api.list_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        label_selector="w=1",
        resource_version=since,
        timeout_seconds=5,
    )
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 5:
            break
    writer.join()
    assert seen == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("ADDED", "first"),
        ("DELETED", "first"),
        ("DELETED", "watched"),
    ]

    # Resuming from an old resourceVersion replays; one older than the watch cache is 410 Gone.
    replay = [
        e["type"]
        for e in watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            field_selector="metadata.name=watched",
            resource_version=since,
            timeout_seconds=1,
        )
    ]
    assert replay == ["ADDED", "MODIFIED", "DELETED"]
    for i in range(25):
        api.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "first", {"spec": {"timeoutSeconds": 100 + i}}
        )
    with pytest.raises(ApiException) as exc:
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                "default",
                PLURAL,
                resource_version=since,
                timeout_seconds=1,
            )
        )
    assert exc.value.status == 410
    kube.close()


# --- kubectl output --------------------------------------------------------------------------


def test_kubectl_tables_and_output_formats(cluster: Cluster, kube: Any) -> None:
    cluster.apply(ocj("morning"))
    custom(kube).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "morning",
        {
            "status": {
                "schedule": "0 7 * * * (UTC)",
                "state": "Scheduled",
                "lastScheduleTime": "2020-01-01T07:00:00Z",
                "lastRunResult": "Succeeded",
                "nextRunTime": "2030-01-01T07:00:00Z",
                "consecutiveFailures": 0,
            }
        },
    )
    out = cluster.kubectl("get", "ocj").stdout.splitlines()
    header = out[0].split()
    assert header[:3] == ["NAME", "SCHEDULE", "SUSPEND"] and header[-1] == "AGE"
    for column in ("STATE", "LAST", "RUN", "RESULT", "NEXT", "FAILURES"):
        assert column in header
    row = out[1]
    assert row.startswith("morning") and "0 7 * * * (UTC)" in row and "Scheduled" in row
    assert "Succeeded" in row and "2030-01-01T07:00:00Z" in row
    assert "y" in row.split("Scheduled")[1].split("Succeeded")[0]  # LAST RUN is an age, years ago
    assert cluster.kubectl("get", "openclawcronjobs.cron.openclaw.io", "morning", "-o", "wide").returncode == 0
    as_yaml = yaml.safe_load(cluster.kubectl("get", "ocj", "morning", "-o", "yaml").stdout)
    assert as_yaml["status"]["state"] == "Scheduled"
    assert cluster.kubectl("get", "ocj", "morning", "-o", "jsonpath={.status.state}").stdout == "Scheduled"

    # Pods: NAME READY STATUS RESTARTS AGE, filled by the kubelet.
    cluster.kubelet.script(name_prefix="table-", run_seconds=30)
    cluster.apply(pod("table-pod"))
    wait_for(lambda: cluster.pod("table-pod")["status"]["phase"] == "Running", 10)
    lines = cluster.kubectl("get", "pods").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["table-pod", "1/1", "Running", "0"]

    # Events: core/v1 and events.k8s.io/v1 share storage; kubectl shows both.
    client.CoreV1Api(kube).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "morning.1"},
            "involvedObject": {"kind": "OpenClawCronJob", "name": "morning", "namespace": "default"},
            "reason": "Scheduled",
            "message": "next run at 07:00",
            "type": "Normal",
            "count": 1,
        },
    )
    client.EventsV1Api(kube).create_namespaced_event(
        "default",
        {
            "metadata": {"name": "morning.2"},
            "regarding": {"kind": "OpenClawCronJob", "name": "morning"},
            "reason": "Missed",
            "note": "missed 2 runs",
            "type": "Warning",
            "action": "Schedule",
            "reportingController": "openclaw",
            "reportingInstance": "x",
            "eventTime": "2025-01-01T00:00:00.000000Z",
        },
    )
    events = cluster.kubectl("get", "events").stdout
    assert "next run at 07:00" in events and "missed 2 runs" in events and "openclawcronjob/morning" in events
    # (Read raw: the official client's EventsV1Event model rejects the null eventTime that a
    # core/v1 Event without one converts to — on a real server too.)
    listed = cluster.list("events.k8s.io/v1", "events", "default")
    assert {e["note"] for e in listed} >= {"next run at 07:00", "missed 2 runs"}


def test_kubectl_mutations_on_pods(cluster_factory: Any) -> None:
    cluster = cluster_factory(kubelet=False)
    manifest = pod("web", metadata={"labels": {"app": "web"}})
    cluster.apply(manifest)
    manifest["metadata"]["labels"]["rev"] = "2"
    cluster.apply(manifest)  # a strategic merge patch computed by kubectl
    cluster.kubectl("label", "pod", "web", "extra=yes")
    cluster.kubectl("patch", "pod", "web", "-p", '{"metadata": {"annotations": {"a": "b"}}}')  # strategic
    cluster.kubectl(
        "patch",
        "pod",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op": "add", "path": "/metadata/labels/json", "value": "patched"}]',
    )
    web = cluster.pod("web")
    assert web["metadata"]["labels"] == {"app": "web", "rev": "2", "extra": "yes", "json": "patched"}
    assert web["metadata"]["annotations"]["a"] == "b"
    assert web["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    # Pod specs are immutable but for a few fields, as on a real server.
    refused = cluster.kubectl("patch", "pod", "web", "-p", '{"spec": {"restartPolicy": "Always"}}', check=False)
    assert refused.returncode != 0 and "Forbidden: pod updates may not change fields" in refused.stderr
    # Server-side apply creates and updates.
    cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "1"}}
        ),
    )
    cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=yaml.safe_dump(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "2"}}
        ),
    )
    assert cluster.get("v1", "configmaps", "default", "ssa")["data"] == {"k": "2"}
    # An unscheduled pod (no kubelet) is deleted at once.
    cluster.kubectl("delete", "pod", "web", "--timeout=10s")
    assert cluster.pod("web") is None


# --- faults, pauses, write accounting --------------------------------------------------------


def test_faults_pause_and_write_counting(cluster_factory: Any) -> None:
    cluster = cluster_factory(kubelet=False)
    fault = cluster.inject(Fault(verb="create", resource="pods", code=500, times=1))
    first = cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(pod("p1")), check=False)
    assert first.returncode != 0 and "InternalError" in first.stderr and fault.hits == 1
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(pod("p1")))
    cluster.kubectl("annotate", "pod", "p1", "x=y")
    writes = cluster.writes(user_agent="kubectl")
    assert writes[("create", "pods")] == 1 and writes[("patch", "pods")] == 1
    assert cluster.writes(exclude=("kubectl",)) == {}

    # kmock's own DSL works too: a reaction answers instead of the emulation.
    import kmock

    cluster.call(lambda: cluster.emulator["get", kmock.resource("", "v1", "secrets")] << 503)
    assert cluster.kubectl("get", "secrets", "-v=0", check=False).returncode != 0

    # A paused API server hangs requests until resumed.
    cluster.pause()
    started = time.monotonic()
    timer = threading.Timer(1.0, cluster.resume)
    timer.start()
    cluster.kubectl("get", "pod", "p1")
    assert time.monotonic() - started >= 0.9
    timer.join()


# --- the simulated kubelet -------------------------------------------------------------------


def container_state(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.pod(name)["status"]["containerStatuses"][0]["state"])


def test_kubelet_drives_pods_through_phases(cluster: Cluster) -> None:
    kubelet = cluster.kubelet
    assert kubelet is not None
    kubelet.script(name_prefix="ok-", run_seconds=0.3, termination_message='{"ok": true}')
    kubelet.script(name_prefix="fail-", exit_code=3, output="step 1\nstep 2\nboom\n")
    kubelet.script(name_prefix="slow-", run_seconds=60)
    kubelet.script(name_prefix="stuck-", stay_pending_reason="ErrImagePull", stay_pending_message="not found")
    cluster.apply(
        pod("ok-1"),
        pod("fail-1", container={"terminationMessagePolicy": "FallbackToLogsOnError"}),
        pod("slow-1", activeDeadlineSeconds=1),
        pod("slow-2"),
        pod("stuck-1"),
    )
    seen_running = wait_for(lambda: cluster.pod("ok-1")["status"]["phase"] in ("Running", "Succeeded"), 10)
    assert seen_running
    wait_for(lambda: cluster.pod("ok-1")["status"]["phase"] == "Succeeded", 10)
    ok = cluster.pod("ok-1")["status"]
    assert ok["startTime"] and ok["podIP"] and cluster.pod("ok-1")["spec"]["nodeName"] == "emulated-node"
    done = ok["containerStatuses"][0]["state"]["terminated"]
    assert done["exitCode"] == 0 and done["reason"] == "Completed" and done["message"] == '{"ok": true}'

    wait_for(lambda: cluster.pod("fail-1")["status"]["phase"] == "Failed", 10)
    failed = container_state(cluster, "fail-1")["terminated"]
    assert failed["exitCode"] == 3 and failed["reason"] == "Error" and failed["message"].endswith("boom\n")
    assert cluster.kubectl("logs", "fail-1").stdout == "step 1\nstep 2\nboom\n"

    wait_for(lambda: cluster.pod("slow-1")["status"]["phase"] == "Failed", 10)
    slow = cluster.pod("slow-1")["status"]
    assert slow["reason"] == "DeadlineExceeded" and "terminated" in slow["containerStatuses"][0]["state"]

    stuck = wait_for(lambda: container_state(cluster, "stuck-1").get("waiting"), 10)
    assert stuck["reason"] == "ErrImagePull" and cluster.pod("stuck-1")["status"]["phase"] == "Pending"
    assert "ErrImagePull" in cluster.kubectl("get", "pod", "stuck-1").stdout
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=ok-1").stdout
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in events

    # Deleting a running pod is graceful: Terminating, killed, then gone (kubelet confirms).
    wait_for(lambda: cluster.pod("slow-2")["status"]["phase"] == "Running", 10)
    cluster.kubectl("delete", "pod", "slow-2", "--wait=false")
    cluster.kubectl("delete", "pod", "stuck-1", "--timeout=10s")
    wait_for(lambda: cluster.pod("slow-2") is None and cluster.pod("stuck-1") is None, 10)
    versions = cluster.history("v1", "pods", "default", "slow-2")
    assert versions[-1] is None
    terminating = [v for v in versions if v and v["metadata"].get("deletionTimestamp")]
    assert terminating[0]["status"]["phase"] == "Running" and terminating[0]["metadata"]["deletionGracePeriodSeconds"]
    assert terminating[-1]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
    # A finished pod is deleted at once.
    cluster.kubectl("delete", "pod", "ok-1", "--timeout=10s")


def connections_opened_by_a_batch_of_pods(cluster: Cluster, pods: int) -> int:
    assert cluster.kubelet is not None
    cluster.kubelet.script(name_prefix="batch-", run_seconds=0.2)
    before = len(cluster.connections_opened())
    for i in range(pods):
        cluster.call(cluster.emulator.create_object, "v1", "pods", "default", pod(f"batch-{i}"))
    wait_for(lambda: [p["status"].get("phase") for p in cluster.pods()] == ["Succeeded"] * pods, 20)
    return len(cluster.connections_opened()) - before


def test_kubelet_keeps_a_pool_of_connections_as_a_real_kubelet_keeps_one(cluster_factory: Any) -> None:
    """A real kubelet's requests share one HTTP/2 connection it holds open; with `connections` this
    one opens its pool at start, so a batch of Pods costs the API server no TLS handshake. Without
    it, a batch opens connections on the server (the bench's bursts would pay for them)."""
    pooled = cluster_factory(kubelet_options={"connections": 16})
    assert len(pooled.connections_opened()) >= 16
    assert connections_opened_by_a_batch_of_pods(pooled, 12) == 0
    assert connections_opened_by_a_batch_of_pods(cluster_factory(), 12) >= 2


FAKE_RUNNER = """
import json, os, sys
result = {"token": os.environ["OPENCLAW_HOOKS_TOKEN"], "pod": os.environ["POD"], "ns": os.environ["NS"],
          "args": sys.argv[1:], "literal": os.environ["LITERAL"]}
print("runner says hello", flush=True)
with open(os.environ["OPENCLAW_CRON_RESULT_PATH"], "w") as f:
    json.dump(result, f)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def test_kubelet_executes_runner_pods_with_resolved_env(cluster_factory: Any, tmp_path: Path) -> None:
    script = tmp_path / "fake_runner.py"
    script.write_text(FAKE_RUNNER)
    cluster = cluster_factory(kubelet_options={"runner_command": [sys.executable, str(script)]})
    env = [
        {"name": "OPENCLAW_HOOKS_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hooks", "key": "token"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "LITERAL", "value": "v-$(NS)"},
        {"name": "EXIT", "value": "4"},
    ]
    cluster.apply(pod("run-1", command=["openclaw-cron-runner"], container={"env": env, "args": ["--once"]}))
    # The secret does not exist yet: the container cannot be created, like on a real node.
    waiting = wait_for(
        lambda: (
            container_state(cluster, "run-1").get("waiting", {}).get("reason") == "CreateContainerConfigError"
            and container_state(cluster, "run-1")["waiting"]
        ),
        10,
    )
    assert waiting["message"] == 'secret "hooks" not found'
    cluster.kubectl("create", "secret", "generic", "hooks", "--from-literal=token=s3cr3t")
    wait_for(lambda: cluster.pod("run-1")["status"]["phase"] == "Failed", 15)
    terminated = container_state(cluster, "run-1")["terminated"]
    assert terminated["exitCode"] == 4
    assert json.loads(terminated["message"]) == {
        "token": "s3cr3t",
        "pod": "run-1",
        "ns": "default",
        "args": ["--once"],
        "literal": "v-default",
    }
    assert cluster.kubectl("logs", "run-1").stdout == "runner says hello\n"

    # Command pods run locally only when a test opts in; the log tail becomes the failure message.
    assert cluster.kubelet is not None
    cluster.kubelet.script(name_prefix="cmd-", execute=True)
    cluster.apply(
        pod(
            "cmd-1",
            command=["sh", "-c", "echo one; echo two; exit 2"],
            container={"terminationMessagePolicy": "FallbackToLogsOnError"},
        ),
        pod("sim-1", command=["sh", "-c", "exit 9"]),
    )
    wait_for(lambda: cluster.pod("cmd-1")["status"]["phase"] == "Failed", 10)
    assert container_state(cluster, "cmd-1")["terminated"]["message"] == "one\ntwo\n"
    wait_for(lambda: cluster.pod("sim-1")["status"]["phase"] == "Succeeded", 10)


# --- kopf end to end -------------------------------------------------------------------------

SMOKE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "smokes.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"kind": "Smoke", "plural": "smokes"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}

KOPF_SCRIPT = """
import kopf

@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.server_timeout = 30
    settings.posting.level = 0

@kopf.on.create("example.com", "v1", "smokes")
def created(spec, patch, body, **_):
    patch.status["state"] = "Scheduled"
    patch.status["size"] = spec["size"]
    kopf.info(body, reason="Created", message="seen by kopf")
    return {"seen": True}

@kopf.daemon("example.com", "v1", "smokes", initial_delay=0.1)
async def ticking(stopped, namespace, name, **_):
    # Daemons write through the API themselves (their `patch` applies only when they exit).
    import kubernetes
    kubernetes.config.load_kube_config()
    api = kubernetes.client.CustomObjectsApi()
    api.patch_namespaced_custom_object_status("example.com", "v1", namespace, "smokes", name,
                                              {"status": {"daemon": "alive"}})
    await stopped.wait(60)
"""


def test_kopf_operator_runs_end_to_end(cluster: Cluster, kube: Any, tmp_path: Path) -> None:
    script = tmp_path / "operator.py"
    script.write_text(textwrap.dedent(KOPF_SCRIPT))
    # With peering: kopf announces itself in the KopfPeering object (kopf.dev/v1).
    cluster.apply(SMOKE_CRD, {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "default"}})
    operator = cluster.start_process(
        [sys.executable, "-m", "kopf", "run", "--verbose", "-n", "default", "--peering", "default", str(script)],
        name="kopf",
    )
    cluster.apply({"apiVersion": "example.com/v1", "kind": "Smoke", "metadata": {"name": "e2e"}, "spec": {"size": 2}})

    def smoke() -> dict[str, Any]:
        return dict(custom(kube).get_namespaced_custom_object("example.com", "v1", "default", "smokes", "e2e"))

    status = wait_for(
        lambda: smoke().get("status", {}).get("daemon") == "alive" and smoke()["status"],
        30,
        message="kopf's on.create handler and daemon to patch the status",
    )
    wait_for(lambda: smoke()["status"].get("state") == "Scheduled", 30, message="kopf's on.create patch")
    status = smoke()["status"]
    assert status["size"] == 2 and status["created"] == {"seen": True}
    peering = cluster.get("kopf.dev/v1", "kopfpeerings", "default", "default")
    assert peering and peering.get("status"), "kopf did not announce itself in the peering object"
    assert "kopf.zalando.org/KopfFinalizerMarker" in smoke()["metadata"].get("finalizers", [])  # for the daemon
    assert "seen by kopf" in cluster.kubectl("get", "events").stdout

    # Deleting the resource: kopf stops the daemon and releases its finalizer; the object goes away.
    cluster.kubectl("delete", "smoke", "e2e", "--timeout=30s")
    assert cluster.get("example.com/v1", "smokes", "default", "e2e") is None
    assert operator.running(), operator.logs()[-3000:]
    assert operator.stop() in (0, -15)
