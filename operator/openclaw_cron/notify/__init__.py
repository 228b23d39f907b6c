"""Run notifications: channel config, storm-free decisions, templates, async delivery.

Channels are configured once for the operator (a YAML/JSON file mounted from a Secret,
``settings.notify_config``); jobs only name them in ``spec.notify.channels``. So secrets
(webhook URLs, bot tokens, SMTP passwords) live in one Secret, never in job specs, and
this module never puts them in a log line, a ``repr`` or an error message.

Delivery is fire-and-forget for the reconcile loop: ``Notifier.submit`` never blocks or
raises; a bounded queue drops the oldest message when a channel is down for long.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import yaml

from .. import metrics
from .errors import DeliveryError, NotifyConfigError
from .message import KINDS, Notification
from .policy import decide, notifications_for
from .templates import render

log = logging.getLogger(__name__)

REDACTED = "***"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- channels ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Channel:
    """A configured destination. Subclasses hold their secrets and know their payload."""

    name: str
    timeout_seconds: float = 10.0
    insecure_skip_verify: bool = False
    ca_file: str | None = None

    type: ClassVar[str] = ""

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

    def secrets(self) -> tuple[str, ...]:
        parts = urlsplit(self.url)
        return (self.url, parts.path, parts.query, *self.headers.values())

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


@dataclass(frozen=True, repr=False)
class WebhookChannel(HttpChannel):
    """Generic JSON webhook: structured fields plus the rendered title and body."""

    type: ClassVar[str] = "webhook"

    def payload(self, message: Notification) -> dict[str, Any]:
        return message.fields()


@dataclass(frozen=True, repr=False)
class SlackChannel(HttpChannel):
    """Slack incoming webhook: ``{"text": ...}`` with mrkdwn bold title."""

    type: ClassVar[str] = "slack"

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        return {"text": _truncate(f"*{title}*\n{body}", 39000)}


@dataclass(frozen=True, repr=False)
class DiscordChannel(HttpChannel):
    """Discord webhook: ``{"content": ...}``, at most 2000 characters."""

    type: ClassVar[str] = "discord"

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        return {"content": _truncate(f"**{title}**\n{body}", 2000), "allowed_mentions": {"parse": []}}


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

    def secrets(self) -> tuple[str, ...]:
        return (*super().secrets(), self.secret or "")

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        data: dict[str, Any] = {"msg_type": "text", "content": {"text": _truncate(f"{title}\n{body}", 30000)}}
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


@dataclass(frozen=True, repr=False)
class TelegramChannel(HttpChannel):
    """Telegram Bot API sendMessage; the token sits in the URL path, so it is scrubbed."""

    bot_token: str = ""
    chat_id: str = ""
    api_base: str = "https://api.telegram.org"
    message_thread_id: int | None = None

    type: ClassVar[str] = "telegram"

    def secrets(self) -> tuple[str, ...]:
        return (self.bot_token,)

    def describe(self) -> str:
        return f"chat={self.chat_id}"

    def target(self) -> str:
        return f"{self.api_base.rstrip('/')}/bot{self.bot_token}/sendMessage"

    def payload(self, message: Notification) -> dict[str, Any]:
        title, body = message.rendered()
        data: dict[str, Any] = {"chat_id": self.chat_id, "text": _truncate(f"{title}\n\n{body}", 4096)}
        if self.message_thread_id is not None:
            data["message_thread_id"] = self.message_thread_id
        return data


@dataclass(frozen=True, repr=False)
class EmailChannel(Channel):
    """SMTP with STARTTLS (default) or implicit TLS; smtplib runs in a worker thread."""

    host: str = ""
    port: int = 587
    username: str | None = None
    password: str | None = None
    from_addr: str = ""
    to: tuple[str, ...] = ()
    starttls: bool = True
    tls: bool = False

    type: ClassVar[str] = "email"

    def secrets(self) -> tuple[str, ...]:
        return (self.password or "",)

    def describe(self) -> str:
        return f"{self.host}:{self.port} to={','.join(self.to)}"

    def build(self, message: Notification) -> EmailMessage:
        title, body = message.rendered()
        mail = EmailMessage()
        mail["Subject"] = title.replace("\n", " ")
        mail["From"] = self.from_addr
        mail["To"] = ", ".join(self.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="openclaw-cron")
        mail.set_content(body)
        return mail

    def _send_blocking(self, mail: EmailMessage) -> None:
        ctx = self.ssl_context()
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_seconds, context=ctx)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        with smtp:
            smtp.ehlo()
            if self.starttls and not self.tls:
                # Refuses (SMTPNotSupportedError) rather than silently sending in clear text.
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail)

    async def send(self, session: aiohttp.ClientSession, message: Notification) -> None:
        del session
        try:
            await asyncio.to_thread(self._send_blocking, self.build(message))
        except smtplib.SMTPResponseException as exc:
            # 4xx: transient (greylisting, busy); 5xx: permanent (auth, relay denied).
            raw = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code}: {self.scrub(raw)}", retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
            raise DeliveryError(f"SMTP: {self.scrub(str(exc))}", retryable=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {self.scrub(str(exc))}", retryable=True) from None


# --- config -----------------------------------------------------------------------------

_COMMON = {"type", "timeoutSeconds", "insecureSkipVerify", "caFile"}
_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required, optional)
    "webhook": ({"url"}, {"headers"}),
    "slack": ({"webhookUrl"}, set()),
    "feishu": ({"webhookUrl"}, {"secret"}),
    "discord": ({"webhookUrl"}, set()),
    "telegram": ({"botToken", "chatId"}, {"apiBase", "messageThreadId"}),
    "email": ({"host", "from", "to"}, {"port", "username", "password", "starttls", "tls"}),
}


class _Reader:
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


def parse_channel(name: str, raw: object) -> Channel:
    """One channel from its mapping; unknown fields are refused so typos surface at startup."""
    if not isinstance(raw, Mapping):
        raise NotifyConfigError(f"notify channel {name!r}: must be a mapping")
    r = _Reader(name, raw)
    kind = raw.get("type")
    if kind not in _FIELDS:
        raise r.fail("type", f"must be one of {', '.join(sorted(_FIELDS))}")
    required, optional = _FIELDS[kind]
    unknown = sorted(set(raw) - required - optional - _COMMON)
    if unknown:
        raise r.fail(unknown[0], "unknown field")
    ca_file = r.text("caFile")
    if ca_file is not None and not Path(ca_file).is_file():
        raise r.fail("caFile", "file not found")
    common: dict[str, Any] = {
        "name": name,
        "timeout_seconds": r.number("timeoutSeconds", 10.0),
        "insecure_skip_verify": r.flag("insecureSkipVerify", False),
        "ca_file": ca_file,
    }
    if kind == "webhook":
        headers = raw.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise r.fail("headers", "must map header names to string values")
        return WebhookChannel(url=r.url("url"), headers=dict(headers), **common)
    if kind == "slack":
        return SlackChannel(url=r.url("webhookUrl"), **common)
    if kind == "discord":
        return DiscordChannel(url=r.url("webhookUrl"), **common)
    if kind == "feishu":
        return FeishuChannel(url=r.url("webhookUrl"), secret=r.text("secret"), **common)
    if kind == "telegram":
        api_base = r.text("apiBase", "https://api.telegram.org") or ""
        if not re.match(r"^https?://[^\s/]+", api_base):
            raise r.fail("apiBase", "must be an http:// or https:// URL")
        token = r.required("botToken")
        if "/" in token or any(c.isspace() for c in token):
            raise r.fail("botToken", "must not contain '/' or whitespace")
        return TelegramChannel(
            bot_token=token,
            chat_id=r.required("chatId"),
            api_base=api_base,
            message_thread_id=r.integer("messageThreadId", None, minimum=1, maximum=2**53),
            **common,
        )
    to = raw.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise r.fail("to", "must be a non-empty list of e-mail addresses")
    tls = r.flag("tls", False)
    port = r.integer("port", 465 if tls else 587, minimum=1, maximum=65535)
    password = r.text("password")
    username = r.text("username")
    if password and not username:
        raise r.fail("username", "is required when password is set")
    sender = r.required("from")
    if "@" not in sender:
        raise r.fail("from", "must be an e-mail address")
    return EmailChannel(
        host=r.required("host"),
        port=port or 587,
        username=username,
        password=password,
        from_addr=sender,
        to=tuple(to),
        starttls=r.flag("starttls", True),
        tls=tls,
        **common,
    )


def parse_channels(data: object) -> dict[str, Channel]:
    """``{channels: {name: {...}}}`` → channels by name."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise NotifyConfigError("notify config: expected a mapping with a 'channels' key")
    unknown = sorted(set(data) - {"channels"})
    if unknown:
        raise NotifyConfigError(f"notify config: unknown top-level field {unknown[0]!r}")
    channels = data.get("channels") or {}
    if not isinstance(channels, Mapping):
        raise NotifyConfigError("notify config: 'channels' must map names to channel settings")
    result: dict[str, Channel] = {}
    for name, raw in channels.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", name):
            raise NotifyConfigError(f"notify channel {name!r}: name must be 1-63 letters, digits, '-', '_', '.'")
        result[name] = parse_channel(name, raw)
    return result


def load_channels(path: str | Path) -> dict[str, Channel]:
    """Read the channels file (YAML or JSON); an empty path means no channels."""
    if not str(path):
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotifyConfigError(f"notify config {str(path)!r}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The parser's message may quote a line of the file, and the file holds secrets.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise NotifyConfigError(f"notify config {str(path)!r}: not valid YAML/JSON{where}") from None
    return parse_channels(data)


# --- delivery ---------------------------------------------------------------------------


class Notifier:
    """Sends notifications in the background with bounded memory and bounded retries.

    ``submit`` enqueues one delivery per channel and returns at once; when the queue is
    full the oldest delivery is dropped (counted as outcome "dropped"). Deliveries run
    concurrently (at most ``max_in_flight``) so one dead channel does not hold up the
    others. Retryable failures (connection errors, timeouts, HTTP 429/5xx, SMTP 4xx) are
    retried ``retries`` times after ``backoff``, 2x, 4x ... seconds (a 429's Retry-After
    is honoured up to ``max_backoff``); other failures are final at once.
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        queue_size: int = 1000,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_in_flight: int = 8,
    ) -> None:
        self.channels = dict(channels)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: asyncio.Queue[tuple[Notification, str]] = asyncio.Queue(maxsize=queue_size)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._warned: set[str] = set()

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._tasks)

    def submit(self, message: Notification) -> None:
        """Queue ``message`` for each of its channels; never blocks, never raises."""
        for name in message.channels:
            if name not in self.channels:
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("notification channel %r is not configured; messages to it are dropped", name)
                metrics.notification_sent("unknown", "error")
                continue
            if self._queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    _old, old_channel = self._queue.get_nowait()
                    self._queue.task_done()
                    metrics.notification_sent(old_channel, "dropped")
                    log.warning("notification queue full; dropped the oldest message for %r", old_channel)
            self._queue.put_nowait((message, name))

    async def start(self) -> None:
        if self._worker is None:
            self._session = aiohttp.ClientSession()
            self._worker = asyncio.create_task(self._run(), name="openclaw-cron-notifier")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Give queued and in-flight deliveries ``drain_timeout`` seconds, then cancel."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        self._worker.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(self._worker, *tasks, return_exceptions=True)
        while not self._queue.empty():
            _msg, channel = self._queue.get_nowait()
            self._queue.task_done()
            metrics.notification_sent(channel, "dropped")
        self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            message, name = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(message, name))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        self._queue.task_done()

    async def _deliver(self, message: Notification, name: str) -> None:
        channel = self.channels[name]
        assert self._session is not None
        attempt = 0
        while True:
            try:
                await channel.send(self._session, message)
            except DeliveryError as exc:
                if exc.retryable and attempt < self.retries:
                    delay = min(self.backoff * 2**attempt, self.max_backoff)
                    if exc.retry_after is not None:
                        delay = min(max(delay, exc.retry_after), self.max_backoff)
                    attempt += 1
                    log.info(
                        "notification %s to %r failed (%s); retry %d in %.1fs", message.kind, name, exc, attempt, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                log.warning(
                    "notification %s for %s/%s to %r failed: %s",
                    message.kind,
                    message.namespace,
                    message.job,
                    name,
                    exc,
                )
                metrics.notification_sent(name, "error")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug in a channel must not kill the worker; the text is still scrubbed.
                log.error("notification to %r crashed: %s", name, channel.scrub(repr(exc)))
                metrics.notification_sent(name, "error")
                return
            metrics.notification_sent(name, "ok")
            return


__all__: Sequence[str] = (
    "KINDS",
    "Channel",
    "DeliveryError",
    "Notification",
    "Notifier",
    "NotifyConfigError",
    "decide",
    "feishu_sign",
    "load_channels",
    "notifications_for",
    "parse_channels",
    "render",
)
