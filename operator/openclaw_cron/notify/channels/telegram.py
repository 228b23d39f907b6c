"""Telegram Bot API sendMessage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ..message import Notification
from ..reader import ConfigReader
from .base import HttpChannel, truncate


@dataclass(frozen=True, repr=False)
class TelegramChannel(HttpChannel):
    """Telegram Bot API sendMessage; the token sits in the URL path, so it is scrubbed."""

    bot_token: str = ""
    chat_id: str = ""
    api_base: str = "https://api.telegram.org"
    message_thread_id: int | None = None

    type: ClassVar[str] = "telegram"
    required_fields: ClassVar[frozenset[str]] = frozenset({"botToken", "chatId"})
    optional_fields: ClassVar[frozenset[str]] = frozenset({"apiBase", "messageThreadId"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        api_base = r.text("apiBase", "https://api.telegram.org") or ""
        if not re.match(r"^https?://[^\s/]+", api_base):
            raise r.fail("apiBase", "must be an http:// or https:// URL")
        token = r.required("botToken")
        if "/" in token or any(c.isspace() for c in token):
            raise r.fail("botToken", "must not contain '/' or whitespace")
        return cls(
            bot_token=token,
            chat_id=r.required("chatId"),
            api_base=api_base,
            message_thread_id=r.integer("messageThreadId", None, minimum=1, maximum=2**53),
            **common,
        )

    def secrets(self) -> tuple[str, ...]:
        return (self.bot_token,)

    def describe(self) -> str:
        return f"chat={self.chat_id}"

    def target(self) -> str:
        return f"{self.api_base.rstrip('/')}/bot{self.bot_token}/sendMessage"

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        data: dict[str, Any] = {"chat_id": self.chat_id, "text": truncate(f"{title}\n\n{body}", 4096)}
        if self.message_thread_id is not None:
            data["message_thread_id"] = self.message_thread_id
        return data
