"""The message: one Notification for some named channels, and its rendered forms.

Both sides of the package meet here: the policy builds Notifications, the channels turn
them into payloads; neither needs to know the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..api import Notify, NotifyTemplate, RunRecord
from .templates import PLACEHOLDERS, format_duration, title_and_body

Kind = Literal["failure", "success", "alert", "recovery"]
KINDS: tuple[Kind, ...] = ("failure", "success", "alert", "recovery")


@dataclass(frozen=True)
class Notification:
    """One message to send to some named channels."""

    channels: tuple[str, ...]
    kind: str
    job: str
    namespace: str
    context: Mapping[str, object] = field(default_factory=dict)
    template: NotifyTemplate | None = None

    @classmethod
    def for_run(
        cls,
        notify: Notify,
        kind: str,
        namespace: str,
        job: str,
        record: RunRecord | None,
        consecutive_failures: int,
    ) -> Notification:
        """Build the message the operator core sends for ``decide``'s kinds."""
        context: dict[str, object] = {
            "job": job,
            "namespace": namespace,
            "consecutiveFailures": consecutive_failures,
        }
        if record is not None:
            context.update(
                runId=record.run_id,
                result=record.result,
                scheduledTime=record.scheduled_time,
                duration=format_duration(record.duration_seconds),
                attempts=record.attempts,
                reason=record.reason or "",
                error=(record.message or "") if record.result != "Succeeded" else "",
                output=record.output or "",
            )
        return cls(tuple(notify.channels), kind, job, namespace, context, notify.template)

    def rendered(self) -> tuple[str, str]:
        ctx: dict[str, object] = {"job": self.job, "namespace": self.namespace, **self.context}
        for name in PLACEHOLDERS:
            ctx.setdefault(name, "")
        return title_and_body(self.kind, ctx, self.template)

    def fields(self) -> dict[str, object]:
        """Structured form for the generic webhook."""
        title, body = self.rendered()
        data: dict[str, object] = {"kind": self.kind, "job": self.job, "namespace": self.namespace}
        for name in PLACEHOLDERS:
            value = self.context.get(name)
            if value not in (None, "") and name not in data:
                data[name] = value
        data.update(title=title, body=body)
        return data
