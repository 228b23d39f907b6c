"""E-mail over SMTP: STARTTLS (default) or implicit TLS, never plain text when TLS is asked."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar, Self

import aiohttp

from ..errors import DeliveryError
from ..message import Notification
from ..reader import ConfigReader
from .base import Channel


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
    required_fields: ClassVar[frozenset[str]] = frozenset({"host", "from", "to"})
    optional_fields: ClassVar[frozenset[str]] = frozenset({"port", "username", "password", "starttls", "tls"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        to = r.raw.get("to")
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
        return cls(
            host=r.required("host"),
            port=port or 587,  # (never None: the field has a default; for the type checker)
            username=username,
            password=password,
            from_addr=sender,
            to=tuple(to),
            starttls=r.flag("starttls", True),
            tls=tls,
            **common,
        )

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
