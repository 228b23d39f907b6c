"""`kubectl openclaw`: the OpenClaw cron CLI verbs, as a kubectl plugin.

Installed as the console script `kubectl-openclaw`, so kubectl finds it on PATH. It talks
to the cluster of the current kubeconfig context through the official client, prints
kubectl-style aligned columns, and uses exit codes scripts can branch on. The pure parts
(tables, CSV, time formatting, the OpenClaw jobs.json import) are plain functions so they
are tested without a cluster.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from ..humanize import human_duration, relative
from .alerts import alert_reason, alert_threshold, cmd_alerts
from .backfill import cmd_backfill
from .cluster import Cluster, Ctx
from .common import (
    EXIT_ERROR,
    EXIT_FAILURE,
    EXIT_OK,
    RESULTS,
    CliError,
    rfc3339_ms,
    table,
    to_csv,
)
from .console import cmd_console
from .history import cmd_history
from .importer import (
    ANNOTATION_DESCRIPTION,
    ANNOTATION_IMPORTED_ID,
    ANNOTATION_IMPORTED_NAME,
    cmd_import,
    dns_name,
    import_jobs,
    ms_duration,
)
from .logs import cmd_logs
from .next import cmd_next
from .notify_test import DEFAULT_KEY, DEFAULT_SECRET, cmd_notify
from .resume import cmd_resume
from .run import cmd_run
from .runs import RUN_COLUMNS, cmd_runs, run_rows
from .summary import cmd_summary
from .suspend import cmd_suspend
from .validate import cmd_validate, validate_text

__all__ = [
    "ANNOTATION_DESCRIPTION",
    "ANNOTATION_IMPORTED_ID",
    "ANNOTATION_IMPORTED_NAME",
    "EXIT_ERROR",
    "EXIT_FAILURE",
    "EXIT_OK",
    "RUN_COLUMNS",
    "VERBS",
    "CliError",
    "Cluster",
    "Ctx",
    "alert_reason",
    "alert_threshold",
    "build_parser",
    "dns_name",
    "human_duration",
    "import_jobs",
    "main",
    "ms_duration",
    "relative",
    "rfc3339_ms",
    "run_rows",
    "table",
    "to_csv",
    "validate_text",
]

EPILOG = """\
exit codes:
  0  success
  1  a failure was found: the run failed or timed out (run --wait), a file is invalid
     (validate), a job is alerting (alerts), a job could not be imported (import)
  2  usage error, API error, or the object does not exist
"""


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

    def archive_url(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--archive-url",
            metavar="URL",
            help="read the run archive at URL directly (e.g. http://127.0.0.1:8444 after kubectl port-forward) "
            "instead of through the API server",
        )

    def window(p: argparse.ArgumentParser, since_help: str) -> None:
        p.add_argument("--since", "--from", dest="since", metavar="TIME", help=since_help)
        p.add_argument("--to", "--until", dest="until", metavar="TIME", help="only runs scheduled before TIME")

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
    p = verb("resume", "Resume a suspended job (spec.suspend: false) or one paused after failures (annotation).")
    p.add_argument("name", metavar="NAME")

    p = verb("backfill", "Run each slot of a past range once (annotation cron.openclaw.io/backfill).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--from", dest="start", required=True, metavar="TIME", help="RFC 3339: first slot")
    p.add_argument("--to", dest="end", required=True, metavar="TIME", help="RFC 3339: last slot")
    p.add_argument("--max", type=int, default=100, help="refuse ranges with more slots than this (default 100)")
    p.add_argument("--id", help="request id (default: derived from the range, so asking twice is one request)")
    p.add_argument("--default-tz", default="UTC", help="the operator's default zone (default UTC)")
    p.add_argument("--wait", action="store_true", help="wait until every slot started; exit 1 if Refused")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait (default 3600)")
    p.add_argument("--poll-interval", type=float, default=2.0, help=argparse.SUPPRESS)

    p = verb("notify", "Notification channels: `notify test CHANNEL` sends a test message.")
    notify_sub = p.add_subparsers(dest="notify_verb", metavar="ACTION", parser_class=_Parser, required=True)
    t = notify_sub.add_parser("test", help="send a test message through CHANNEL", parents=[common])
    t.add_argument("channel", metavar="CHANNEL")
    t.add_argument("--config", help="a local notify.yaml instead of the operator's Secret")
    t.add_argument("--secret", default=DEFAULT_SECRET, help=f"NAMESPACE/NAME ({DEFAULT_SECRET})")
    t.add_argument("--key", default=DEFAULT_KEY, help=f"the Secret's key ({DEFAULT_KEY})")

    p = verb(
        "logs",
        "Print the logs of a job's run (the latest unless --run): from its Pod, or from the run archive "
        "once the Pod is gone.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--run", metavar="RUN_ID", help="the run id (see `runs` or `history`)")
    p.add_argument("--attempt", type=int, metavar="N", help="that attempt of the run (default: the latest)")
    p.add_argument("-f", "--follow", action="store_true", help="stream the logs (of a live Pod)")
    p.add_argument("--archive", action="store_true", help="read the archived log even if the Pod still exists")
    archive_url(p)

    p = verb("history", "Archived runs, newest first: by job, time window, result and trigger.")
    p.add_argument("name", metavar="JOB", nargs="?", help="only this job")
    all_ns(p)
    window(p, "only runs scheduled at or after TIME: RFC 3339 or an age like 30m, 12h, 7d")
    p.add_argument("--result", type=str.lower, choices=[r.lower() for r in RESULTS if r != "Running"])
    p.add_argument(
        "--trigger",
        choices=["Schedule", "Manual", "CatchUp", "Retry", "Dependency", "Backfill"],
        help="only runs of this trigger",
    )
    p.add_argument("--limit", type=int, default=50, help="at most N runs (default 50)")
    p.add_argument("-o", "--output", choices=["table", "json", "csv"], default="table")
    archive_url(p)

    p = verb(
        "summary",
        "One line per job: state, last result, next run, failures; with --since, from the run archive: "
        "runs, success rate, p50/p95 duration, last failure.",
    )
    all_ns(p)
    window(p, "summarize the archived runs scheduled since TIME (e.g. 7d, or RFC 3339)")
    p.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml", "csv"], default="table")
    archive_url(p)

    p = verb(
        "console",
        "Open the web console: starts `kubectl proxy` (your kubeconfig's credentials) on 127.0.0.1 and prints its URL.",
    )
    all_ns(p)
    p.add_argument("--port", type=int, default=0, help="local port (default 0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")

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
    "resume": cmd_resume,
    "backfill": cmd_backfill,
    "notify": cmd_notify,
    "logs": cmd_logs,
    "history": cmd_history,
    "summary": cmd_summary,
    "alerts": cmd_alerts,
    "console": cmd_console,
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
