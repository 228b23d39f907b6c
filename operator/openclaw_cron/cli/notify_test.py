"""`kubectl openclaw notify test CHANNEL`: send a test message through a configured channel.

The channels are the operator's own (its notify.yaml, from the Secret the chart mounts, or
a local file with --config), so this tests exactly what jobs' notifications will use.
Secrets in the channel config never reach the output: errors are scrubbed by the channel.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

import aiohttp

from ..notify import Channel, DeliveryError, Notification, NotifyConfigError, load_channels
from .cluster import Ctx
from .common import EXIT_ERROR, EXIT_FAILURE, EXIT_OK, CliError

DEFAULT_SECRET = "openclaw-cron-system/openclaw-cron-operator-notify"
DEFAULT_KEY = "notify.yaml"


def _channels_from_secret(ctx: Ctx, ref: str, key: str) -> dict[str, Channel]:
    namespace, _, name = ref.rpartition("/")
    try:
        secret = ctx.cluster.core.read_namespaced_secret(name, namespace or ctx.cluster.namespace)
    except Exception as exc:  # the client's ApiException: say which Secret
        status = getattr(exc, "status", None)
        raise CliError(
            f"cannot read Secret {ref}: {status or type(exc).__name__} {getattr(exc, 'reason', '')}"
        ) from None
    raw = (secret.data or {}).get(key)
    if raw is None:
        raise CliError(f"Secret {ref} has no key {key!r}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notify.yaml"
        path.write_bytes(base64.b64decode(raw))
        return load_channels(path)


def test_message(channel: str, namespace: str) -> Notification:
    context: dict[str, object] = {
        "result": "Succeeded",
        "reason": "NotifyTest",
        "runId": "notify-test",
        "output": f"A test message from `kubectl openclaw notify test {channel}`.",
    }
    return Notification((channel,), "success", "notify-test", namespace, context)


async def _send(channel: Channel, message: Notification) -> None:
    async with aiohttp.ClientSession() as session:
        await channel.send(session, message)


def cmd_notify(ctx: Ctx) -> int:
    a = ctx.args
    try:
        channels = load_channels(a.config) if a.config else _channels_from_secret(ctx, a.secret, a.key)
    except NotifyConfigError as exc:
        print(f"error: {exc}", file=ctx.err)
        return EXIT_ERROR
    channel = channels.get(a.channel)
    if channel is None:
        known = ", ".join(sorted(channels)) or "none"
        print(f"error: no channel {a.channel!r} in the notify config (configured: {known})", file=ctx.err)
        return EXIT_ERROR
    try:
        asyncio.run(_send(channel, test_message(a.channel, getattr(a, "namespace", None) or "default")))
    except DeliveryError as exc:
        print(f"channel {a.channel} ({channel.type}): FAILED: {channel.scrub(str(exc))}", file=ctx.out)
        return EXIT_FAILURE
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"channel {a.channel} ({channel.type}): FAILED: {channel.scrub(repr(exc))}", file=ctx.out)
        return EXIT_FAILURE
    print(f"channel {a.channel} ({channel.type}): test message sent", file=ctx.out)
    return EXIT_OK
