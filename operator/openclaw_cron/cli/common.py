"""Shared pieces of the plugin: exit codes, the user-facing error, kubectl-style output."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .. import naming as n
from ..api import GROUP, PLURAL

EXIT_OK = 0


EXIT_FAILURE = 1  # something failed: a run, a validation, an alerting job


EXIT_ERROR = 2  # usage error, API error, missing object


RESOURCE = f"{PLURAL}.{GROUP}"


SINGULAR_REF = f"openclawcronjob.{GROUP}"


RESULTS = ("Succeeded", "Failed", "TimedOut", "Skipped", "Missed", "Running")


class CliError(Exception):
    """A message for the user and exit code 2 (usage, API, not found)."""


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """kubectl's layout: upper-case headers, columns padded to the widest cell plus 3 spaces."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if c is None else c for c in row])
    return out.getvalue()


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return n.parse_time(text)
    except ValueError:
        return None


def rfc3339_ms(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds: two run-now requests in one second still differ."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def status_of(job: Mapping[str, Any]) -> dict[str, Any]:
    status = job.get("status")
    return status if isinstance(status, dict) else {}


def condition(job: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status_of(job).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
