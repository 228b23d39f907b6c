"""`kubectl openclaw`: the OpenClaw cron CLI verbs, as a kubectl plugin.

Installed as the console script `kubectl-openclaw`, so kubectl finds it on PATH. It talks
to the cluster of the current kubeconfig context through the official client, prints
kubectl-style aligned columns, and uses exit codes scripts can branch on. The pure parts
(tables, CSV, time formatting, the OpenClaw jobs.json import) are plain functions so they
are tested without a cluster.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import yaml

from . import naming as n
from .api import GROUP, KIND, PLURAL, VERSION, Schedule

EXIT_OK = 0
EXIT_FAILURE = 1  # something failed: a run, a validation, an alerting job
EXIT_ERROR = 2  # usage error, API error, missing object

RESOURCE = f"{PLURAL}.{GROUP}"
SINGULAR_REF = f"openclawcronjob.{GROUP}"
DEFAULT_ALERT_AFTER = 3
RESULTS = ("Succeeded", "Failed", "TimedOut", "Skipped", "Missed", "Running")

EPILOG = """\
exit codes:
  0  success
  1  a failure was found: the run failed or timed out (run --wait), a file is invalid
     (validate), a job is alerting (alerts), a job could not be imported (import)
  2  usage error, API error, or the object does not exist
"""


class CliError(Exception):
    """A message for the user and exit code 2 (usage, API, not found)."""


# --- formatting ---------------------------------------------------------------------------


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


def human_duration(seconds: float) -> str:
    """kubectl's short age style: 45s, 12m, 3h, 5d (two units while they help: 2m30s, 3h5m)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 10:
        return f"{m}m{s}s" if s else f"{m}m"
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 8:
        return f"{h}h{m}m" if m else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def relative(when: datetime | None, now: datetime) -> str:
    """'in 5m' for the future, '5m ago' for the past, '<none>' for no time."""
    if when is None:
        return "<none>"
    delta = (when - now).total_seconds()
    return f"in {human_duration(delta)}" if delta >= 0 else f"{human_duration(-delta)} ago"


def rfc3339_ms(when: datetime) -> str:
    """RFC 3339 UTC with milliseconds: two run-now requests in one second still differ."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --- reading jobs -------------------------------------------------------------------------


def status_of(job: Mapping[str, Any]) -> dict[str, Any]:
    status = job.get("status")
    return status if isinstance(status, dict) else {}


def condition(job: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status_of(job).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def alert_threshold(job: Mapping[str, Any]) -> int:
    notify = (job.get("spec") or {}).get("notify") or {}
    value = notify.get("alertAfterConsecutiveFailures", DEFAULT_ALERT_AFTER)
    return value if isinstance(value, int) and value > 0 else DEFAULT_ALERT_AFTER


def alert_reason(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) when the job needs attention, else None."""
    healthy = condition(job, "Healthy")
    failures = int(status_of(job).get("consecutiveFailures") or 0)
    threshold = alert_threshold(job)
    if failures >= threshold:
        last = (status_of(job).get("recentRuns") or [{}])[-1] if status_of(job).get("recentRuns") else {}
        detail = (healthy or {}).get("message") or last.get("message") or ""
        return "ConsecutiveFailures", f"{failures} failed runs in a row (threshold {threshold}). {detail}".strip()
    if healthy is not None and healthy.get("status") == "False":
        return str(healthy.get("reason") or "Unhealthy"), str(healthy.get("message") or "")
    return None


def run_rows(job: Mapping[str, Any], result: str | None, limit: int | None) -> list[dict[str, Any]]:
    """Active runs (result Running) then finished ones, newest first, filtered and limited."""
    status = status_of(job)
    rows: list[dict[str, Any]] = []
    for active in status.get("active") or []:
        rows.append({**active, "result": "Running"})
    finished = [r for r in status.get("recentRuns") or [] if isinstance(r, dict)]
    finished.sort(key=lambda r: (r.get("scheduledTime") or "", r.get("completionTime") or ""), reverse=True)
    rows.extend(finished)
    if result:
        rows = [r for r in rows if str(r.get("result", "")).lower() == result.lower()]
    return rows[:limit] if limit else rows


RUN_COLUMNS = ("RUN ID", "TRIGGER", "SCHEDULED", "DURATION", "ATTEMPTS", "RESULT", "REASON")
RUN_CSV_FIELDS = (
    "runId",
    "trigger",
    "scheduledTime",
    "startTime",
    "completionTime",
    "durationSeconds",
    "attempts",
    "result",
    "reason",
    "message",
    "exitCode",
    "podName",
)


def run_table_row(r: Mapping[str, Any]) -> list[object]:
    duration = r.get("durationSeconds")
    return [
        r.get("runId"),
        r.get("trigger", "Schedule"),
        r.get("scheduledTime"),
        human_duration(duration) if isinstance(duration, int | float) else "<none>",
        r.get("attempts", r.get("attempt", 1)),
        r.get("result"),
        r.get("reason") or "",
    ]


# --- import from OpenClaw -----------------------------------------------------------------

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
    from . import validation

    return [str(e) for e in validation.validate(spec, now=datetime.now(UTC))]


# --- validate -----------------------------------------------------------------------------


def _documents(data: Any) -> Iterable[Any]:
    if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
        yield from data["items"]
    elif data is not None:
        yield data


def validate_text(filename: str, text: str, now: datetime | None = None) -> tuple[list[str], list[str]]:
    """(error lines 'FILE: NAME: path: message', valid resource names); other kinds are ignored."""
    from . import validation

    errors: list[str] = []
    valid: list[str] = []
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return [f"{filename}: invalid YAML{where}: {problem}"], []
    for raw in docs:
        for doc in _documents(raw):
            if not isinstance(doc, dict) or doc.get("kind") != KIND:
                continue
            if not str(doc.get("apiVersion", "")).startswith(f"{GROUP}/"):
                continue
            meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
            name = str(meta.get("name") or "<unnamed>")
            problems = validation.validate_metadata(str(meta.get("name") or ""))
            spec = doc.get("spec")
            if not isinstance(spec, dict):
                problems.append(validation.FieldError("spec", "required"))
            else:
                problems.extend(validation.validate(spec, now=now or datetime.now(UTC)))
            if problems:
                errors.extend(f"{filename}: {name}: {p}" for p in problems)
            else:
                valid.append(name)
    return errors, valid


# --- the cluster --------------------------------------------------------------------------


class Cluster:
    """The few API calls the plugin makes; bodies stay plain dicts."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        from kubernetes import client, config

        try:
            config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
            _contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            if context:
                active = next((c for c in _contexts if c.get("name") == context), active)
            current_ns = ((active or {}).get("context") or {}).get("namespace") or "default"
        except config.ConfigException as exc:
            if kubeconfig or context:
                raise CliError(f"kubeconfig: {exc}") from None
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                raise CliError(f"no usable kubeconfig: {exc}") from None
            current_ns = _incluster_namespace()
        self.namespace: str = namespace or current_ns
        self.custom = client.CustomObjectsApi()
        self._core: Any = None

    @property
    def core(self) -> Any:
        """CoreV1Api, created on first use: importing it costs ~2 s, most verbs never need it."""
        if self._core is None:
            from kubernetes import client

            self._core = client.CoreV1Api()
        return self._core

    @staticmethod
    def _json(resp: Any) -> Any:
        return json.loads(resp.data)

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or self.namespace
        resp = _api(
            lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, _preload_content=False),
            name,
        )
        data: dict[str, Any] = self._json(resp)
        return data

    def jobs(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            resp = _api(lambda: self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, _preload_content=False))
        else:
            resp = _api(
                lambda: self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, _preload_content=False
                )
            )
        items: list[dict[str, Any]] = self._json(resp).get("items") or []
        return sorted(items, key=lambda j: (j["metadata"].get("namespace", ""), j["metadata"]["name"]))

    def merge_patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = _api(
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body,
                _content_type="application/merge-patch+json",
                _preload_content=False,
            ),
            name,
        )
        data: dict[str, Any] = self._json(resp)
        return data

    def pods(self, selector: str) -> list[dict[str, Any]]:
        resp = _api(
            lambda: self.core.list_namespaced_pod(self.namespace, label_selector=selector, _preload_content=False)
        )
        items: list[dict[str, Any]] = self._json(resp).get("items") or []
        return items

    def stream_logs(self, pod: str, container: str | None, follow: bool, out: TextIO) -> None:
        resp = _api(
            lambda: self.core.read_namespaced_pod_log(
                pod, self.namespace, container=container, follow=follow, _preload_content=False
            ),
            pod,
            kind="pods",
        )
        try:
            for chunk in resp.stream(4096) if hasattr(resp, "stream") else [resp.data]:
                out.write(chunk.decode(errors="replace") if isinstance(chunk, bytes) else str(chunk))
                out.flush()
        finally:
            if hasattr(resp, "release_conn"):
                resp.release_conn()


def _incluster_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else "default"


def _api(call: Callable[[], Any], name: str | None = None, kind: str = RESOURCE) -> Any:
    """Run an API call; failures become kubectl-like 'Error from server (Reason): message'."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call()
    except ApiException as exc:
        message, reason = str(exc.reason or ""), ""
        try:
            body = json.loads(exc.body or "{}")
            message, reason = body.get("message", message), body.get("reason", "")
        except (TypeError, ValueError):
            pass
        if exc.status == 404 and name and not message:
            message = f'{kind} "{name}" not found'
        raise CliError(f"Error from server ({reason or exc.status}): {message}") from None
    except (HTTPError, OSError) as exc:
        raise CliError(f"unable to reach the API server: {exc}") from None


# --- verbs --------------------------------------------------------------------------------


@dataclass
class Ctx:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep
    _cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            a = self.args
            self._cluster = Cluster(getattr(a, "kubeconfig", None), getattr(a, "context", None), a.namespace)
        return self._cluster


def cmd_run(ctx: Ctx) -> int:
    a, cluster = ctx.args, ctx.cluster
    cluster.get(a.name)  # NotFound before writing anything
    requested = ctx.now()
    value = rfc3339_ms(requested)
    cluster.merge_patch(a.name, {"metadata": {"annotations": {n.ANNOTATION_RUN_NOW: value}}})
    print(f"{SINGULAR_REF}/{a.name} triggered (run-now={value})", file=ctx.out)
    if not a.wait:
        return EXIT_OK
    floor = requested.replace(microsecond=0)
    deadline = time.monotonic() + a.timeout
    run_id: str | None = None
    while True:
        if run_id is None:
            run_id = _manual_run_id(cluster, a.name, value)
        job = cluster.get(a.name)
        for rec in status_of(job).get("recentRuns") or []:
            if rec.get("trigger") != "Manual":
                continue
            scheduled = parse_time(rec.get("scheduledTime"))
            if rec.get("runId") == run_id or (scheduled is not None and scheduled >= floor):
                return _report_run(ctx, rec)
        if time.monotonic() >= deadline:
            print(f"error: timed out after {a.timeout:g}s waiting for the run to finish", file=ctx.err)
            return EXIT_FAILURE
        ctx.sleep(a.poll_interval)


def _manual_run_id(cluster: Cluster, name: str, value: str) -> str | None:
    """The run started for our run-now value: its Pod carries the value as an annotation."""
    for pod in cluster.pods(f"{n.LABEL_JOB}={n.job_label(name)}"):
        meta = pod.get("metadata") or {}
        if (meta.get("annotations") or {}).get(n.ANNOTATION_RUN_NOW) == value:
            run: str | None = (meta.get("labels") or {}).get(n.LABEL_RUN_ID)
            return run
    return None


def _report_run(ctx: Ctx, rec: Mapping[str, Any]) -> int:
    result = rec.get("result", "Unknown")
    duration = rec.get("durationSeconds")
    took = f" in {human_duration(duration)}" if isinstance(duration, int | float) else ""
    print(f"run {rec.get('runId')} {result}{took} (attempts: {rec.get('attempts', 1)})", file=ctx.out)
    if result != "Succeeded":
        for key in ("reason", "message"):
            if rec.get(key):
                print(f"{key}: {rec[key]}", file=ctx.out)
    return EXIT_OK if result == "Succeeded" else EXIT_FAILURE


def cmd_runs(ctx: Ctx) -> int:
    a = ctx.args
    rows = run_rows(ctx.cluster.get(a.name), a.result, a.limit)
    if a.output == "json":
        ctx.out.write(dump(rows, "json"))
    elif a.output == "yaml":
        ctx.out.write(dump(rows, "yaml"))
    elif a.output == "csv":
        ctx.out.write(to_csv(RUN_CSV_FIELDS, ([r.get(f) for f in RUN_CSV_FIELDS] for r in rows)))
    elif not rows:
        print(f"No runs found for {a.name} in {ctx.cluster.namespace} namespace.", file=ctx.err)
    else:
        ctx.out.write(table(RUN_COLUMNS, (run_table_row(r) for r in rows)))
    return EXIT_OK


def _zone_label(tz: str) -> str:
    return f"LOCAL ({tz})"


def next_times(
    schedule: Schedule, created: datetime, uid: str, default_tz: str, after: datetime, count: int
) -> list[datetime]:
    from . import schedule as sched

    clock = sched.JobClock(schedule=schedule, created=created, uid=uid, default_tz=default_tz)
    return sched.next_n(clock, after, count)


def print_times(ctx: Ctx, times: list[datetime], tz_name: str, now: datetime) -> None:
    from . import schedule as sched

    if ctx.args.output in ("json", "yaml"):
        ctx.out.write(dump([n.rfc3339(t) for t in times], ctx.args.output))
        return
    if not times:
        print("No upcoming runs.", file=ctx.err)
        return
    tz = sched.zone(tz_name)
    headers = ["NEXT RUN (UTC)", "IN"]
    if tz_name != "UTC":
        headers.insert(1, _zone_label(tz_name))
    rows = []
    for t in times:
        row = [n.rfc3339(t), relative(t, now)]
        if tz_name != "UTC":
            row.insert(1, t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"))
        rows.append(row)
    ctx.out.write(table(headers, rows))


def cmd_next(ctx: Ctx) -> int:
    from . import schedule as sched

    a = ctx.args
    now = ctx.now()
    if a.expr is not None:
        if a.name:
            raise CliError("next: give either NAME or --expr, not both")
        try:
            schedule = Schedule(kind="cron", expr=a.expr, tz=a.tz)
            sched.check_cron(a.expr)
            sched.zone(a.tz, a.default_tz)
            times = next_times(schedule, now, "", a.default_tz, now, a.count)
        except ValueError as exc:
            raise CliError(f"next: {exc}") from None
        print_times(ctx, times, a.tz or a.default_tz, now)
        return EXIT_OK
    if not a.name:
        raise CliError("next: NAME or --expr is required")
    job = ctx.cluster.get(a.name)
    spec = job.get("spec") or {}
    meta = job.get("metadata") or {}
    try:
        schedule = Schedule.model_validate(spec.get("schedule") or {})
        created = parse_time(meta.get("creationTimestamp")) or now
        times = next_times(schedule, created, str(meta.get("uid", "")), a.default_tz, now, a.count)
    except ValueError as exc:
        print(f"error: {a.name}: the schedule is invalid: {exc}", file=ctx.err)
        return EXIT_FAILURE
    if spec.get("suspend"):
        print(f"warning: {a.name} is suspended; these are the times it would run once resumed", file=ctx.err)
    tz_name = schedule.tz or a.default_tz if schedule.kind == "cron" else a.tz or "UTC"
    print_times(ctx, times, tz_name, now)
    return EXIT_OK


def cmd_suspend(ctx: Ctx, suspend: bool) -> int:
    name = ctx.args.name
    job = ctx.cluster.get(name)
    verb = "suspended" if suspend else "resumed"
    if bool((job.get("spec") or {}).get("suspend")) == suspend:
        print(f"{SINGULAR_REF}/{name} {verb} (no change)", file=ctx.out)
        return EXIT_OK
    ctx.cluster.merge_patch(name, {"spec": {"suspend": suspend}})
    print(f"{SINGULAR_REF}/{name} {verb}", file=ctx.out)
    return EXIT_OK


def _pod_sort_key(pod: Mapping[str, Any]) -> tuple[str, int]:
    meta = pod.get("metadata") or {}
    try:
        attempt = int((meta.get("labels") or {}).get(n.LABEL_ATTEMPT, "1"))
    except ValueError:
        attempt = 1
    return meta.get("creationTimestamp") or "", attempt


def cmd_logs(ctx: Ctx) -> int:
    a, cluster = ctx.args, ctx.cluster
    selector = f"{n.LABEL_JOB}={n.job_label(a.name)}"
    if a.run:
        selector += f",{n.LABEL_RUN_ID}={a.run}"
    pods = sorted(cluster.pods(selector), key=_pod_sort_key)
    if not pods:
        what = f"run {a.run} of {a.name}" if a.run else a.name
        raise CliError(f"no run Pods found for {what} in namespace {cluster.namespace} (they may have been cleaned up)")
    pod = pods[-1]
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    run, attempt = labels.get(n.LABEL_RUN_ID, "?"), labels.get(n.LABEL_ATTEMPT, "1")
    print(f"==> pod/{meta['name']} (run {run}, attempt {attempt}) <==", file=ctx.err)
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    cluster.stream_logs(meta["name"], containers[0].get("name"), a.follow, ctx.out)
    return EXIT_OK


def summary_rows(
    jobs: list[dict[str, Any]], now: datetime, wide: bool, all_ns: bool
) -> tuple[list[str], list[list[object]]]:
    headers = ["NAME", "STATE", "LAST RESULT", "NEXT RUN", "FAILURES"]
    if wide:
        headers += ["SCHEDULE", "LAST RUN", "SUSPEND"]
    if all_ns:
        headers.insert(0, "NAMESPACE")
    rows: list[list[object]] = []
    for job in jobs:
        st, meta, spec = status_of(job), job.get("metadata") or {}, job.get("spec") or {}
        row: list[object] = [
            meta.get("name"),
            st.get("state") or "<unknown>",
            st.get("lastRunResult") or "<none>",
            relative(parse_time(st.get("nextRunTime")), now),
            st.get("consecutiveFailures", 0),
        ]
        if wide:
            last = parse_time(st.get("lastScheduleTime"))
            row += [st.get("schedule") or "", relative(last, now), bool(spec.get("suspend", False))]
        if all_ns:
            row.insert(0, meta.get("namespace"))
        rows.append(row)
    return headers, rows


def cmd_summary(ctx: Ctx) -> int:
    a = ctx.args
    jobs = ctx.cluster.jobs(a.all_namespaces)
    if a.output in ("json", "yaml"):
        ctx.out.write(dump([_job_brief(j) for j in jobs], a.output))
        return EXIT_OK
    if not jobs:
        where = "" if a.all_namespaces else f" in {ctx.cluster.namespace} namespace"
        print(f"No resources found{where}.", file=ctx.err)
        return EXIT_OK
    headers, rows = summary_rows(jobs, ctx.now(), a.output == "wide", a.all_namespaces)
    ctx.out.write(table(headers, rows))
    return EXIT_OK


def _job_brief(job: Mapping[str, Any]) -> dict[str, Any]:
    st, meta = status_of(job), job.get("metadata") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "state": st.get("state"),
        "schedule": st.get("schedule"),
        "suspend": bool((job.get("spec") or {}).get("suspend", False)),
        "lastRunResult": st.get("lastRunResult"),
        "lastScheduleTime": st.get("lastScheduleTime"),
        "nextRunTime": st.get("nextRunTime"),
        "consecutiveFailures": st.get("consecutiveFailures", 0),
    }


def cmd_alerts(ctx: Ctx) -> int:
    a = ctx.args
    found: list[dict[str, Any]] = []
    for job in ctx.cluster.jobs(a.all_namespaces):
        why = alert_reason(job)
        if why is not None:
            found.append(
                {
                    **_job_brief(job),
                    "threshold": alert_threshold(job),
                    "reason": why[0],
                    "message": why[1],
                }
            )
    if a.output in ("json", "yaml"):
        ctx.out.write(dump(found, a.output))
    elif not found:
        print("No alerting jobs.", file=ctx.err)
    else:
        headers = ["NAME", "FAILURES", "THRESHOLD", "LAST RESULT", "REASON", "MESSAGE"]
        rows: list[list[object]] = []
        for f in found:
            row: list[object] = [
                f["name"],
                f["consecutiveFailures"],
                f["threshold"],
                f["lastRunResult"] or "<none>",
                f["reason"],
                _one_line(f["message"], 80),
            ]
            if a.all_namespaces:
                row.insert(0, f["namespace"])
            rows.append(row)
        if a.all_namespaces:
            headers.insert(0, "NAMESPACE")
        ctx.out.write(table(headers, rows))
    return EXIT_FAILURE if found else EXIT_OK


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


def cmd_validate(ctx: Ctx) -> int:
    code = EXIT_OK
    for path in ctx.args.files:
        try:
            text = _read(path)
        except CliError as exc:
            print(f"error: {exc}", file=ctx.err)
            code = EXIT_ERROR
            continue
        errors, valid = validate_text(path, text, ctx.now())
        for line in errors:
            print(line, file=ctx.out)
        for name in valid:
            print(f"{path}: {name}: valid", file=ctx.out)
        if errors and code == EXIT_OK:
            code = EXIT_FAILURE
    return code


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


# --- argument parsing ---------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace (default: from kubeconfig)")
    common.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context to use")
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to the kubeconfig file")

    parser = _Parser(
        prog="kubectl openclaw",
        description="Work with OpenClawCronJobs (ocj): run now, history, next times, logs, health, import.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return p

    def all_ns(p: argparse.ArgumentParser) -> None:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="across all namespaces")

    p = verb("run", "Start a run now (annotation cron.openclaw.io/run-now); optionally wait for its result.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--wait", action="store_true", help="wait for the run's result; exit 1 unless it Succeeded")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait (default 3600)")
    p.add_argument("--poll-interval", type=float, default=2.0, help=argparse.SUPPRESS)

    p = verb("runs", "Show a job's run history (status.recentRuns and active runs).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--result", type=str.lower, choices=[r.lower() for r in RESULTS], help="only runs with this result")
    p.add_argument("--limit", type=int, default=None, help="at most N runs, newest first")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml", "csv"], default="table")

    p = verb("next", "Show the next due times of a job, or of a cron expression (--expr).")
    p.add_argument("name", metavar="NAME", nargs="?")
    p.add_argument("--expr", help='a cron expression, e.g. "0 7 * * 1-5"')
    p.add_argument("--tz", help="IANA zone for --expr (and for display)")
    p.add_argument("--count", type=int, default=5, help="how many times (default 5)")
    p.add_argument("--default-tz", default="UTC", help="the operator's default zone (default UTC)")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")

    p = verb("suspend", "Suspend a job (spec.suspend: true).")
    p.add_argument("name", metavar="NAME")
    p = verb("resume", "Resume a suspended job (spec.suspend: false).")
    p.add_argument("name", metavar="NAME")

    p = verb("logs", "Print the logs of a job's run Pod (the latest run unless --run).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--run", metavar="RUN_ID", help="the run id (see `runs`)")
    p.add_argument("-f", "--follow", action="store_true", help="stream the logs")

    p = verb("summary", "One line per job: state, last result, next run, failures.")
    all_ns(p)
    p.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"], default="table")

    p = verb("alerts", "Jobs failing repeatedly or unhealthy; exit 1 if there are any.")
    all_ns(p)
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")

    p = verb("validate", "Check OpenClawCronJob manifests offline (multi-document YAML; other kinds ignored).")
    p.add_argument("files", metavar="FILE", nargs="+", help="YAML/JSON files, - for stdin")

    p = verb("import", "Convert OpenClaw's ~/.openclaw/cron/jobs.json (or cron.list JSON) to OpenClawCronJob YAML.")
    p.add_argument("file", metavar="FILE", help="jobs.json, cron.list output, - for stdin")
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    return parser


VERBS: dict[str, Callable[[Ctx], int]] = {
    "run": cmd_run,
    "runs": cmd_runs,
    "next": cmd_next,
    "suspend": lambda ctx: cmd_suspend(ctx, True),
    "resume": lambda ctx: cmd_suspend(ctx, False),
    "logs": cmd_logs,
    "summary": cmd_summary,
    "alerts": cmd_alerts,
    "validate": cmd_validate,
    "import": cmd_import,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verb:
        parser.print_help(err or sys.stderr)
        return EXIT_ERROR
    args.namespace = getattr(args, "namespace", None)
    for attr in ("all_namespaces",):
        if not hasattr(args, attr):
            setattr(args, attr, False)
    if getattr(args, "count", 1) < 1 or (getattr(args, "limit", None) or 1) < 1:
        parser.error("--count and --limit must be at least 1")
    ctx = Ctx(args, out or sys.stdout, err or sys.stderr)
    try:
        return VERBS[args.verb](ctx)
    except CliError as exc:
        print(f"error: {exc}" if not str(exc).startswith("Error from server") else str(exc), file=ctx.err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
