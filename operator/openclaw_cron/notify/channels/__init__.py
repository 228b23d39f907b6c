"""The channels: one module per service behind ``base.Channel``, and their registry.

``TYPES`` maps a config entry's ``type`` to its class; the config parser knows channels
only through it. A new channel is a new module here (a ``Channel`` or ``HttpChannel``
subclass with its ``type``, its fields, ``from_config`` and ``payload`` or ``send``),
imported below and listed in ``TYPES``; nothing else changes.
"""

from __future__ import annotations

from .base import Channel, HttpChannel
from .discord import DiscordChannel
from .email import EmailChannel
from .feishu import FeishuChannel
from .slack import SlackChannel
from .telegram import TelegramChannel
from .webhook import WebhookChannel

TYPES: dict[str, type[Channel]] = {
    c.type: c
    for c in (
        WebhookChannel,
        SlackChannel,
        FeishuChannel,
        DiscordChannel,
        TelegramChannel,
        EmailChannel,
    )
}

__all__ = [
    "TYPES",
    "Channel",
    "DiscordChannel",
    "EmailChannel",
    "FeishuChannel",
    "HttpChannel",
    "SlackChannel",
    "TelegramChannel",
    "WebhookChannel",
]
