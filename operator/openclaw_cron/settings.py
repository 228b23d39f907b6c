"""Operator settings (DESIGN §5): environment variables, overridable by flags.

The Helm chart renders every value into these variables; `main.py` adds flags for
the same names. Defaults are what a fresh install should do.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX = "OPENCLAW_CRON_"


@dataclass(frozen=True)
class Settings:
    gateway_url: str = "http://openclaw.openclaw.svc:18789"
    #: Secret (in each job's namespace) holding the hooks token, and its key.
    gateway_token_secret: str = "openclaw-hooks"
    gateway_token_key: str = "token"
    runner_image: str = "ghcr.io/openclaw/openclaw-cron-operator:0.1.0"
    runner_image_pull_policy: str = "IfNotPresent"
    default_tz: str = "UTC"
    #: Global cap on concurrently running run Pods; 0 = unlimited. Runs beyond it wait.
    max_concurrent_runs: int = 0
    #: Namespaces to watch; empty = all namespaces.
    namespaces: tuple[str, ...] = ()
    metrics_port: int = 8080
    log_format: str = "text"  # text | json
    peering_name: str = "openclaw-cron-operator"
    priority: int = 0
    #: A run Pod still Pending after this long (image pull errors, unschedulable) fails.
    start_timeout_seconds: int = 300
    #: How often each job re-checks the world even without events (a safety net only: the
    #: scheduler wakes a job at its due times and on every event of the job or its Pods).
    resync_seconds: float = 600.0
    #: Client-side rate limit on API requests (token bucket), like kube-controller-manager's
    #: --kube-api-qps/--kube-api-burst; 0 qps = unlimited.
    kube_api_qps: float = 300.0
    kube_api_burst: int = 600
    #: Per attempt of one API request; a request that times out is retried with backoff.
    api_timeout_seconds: float = 30.0
    #: Passes at once (the operator's own work). A pass waiting for its Pod create's answer does
    #: not count: creates in flight follow the server instead (throttle.AdaptiveLimit, 8..256).
    max_parallel_reconciles: int = 64
    #: Per-run Normal Events (Started, Succeeded, Skipped); Warnings are always emitted.
    normal_events: bool = False
    #: Finished Pods beyond the history limits are pruned once this many are due (one
    #: deletecollection), or when the oldest has waited `prune_max_delay_seconds`.
    prune_batch: int = 5
    prune_max_delay_seconds: float = 300.0
    #: Path of the notification channels file (YAML/JSON) mounted from a Secret.
    notify_config: str = ""
    #: Hosts that HTTP run conditions may call (`*.example.com` for subdomains); empty = none.
    http_condition_hosts: tuple[str, ...] = ()
    #: Agent turns run under a per-attempt session key, so the operator can read their reply.
    session_keys: bool = True
    #: The default gateway's full-access token (`gateway.auth.token`), a file from a Secret in the
    #: operator's own namespace: the operator reads replies with it; run Pods never see it.
    gateway_admin_token_file: str = ""
    #: The same for per-job gateways: gateway URL (as in spec.gateway.url) -> token file.
    gateway_admin_token_files: Mapping[str, str] = field(default_factory=dict)
    #: The run archive's store: `sqlite:///path/archive.db` or a `postgresql://` DSN; "" = no archive.
    archive_url: str = ""
    #: Retention: runs older than this, and beyond this many per job, are purged.
    archive_max_age_days: float = 30.0
    archive_max_runs_per_job: int = 10_000
    #: The tail of each run Pod's log kept in the archive.
    archive_log_tail_bytes: int = 256 * 1024
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read `OPENCLAW_CRON_*`; a malformed number raises ValueError naming the variable."""
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(PREFIX + name, default)

        def num(name: str, default: float, kind: type[int] | type[float] = int) -> int | float:
            raw = get(name, str(default))
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{PREFIX}{name}: expected a number, got {raw!r}") from None
            if value < 0:
                raise ValueError(f"{PREFIX}{name}: must not be negative, got {raw!r}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = get(name, "true" if default else "false").strip().lower()
            if raw not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{PREFIX}{name}: expected true or false, got {raw!r}")
            return raw in ("true", "1", "yes")

        log_format = get("LOG_FORMAT", cls.log_format)
        if log_format not in ("text", "json"):
            raise ValueError(f"{PREFIX}LOG_FORMAT: expected text or json, got {log_format!r}")
        namespaces = tuple(n.strip() for n in get("NAMESPACES", "").split(",") if n.strip())
        return cls(
            gateway_url=get("GATEWAY_URL", cls.gateway_url),
            gateway_token_secret=get("GATEWAY_TOKEN_SECRET", cls.gateway_token_secret),
            gateway_token_key=get("GATEWAY_TOKEN_KEY", cls.gateway_token_key),
            runner_image=get("RUNNER_IMAGE", cls.runner_image),
            runner_image_pull_policy=get("RUNNER_IMAGE_PULL_POLICY", cls.runner_image_pull_policy),
            default_tz=get("DEFAULT_TZ", cls.default_tz),
            max_concurrent_runs=int(num("MAX_CONCURRENT_RUNS", 0)),
            namespaces=namespaces,
            metrics_port=int(num("METRICS_PORT", cls.metrics_port)),
            log_format=log_format,
            peering_name=get("PEERING_NAME", cls.peering_name),
            priority=int(num("PRIORITY", 0)),
            start_timeout_seconds=int(num("START_TIMEOUT_SECONDS", cls.start_timeout_seconds)),
            resync_seconds=float(num("RESYNC_SECONDS", cls.resync_seconds, float)),
            kube_api_qps=float(num("KUBE_API_QPS", cls.kube_api_qps, float)),
            kube_api_burst=max(1, int(num("KUBE_API_BURST", cls.kube_api_burst))),
            api_timeout_seconds=float(num("API_TIMEOUT_SECONDS", cls.api_timeout_seconds, float)) or 30.0,
            max_parallel_reconciles=max(1, int(num("MAX_PARALLEL_RECONCILES", cls.max_parallel_reconciles))),
            normal_events=flag("NORMAL_EVENTS", cls.normal_events),
            prune_batch=max(1, int(num("PRUNE_BATCH", cls.prune_batch))),
            prune_max_delay_seconds=float(num("PRUNE_MAX_DELAY_SECONDS", cls.prune_max_delay_seconds, float)),
            notify_config=get("NOTIFY_CONFIG", ""),
            archive_url=get("ARCHIVE_URL", ""),
            archive_max_age_days=float(num("ARCHIVE_MAX_AGE_DAYS", cls.archive_max_age_days, float)),
            archive_max_runs_per_job=int(num("ARCHIVE_MAX_RUNS_PER_JOB", cls.archive_max_runs_per_job)),
            archive_log_tail_bytes=int(num("ARCHIVE_LOG_TAIL_BYTES", cls.archive_log_tail_bytes)),
            http_condition_hosts=tuple(h.strip() for h in get("HTTP_CONDITION_HOSTS", "").split(",") if h.strip()),
            session_keys=flag("SESSION_KEYS", cls.session_keys),
            gateway_admin_token_file=get("GATEWAY_ADMIN_TOKEN_FILE", "").strip(),
            gateway_admin_token_files=_token_files(get("GATEWAY_ADMIN_TOKEN_FILES", "")),
        )


def gateway_key(url: str) -> str:
    """A gateway URL as the token map matches it: scheme and host lowercase, no trailing slash."""
    parts = urllib.parse.urlsplit(url.strip())
    return parts._replace(
        scheme=parts.scheme.lower(), netloc=parts.netloc.lower(), path=parts.path.rstrip("/")
    ).geturl()


def _token_files(raw: str) -> dict[str, str]:
    """`OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILES`: a JSON object of gateway URL -> token file path."""
    name = f"{PREFIX}GATEWAY_ADMIN_TOKEN_FILES"
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: expected a JSON object of gateway URL to token file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object of gateway URL to token file, got {type(data).__name__}")
    files: dict[str, str] = {}
    for url, path in data.items():
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{name}: {url!r} is not an http(s)://host[:port] gateway URL")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{name}: the token file for {url} must be an absolute path, got {path!r}")
        files[gateway_key(url)] = path
    return files
