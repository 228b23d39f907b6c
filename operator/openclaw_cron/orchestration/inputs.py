"""What orchestration needs from outside one job, read once per pass: the only I/O here.

The scheduler calls `gather_inputs` before `reconcile` and passes the result in
`Context.orchestration`; when a job finishes it wakes `dependents(...)`. Reading is
lazy: ConfigMaps, Secrets and HTTP checks are read only when a slot is due or waiting,
so a job with an HTTP condition does not poll its endpoint on every pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .. import naming as n
from ..api import OpenClawCronJobSpec
from ..job import JobView


@dataclass(frozen=True)
class RunSummary:
    """One finished run of another job, from its status.recentRuns."""

    run_id: str
    scheduled: datetime
    result: str
    completed: datetime | None = None
    trigger: str = "Schedule"


@dataclass(frozen=True)
class JobSummary:
    """Another job of the namespace as dependencies see it."""

    name: str
    runs: tuple[RunSummary, ...] = ()
    #: It has active or pending runs: its verdict for a slot may still change.
    busy: bool = False
    #: The jobs it depends on (for the cycle check).
    depends_on: tuple[str, ...] = ()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> JobSummary:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        runs = []
        for rec in status.get("recentRuns") or ():
            try:
                runs.append(
                    RunSummary(
                        run_id=str(rec.get("runId", "")),
                        scheduled=n.parse_time(rec["scheduledTime"]),
                        result=str(rec.get("result", "")),
                        completed=n.parse_time(rec["completionTime"]) if rec.get("completionTime") else None,
                        trigger=str(rec.get("trigger", "Schedule")),
                    )
                )
            except (KeyError, ValueError, TypeError, AttributeError):
                continue  # a record we cannot read counts as no run
        deps = (spec.get("dependsOn") or {}).get("jobs") or ()
        return cls(
            name=str((obj.get("metadata") or {}).get("name", "")),
            runs=tuple(runs),
            busy=bool(status.get("active") or status.get("pending")),
            depends_on=tuple(str(d) for d in deps if isinstance(d, str)),
        )


@dataclass(frozen=True)
class OrchestrationInputs:
    #: Every OpenClawCronJob of the namespace by name (missing name = no such job).
    jobs: Mapping[str, JobSummary] = field(default_factory=dict)
    #: ("ConfigMap" | "Secret", name, key) → the value, or None when the object or key is missing.
    keys: Mapping[tuple[str, str, str], str | None] = field(default_factory=dict)
    #: url → HTTP status, or the error text when there was no answer.
    http: Mapping[str, int | str] = field(default_factory=dict)
    #: The ConfigMap/Secret/HTTP conditions were read (a slot was due or waiting).
    checked: bool = False

    @property
    def graph(self) -> dict[str, tuple[str, ...]]:
        return {name: j.depends_on for name, j in self.jobs.items()}


class Reader(Protocol):
    """The reads gather_inputs needs; the scheduler implements them on its API client."""

    async def jobs_in_namespace(self, namespace: str) -> list[Mapping[str, Any]]:
        """Every OpenClawCronJob object (metadata, spec, status) of the namespace, e.g. from a cache."""
        ...

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The ConfigMap's data, or None when it does not exist."""
        ...

    async def get_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """The decoded value, or None when the Secret or the key does not exist."""
        ...

    async def http_status(self, url: str) -> int:
        """GET `url` (no redirects followed) and return the status; raise on no answer.

        gather_inputs bounds the call by the condition's timeoutSeconds."""
        ...


def io_due(job: JobView, spec: OpenClawCronJobSpec, now: datetime) -> bool:
    """A slot is due or waiting, so ConfigMap/Secret/HTTP conditions are worth reading."""
    status = job.status or {}
    if spec.schedule is None:
        return True  # dependency-triggered: checked when woken
    if any(p.get("reason") == "Waiting" for p in status.get("pending") or ()):
        return True
    nxt = status.get("nextRunTime")
    try:
        return nxt is None or n.parse_time(nxt) <= now
    except ValueError:
        return True


async def gather_inputs(
    job: JobView, spec: OpenClawCronJobSpec | None, now: datetime, reader: Reader
) -> OrchestrationInputs:
    """Read what `spec`'s dependencies and conditions need; nothing for a job without them."""
    if spec is None or (spec.depends_on is None and not spec.conditions):
        return OrchestrationInputs()
    ns = job.ref.namespace
    jobs: dict[str, JobSummary] = {}
    if spec.depends_on is not None:
        for obj in await reader.jobs_in_namespace(ns):
            summary = JobSummary.from_object(obj)
            jobs[summary.name] = summary
    conditions = [c for c in spec.conditions or () if c.expression is None]
    if not conditions or not io_due(job, spec, now):
        return OrchestrationInputs(jobs=jobs, checked=not conditions)
    keys: dict[tuple[str, str, str], str | None] = {}
    http: dict[str, int | str] = {}
    maps: dict[str, Mapping[str, str] | None] = {}

    async def check(url: str, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                http[url] = await reader.http_status(url)
        except Exception as exc:  # any failure to answer is the condition's message
            detail = f": {exc}" if str(exc) else ""
            http[url] = f"no answer ({type(exc).__name__}{detail})"

    tasks = []
    for c in conditions:
        if c.config_map_key_ref is not None:
            ref = c.config_map_key_ref
            if ref.name not in maps:
                maps[ref.name] = await reader.get_configmap(ns, ref.name)
            data = maps[ref.name]
            keys["ConfigMap", ref.name, ref.key] = None if data is None else data.get(ref.key)
        elif c.secret_key_ref is not None:
            ref = c.secret_key_ref
            keys["Secret", ref.name, ref.key] = await reader.get_secret_key(ns, ref.name, ref.key)
        elif c.http is not None and c.http.url not in http:
            http[c.http.url] = "checking"
            tasks.append(check(c.http.url, float(c.http.timeout_seconds)))
    await asyncio.gather(*tasks)
    return OrchestrationInputs(jobs=jobs, keys=keys, http=http, checked=True)


def dependents(job_name: str, namespace: str, all_specs: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    """Names of the jobs in `namespace` whose spec.dependsOn lists `job_name`: wake them when it finishes.

    `all_specs` yields (namespace, name, raw spec) for every known job.
    """
    out = []
    for ns, name, spec in all_specs:
        if ns != namespace or name == job_name:
            continue
        deps = (spec.get("dependsOn") or {}).get("jobs") or ()
        if job_name in deps:
            out.append(name)
    return sorted(out)
