"""The scheduler's side of orchestration (DESIGN §9) in two calls, so its wiring stays a few lines.

The rules themselves are pure and sit below the reconciler (`orchestration/`); this is their I/O,
above it:

- `await Orchestration.inputs(job, now)`: before reconcile, for `Context.orchestration`;
- `Orchestration.to_wake(job, plan)`: after a pass that finished runs, the uids of the jobs
  that depend on this one (woken at once: no polling of dependencies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from ..job import JobView
from ..kube import Kube
from ..orchestration.inputs import OrchestrationInputs, dependents, gather_inputs
from ..reconcile import Plan, parse_spec
from .kube_reader import KubeReader


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


class Orchestration:
    """Holds the reader; `bodies(namespace)` yields the scheduler's cached job objects there."""

    def __init__(self, kube: Kube, bodies: Callable[[str], Iterable[Mapping[str, Any]]]) -> None:
        self._bodies = bodies
        self.reader = KubeReader(kube, bodies)

    async def inputs(self, job: JobView, now: datetime) -> OrchestrationInputs:
        return await gather_inputs(job, parse_spec(job.spec), now, self.reader)

    def to_wake(self, job: JobView, plan: Plan) -> list[str]:
        """Uids of the jobs depending on `job`, when this pass recorded a finished run."""
        if not plan.finished:
            return []
        ns, name = job.ref.namespace, job.ref.name
        bodies = list(self._bodies(ns))
        specs = [(ns, _meta(b).get("name", ""), b.get("spec") or {}) for b in bodies]
        wanted = set(dependents(name, ns, specs))
        return [str(_meta(b).get("uid")) for b in bodies if _meta(b).get("name") in wanted]

    async def close(self) -> None:
        await self.reader.close()
