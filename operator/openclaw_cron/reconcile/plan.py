"""What a pass decides (`Plan`, with the Events it posts), and what else it is decided on (`Context`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api import (
    OpenClawCronJobSpec,
    RunRecord,
)
from ..notify.message import Notification
from ..orchestration.inputs import OrchestrationInputs
from ..pods import Start
from ..settings import Settings
from ..validation import FieldError


@dataclass(frozen=True)
class Context:
    now: datetime
    settings: Settings
    #: Run Pods this job may still start under the global cap; None = unlimited.
    global_free: int | None = None
    #: Problems found outside the spec itself (e.g. the token Secret is missing).
    extra_errors: tuple[FieldError, ...] = ()
    #: Active Pods confirmed gone from the API (not just late in the watch stream).
    gone: frozenset[str] = frozenset()
    #: Pods of active runs that the API refused to create (pod name → the API's words).
    refused: Mapping[str, str] = field(default_factory=dict)
    #: Other jobs' status, ConfigMap/Secret keys and HTTP answers (orchestration.gather_inputs);
    #: None = not gathered: jobs without dependsOn or I/O conditions do not need it.
    orchestration: OrchestrationInputs | None = None
    #: Pods this operator created (or found existing at create) whose status write has not
    #: landed yet (held back, or lost to a conflict): adopted whatever their trigger.
    unrecorded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    status: dict[str, Any]
    starts: list[Start] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)  # (pod name, why)
    events: list[Event] = field(default_factory=list)
    finished: list[RunRecord] = field(default_factory=list)
    notifications: list[tuple[str, RunRecord]] = field(default_factory=list)  # (kind, record)
    wake_at: datetime | None = None
    delete_job: bool = False
    missed: int = 0
    skipped: int = 0
    spec: OpenClawCronJobSpec | None = None
    #: Ready-made messages to their own channels (escalation levels, resolved): submit as they are.
    messages: list[Notification] = field(default_factory=list)
    #: `wake_at` is only the safety-net resync (nothing else asked for a look before it).
    resync: bool = False
