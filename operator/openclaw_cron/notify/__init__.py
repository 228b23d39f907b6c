"""Run notifications: channel config, storm-free decisions, templates, async delivery.

Channels are configured once for the operator (a YAML/JSON file mounted from a Secret,
``settings.notify_config``); jobs only name them in ``spec.notify.channels``. So secrets
(webhook URLs, bot tokens, SMTP passwords) live in one Secret, never in job specs, and
this package never puts them in a log line, a ``repr`` or an error message.

Delivery is fire-and-forget for the reconcile loop: ``Notifier.submit`` never blocks or
raises; a bounded queue drops the oldest message when a channel is down for long.

Layers, top to bottom: a module imports only from layers below its own, and the modules
on one line never import each other (the shape of an import-linter ``layers`` contract)::

    notifier            the Notifier: queue, concurrent delivery, retries, metrics
    config              the channels file parsed into Channels, types found in channels.TYPES
    channels | policy   one module per service behind channels/base.py | what a run sends (pure)
    message | reader    Notification, shared by both sides | typed getters for a config entry
    templates           {{name}} rendering, default titles and bodies, durations
    errors              NotifyConfigError, DeliveryError

Inside ``channels/``: the registry (``__init__``), then the service modules (independent
of each other), then ``base``. Escalation levels are orchestration rules
(``orchestration/escalation.py``); the reconciler turns them into Notifications.

A new channel is a module in ``channels/``, imported and listed in ``channels.TYPES``.
The names below are the package's public surface; import them from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .channels import Channel
from .channels.feishu import feishu_sign
from .config import load_channels, parse_channels
from .errors import DeliveryError, NotifyConfigError
from .message import KINDS, Notification
from .notifier import Notifier
from .policy import decide, notifications_for
from .templates import render

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
