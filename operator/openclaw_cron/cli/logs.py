"""`kubectl openclaw logs`: the log of a job's run Pod."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import naming as n
from .cluster import Ctx
from .common import EXIT_OK, CliError


def _pod_sort_key(pod: Mapping[str, Any]) -> tuple[str, int]:
    meta = pod.get("metadata") or {}
    try:
        attempt = int((meta.get("labels") or {}).get(n.LABEL_ATTEMPT, "1"))
    except ValueError:
        attempt = 1
    return meta.get("creationTimestamp") or "", attempt


def cmd_logs(ctx: Ctx) -> int:
    a, cluster = ctx.args, ctx.cluster
    selector = f"{n.LABEL_JOB}={n.job_label(a.name)}"
    if a.run:
        selector += f",{n.LABEL_RUN_ID}={a.run}"
    pods = sorted(cluster.pods(selector), key=_pod_sort_key)
    if not pods:
        what = f"run {a.run} of {a.name}" if a.run else a.name
        raise CliError(f"no run Pods found for {what} in namespace {cluster.namespace} (they may have been cleaned up)")
    pod = pods[-1]
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    run, attempt = labels.get(n.LABEL_RUN_ID, "?"), labels.get(n.LABEL_ATTEMPT, "1")
    print(f"==> pod/{meta['name']} (run {run}, attempt {attempt}) <==", file=ctx.err)
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    cluster.stream_logs(meta["name"], containers[0].get("name"), a.follow, ctx.out)
    return EXIT_OK
