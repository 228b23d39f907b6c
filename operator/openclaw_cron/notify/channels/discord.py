"""Discord webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..message import Notification
from .base import HttpChannel, truncate


@dataclass(frozen=True, repr=False)
class DiscordChannel(HttpChannel):
    """Discord webhook: ``{"content": ...}``, at most 2000 characters."""

    type: ClassVar[str] = "discord"
    required_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        return {"content": truncate(f"**{title}**\n{body}", 2000), "allowed_mentions": {"parse": []}}
