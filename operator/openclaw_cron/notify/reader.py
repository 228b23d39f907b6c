"""Reading one channel's config entry: typed getters whose errors name channel and field.

The config parser and each channel's ``from_config`` read fields through it, so every
message a user sees has one shape and never quotes a value (values may be secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import NotifyConfigError


class ConfigReader:
    """Typed access to one channel's mapping; errors name channel and field, never values."""

    def __init__(self, name: str, raw: Mapping[str, Any]) -> None:
        self.name = name
        self.raw = raw

    def fail(self, field_name: str, problem: str) -> NotifyConfigError:
        return NotifyConfigError(f"notify channel {self.name!r}: field {field_name!r}: {problem}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(key, "must be a string")
        text = str(value).strip()
        if not text:
            raise self.fail(key, "must not be empty")
        return text

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise self.fail(key, "is required")
        return value

    def url(self, key: str) -> str:
        value = self.required(key)
        if not re.match(r"^https?://[^\s/]+", value):
            raise self.fail(key, "must be an http:// or https:// URL")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0, maximum: float = 3600) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not minimum < value <= maximum:
            raise self.fail(key, f"must be a number in ({minimum}, {maximum}]")
        return float(value)

    def integer(self, key: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(key, f"must be an integer in [{minimum}, {maximum}]")
        return value
