"""`openclaw-cron-operator`: settings from env (OPENCLAW_CRON_*) and flags, then kopf."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import secrets
import socket
import sys
from collections.abc import Mapping, Sequence

import kopf
from kopf._core.engines.peering import Identity  # kopf.run's `identity` type, not re-exported

from . import handlers  # noqa: F401  (registers the handlers)
from .settings import Settings


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def parse_args(argv: Sequence[str] | None, base: Settings) -> tuple[argparse.Namespace, Settings]:
    p = argparse.ArgumentParser(prog="openclaw-cron-operator", description=__doc__)
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces (default)")
    p.add_argument("--standalone", action="store_true", help="no peering (a single replica, or tests)")
    p.add_argument("--peering", default=base.peering_name, help="kopf peering object name (HA)")
    p.add_argument("--priority", type=int, default=base.priority, help="peering priority of this replica")
    p.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    p.add_argument("--metrics-port", type=int, default=base.metrics_port, help="0 disables /metrics")
    p.add_argument("--max-concurrent-runs", type=int, default=base.max_concurrent_runs)
    p.add_argument("--default-tz", default=base.default_tz)
    p.add_argument("--log-format", choices=["text", "json"], default=base.log_format)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    namespaces = tuple(args.namespace) or base.namespaces
    settings = dataclasses.replace(
        base,
        namespaces=() if args.all_namespaces else namespaces,
        peering_name=args.peering,
        priority=args.priority,
        metrics_port=args.metrics_port,
        max_concurrent_runs=args.max_concurrent_runs,
        default_tz=args.default_tz,
        log_format=args.log_format,
    )
    return args, settings


def own_identity(environ: Mapping[str, str] | None = None) -> Identity:
    """This replica's name in kopf peering: the Pod name (hostname) and a random suffix.

    kopf's own default asks the OS for the user name, which fails under a UID without a passwd
    entry (the chart's 65532 on a distroless-style image, OpenShift's random UIDs). `POD_ID`,
    kopf's documented override, still wins.
    """
    env = os.environ if environ is None else environ
    if env.get("POD_ID"):
        return Identity(env["POD_ID"])
    return Identity(f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        base = Settings.from_env()
    except ValueError as exc:
        sys.exit(f"openclaw-cron-operator: {exc}")
    args, settings = parse_args(argv, base)
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler], force=True)
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # per-handler chatter
        for name in ("kopf.activities.authentication", "kopf._core.engines.activities"):
            logging.getLogger(name).setLevel(logging.WARNING)  # a re-login every minute (handlers.login)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    kopf.run(
        standalone=args.standalone,
        priority=settings.priority,
        # a peering name makes peering mandatory in kopf, which would pause a standalone operator
        peering_name=None if args.standalone else settings.peering_name,
        liveness_endpoint=args.liveness,
        identity=own_identity(),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        memo=kopf.Memo(settings=settings),
    )


if __name__ == "__main__":
    main()
