"""What the scheduler keeps: the process-wide `Runtime` and a compact `JobState` per job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..archive.recorder import Recorder
from ..kube import Kube
from ..notify import Notifier
from ..settings import Settings
from ..validation import FieldError

#: Annotations of ours kept in the compact copy of a job (others are not needed).
_KEPT_ANNOTATION_PREFIX = "cron.openclaw.io/"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The operator's clock (one place to inject a fake one)."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Process-wide state shared by the handlers and the scheduler (kept in kopf's memo)."""

    settings: Settings
    kube: Kube
    notifier: Notifier | None = None
    #: Pods created by us and not yet seen in the index (for the global cap): name → since.
    inflight: dict[str, float] = field(default_factory=dict)
    secrets: dict[tuple[str, str, str], tuple[float, FieldError | None]] = field(default_factory=dict)
    #: Pods we asked to delete, until when we do not ask again.
    deleting: dict[str, float] = field(default_factory=dict)
    #: Run Pods the API refused to create (name → why), until their run is recorded.
    refused: dict[str, str] = field(default_factory=dict)
    #: Runs each job has waiting for the global cap (job uid → count), for the gauge.
    cap_waiting: dict[str, int] = field(default_factory=dict)
    #: The run archive (None: not configured). `archive_pending`: configured, store not open yet,
    #: so finished Pods are kept (not pruned) until it is.
    recorder: Recorder | None = None
    archive_pending: bool = False
    #: Fire-and-forget tasks (Event posts), kept referenced until done.
    background: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(slots=True)
class JobState:
    """What the scheduler keeps per job: a compact copy of the object and its queue slot."""

    uid: str
    body: dict[str, Any]
    #: The object as our last status write returned it (fresher than the watch until it catches up).
    ours: dict[str, Any] | None = None
    #: When the watch last told us about the object (monotonic).
    seen: float = 0.0
    hold_until: datetime | None = None
    #: A status held back (see quiet) and the Pods it records: written at once when a later pass
    #: runs before the Pod watch shows those Pods, since that pass would otherwise not see them.
    deferred: dict[str, Any] | None = None
    deferred_pods: set[str] = field(default_factory=set)
    #: Pods whose create got no clear answer; read from the API by the next pass.
    uncertain: set[str] = field(default_factory=set)
    #: Pods this process started (or found existing at create) whose status write has not landed
    #: (held back, or lost to a conflict): the reconciler adopts them whatever their trigger.
    unrecorded: set[str] = field(default_factory=set)
    #: The queued look is only the safety-net resync (no event asked for it): see `corrections`.
    net: bool = False
    #: (namespace, name) of the jobs this one depends on (spec.dependsOn), for the reverse map.
    deps: tuple[tuple[str, str], ...] = ()
    #: Queue position: due time (epoch seconds) and a token that invalidates older heap entries.
    due: float = 0.0
    token: int = 0
    running: bool = False
    again: bool = False
    deleted: bool = False
    #: Finished Pods past the history limits, waiting to be pruned in a batch (name → since).
    prune: dict[str, float] = field(default_factory=dict)


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a job the scheduler needs (drops managedFields, foreign annotations...)."""
    meta = body.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(_KEPT_ANNOTATION_PREFIX)}
    kept = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "generation", "resourceVersion", "creationTimestamp")
        if k in meta
    }
    if annotations:
        kept["annotations"] = annotations
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def resource_version(body: Mapping[str, Any]) -> str | None:
    rv = (body.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv is not None else None


def newer(a: dict[str, Any], b: dict[str, Any] | None) -> dict[str, Any]:
    """The fresher of two copies of the object (the watch's vs our last write)."""
    if b is None:
        return a
    try:
        ra, rb = int(a["metadata"]["resourceVersion"]), int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return a
    return a if ra >= rb else b
