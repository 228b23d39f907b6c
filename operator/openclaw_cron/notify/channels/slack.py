"""Slack incoming webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ..message import Notification
from ..reader import ConfigReader
from .base import HttpChannel, truncate


@dataclass(frozen=True, repr=False)
class SlackChannel(HttpChannel):
    """Slack incoming webhook: ``{"text": ...}`` with mrkdwn bold title."""

    type: ClassVar[str] = "slack"
    required_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        return cls(url=r.url("webhookUrl"), **common)

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        return {"text": truncate(f"*{title}*\n{body}", 39000)}
