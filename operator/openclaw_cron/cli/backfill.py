"""`kubectl openclaw backfill`: one run per slot of a past range (annotation cron.openclaw.io/backfill).

The request is checked here first with the operator's own rules (range order, future end,
more slots than --max), so a mistake is an error at once rather than a Refused status. The
id defaults to a hash of the range and max: asking twice for the same range is one request,
and the operator runs each slot once.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

from .. import naming as n
from ..schedule import parse_instant
from ..validation import validate_backfill
from .cluster import Ctx
from .common import EXIT_ERROR, EXIT_FAILURE, EXIT_OK, SINGULAR_REF, CliError, status_of


def request_text(start: datetime, end: datetime, limit: int, rid: str | None) -> str:
    """The annotation value; the default id is stable for the same range and max."""
    body = {"from": n.rfc3339(start), "to": n.rfc3339(end), "max": limit}
    if rid is None:
        rid = "bf-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
    return json.dumps({**body, "id": rid}, separators=(",", ":"))


def progress(state: dict[str, object]) -> str:
    line = (
        f"backfill {state.get('id')}: {state.get('state')}, {state.get('started', 0)}/{state.get('total', 0)} started"
    )
    if state.get("nextSlot"):
        line += f", next {state['nextSlot']}"
    if state.get("message"):
        line += f" ({state['message']})"
    return line


def cmd_backfill(ctx: Ctx) -> int:
    a, cluster = ctx.args, ctx.cluster
    try:
        start, end = parse_instant(a.start), parse_instant(a.end)
    except ValueError as exc:
        raise CliError(f"--from/--to: {exc}") from None
    job = cluster.get(a.name)
    text = request_text(start, end, a.max, a.id)
    meta = job.get("metadata") or {}
    created = n.parse_time(meta["creationTimestamp"]) if meta.get("creationTimestamp") else ctx.now()
    problems = validate_backfill(
        text, job.get("spec") or {}, created=created, uid=meta.get("uid", ""), default_tz=a.default_tz, now=ctx.now()
    )
    if problems:
        for p in problems:
            print(f"error: {p}", file=ctx.err)
        return EXIT_ERROR
    rid = json.loads(text)["id"]
    current = status_of(job).get("backfill") or {}
    if (meta.get("annotations") or {}).get(n.ANNOTATION_BACKFILL) == text or current.get("id") == rid:
        print(f"{SINGULAR_REF}/{a.name} backfill {rid} already requested (each slot runs once)", file=ctx.out)
        if current.get("id") == rid:
            print(progress(current), file=ctx.out)
    else:
        cluster.merge_patch(a.name, {"metadata": {"annotations": {n.ANNOTATION_BACKFILL: text}}})
        print(
            f"{SINGULAR_REF}/{a.name} backfill {rid} requested ({n.rfc3339(start)} .. {n.rfc3339(end)})", file=ctx.out
        )
    if not a.wait:
        return EXIT_OK
    deadline = time.monotonic() + a.timeout
    while True:
        state = status_of(cluster.get(a.name)).get("backfill") or {}
        if state.get("id") == rid and state.get("state") in ("Completed", "Refused"):
            print(progress(state), file=ctx.out)
            return EXIT_OK if state["state"] == "Completed" else EXIT_FAILURE
        if time.monotonic() >= deadline:
            print(
                f"error: timed out after {a.timeout:g}s; {progress(state) if state else 'no progress yet'}",
                file=ctx.err,
            )
            return EXIT_FAILURE
        ctx.sleep(a.poll_interval)
