"""Discord webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ..message import Notification
from ..reader import ConfigReader
from .base import HttpChannel, truncate


@dataclass(frozen=True, repr=False)
class DiscordChannel(HttpChannel):
    """Discord webhook: ``{"content": ...}``, at most 2000 characters."""

    type: ClassVar[str] = "discord"
    required_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        return cls(url=r.url("webhookUrl"), **common)

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        return {"content": truncate(f"**{title}**\n{body}", 2000), "allowed_mentions": {"parse": []}}
