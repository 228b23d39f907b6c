"""Dependencies between jobs of one namespace: All, Any, Sequential, within a window.

A dependency's run counts for a slot when it was scheduled after the window's start
(`slot - windowSeconds`, default this job's previous slot) and no later than `now`.
`All`: each job has a successful such run. `Any`: at least one has. `Sequential`: each
has, and they finished in the listed order. The graph rules (cycles, missing jobs) are
in `graph_errors`, used by validation.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .. import naming as n
from ..api import DependsOn
from .verdict import Verdict

if TYPE_CHECKING:
    from .inputs import JobSummary, RunSummary


@dataclass(frozen=True)
class Dependencies:
    verdict: Verdict
    #: When met: the latest completion among the runs that satisfied it (the trigger instant).
    satisfied_at: datetime | None = None


def window_start(dep: DependsOn, slot: datetime, previous_slot: datetime | None) -> datetime | None:
    if dep.window_seconds is not None:
        return slot - timedelta(seconds=dep.window_seconds)
    return previous_slot


def _runs(job: JobSummary, since: datetime | None, now: datetime) -> list[RunSummary]:
    return [r for r in job.runs if (since is None or r.scheduled > since) and r.scheduled <= now]


def _latest_success(runs: Sequence[RunSummary]) -> RunSummary | None:
    ok = [r for r in runs if r.result == "Succeeded"]
    return max(ok, key=lambda r: (r.completed or r.scheduled, r.scheduled)) if ok else None


def evaluate(
    dep: DependsOn,
    since: datetime | None,
    now: datetime,
    jobs: Mapping[str, JobSummary] | None,
) -> Dependencies:
    """Are the dependencies met for runs scheduled in (since, now]? Final when waiting cannot help."""
    if jobs is None:
        return Dependencies(Verdict(False, "dependencies not checked yet", unknown=True))
    span = f"since {n.rfc3339(since)}" if since else "yet"
    found: list[tuple[str, RunSummary | None, bool]] = []  # (name, latest success, could still change)
    problems: list[str] = []
    for name in dep.jobs:
        job = jobs.get(name)
        if job is None:
            problems.append(f"{name}: no such OpenClawCronJob in this namespace")
            found.append((name, None, False))
            continue
        runs = _runs(job, since, now)
        best = _latest_success(runs)
        if best is None:
            last = max(runs, key=lambda r: r.scheduled, default=None)
            seen = f"last run {last.result} ({last.run_id})" if last else f"no run {span}"
            problems.append(f"{name}: no successful run {span}; {seen}" if last else f"{name}: {seen}")
        found.append((name, best, job.busy or not runs))
    ok = [(name, best) for name, best, _ in found if best is not None]
    unmet = [may_change for _, best, may_change in found if best is None]
    if dep.mode == "Any":
        if ok:
            return Dependencies(Verdict(True), max(_done(b) for _, b in ok))
        return Dependencies(_unmet(dep, problems, final=not any(unmet)))
    if unmet:
        # All/Sequential: one dependency that failed for good (not running, no retry) settles it
        return Dependencies(_unmet(dep, problems, final=not all(unmet)))
    if dep.mode == "Sequential":
        times = [(name, _done(best)) for name, best in ok]
        for (a, ta), (b, tb) in itertools.pairwise(times):
            if tb < ta:
                return Dependencies(
                    _unmet(dep, [f"{b} finished ({n.rfc3339(tb)}) before {a} ({n.rfc3339(ta)})"], final=False)
                )
    return Dependencies(Verdict(True), max(_done(b) for _, b in ok))


def _done(run: RunSummary) -> datetime:
    return run.completed or run.scheduled


def _unmet(dep: DependsOn, problems: list[str], *, final: bool) -> Verdict:
    return Verdict(False, f"dependsOn ({dep.mode}): " + "; ".join(problems), final=final)


def describe(dep: DependsOn) -> str:
    """status.schedule of a job that runs on its dependencies' success."""
    return f"after {', '.join(dep.jobs)} ({dep.mode})"


def graph_errors(name: str, dep: DependsOn, graph: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Self-reference, duplicates, missing jobs and cycles, as messages for spec.dependsOn.jobs.

    `graph` maps every job of the namespace to the jobs it depends on; None skips the
    checks that need it (offline validation without a cluster).
    """
    errors: list[str] = []
    if name in dep.jobs:
        errors.append(f"{name!r} depends on itself")
    dupes = sorted({j for j in dep.jobs if dep.jobs.count(j) > 1})
    if dupes:
        errors.append(f"lists {', '.join(repr(d) for d in dupes)} more than once")
    if graph is None:
        return errors
    missing = [j for j in dep.jobs if j != name and j not in graph]
    if missing:
        errors.append(f"no OpenClawCronJob {', '.join(repr(m) for m in missing)} in this namespace")
    cycle = find_cycle(name, {**graph, name: list(dep.jobs)})
    if cycle and len(cycle) > 2:
        errors.append("dependency cycle " + " -> ".join(cycle))
    return errors


def find_cycle(start: str, graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A path start -> ... -> start through `graph`, if one exists (depth first, in listed order)."""
    path: list[str] = [start]
    seen: set[str] = set()

    def walk(node: str) -> bool:
        for nxt in graph.get(node, ()):
            if nxt == start:
                path.append(nxt)
                return True
            if nxt in seen:
                continue
            seen.add(nxt)
            path.append(nxt)
            if walk(nxt):
                return True
            path.pop()
        return False

    return path if walk(start) else None
