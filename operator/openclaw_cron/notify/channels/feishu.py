"""Feishu/Lark custom bot, signed when the bot has a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ..errors import DeliveryError
from ..message import Notification
from ..reader import ConfigReader
from .base import HttpChannel, truncate


def feishu_sign(timestamp: int, secret: str) -> str:
    """Feishu custom-bot signature: HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"`` over b"", base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


@dataclass(frozen=True, repr=False)
class FeishuChannel(HttpChannel):
    """Feishu/Lark custom bot: text message, signed when the bot has a secret."""

    secret: str | None = None
    clock: Callable[[], float] = time.time

    type: ClassVar[str] = "feishu"
    required_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})
    optional_fields: ClassVar[frozenset[str]] = frozenset({"secret"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        return cls(url=r.url("webhookUrl"), secret=r.text("secret"), **common)

    def secrets(self) -> tuple[str, ...]:
        return (*super().secrets(), self.secret or "")

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        data: dict[str, Any] = {"msg_type": "text", "content": {"text": truncate(f"{title}\n{body}", 30000)}}
        if self.secret:
            timestamp = int(self.clock())
            data.update(timestamp=str(timestamp), sign=feishu_sign(timestamp, self.secret))
        return data

    def check_answer(self, status: int, text: str) -> None:
        """Feishu answers HTTP 200 with ``{"code": 19021, ...}`` for a bad signature."""
        try:
            answer = json.loads(text)
        except ValueError:
            return
        if isinstance(answer, dict):
            code = answer.get("code", answer.get("StatusCode", 0))
            if code not in (0, None):
                msg = answer.get("msg") or answer.get("StatusMessage") or ""
                raise DeliveryError(f"feishu code {code}: {self.scrub(str(msg))}", retryable=False)
