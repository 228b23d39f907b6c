"""`kubectl openclaw import`: OpenClaw's jobs.json (or cron.list JSON) as OpenClawCronJob YAML."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import naming as n
from ..api import GROUP, KIND, VERSION
from .cluster import Ctx
from .common import EXIT_FAILURE, EXIT_OK, CliError, _read, dump, rfc3339_ms

_THINKING = {"off", "minimal", "low", "medium", "high", "xhigh"}


_IGNORED_JOB_KEYS = {"state", "createdAtMs", "updatedAtMs"}


_KNOWN_JOB_KEYS = {
    "id",
    "name",
    "description",
    "agentId",
    "enabled",
    "deleteAfterRun",
    "schedule",
    "sessionTarget",
    "wakeMode",
    "payload",
    "delivery",
    "failureAlert",
    "sessionKey",
    "hooks",
    *_IGNORED_JOB_KEYS,
}


ANNOTATION_IMPORTED_ID = f"{GROUP}/openclaw-id"


ANNOTATION_IMPORTED_NAME = f"{GROUP}/openclaw-name"


ANNOTATION_DESCRIPTION = f"{GROUP}/description"


def dns_name(text: str, max_len: int = 63) -> str:
    """A DNS-1123 label from a free-form job name ('Morning brief!' → 'morning-brief')."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:max_len].rstrip("-")


def ms_duration(ms: int) -> str:
    """Milliseconds → the schedule.every syntax with the largest exact units: 5400000 → '1h30m'."""
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0ms"


def ms_instant(ms: float) -> str:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return n.rfc3339(when) if when.microsecond == 0 else rfc3339_ms(when)


@dataclass
class Imported:
    docs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0


def _jobs_of(data: Any) -> list[Any]:
    """jobs.json ({version, jobs}), a cron.list answer ({jobs, total, ...}), an RPC envelope, or a list."""
    if isinstance(data, dict) and isinstance(data.get("payload"), dict | list):
        data = data["payload"]
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        return list(data["jobs"])
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "schedule" in data and "payload" in data:
        return [data]
    raise CliError("not an OpenClaw cron file: expected {jobs: [...]} (jobs.json or cron.list output) or a list")


def import_jobs(data: Any, namespace: str | None = None) -> Imported:
    """Map OpenClaw cron jobs to OpenClawCronJob objects; every field without an equivalent warns."""
    out = Imported()
    used: set[str] = set()
    for index, job in enumerate(_jobs_of(data)):
        if not isinstance(job, dict):
            out.warnings.append(f"jobs[{index}]: not an object; skipped")
            out.skipped += 1
            continue
        label = f'job "{job.get("name") or job.get("id") or index}"'

        def warn(msg: str, label: str = label) -> None:
            out.warnings.append(f"{label}: {msg}")

        doc = _import_one(job, namespace, used, warn)
        if doc is None:
            out.skipped += 1
        else:
            out.docs.append(doc)
    return out


def _import_schedule(raw: Any, warn: Callable[[str], None]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        warn("schedule: missing; skipped")
        return None
    kind = raw.get("kind")
    sched: dict[str, Any] = {"kind": kind}
    if kind == "cron":
        sched["expr"] = raw.get("expr")
        if raw.get("tz"):
            sched["tz"] = raw["tz"]
        stagger_ms = raw.get("staggerMs")
        if isinstance(stagger_ms, int | float) and stagger_ms > 0:
            sched["staggerSeconds"] = max(1, math.ceil(stagger_ms / 1000))
            if stagger_ms % 1000:
                warn(f"schedule.staggerMs: {stagger_ms} rounded up to {sched['staggerSeconds']}s")
    elif kind == "every":
        every_ms = raw.get("everyMs")
        if not isinstance(every_ms, int | float) or every_ms <= 0:
            warn("schedule.everyMs: must be a positive number; skipped")
            return None
        sched["every"] = ms_duration(int(every_ms))
        if isinstance(raw.get("anchorMs"), int | float):
            sched["anchor"] = ms_instant(raw["anchorMs"])
    elif kind == "at":
        if isinstance(raw.get("at"), str) and raw["at"].strip():
            sched["at"] = raw["at"].strip()
        elif isinstance(raw.get("atMs"), int | float):
            sched["at"] = ms_instant(raw["atMs"])
        else:
            warn("schedule.at/atMs: missing; skipped")
            return None
    else:
        warn(f"schedule.kind: {kind!r} is not cron, every or at; skipped")
        return None
    for key in sorted(set(raw) - {"kind", "expr", "tz", "staggerMs", "everyMs", "anchorMs", "at", "atMs"}):
        warn(f"schedule.{key}: no equivalent; dropped")
    return sched


def _import_payload(raw: Any, warn: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(payload, legacy delivery from the payload's deliver/channel/to/bestEffortDeliver)."""
    if not isinstance(raw, dict):
        warn("payload: missing; skipped")
        return None
    kind = raw.get("kind")
    legacy: dict[str, Any] = {}
    if kind == "systemEvent":
        payload = {"kind": kind, "text": raw.get("text")}
        known = {"kind", "text"}
    elif kind == "agentTurn":
        payload = {"kind": kind, "message": raw.get("message")}
        for key in ("model", "timeoutSeconds"):
            if raw.get(key) is not None:
                payload[key] = raw[key]
        thinking = raw.get("thinking")
        if thinking is not None:
            if thinking in _THINKING:
                payload["thinking"] = thinking
            else:
                warn(f"payload.thinking: {thinking!r} is not one of {', '.join(sorted(_THINKING))}; dropped")
        if raw.get("deliver") is False:
            legacy["mode"] = "none"
        for src, dst in (("channel", "channel"), ("to", "to"), ("bestEffortDeliver", "bestEffort")):
            if raw.get(src) is not None:
                legacy[dst] = raw[src]
        if legacy and "mode" not in legacy:
            legacy["mode"] = "announce"
        known = {"kind", "message", "model", "thinking", "timeoutSeconds", "deliver", "channel", "to"}
        known |= {"bestEffortDeliver"}
    else:
        warn(f"payload.kind: {kind!r} is not agentTurn or systemEvent; skipped")
        return None
    for key in sorted(set(raw) - known):
        warn(f"payload.{key}: no equivalent; dropped")
    return payload, legacy


def _import_delivery(raw: dict[str, Any], warn: Callable[[str], None]) -> dict[str, Any] | None:
    mode = raw.get("mode", "announce")
    if mode == "webhook":
        warn("delivery.mode: webhook has no equivalent (use spec.notify with a webhook channel); dropped")
        return None
    if mode not in ("announce", "none"):
        warn(f"delivery.mode: {mode!r} is not announce or none; dropped")
        return None
    out: dict[str, Any] = {"mode": mode}
    channel = raw.get("channel")
    if channel == "last":
        warn('delivery.channel: "last" is refused by the hooks API; set an explicit channel and to (dropped)')
    elif channel:
        out["channel"] = channel
        if raw.get("to"):
            out["to"] = str(raw["to"])
        if raw.get("accountId"):
            out["accountId"] = raw["accountId"]
    if raw.get("threadId") not in (None, ""):
        if out.get("channel") == "telegram" and out.get("to"):
            out["to"] = f"{out['to']}:topic:{raw['threadId']}"
            warn("delivery.threadId: folded into delivery.to as ':topic:<id>'")
        else:
            warn("delivery.threadId: no equivalent for this channel; dropped")
    if raw.get("bestEffort") is not None:
        out["bestEffort"] = bool(raw["bestEffort"])
    for key in sorted(set(raw) - {"mode", "channel", "to", "accountId", "threadId", "bestEffort"}):
        warn(f"delivery.{key}: no equivalent; dropped")
    return out


def _import_one(
    job: dict[str, Any], namespace: str | None, used: set[str], warn: Callable[[str], None]
) -> dict[str, Any] | None:
    sched = _import_schedule(job.get("schedule"), warn)
    imported = _import_payload(job.get("payload"), warn)
    if sched is None or imported is None:
        return None
    payload, legacy_delivery = imported

    original = str(job.get("name") or job.get("id") or "job")
    base = dns_name(original) or dns_name(f"job-{job.get('id', '')}") or "job"
    name, i = base, 2
    while name in used:
        suffix = f"-{i}"
        name, i = base[: 63 - len(suffix)].rstrip("-") + suffix, i + 1
    used.add(name)
    if base != original:
        warn(f"name: {original!r} is not a DNS-1123 name; imported as {name!r}")
    elif name != base:
        warn(f"name: {original!r} is already used by another imported job; imported as {name!r}")

    annotations: dict[str, str] = {}
    if job.get("id"):
        annotations[ANNOTATION_IMPORTED_ID] = str(job["id"])
    if name != original:
        annotations[ANNOTATION_IMPORTED_NAME] = original
    if job.get("description"):
        annotations[ANNOTATION_DESCRIPTION] = str(job["description"])
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = annotations

    spec: dict[str, Any] = {"schedule": sched}
    if job.get("enabled") is False:
        spec["suspend"] = True
    spec["payload"] = payload
    target = job.get("sessionTarget")
    if target in ("main", "isolated"):
        spec["sessionTarget"] = target
    elif target is not None:
        warn(f"sessionTarget: {target!r} has no equivalent (main or isolated, derived from the payload); dropped")
    if job.get("wakeMode") in ("now", "next-heartbeat"):
        spec["wakeMode"] = job["wakeMode"]
    elif job.get("wakeMode") is not None:
        warn(f"wakeMode: {job['wakeMode']!r} is not now or next-heartbeat; dropped")
    if job.get("agentId"):
        spec["agentId"] = job["agentId"]
    delivery_raw = job.get("delivery")
    if isinstance(delivery_raw, dict):
        delivery = _import_delivery(delivery_raw, warn)
        if legacy_delivery:
            warn("payload.deliver/channel/to: superseded by the delivery block; dropped")
    else:
        delivery = _import_delivery(legacy_delivery, warn) if legacy_delivery else None
    if delivery is not None:
        spec["delivery"] = delivery
    if isinstance(job.get("deleteAfterRun"), bool):
        spec["deleteAfterRun"] = job["deleteAfterRun"]
    alert = job.get("failureAlert")
    if isinstance(alert, dict) and not alert.get("disabled"):
        after = alert.get("after")
        if isinstance(after, int) and after >= 1:
            spec["notify"] = {"onFailure": True, "alertAfterConsecutiveFailures": after}
        rest = sorted(set(alert) - {"after", "disabled"})
        if rest:
            warn(
                f"failureAlert.{', failureAlert.'.join(rest)}: no per-job equivalent; "
                "name operator notification channels in spec.notify.channels"
            )
    if job.get("sessionKey"):
        warn("sessionKey: no equivalent (runs go through the hooks API); dropped")
    if job.get("hooks"):
        warn("hooks: pre-run hooks have no equivalent; dropped")
    for key in sorted(set(job) - _KNOWN_JOB_KEYS):
        warn(f"{key}: no equivalent; dropped")

    problems = _validate_spec(spec)
    for problem in problems:
        warn(f"imported spec is not valid: {problem}")
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata, "spec": spec}


def _validate_spec(spec: dict[str, Any]) -> list[str]:
    from .. import validation

    return [str(e) for e in validation.validate(spec, now=datetime.now(UTC))]


def cmd_import(ctx: Ctx) -> int:
    a = ctx.args
    text = _read(a.file)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{a.file}: not valid JSON: {exc}") from None
    result = import_jobs(data, a.namespace)
    for warning in result.warnings:
        print(f"warning: {warning}", file=ctx.err)
    if a.output == "json":
        ctx.out.write(dump({"apiVersion": "v1", "kind": "List", "items": result.docs}, "json"))
    else:
        ctx.out.write("---\n".join(dump(doc, "yaml") for doc in result.docs))
    print(f"imported {len(result.docs)} job(s), skipped {result.skipped}", file=ctx.err)
    return EXIT_FAILURE if result.skipped else EXIT_OK
