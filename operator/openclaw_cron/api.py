"""OpenClawCronJob API types: the single source of the CRD schema.

Field names follow OpenClaw's cron job JSON where OpenClaw has the concept and
Kubernetes CronJob's where Kubernetes has it. Rules that need more than one field
live in `validation.py` (pure, with messages for users) and, where CEL can say
them, in `x-kubernetes-validations` so the API server refuses them at apply time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "cron.openclaw.io"
VERSION = "v1alpha1"
KIND = "OpenClawCronJob"
PLURAL = "openclawcronjobs"
SINGULAR = "openclawcronjob"
SHORT_NAMES = ["ocj"]
CATEGORIES = ["openclaw"]

#: Kubernetes object names that end up in Pod names and labels.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_STATUS_RUNS = 50
MAX_OUTPUT_BYTES = 1024


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """JSON-schema extra carrying CEL rules for the generated CRD."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class Model(BaseModel):
    """Base: camelCase on the wire, unknown fields refused (the API server prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON form as the API server stores it (aliases, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Preserved(BaseModel):
    """Kubernetes core types we pass through untouched (tolerations, affinity, ...)."""

    model_config = ConfigDict(
        extra="allow", frozen=True, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


# --- spec ------------------------------------------------------------------------------

ScheduleKind = Literal["cron", "every", "at"]
CatchUp = Literal["Latest", "None", "All"]


class Schedule(Model):
    """When a job runs: a cron expression, a fixed interval or one instant."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("self.kind != 'cron' || has(self.expr)", "schedule.expr is required when kind is cron"),
            ("self.kind != 'every' || has(self.every)", "schedule.every is required when kind is every"),
            ("self.kind != 'at' || has(self.at)", "schedule.at is required when kind is at"),
            ("!has(self.expr) || self.kind == 'cron'", "schedule.expr is only allowed when kind is cron"),
            ("!has(self.every) || self.kind == 'every'", "schedule.every is only allowed when kind is every"),
            ("!has(self.anchor) || self.kind == 'every'", "schedule.anchor is only allowed when kind is every"),
            ("!has(self.at) || self.kind == 'at'", "schedule.at is only allowed when kind is at"),
        )
    )

    kind: ScheduleKind = Field(description="cron | every | at")
    expr: str | None = Field(
        None,
        max_length=256,
        description="Cron expression: 5 fields, or 6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly.",
    )
    tz: str | None = Field(
        None, max_length=64, description="IANA time zone for expr; default: the operator's default zone."
    )
    every: str | None = Field(
        None,
        max_length=64,
        pattern=r"^\s*([0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d|w)\s*)+$",
        description="Interval for kind every, e.g. 20m, 1h30m, 2s.",
    )
    anchor: str | None = Field(
        None, max_length=64, description="RFC 3339 instant the every-interval counts from; default: creation time."
    )
    at: str | None = Field(
        None,
        max_length=64,
        description="For kind at: RFC 3339 instant (no offset means UTC) or a duration after creation (20m).",
    )
    stagger_seconds: int = Field(
        0, ge=0, le=86400, description="Deterministic per-job delay in [0, staggerSeconds) to spread load."
    )
    starting_deadline_seconds: int | None = Field(
        None,
        ge=0,
        le=31 * 86400,
        description="A slot later than this many seconds is missed, not run. Default: no deadline (catchUp decides).",
    )
    catch_up: CatchUp = Field(
        "Latest", description="After downtime or suspend: Latest (one run), None, All (every missed slot, at most 100)."
    )


PayloadKind = Literal["agentTurn", "systemEvent", "command"]
Thinking = Literal["off", "minimal", "low", "medium", "high", "xhigh"]


class EnvVar(Model):
    """A container environment variable; valueFrom is passed through as in core/v1."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    value_from: Preserved | None = None


class Payload(Model):
    """What a run does. One flat type (not a union) keeps the CRD schema structural."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("self.kind != 'agentTurn' || has(self.message)", "payload.message is required for agentTurn"),
            ("self.kind != 'systemEvent' || has(self.text)", "payload.text is required for systemEvent"),
            ("self.kind != 'command' || has(self.image)", "payload.image is required for command"),
            (
                "self.kind == 'agentTurn' || !(has(self.message) || has(self.model) || has(self.thinking)"
                " || has(self.name) || has(self.timeoutSeconds))",
                "payload.message, model, thinking, name and timeoutSeconds are only for agentTurn",
            ),
            ("self.kind == 'systemEvent' || !has(self.text)", "payload.text is only for systemEvent"),
            (
                "self.kind == 'command' || !(has(self.image) || has(self.command) || has(self.args) || has(self.env)"
                " || has(self.envFrom) || has(self.workingDir) || has(self.resources) || has(self.imagePullPolicy))",
                "payload.image, command, args, env, envFrom, workingDir, resources and imagePullPolicy"
                " are only for command",
            ),
        )
    )

    kind: PayloadKind = Field(description="agentTurn | systemEvent | command")
    # agentTurn
    message: str | None = Field(None, min_length=1, max_length=65536, description="agentTurn: the prompt.")
    name: str | None = Field(None, max_length=128, description="agentTurn: name shown for the hook run.")
    model: str | None = Field(None, max_length=256, description="agentTurn: model override.")
    thinking: Thinking | None = Field(None, description="agentTurn: thinking level.")
    timeout_seconds: int | None = Field(
        None, ge=1, le=86400, description="agentTurn: gateway-side timeout; default: spec.timeoutSeconds."
    )
    # systemEvent
    text: str | None = Field(None, min_length=1, max_length=65536, description="systemEvent: the event text.")
    # command
    image: str | None = Field(None, min_length=1, max_length=512, description="command: container image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] | None = Field(None, max_length=64, description="command: entrypoint.")
    args: list[str] | None = Field(None, max_length=256, description="command: arguments.")
    env: list[EnvVar] | None = Field(None, max_length=256, description="command: environment.")
    env_from: list[Preserved] | None = Field(None, max_length=64, description="command: envFrom sources (core/v1).")
    working_dir: str | None = Field(None, max_length=4096)
    resources: Preserved | None = Field(None, description="command: container resources (core/v1).")


class Delivery(Model):
    """Where an agent turn's answer goes (OpenClaw's delivery block)."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("!has(self.channel) || has(self.to)", "delivery.channel needs delivery.to"),
            (
                "!has(self.accountId) || self.accountId == '' || (has(self.channel) && has(self.to))",
                "delivery.accountId needs delivery.channel and delivery.to",
            ),
            (
                "!has(self.channel) || self.channel != 'last'",
                "delivery.channel 'last' is not supported by the hooks API",
            ),
        )
    )

    mode: Literal["announce", "none"] = Field("announce", description="announce: deliver the answer; none: keep it.")
    channel: str | None = Field(None, min_length=1, max_length=64)
    to: str | None = Field(None, min_length=1, max_length=256)
    account_id: str | None = Field(None, max_length=128)
    best_effort: bool = Field(False, description="When false, a run whose delivery failed is Failed.")


class SecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253)
    key: str = Field("token", min_length=1, max_length=253)


class Gateway(Model):
    """Which OpenClaw gateway runs the payload; unset parts come from the operator's config."""

    url: str | None = Field(None, max_length=2048, pattern=r"^https?://[^\s]+$")
    token_secret_ref: SecretKeyRef | None = None


ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace", "Queue"]


class Retry(Model):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.maxDelaySeconds) || self.maxDelaySeconds >= self.delaySeconds",
                "retry.maxDelaySeconds must be at least retry.delaySeconds",
            ),
            (
                "!has(self.maxDelaySeconds) || self.backoff == 'Exponential'",
                "retry.maxDelaySeconds is only for backoff Exponential",
            ),
        )
    )

    limit: int = Field(0, ge=0, le=10, description="Extra attempts after a failed one.")
    delay_seconds: int = Field(60, ge=0, le=86400)
    backoff: Literal["Fixed", "Exponential"] = "Fixed"
    max_delay_seconds: int | None = Field(None, ge=0, le=86400)


class History(Model):
    successful_pods_limit: int = Field(3, ge=0, le=100)
    failed_pods_limit: int = Field(1, ge=0, le=100)
    status_limit: int = Field(10, ge=0, le=MAX_STATUS_RUNS)


class PodTemplate(Model):
    """Pod-level overrides for run Pods."""

    service_account_name: str | None = Field(None, max_length=253, pattern=DNS_LABEL)
    node_selector: dict[str, str] | None = None
    tolerations: list[Preserved] | None = Field(None, max_length=64)
    affinity: Preserved | None = None
    priority_class_name: str | None = Field(None, max_length=253)
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    resources: Preserved | None = Field(None, description="Resources of the runner container (agentTurn/systemEvent).")


class NotifyTemplate(Model):
    title: str | None = Field(None, max_length=1024)
    body: str | None = Field(None, max_length=8192)


class EscalationLevel(Model):
    """One escalation step: after the alert has lasted `afterSeconds`, also tell `channels`."""

    after_seconds: int = Field(ge=0, le=31 * 86400, description="Delay after the alert started.")
    channels: list[str] = Field(min_length=1, max_length=16)


class Notify(Model):
    """Notifications about this job's runs through the operator's named channels."""

    on_failure: bool = True
    on_success: bool = False
    on_recovery: bool = True
    channels: list[str] = Field(default_factory=list, max_length=16)
    template: NotifyTemplate | None = None
    alert_after_consecutive_failures: int = Field(3, ge=1, le=1000)
    escalation: list[EscalationLevel] | None = Field(
        None, max_length=8, description="Levels that fire while the alert lasts; one resolved message at recovery."
    )


# --- orchestration (DESIGN §9) -----------------------------------------------------------

DependencyMode = Literal["All", "Any", "Sequential"]
JobName = Annotated[str, Field(min_length=1, max_length=253)]


class DependsOn(Model):
    """Other jobs of this namespace that must have succeeded for this job's slot."""

    jobs: list[JobName] = Field(min_length=1, max_length=16)
    mode: DependencyMode = Field(
        "All", description="All: every job succeeded; Any: at least one; Sequential: each finished, in this order."
    )
    window_seconds: int | None = Field(
        None,
        ge=1,
        le=31 * 86400,
        description="A dependency's success counts when scheduled this long before the slot; default: since the"
        " previous slot.",
    )
    wait_seconds: int = Field(
        0, ge=0, le=86400, description="How long a slot waits for its dependencies before it is Skipped."
    )


class KeyCheck(Model):
    """A ConfigMap or Secret key that must exist, or equal a value."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)
    equals: str | None = Field(None, max_length=4096, description="Unset: the key must exist.")


class HttpCheck(Model):
    url: str = Field(max_length=2048, pattern=r"^https?://[^\s]+$")
    expect_status: int = Field(200, ge=100, le=599)
    timeout_seconds: int = Field(5, ge=1, le=60)


class RunCondition(Model):
    """One condition of a slot; exactly one of expression, configMapKeyRef, secretKeyRef, http."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "(has(self.expression) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0)"
                " + (has(self.secretKeyRef) ? 1 : 0) + (has(self.http) ? 1 : 0) == 1",
                "a condition needs exactly one of expression, configMapKeyRef, secretKeyRef, http",
            ),
        )
    )

    name: str | None = Field(None, max_length=64, description="Shown in the Skipped record; default: its index.")
    expression: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="CEL over the slot's local time: year, month, dayOfMonth, dayOfWeek (0=Sunday), hour, minute.",
    )
    config_map_key_ref: KeyCheck | None = None
    secret_key_ref: KeyCheck | None = None
    http: HttpCheck | None = None


class FailurePolicy(Model):
    pause_after_consecutive_failures: int | None = Field(
        None, ge=1, le=1000, description="Pause scheduling (status.state Paused) after this many failed runs in a row."
    )


class OpenClawCronJobSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.sessionTarget) || (self.payload.kind == 'systemEvent' ? self.sessionTarget == 'main'"
                " : self.payload.kind == 'agentTurn' ? self.sessionTarget == 'isolated' : true)",
                "sessionTarget must be main for systemEvent and isolated for agentTurn",
            ),
            ("!has(self.delivery) || self.payload.kind == 'agentTurn'", "delivery is only for agentTurn payloads"),
            (
                "!has(self.payload.timeoutSeconds) || !has(self.timeoutSeconds)"
                " || self.payload.timeoutSeconds <= self.timeoutSeconds",
                "payload.timeoutSeconds must not exceed spec.timeoutSeconds",
            ),
            ("has(self.schedule) || has(self.dependsOn)", "schedule is required unless dependsOn is set"),
        )
    )

    schedule: Schedule | None = Field(None, description="Required unless dependsOn is set (then: run on its success).")
    suspend: bool = False
    payload: Payload
    session_target: Literal["main", "isolated"] | None = Field(
        None, description="main for systemEvent, isolated for agentTurn; derived when unset."
    )
    wake_mode: Literal["now", "next-heartbeat"] = "now"
    agent_id: str | None = Field(None, max_length=128)
    delivery: Delivery | None = None
    gateway: Gateway | None = None
    concurrency_policy: ConcurrencyPolicy = "Forbid"
    retry: Retry = Field(default_factory=Retry)
    timeout_seconds: int = Field(3600, ge=1, le=7 * 86400, description="Per attempt; the Pod's activeDeadlineSeconds.")
    delete_after_run: bool | None = Field(
        None, description="Delete the resource after a successful run; default true for kind at."
    )
    history: History = Field(default_factory=History)
    template: PodTemplate | None = None
    notify: Notify | None = None
    depends_on: DependsOn | None = None
    conditions: list[RunCondition] | None = Field(None, max_length=16, description="All must hold at the slot.")
    failure_policy: FailurePolicy | None = None

    @property
    def effective_delete_after_run(self) -> bool:
        if self.delete_after_run is not None:
            return self.delete_after_run
        return self.schedule is not None and self.schedule.kind == "at"


# --- status ----------------------------------------------------------------------------

RunResult = Literal["Succeeded", "Failed", "TimedOut", "Skipped", "Missed"]
Trigger = Literal["Schedule", "Manual", "CatchUp", "Retry", "Dependency", "Backfill"]
State = Literal["Scheduled", "Running", "Suspended", "Invalid", "Completed", "Paused"]


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Counters(Model):
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    missed: int = 0


class ActiveRun(Model):
    run_id: str
    pod_name: str
    attempt: int = 1
    trigger: Trigger = "Schedule"
    scheduled_time: str
    start_time: str | None = None


class DeliveryStatus(Model):
    """The gateway's delivery verdict for an agent turn (its hooks `completion`)."""

    status: str | None = Field(None, description="delivered | suppressed | failed | not-delivered")
    delivered: bool | None = None
    delivery_attempted: bool | None = None
    reply_disposition: str | None = Field(None, description="visible | silent | empty")
    error: str | None = Field(None, description="Why delivery failed, or why it was suppressed.")


class RunRecord(Model):
    run_id: str
    trigger: Trigger = "Schedule"
    scheduled_time: str
    start_time: str | None = None
    completion_time: str | None = None
    duration_seconds: float | None = None
    attempts: int = 1
    result: RunResult
    reason: str | None = None
    message: str | None = None
    output: str | None = Field(None, max_length=MAX_OUTPUT_BYTES)
    exit_code: int | None = None
    pod_name: str | None = None
    gateway_run_id: str | None = None
    delivery: DeliveryStatus | None = None


class PendingRun(Model):
    """A run the operator owes: a retry waiting for its delay, or a queued run."""

    run_id: str
    trigger: Trigger
    scheduled_time: str
    attempt: int = 1
    not_before: str
    reason: str = Field("", description="Retry | Queued | GlobalCap | Waiting (for dependencies)")
    manual_value: str | None = None
    since: str | None = Field(None, description="Waiting: dependency runs count when scheduled after this.")


class PauseStatus(Model):
    """Why scheduling is paused, and what resumes it (a new resume value or a spec change)."""

    since: str
    consecutive_failures: int
    observed_generation: int | None = None


class BackfillStatus(Model):
    """Progress of the backfill request with this id (one run per slot, each slot once)."""

    id: str
    from_: str = Field(alias="from")
    to: str
    total: int = 0
    started: int = 0
    next_slot: str | None = Field(None, description="The next slot to start; unset when all started.")
    state: Literal["Running", "Completed", "Refused"] = "Running"
    message: str | None = None


class EscalationStatus(Model):
    """The running alert: when it started and the highest escalation level sent (0 = none)."""

    since: str
    level: int = 0


class OpenClawCronJobStatus(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    schedule: str | None = None
    state: State | None = None
    next_run_time: str | None = None
    last_schedule_time: str | None = None
    last_successful_time: str | None = None
    last_run_result: RunResult | None = None
    consecutive_failures: int = 0
    counters: Counters = Field(default_factory=Counters)
    active: list[ActiveRun] = Field(default_factory=list, max_length=256)
    pending: list[PendingRun] = Field(default_factory=list, max_length=256)
    recent_runs: list[RunRecord] = Field(default_factory=list, max_length=MAX_STATUS_RUNS)
    last_manual_run: str | None = Field(None, description="The run-now annotation value last acted on.")
    last_slot: str | None = Field(None, description="The newest schedule slot handled (run, skipped or missed).")
    alerting: bool = False
    paused: PauseStatus | None = None
    last_resume: str | None = Field(None, description="The resume annotation value last acted on.")
    failures_at_resume: int = Field(0, description="The failure streak when last resumed (pausing counts after it).")
    backfill: BackfillStatus | None = None
    escalation: EscalationStatus | None = None
