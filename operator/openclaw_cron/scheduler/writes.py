"""What a pass writes, decided without I/O: the status patch, whether it may wait, prune batches.

Kept pure and apart from `apply.py` (which does the writes) so each rule has its unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from ..pods import PodView
from ..reconcile import Plan

#: How long status writes may wait after a pass that only started Pods (see quiet).
START_COALESCE = timedelta(seconds=3)


def quiet(plan: Plan) -> bool:
    """Whether a pass decided nothing that must be written at once.

    After a pass that only started Pods, status writes may wait a little (START_COALESCE): the
    Pods themselves are the record (a later pass adopts them), so a short run gets one status
    write at its end instead of two. Anything else a pass decides (records, events, deletions)
    is written at once, since recomputing it would repeat it. History pruning is not in that
    list: it is batched and only ever deletes Pods whose runs are already on record.
    """
    return not (
        plan.finished
        or plan.events
        or any(why != "HistoryLimit" for _, why in plan.deletes)
        or plan.notifications
        or plan.messages
        or plan.missed
        or plan.skipped
        or plan.delete_job
    )


def bookkeeping(old_status: Mapping[str, Any], plan: Plan) -> bool:
    """Whether a pass that starts no run would write anything: what may wait for a burst's creates."""
    return not plan.starts and (not quiet(plan) or bool(plan.deletes) or bool(status_patch(old_status, plan.status)))


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from `old` to `new` status: changed keys, null for removed ones.

    Objects are diffed down to their leaves: a merge patch merges nested objects, so a field
    dropped inside one (e.g. `backfill.nextSlot` once every slot started) needs its own null,
    or the API server keeps it. Lists are replaced whole, as merge patches do.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            patch[key] = status_patch(before, value)
        else:
            patch[key] = value
    patch.update({k: None for k in old if k not in new})
    return patch


def corrections(old_status: Mapping[str, Any], plan: Plan) -> dict[str, str]:
    """What a pass changed, by kind (`started`, `recorded`, `status`); empty for a no-op pass.

    For a safety-net pass this is the definition of a correction: anything here is something
    an event should have woken the job for earlier.
    """
    fixed: dict[str, str] = {}
    if plan.starts:
        fixed["started"] = ", ".join(s.run_id for s in plan.starts)
    recorded = [r.run_id for r in plan.finished]
    if recorded or plan.missed:
        fixed["recorded"] = ", ".join(recorded + ([f"{plan.missed} missed"] if plan.missed else []))
    changed = sorted(status_patch(dict(old_status), plan.status))
    if changed:
        fixed["status"] = ", ".join(changed)
    return fixed


def prune_batches(
    due: Mapping[str, float], pods: Iterable[PodView], now: float, batch: int, max_delay: float, idle: bool = False
) -> list[list[PodView]]:
    """Which waiting prunes to issue now, grouped so that one label selector removes exactly them.

    Nothing until `batch` Pods wait, the oldest waited `max_delay`, or the job is `idle` (no run
    soon that would fill the batch, e.g. suspended); then all of them. Pods are
    grouped by run id: a run whose every Pod is due goes into one deletecollection group; a run
    with a Pod that must stay (another attempt kept for history) has its Pods deleted one by one.
    """
    if not due or (len(due) < batch and now - min(due.values()) < max_delay and not idle):
        return []
    by_run: dict[str, list[PodView]] = {}
    for pod in pods:
        by_run.setdefault(pod.run_id, []).append(pod)
    whole: list[PodView] = []
    single: list[list[PodView]] = []
    for run_pods in by_run.values():
        doomed = [p for p in run_pods if p.name in due]
        if not doomed:
            continue
        if len(doomed) == len(run_pods):
            whole.extend(doomed)
        else:
            single.extend([p] for p in doomed)
    return ([whole] if whole else []) + single
