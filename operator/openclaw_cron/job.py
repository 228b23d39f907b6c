"""The resource as the reconciler sees it (`JobView`), read from a job object.

It sits below both the reconciler and orchestration's rules, which read it; the scheduler
builds one per pass from its compact copy of the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import naming as n
from .pods import JobRef


@dataclass(frozen=True)
class JobView:
    """The resource as the reconciler sees it."""

    ref: JobRef
    generation: int
    created: datetime
    spec: dict[str, Any]
    status: dict[str, Any]
    run_now: str | None = None
    #: The `cron.openclaw.io/resume` and `cron.openclaw.io/backfill` annotation values.
    resume: str | None = None
    backfill: str | None = None


def job_view(body: Mapping[str, Any], now: datetime) -> JobView:
    """The view of a job object; `now` stands in for a creation time the object lacks."""
    meta = body.get("metadata") or {}
    created = n.parse_time(meta["creationTimestamp"]) if meta.get("creationTimestamp") else now
    annotations = meta.get("annotations") or {}
    return JobView(
        ref=JobRef(namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", "")),
        generation=int(meta.get("generation") or 1),
        created=created,
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
        run_now=annotations.get(n.ANNOTATION_RUN_NOW) or None,
        resume=annotations.get(n.ANNOTATION_RESUME) or None,
        backfill=annotations.get(n.ANNOTATION_BACKFILL) or None,
    )
