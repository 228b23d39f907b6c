"""Run Pods: rendering (spec → Pod manifest) and reading (Pod → what happened).

Both directions are pure so the reconciler can be tested without an API server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import naming as n
from .api import GROUP, KIND, VERSION, OpenClawCronJobSpec, Trigger
from .runner import RunRequest
from .settings import Settings

RUNNER_COMMAND = "openclaw-cron-runner"
CONTAINER = "run"
NON_ROOT_UID = 65532
#: Seconds the runner keeps for itself before the Pod deadline, to report TimedOut cleanly.
RUNNER_MARGIN_MAX = 10


@dataclass(frozen=True)
class JobRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Start:
    """One attempt of one run that the reconciler wants started."""

    run_id: str
    scheduled: datetime
    attempt: int
    trigger: Trigger
    manual_value: str | None = None  # the run-now annotation value it answers

    @property
    def tag(self) -> str | None:
        """A manual run's tag (from its run id, so its retries keep it)."""
        return n.run_tag(self.run_id)

    def pod_name(self, job_name: str) -> str:
        return n.pod_name(job_name, self.scheduled, self.attempt, self.tag)


def runner_budget(timeout_seconds: int) -> int:
    """The runner's own time budget: a little less than the Pod's deadline."""
    return max(1, timeout_seconds - min(RUNNER_MARGIN_MAX, timeout_seconds // 10))


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _runner_container(job: JobRef, spec: OpenClawCronJobSpec, start: Start, settings: Settings) -> dict[str, Any]:
    gateway = spec.gateway
    url = gateway.url if gateway and gateway.url else settings.gateway_url
    ref = gateway.token_secret_ref if gateway and gateway.token_secret_ref else None
    secret, key = (ref.name, ref.key) if ref else (settings.gateway_token_secret, settings.gateway_token_key)
    env = [
        _env(n.ENV_GATEWAY_URL, url),
        {"name": n.ENV_HOOKS_TOKEN, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}},
        _env(n.ENV_REQUEST, RunRequest.from_spec(spec).to_env()),
        _env(n.ENV_JOB, f"{job.namespace}/{job.name}"),
        _env(n.ENV_RUN_ID, start.run_id),
        _env(n.ENV_ATTEMPT, str(start.attempt)),
        _env(n.ENV_IDEMPOTENCY_KEY, n.idempotency_key(job.uid, start.scheduled, start.attempt, start.tag)),
        _env(n.ENV_TIMEOUT_SECONDS, str(runner_budget(spec.timeout_seconds))),
    ]
    if settings.session_keys and spec.payload.kind == "agentTurn":
        env.append(_env(n.ENV_SESSION_KEY, n.session_key(job.uid, start.scheduled, start.attempt, start.tag)))
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.runner_image,
        "imagePullPolicy": settings.runner_image_pull_policy,
        "command": [RUNNER_COMMAND],
        "env": env,
        "terminationMessagePolicy": "File",
        "resources": (
            spec.template.resources.model_dump(mode="json")
            if spec.template and spec.template.resources
            else {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
        ),
    }
    return container


def _command_container(spec: OpenClawCronJobSpec, settings: Settings) -> dict[str, Any]:
    p = spec.payload
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": p.image,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if p.image_pull_policy:
        container["imagePullPolicy"] = p.image_pull_policy
    if p.command is not None:
        container["command"] = list(p.command)
    if p.args is not None:
        container["args"] = list(p.args)
    if p.env:
        container["env"] = [e.wire() for e in p.env]
    if p.env_from:
        container["envFrom"] = [e.model_dump(mode="json") for e in p.env_from]
    if p.working_dir:
        container["workingDir"] = p.working_dir
    if p.resources:
        container["resources"] = p.resources.model_dump(mode="json")
    return container


def render_pod(job: JobRef, spec: OpenClawCronJobSpec, start: Start, settings: Settings) -> dict[str, Any]:
    """The run Pod for one attempt: deterministic name, labels, owner, hardened security."""
    template = spec.template
    is_command = spec.payload.kind == "command"
    container = _command_container(spec, settings) if is_command else _runner_container(job, spec, start, settings)
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]

    labels = dict(template.labels or {}) if template else {}
    labels.update(
        {
            n.LABEL_JOB: n.job_label(job.name),
            n.LABEL_RUN_ID: start.run_id,
            n.LABEL_ATTEMPT: str(start.attempt),
            n.LABEL_TRIGGER: start.trigger,
            n.LABEL_MANAGED_BY: n.MANAGED_BY,
        }
    )
    annotations = dict(template.annotations or {}) if template else {}
    annotations[n.ANNOTATION_SCHEDULED_TIME] = n.rfc3339(start.scheduled)
    annotations[n.ANNOTATION_JOB_NAME] = job.name
    if start.manual_value is not None:
        annotations[n.ANNOTATION_RUN_NOW] = start.manual_value

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": spec.timeout_seconds,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_UID,
            "runAsGroup": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if not is_command:
        # The runner only talks to the gateway; it has no use for an API token.
        pod_spec["automountServiceAccountToken"] = False
    if template:
        if template.service_account_name:
            pod_spec["serviceAccountName"] = template.service_account_name
        if template.node_selector:
            pod_spec["nodeSelector"] = dict(template.node_selector)
        if template.tolerations:
            pod_spec["tolerations"] = [t.model_dump(mode="json") for t in template.tolerations]
        if template.affinity:
            pod_spec["affinity"] = template.affinity.model_dump(mode="json")
        if template.priority_class_name:
            pod_spec["priorityClassName"] = template.priority_class_name

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": start.pod_name(job.name),
            "namespace": job.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": job.name,
                    "uid": job.uid,
                    "controller": True,
                }
            ],
        },
        "spec": pod_spec,
    }


# --- reading Pods back ---------------------------------------------------------------


@dataclass(frozen=True)
class PodView:
    """What the reconciler needs from a run Pod; built from the raw object by `pod_view`."""

    name: str
    namespace: str
    owner_uid: str
    run_id: str
    attempt: int
    trigger: str
    scheduled: datetime
    created: datetime | None
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    deleting: bool = False
    start_time: datetime | None = None
    finish_time: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None  # Pod or container reason (DeadlineExceeded, Evicted, OOMKilled, ...)
    message: str | None = None  # termination message (runner JSON or last log lines)
    waiting_reason: str | None = None  # ErrImagePull, Unschedulable, CreateContainerConfigError...
    waiting_message: str | None = None
    manual_value: str | None = None
    node: str | None = None  # spec.nodeName, once scheduled
    image: str | None = None  # the image the container ran (its status), else the one asked for

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def _time(text: Any) -> datetime | None:
    return n.parse_time(text) if isinstance(text, str) and text else None


def pod_view(body: dict[str, Any]) -> PodView | None:
    """Read a run Pod; None for Pods that are not ours (missing labels or owner)."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == KIND and o.get("controller")), None)
    scheduled = _time(annotations.get(n.ANNOTATION_SCHEDULED_TIME))
    if owner is None or scheduled is None or n.LABEL_RUN_ID not in labels:
        return None
    try:
        attempt = int(labels.get(n.LABEL_ATTEMPT, "1"))
    except ValueError:
        attempt = 1
    status = body.get("status") or {}
    phase = status.get("phase") or "Pending"
    exit_code = reason = message = waiting_reason = waiting_message = None
    finish_time = None
    containers = (body.get("spec") or {}).get("containers") or []
    image = next((c.get("image") for c in containers if c.get("name") == CONTAINER), None)
    for cs in status.get("containerStatuses") or []:
        image = cs.get("image") or image
        state = cs.get("state") or {}
        if "terminated" in state:
            term = state["terminated"] or {}
            exit_code = term.get("exitCode")
            reason = term.get("reason")
            message = term.get("message")
            finish_time = _time(term.get("finishedAt"))
        elif "waiting" in state:
            waiting = state["waiting"] or {}
            waiting_reason = waiting.get("reason")
            waiting_message = waiting.get("message")
    if phase == "Pending" and waiting_reason is None:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                waiting_reason = cond.get("reason") or "Unschedulable"
                waiting_message = cond.get("message")
    if status.get("reason"):  # pod-level: DeadlineExceeded, Evicted, ...
        reason = status["reason"]
        message = message or status.get("message")
    return PodView(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        owner_uid=owner.get("uid", ""),
        run_id=labels[n.LABEL_RUN_ID],
        attempt=attempt,
        trigger=labels.get(n.LABEL_TRIGGER, "Schedule"),
        scheduled=scheduled,
        created=_time(meta.get("creationTimestamp")),
        phase=phase,
        deleting=bool(meta.get("deletionTimestamp")),
        start_time=_time(status.get("startTime")),
        finish_time=finish_time,
        exit_code=exit_code,
        reason=reason,
        message=message,
        waiting_reason=waiting_reason,
        waiting_message=waiting_message,
        manual_value=annotations.get(n.ANNOTATION_RUN_NOW),
        node=(body.get("spec") or {}).get("nodeName") or None,
        image=image or None,
    )


class PodStore:
    """Run Pods by owner uid, fed by the Pod informer (its list before the first pass, then its watch).

    The scheduler's own map rather than a kopf index: kopf gates every handler on its indexes
    being ready, and that gate costs more than the objects grow when thousands of Pods are listed
    at a restart. Only the operator's event loop touches it.
    """

    def __init__(self) -> None:
        self._by_owner: dict[str, dict[str, PodView]] = {}
        self._owner_of: dict[tuple[str, str], str] = {}
        #: The resourceVersion each stored Pod was read at: a Pod read from the API by a pass
        #: (an existing Pod at create, a safety-net look) is not overwritten by an older watch event.
        self._version: dict[tuple[str, str], int] = {}

    def put(self, body: Mapping[str, Any]) -> str | None:
        """Store a Pod's view; the uid of the job whose view changed (None: nothing it reads did)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        version = _version(meta)
        if version is not None:
            if version < self._version.get(key, -1):
                return None  # older than what a pass read already
            self._version[key] = version
        view = pod_view(dict(body))
        old_owner = self._owner_of.get(key)
        old = self._by_owner.get(old_owner or "", {}).get(key[1])
        if view == old:
            return None
        if old_owner is not None:
            self._owner_of.pop(key, None)
            self._drop(old_owner, key[1])
        if view is None:
            self._version.pop(key, None)
            return old_owner  # no longer a run Pod (its labels or owner are gone)
        self._by_owner.setdefault(view.owner_uid, {})[view.name] = view
        self._owner_of[key] = view.owner_uid
        return view.owner_uid

    def remove(self, namespace: str, name: str) -> str | None:
        """Forget a Pod; the uid of the job that owned it, if it was stored."""
        owner = self._owner_of.pop((namespace, name), None)
        self._version.pop((namespace, name), None)
        if owner is not None:
            self._drop(owner, name)
        return owner

    def _drop(self, owner: str, name: str) -> None:
        pods = self._by_owner.get(owner)
        if pods is not None:
            pods.pop(name, None)
            if not pods:
                del self._by_owner[owner]

    def get(self, owner_uid: str) -> list[PodView]:
        """A job's run Pods (a new list: the caller may add to it)."""
        return list(self._by_owner.get(owner_uid, {}).values())

    def values(self) -> Iterable[Iterable[PodView]]:
        return [list(p.values()) for p in self._by_owner.values()]


def _version(meta: Mapping[str, Any]) -> int | None:
    """A resourceVersion as a number (etcd's revision), None when it is not one (opaque by contract)."""
    try:
        return int(meta.get("resourceVersion"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
