"""The channel interface: ``Channel`` (config, secrets, ``send``) and ``HttpChannel``.

A channel holds its own secrets and scrubs them from every error text; ``repr`` shows
only ``describe()``. HTTP services share ``HttpChannel.send`` (one POST, the retry
classification of its answer) and differ in ``payload``, ``target`` and ``check_answer``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import aiohttp

from ..errors import DeliveryError
from ..message import Notification
from ..reader import ConfigReader

REDACTED = "***"


def truncate(text: str, limit: int) -> str:
    """Cut to a service's message limit, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, repr=False)
class Channel:
    """A configured destination. Subclasses hold their secrets and know their payload."""

    name: str
    timeout_seconds: float = 10.0
    insecure_skip_verify: bool = False
    ca_file: str | None = None

    #: The config's ``type``, and the kind-specific fields of an entry (the common ones,
    #: ``timeoutSeconds`` and the TLS settings, are read by the parser for every channel).
    type: ClassVar[str] = ""
    required_fields: ClassVar[frozenset[str]] = frozenset()
    optional_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        """The channel from its entry: read the kind-specific fields with ``r``, pass ``common`` on."""
        raise NotImplementedError

    def secrets(self) -> tuple[str, ...]:
        """Values that must never be logged (scrubbed from every error text)."""
        return ()

    def describe(self) -> str:
        """Non-secret detail for ``repr`` and logs."""
        return ""

    def __repr__(self) -> str:
        detail = self.describe()
        return f"<{type(self).__name__} {self.name!r}{' ' + detail if detail else ''}>"

    __str__ = __repr__

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def ssl_context(self) -> ssl.SSLContext:
        """Verified TLS by default; a test CA or (for tests only) no verification on request."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def send(self, session: aiohttp.ClientSession, message: Notification) -> None:
        raise NotImplementedError


def _host_only(url: str) -> str:
    """`https://hooks.slack.com/***`: enough to tell channels apart, nothing secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/{REDACTED}"


@dataclass(frozen=True, repr=False)
class HttpChannel(Channel):
    """Channels that POST JSON to a URL whose path is itself a credential."""

    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        """A channel whose one field is its URL (Slack's and Discord's ``webhookUrl``)."""
        (url_field,) = cls.required_fields
        return cls(url=r.url(url_field), **common)

    def secrets(self) -> tuple[str, ...]:
        parts = urlsplit(self.url)
        path = parts.path if parts.path.strip("/") else ""  # a bare "/" is no secret (and is in every URL)
        return (self.url, path, parts.query, *self.headers.values())

    def describe(self) -> str:
        return _host_only(self.url)

    def target(self) -> str:
        return self.url

    def payload(self, message: Notification) -> dict[str, Any]:
        raise NotImplementedError

    def check_answer(self, status: int, text: str) -> None:
        """Services that answer 200 with an error code in the body override this."""

    async def send(self, session: aiohttp.ClientSession, message: Notification) -> None:
        body = json.dumps(self.payload(message), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **self.headers}
        ssl_arg: ssl.SSLContext | bool = self.ssl_context() if self.target().startswith("https:") else False
        try:
            async with session.post(
                self.target(),
                data=body,
                headers=headers,
                ssl=ssl_arg,
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                allow_redirects=False,
            ) as resp:
                text = (await resp.text(errors="replace"))[:300]
                if resp.status == 429 or resp.status >= 500:
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    raise DeliveryError(
                        f"HTTP {resp.status}: {self.scrub(text)}", retryable=True, retry_after=retry_after
                    )
                if resp.status >= 300:
                    raise DeliveryError(f"HTTP {resp.status}: {self.scrub(text)}", retryable=False)
                self.check_answer(resp.status, text)
        except aiohttp.ClientConnectorCertificateError as exc:
            # An untrusted certificate will not become trusted by retrying.
            raise DeliveryError(f"TLS: {self.scrub(str(exc.certificate_error))}", retryable=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {self.scrub(str(exc))}", retryable=True) from None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
