"""Slack incoming webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..message import Notification
from .base import HttpChannel, truncate


@dataclass(frozen=True, repr=False)
class SlackChannel(HttpChannel):
    """Slack incoming webhook: ``{"text": ...}`` with mrkdwn bold title."""

    type: ClassVar[str] = "slack"
    required_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        return {"text": truncate(f"*{title}*\n{body}", 39000)}
