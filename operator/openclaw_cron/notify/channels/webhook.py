"""Generic JSON webhook: the message's structured fields plus its rendered title and body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ..message import Notification
from ..reader import ConfigReader
from .base import HttpChannel


@dataclass(frozen=True, repr=False)
class WebhookChannel(HttpChannel):
    """Generic JSON webhook: structured fields plus the rendered title and body."""

    type: ClassVar[str] = "webhook"
    required_fields: ClassVar[frozenset[str]] = frozenset({"url"})
    optional_fields: ClassVar[frozenset[str]] = frozenset({"headers"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        headers = r.raw.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise r.fail("headers", "must map header names to string values")
        return cls(url=r.url("url"), headers=dict(headers), **common)

    def payload(self, message: Notification) -> dict[str, Any]:
        return message.fields()
