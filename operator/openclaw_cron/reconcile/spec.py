"""The spec and status read back: parsed, validated (once per distinct spec) or started over when unreadable."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..api import (
    OpenClawCronJobSpec,
    OpenClawCronJobStatus,
)
from ..validation import FieldError, validate


@functools.lru_cache(maxsize=4096)
def checked_spec(
    spec_json: str,
    default_tz: str,
    created: datetime,
    name: str | None = None,
    hosts: tuple[str, ...] = (),
    graph: tuple[tuple[str, tuple[str, ...]], ...] | None = None,
) -> tuple[OpenClawCronJobSpec | None, tuple[FieldError, ...]]:
    """Parse and validate a spec once per distinct (spec, zone, creation time), not every pass.

    Validation reads the clock only for resources not yet created, so with `created` given
    the result depends on these arguments alone. The models are frozen, so sharing is safe.
    """
    raw = json.loads(spec_json)
    errors = validate(
        raw,
        default_tz=default_tz,
        created=created,
        name=name,
        namespace_jobs=dict(graph) if graph is not None else None,
        allowed_http_hosts=hosts,
    )
    return parse_spec(raw), tuple(errors)


def parse_spec(raw: dict[str, Any]) -> OpenClawCronJobSpec | None:
    try:
        return OpenClawCronJobSpec.model_validate(raw)
    except ValidationError:
        return None


def parse_status(raw: dict[str, Any]) -> OpenClawCronJobStatus:
    """Read our own status back; a status we cannot read starts over rather than crash."""
    try:
        return OpenClawCronJobStatus.model_validate(raw or {})
    except ValidationError:
        return OpenClawCronJobStatus()
