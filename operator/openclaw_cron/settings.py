"""Operator settings (DESIGN §5): environment variables, overridable by flags.

The Helm chart renders every value into these variables; `main.py` adds flags for
the same names. Defaults are what a fresh install should do.
"""

from __future__ import annotations

import os
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
    #: How often each job re-checks the world even without events (safety net).
    resync_seconds: float = 30.0
    #: Path of the notification channels file (YAML/JSON) mounted from a Secret.
    notify_config: str = ""
    #: Hosts that HTTP run conditions may call (`*.example.com` for subdomains); empty = none.
    http_condition_hosts: tuple[str, ...] = ()
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
            notify_config=get("NOTIFY_CONFIG", ""),
            http_condition_hosts=tuple(h.strip() for h in get("HTTP_CONDITION_HOSTS", "").split(",") if h.strip()),
        )
