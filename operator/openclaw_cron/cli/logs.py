"""`kubectl openclaw logs`: the log of a job's run Pod, or from the run archive once the Pod is gone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import naming as n
from .archive import Archive, namespace_of, run_name
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
    a = ctx.args
    pods: list[dict[str, Any]] = []
    if not a.archive:
        selector = f"{n.LABEL_JOB}={n.job_label(a.name)}"
        if a.run:
            selector += f",{n.LABEL_RUN_ID}={a.run}"
        if a.attempt:
            selector += f",{n.LABEL_ATTEMPT}={a.attempt}"
        try:
            pods = sorted(ctx.cluster.pods(selector), key=_pod_sort_key)
        except CliError:
            if not a.archive_url:
                raise
    if pods:
        pod = pods[-1]
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        run, attempt = labels.get(n.LABEL_RUN_ID, "?"), labels.get(n.LABEL_ATTEMPT, "1")
        print(f"==> pod/{meta['name']} (run {run}, attempt {attempt}) <==", file=ctx.err)
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        ctx.cluster.stream_logs(meta["name"], containers[0].get("name"), a.follow, ctx.out)
        return EXIT_OK
    try:
        return _archived_log(ctx)
    except CliError as exc:
        if a.archive:
            raise
        what = f"run {a.run} of {a.name}" if a.run else a.name
        raise CliError(
            f"no run Pods found for {what} in namespace {namespace_of(ctx)} (they may have been cleaned up), "
            f"and the run archive has no log for it: {exc}"
        ) from None


def _archived_log(ctx: Ctx) -> int:
    """The Pod is gone (pruned by the history limits): the log tail the archive kept."""
    a = ctx.args
    namespace = namespace_of(ctx)
    archive = Archive(ctx)
    if a.run:
        name = run_name(a.name, a.run, a.attempt)
    else:
        latest = archive.runs(namespace, {"job": a.name}, 1)
        if not latest:
            raise CliError(f"no run Pods and no archived runs found for {a.name} in namespace {namespace}")
        name = latest[0]["metadata"]["name"]
    text = archive.log(namespace, name)
    _job, run, attempt = name.split("~") if name.count("~") == 2 else (a.name, a.run, "latest")
    print(f"==> archived log of run {run}, attempt {attempt} (the Pod is gone) <==", file=ctx.err)
    ctx.out.write(text)
    return EXIT_OK
