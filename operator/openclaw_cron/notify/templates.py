"""Message text: ``{{name}}`` templates, the default titles and bodies, durations.

Durations keep the messages' own style (850ms, 4.2s, 3m 7s, 2h 5m), which is not
``humanize.run_duration``'s kubectl style (0.85s, 3m7s, 2h5m): reusing that would change
the text users already receive and filter on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..api import NotifyTemplate

PLACEHOLDERS = (
    "kind",
    "job",
    "namespace",
    "result",
    "scheduledTime",
    "duration",
    "attempts",
    "error",
    "output",
    "reason",
    "runId",
    "consecutiveFailures",
)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}")

DEFAULT_TITLES: dict[str, str] = {
    "failure": "[{{namespace}}/{{job}}] run {{result}}",
    "success": "[{{namespace}}/{{job}}] run Succeeded",
    "alert": "[{{namespace}}/{{job}}] FAILING: {{consecutiveFailures}} consecutive failures",
    "recovery": "[{{namespace}}/{{job}}] recovered",
}
_DETAILS = (
    "Run: {{runId}}\nScheduled: {{scheduledTime}}\nResult: {{result}}\nDuration: {{duration}}\n"
    "Attempts: {{attempts}}\nReason: {{reason}}\nError: {{error}}\nOutput: {{output}}"
)
DEFAULT_BODIES: dict[str, str] = {
    "failure": "OpenClawCronJob {{namespace}}/{{job}} failed.\n" + _DETAILS,
    "success": "OpenClawCronJob {{namespace}}/{{job}} succeeded.\n" + _DETAILS,
    "alert": (
        "OpenClawCronJob {{namespace}}/{{job}} has failed {{consecutiveFailures}} times in a row. "
        "Further failures are not reported until it recovers.\nLast run:\n" + _DETAILS
    ),
    "recovery": "OpenClawCronJob {{namespace}}/{{job}} succeeded again after failing.\n" + _DETAILS,
}


def render(template: str, context: Mapping[str, object]) -> str:
    """Plain ``{{name}}`` substitution in one pass: no expressions, no code, no recursion.

    Known names render their value (None renders empty); anything else between braces —
    unknown names, ``{{__import__('os')}}`` — is left as written, so a typo is visible
    in the message instead of silently vanishing. Values are never re-scanned, so a
    run's output containing ``{{job}}`` stays literal.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            return match.group(0)
        value = context[name]
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(substitute, template)


def _drop_empty_fields(text: str) -> str:
    """Default bodies list every field; hide the 'Label: ' lines that rendered empty."""
    return "\n".join(line for line in text.splitlines() if not re.fullmatch(r"[A-Z][a-z]+: *", line))


def format_duration(seconds: float | None) -> str:
    """Human duration: 850ms, 42s, 3m 7s, 2h 5m."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


def title_and_body(kind: str, context: Mapping[str, object], template: NotifyTemplate | None) -> tuple[str, str]:
    """The job's template where set (one for all kinds; ``{{kind}}`` tells them apart), else ours."""
    ctx = {**context, "kind": kind}
    title_t = template.title if template and template.title else DEFAULT_TITLES.get(kind, DEFAULT_TITLES["failure"])
    if template and template.body:
        body = render(template.body, ctx)
    else:
        body = _drop_empty_fields(render(DEFAULT_BODIES.get(kind, DEFAULT_BODIES["failure"]), ctx))
    return render(title_t, ctx), body
