"""Notifications: decisions, templates, config, and delivery to REAL local servers.

HTTP channels post to an aiohttp server on 127.0.0.1 that checks each service's
documented payload (and Feishu's signature); e-mail goes to a real aiosmtpd server that
requires STARTTLS (throwaway CA made with the openssl CLI) and AUTH.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from openclaw_cron import metrics
from openclaw_cron.api import Notify, NotifyTemplate, RunRecord
from openclaw_cron.notify import (
    Channel,
    Notification,
    Notifier,
    NotifyConfigError,
    decide,
    feishu_sign,
    load_channels,
    notifications_for,
    parse_channels,
    render,
)
from openclaw_cron.notify.channels import TYPES
from openclaw_cron.notify.channels.base import HttpChannel
from openclaw_cron.notify.reader import ConfigReader

# --- decide ------------------------------------------------------------------------------

ALL = Notify(channels=["c"], on_failure=True, on_success=True, on_recovery=True, alert_after_consecutive_failures=3)


@pytest.mark.parametrize(
    ("notify", "result", "failures", "alerting", "kinds", "new_alerting"),
    [
        (None, "Failed", 5, False, [], False),
        (Notify(channels=[]), "Failed", 5, False, [], False),
        (ALL, "Failed", 1, False, ["failure"], False),
        (ALL, "TimedOut", 2, False, ["failure"], False),
        (ALL, "Failed", 3, False, ["alert"], True),
        (ALL, "Failed", 4, True, [], True),
        (ALL, "Succeeded", 0, True, ["recovery"], False),
        (ALL, "Succeeded", 0, False, ["success"], False),
        (ALL.model_copy(update={"on_recovery": False}), "Succeeded", 0, True, [], False),
        (Notify(channels=["c"]), "Succeeded", 0, False, [], False),  # onSuccess defaults to false
        (ALL.model_copy(update={"on_failure": False}), "Failed", 9, False, [], False),
        (ALL.model_copy(update={"alert_after_consecutive_failures": 1}), "Failed", 1, False, ["alert"], True),
        (ALL, "Skipped", 3, True, [], True),
        (ALL, "Missed", 0, False, [], False),
    ],
)
def test_decide_table(
    notify: Notify | None, result: str, failures: int, alerting: bool, kinds: list[str], new_alerting: bool
) -> None:
    assert decide(notify, result, failures, alerting) == (kinds, new_alerting)


def test_no_storm_ten_failures_one_alert_then_one_recovery() -> None:
    notify = Notify(channels=["ops"])  # defaults: onFailure, onRecovery, threshold 3
    sent: list[str] = []
    alerting = False
    for failures in range(1, 11):
        kinds, alerting = decide(notify, "Failed", failures, alerting)
        sent += kinds
    assert sent == ["failure", "failure", "alert"]
    assert sent.count("alert") == 1
    for _ in range(3):
        kinds, alerting = decide(notify, "Succeeded", 0, alerting)
        sent += kinds
    assert sent == ["failure", "failure", "alert", "recovery"]
    # A new streak alerts again, once.
    for failures in range(1, 6):
        kinds, alerting = decide(notify, "Failed", failures, alerting)
        sent += kinds
    assert sent.count("alert") == 2


# --- templates ---------------------------------------------------------------------------


def test_render_substitutes_known_and_keeps_unknown() -> None:
    ctx = {"job": "daily", "namespace": "ops", "error": None, "attempts": 2}
    assert render("{{namespace}}/{{ job }} x{{attempts}} [{{error}}] {{nope}}", ctx) == "ops/daily x2 [] {{nope}}"


def test_render_runs_no_code_and_does_not_recurse() -> None:
    ctx = {"job": "{{namespace}}", "namespace": "ops"}
    evil = "{{__import__('os').system('touch /tmp/pwned')}} {{ job.__class__ }} {{job}}"
    assert render(evil, ctx) == "{{__import__('os').system('touch /tmp/pwned')}} {{ job.__class__ }} {{namespace}}"


def record(result: str = "Failed", **extra: Any) -> RunRecord:
    base: dict[str, Any] = {
        "run_id": "daily-1767250800",
        "scheduled_time": "2026-01-01T07:00:00Z",
        "duration_seconds": 187.0,
        "attempts": 2,
        "result": result,
        "reason": "GatewayError",
        "message": "completion status error",
        "output": "boom",
    }
    base.update(extra)
    return RunRecord(**base)


def test_default_and_custom_templates() -> None:
    notify = Notify(channels=["a"])
    msg = Notification.for_run(notify, "failure", "ops", "daily", record(), 1)
    title, body = msg.rendered()
    assert title == "[ops/daily] run Failed"
    assert "Run: daily-1767250800" in body and "Duration: 3m 7s" in body and "Error: completion status error" in body
    ok = Notification.for_run(notify, "success", "ops", "daily", record("Succeeded", reason=None, output=None), 0)
    _t, ok_body = ok.rendered()
    assert "Reason:" not in ok_body and "Error:" not in ok_body  # empty fields are hidden
    assert "reason" not in ok.fields() and ok.fields()["result"] == "Succeeded"  # ... in the webhook JSON too

    custom = Notify(
        channels=["a"], template=NotifyTemplate(title="{{kind}}: {{job}}", body="{{result}} after {{attempts}}")
    )
    msgs, alerting = notifications_for(custom, "ops", "daily", record(), 3, False)
    assert alerting and [m.kind for m in msgs] == ["alert"]
    assert msgs[0].rendered() == ("alert: daily", "Failed after 2")


# --- config ------------------------------------------------------------------------------

FULL_CONFIG = {
    "channels": {
        "hook": {
            "type": "webhook",
            "url": "https://example.test/hook/s3cr3t-path",
            "headers": {"X-Token": "hdr-secret"},
        },
        "slack": {"type": "slack", "webhookUrl": "https://hooks.slack.com/services/T0/B0/slack-secret"},
        "feishu": {
            "type": "feishu",
            "webhookUrl": "https://open.feishu.cn/hook/feishu-secret",
            "secret": "sign-secret",
        },
        "discord": {"type": "discord", "webhookUrl": "https://discord.com/api/webhooks/1/discord-secret"},
        "tg": {"type": "telegram", "botToken": "123:tg-secret", "chatId": "-100", "messageThreadId": 7},
        "mail": {
            "type": "email",
            "host": "smtp.example.test",
            "port": 587,
            "username": "u",
            "password": "mail-secret",
            "from": "cron@example.test",
            "to": ["ops@example.test"],
        },
    }
}
SECRETS = ["s3cr3t-path", "hdr-secret", "slack-secret", "feishu-secret", "sign-secret", "tg-secret", "mail-secret"]


def test_load_channels_yaml_and_repr_redacts(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(FULL_CONFIG))
    channels = load_channels(path)
    assert {c.type for c in channels.values()} == {"webhook", "slack", "feishu", "discord", "telegram", "email"}
    text = repr(channels) + str(channels) + "".join(str(c) for c in channels.values())
    for secret in SECRETS:
        assert secret not in text
    assert "hooks.slack.com" in text and "chat=-100" in text and "smtp.example.test:587" in text
    json_path = tmp_path / "channels.json"
    json_path.write_text(json.dumps(FULL_CONFIG))
    assert set(load_channels(json_path)) == set(channels)
    assert load_channels("") == {}


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ({"type": "pager"}, "'type': must be one of"),
        ({"type": ["webhook"]}, "'type': must be one of"),
        ({"type": {"webhook": True}}, "'type': must be one of"),
        ({"type": "slack"}, "'webhookUrl': is required"),
        ({"type": "slack", "webhookUrl": "ftp://x"}, "'webhookUrl': must be an http"),
        ({"type": "slack", "webhookUrl": "https://x/y", "webhookURL": "z"}, "'webhookURL': unknown field"),
        ({"type": "telegram", "botToken": "t"}, "'chatId': is required"),
        ({"type": "telegram", "botToken": "t", "chatId": 1, "messageThreadId": "x"}, "'messageThreadId'"),
        ({"type": "email", "host": "h", "from": "a@b", "to": []}, "'to': must be a non-empty list"),
        ({"type": "email", "host": "h", "from": "a@b", "to": ["c@d"], "port": 0}, "'port'"),
        ({"type": "email", "host": "h", "from": "a@b", "to": ["c@d"], "password": "pw"}, "'username'"),
        ({"type": "webhook", "url": "https://x", "caFile": "/nonexistent/ca.pem"}, "'caFile': file not found"),
    ],
)
def test_config_errors_name_channel_and_field(channel: dict[str, Any], expected: str) -> None:
    with pytest.raises(NotifyConfigError) as err:
        parse_channels({"channels": {"ops-x": channel}})
    assert "'ops-x'" in str(err.value)
    assert expected in str(err.value)


def test_bad_yaml_error_does_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text('channels:\n  x: {type: slack, webhookUrl: "https://h/leaked-secret"\n')
    with pytest.raises(NotifyConfigError) as err:
        load_channels(path)
    assert "leaked-secret" not in str(err.value)
    with pytest.raises(NotifyConfigError, match="cannot read"):
        load_channels(tmp_path / "missing.yaml")


def test_a_url_without_a_path_scrubs_the_url_not_every_slash() -> None:
    channel = parse_channels({"channels": {"hook": {"type": "webhook", "url": "https://hooks.example/?token=s3cret"}}})[
        "hook"
    ]
    text = channel.scrub("POST https://hooks.example/?token=s3cret: 502 from /upstream/ (token=s3cret)")
    assert text == "POST ***: 502 from /upstream/ (***)"  # the query is the credential here


def test_type_error_lists_the_registered_types() -> None:
    with pytest.raises(NotifyConfigError) as err:
        parse_channels({"channels": {"x": {"type": "pager"}}})
    assert str(err.value) == (
        "notify channel 'x': field 'type': must be one of discord, email, feishu, slack, telegram, webhook"
    )


@dataclass(frozen=True, repr=False)
class PagerChannel(HttpChannel):
    """A channel added as the registry's docstring says: its own class and one entry in TYPES."""

    type: ClassVar[str] = "pager"
    required_fields: ClassVar[frozenset[str]] = frozenset({"endpoint"})
    optional_fields: ClassVar[frozenset[str]] = frozenset({"severity"})

    @classmethod
    def from_config(cls, r: ConfigReader, common: dict[str, Any]) -> Self:
        return cls(url=r.url("endpoint"), headers={"X-Severity": r.text("severity", "high") or ""}, **common)

    def payload(self, message: Notification) -> dict[str, Any]:
        title, _body = message.rendered()
        return {"summary": title}


def pager_config(**fields: Any) -> dict[str, Any]:
    return {"channels": {"pg": {"type": "pager", **fields}}}


def test_a_registered_channel_type_is_parsed_by_the_unchanged_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TYPES, "pager", PagerChannel)
    (channel,) = parse_channels(pager_config(endpoint="https://pager.test/k3y", timeoutSeconds=2)).values()
    assert isinstance(channel, PagerChannel) and isinstance(channel, Channel)
    assert channel.timeout_seconds == 2 and channel.headers == {"X-Severity": "high"}  # common + its own fields
    assert "k3y" not in repr(channel)  # HttpChannel's redaction comes with the base
    for fields, problem in [
        ({}, "'endpoint': is required"),
        ({"endpoint": "https://p", "webhookUrl": "https://p"}, "'webhookUrl': unknown field"),
        ({"endpoint": "https://p", "severity": []}, "'severity': must be a string"),
    ]:
        with pytest.raises(NotifyConfigError) as err:
            parse_channels(pager_config(**fields))
        assert str(err.value) == f"notify channel 'pg': field {problem}"
    with pytest.raises(NotifyConfigError, match="must be one of discord, email, feishu, pager, slack"):
        parse_channels(pager_config(endpoint=1, type="nope"))


def test_feishu_sign_matches_documented_algorithm() -> None:
    # Feishu's sample: key = f"{timestamp}\n{secret}", HMAC-SHA256 over an empty message, base64.
    expected = base64.b64encode(hmac.new(b"1599360473\ndemo", b"", hashlib.sha256).digest()).decode()
    assert feishu_sign(1599360473, "demo") == expected


# --- real HTTP servers -------------------------------------------------------------------

FEISHU_SECRET = "feishu-bot-secret"
TG_TOKEN = "4242:tg-token-secret"


@dataclass
class Receiver:
    """What the fake services received, and knobs to make them fail."""

    base: str = ""
    got: dict[str, list[Any]] = field(default_factory=dict)
    flaky_failures: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, key: str, value: Any) -> None:
        self.got.setdefault(key, []).append(value)
        self.arrived.set()


RX = web.AppKey("rx", Receiver)


async def _handler(request: web.Request) -> web.StreamResponse:
    rx = request.app[RX]
    path = request.path
    body = await request.json()
    if path == "/webhook":
        rx.record("webhook", {"body": body, "token": request.headers.get("X-Token")})
        return web.json_response({"ok": True})
    if path == "/slack":
        rx.record("slack", body)
        return web.Response(text="ok")
    if path == "/feishu":
        ts = int(body.get("timestamp", "0"))
        if abs(time.time() - ts) > 3600 or body.get("sign") != feishu_sign(ts, FEISHU_SECRET):
            rx.record("feishu-rejected", body)
            return web.json_response({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        rx.record("feishu", body)
        return web.json_response({"code": 0, "msg": "success", "data": {}})
    if path == "/discord":
        rx.record("discord", body)
        return web.Response(status=204)
    if path == f"/bot{TG_TOKEN}/sendMessage":
        rx.record("telegram", body)
        return web.json_response({"ok": True, "result": {"message_id": 1}})
    if path == "/pager":
        rx.record("pager", {"body": body, "severity": request.headers.get("X-Severity")})
        return web.Response(status=202)
    if path == "/flaky":
        rx.record("flaky", body)
        if len(rx.got["flaky"]) <= rx.flaky_failures:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"ok": True})
    if path == "/bad":
        rx.record("bad", body)
        return web.json_response({"error": "invalid payload"}, status=400)
    return web.Response(status=404)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    rx = Receiver()
    app[RX] = rx
    app.router.add_post("/{tail:.*}", _handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rx.base = f"http://{host}:{port}"
    yield rx
    await runner.cleanup()


def sent(channel: str, outcome: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("openclaw_cron_notifications_total", {"channel": channel, "outcome": outcome})
        or 0.0
    )


async def wait_for(predicate: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_every_http_channel_gets_its_documented_payload(receiver: Receiver) -> None:
    channels = parse_channels(
        {
            "channels": {
                "t1-hook": {"type": "webhook", "url": f"{receiver.base}/webhook", "headers": {"X-Token": "abc"}},
                "t1-slack": {"type": "slack", "webhookUrl": f"{receiver.base}/slack"},
                "t1-feishu": {"type": "feishu", "webhookUrl": f"{receiver.base}/feishu", "secret": FEISHU_SECRET},
                "t1-discord": {"type": "discord", "webhookUrl": f"{receiver.base}/discord"},
                "t1-tg": {
                    "type": "telegram",
                    "botToken": TG_TOKEN,
                    "chatId": "-1001234567890",
                    "apiBase": receiver.base,
                    "messageThreadId": 123,
                },
            }
        }
    )
    notifier = Notifier(channels, backoff=0.01)
    await notifier.start()
    try:
        notify = Notify(channels=list(channels))
        long_error = "completion status error " + "x" * 5000  # forces Discord/Telegram truncation
        msg = Notification.for_run(notify, "failure", "ops", "daily", record(message=long_error), 1)
        notifier.submit(msg)
        await wait_for(lambda: all(sent(n, "ok") >= 1 for n in channels))
    finally:
        await notifier.stop()

    hook = receiver.got["webhook"][0]
    assert hook["token"] == "abc"
    assert hook["body"]["kind"] == "failure" and hook["body"]["job"] == "daily" and hook["body"]["namespace"] == "ops"
    assert hook["body"]["result"] == "Failed" and hook["body"]["runId"] == "daily-1767250800"
    assert hook["body"]["title"] == "[ops/daily] run Failed" and "completion status error" in hook["body"]["body"]
    assert receiver.got["slack"][0]["text"].startswith("*[ops/daily] run Failed*\n")
    feishu = receiver.got["feishu"][0]
    assert feishu["msg_type"] == "text" and feishu["content"]["text"].startswith("[ops/daily] run Failed\n")
    assert "feishu-rejected" not in receiver.got
    discord = receiver.got["discord"][0]["content"]
    assert discord.startswith("**[ops/daily] run Failed**") and len(discord) <= 2000
    tg = receiver.got["telegram"][0]
    assert tg["chat_id"] == "-1001234567890" and tg["message_thread_id"] == 123 and len(tg["text"]) <= 4096


async def test_a_registered_channel_type_is_delivered_by_the_notifier(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TYPES, "pager", PagerChannel)
    channels = parse_channels({"channels": {"t1-pager": {"type": "pager", "endpoint": f"{receiver.base}/pager"}}})
    notifier = Notifier(channels, backoff=0.01)
    await notifier.start()
    try:
        notifier.submit(Notification(("t1-pager",), "alert", "daily", "ops", {"consecutiveFailures": 3}))
        await wait_for(lambda: sent("t1-pager", "ok") == 1)
    finally:
        await notifier.stop()
    assert receiver.got["pager"] == [
        {"body": {"summary": "[ops/daily] FAILING: 3 consecutive failures"}, "severity": "high"}
    ]


async def test_feishu_bad_signature_is_an_error_not_retried(receiver: Receiver) -> None:
    channels = parse_channels(
        {"channels": {"t2-feishu": {"type": "feishu", "webhookUrl": f"{receiver.base}/feishu", "secret": "wrong"}}}
    )
    notifier = Notifier(channels, backoff=0.01)
    await notifier.start()
    try:
        notifier.submit(Notification(("t2-feishu",), "alert", "j", "ns", {"consecutiveFailures": 3}))
        await wait_for(lambda: sent("t2-feishu", "error") == 1)
    finally:
        await notifier.stop()
    assert len(receiver.got["feishu-rejected"]) == 1


async def test_retries_with_backoff_then_succeeds(receiver: Receiver) -> None:
    receiver.flaky_failures = 2
    channels = parse_channels({"channels": {"t3-flaky": {"type": "webhook", "url": f"{receiver.base}/flaky"}}})
    notifier = Notifier(channels, retries=3, backoff=0.1)
    await notifier.start()
    started = time.monotonic()
    try:
        notifier.submit(Notification(("t3-flaky",), "failure", "j", "ns"))
        await wait_for(lambda: sent("t3-flaky", "ok") == 1)
    finally:
        await notifier.stop()
    assert len(receiver.got["flaky"]) == 3
    assert time.monotonic() - started >= 0.1 + 0.2  # waited 0.1 s then 0.2 s
    assert sent("t3-flaky", "error") == 0


async def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    channels = parse_channels({"channels": {"t4-bad": {"type": "webhook", "url": f"{receiver.base}/bad"}}})
    notifier = Notifier(channels, retries=3, backoff=0.01)
    await notifier.start()
    try:
        notifier.submit(Notification(("t4-bad",), "failure", "j", "ns"))
        await wait_for(lambda: sent("t4-bad", "error") == 1)
    finally:
        await notifier.stop()
    assert len(receiver.got["bad"]) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_down_channel_retries_without_blocking_submit_or_others(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    channels = parse_channels(
        {
            "channels": {
                "t5-dead": {"type": "telegram", "botToken": TG_TOKEN, "chatId": "1", "apiBase": dead},
                "t5-live": {"type": "slack", "webhookUrl": f"{receiver.base}/slack"},
            }
        }
    )
    notifier = Notifier(channels, retries=2, backoff=0.2)
    await notifier.start()
    caplog.set_level(logging.DEBUG, logger="openclaw_cron.notify")
    try:
        t0 = time.perf_counter()
        for _ in range(20):
            notifier.submit(Notification(("t5-dead", "t5-live"), "failure", "j", "ns"))
        assert time.perf_counter() - t0 < 0.05  # submit never waits on the network
        await wait_for(lambda: sent("t5-live", "ok") == 20)
        assert sent("t5-dead", "error") < 20  # the dead channel is still backing off meanwhile
        await wait_for(lambda: sent("t5-dead", "error") == 20)
    finally:
        await notifier.stop()
    assert "retry 2" in caplog.text  # retried with backoff
    assert "tg-token-secret" not in caplog.text  # the token is in the URL path; never logged


async def test_full_queue_drops_oldest_and_counts_it() -> None:
    channels = parse_channels({"channels": {"t6-q": {"type": "slack", "webhookUrl": "http://127.0.0.1:9/x"}}})
    notifier = Notifier(channels, queue_size=2)  # not started: nothing drains the queue
    before = sent("t6-q", "dropped")
    for i in range(5):
        notifier.submit(Notification(("t6-q",), "failure", f"j{i}", "ns"))
    assert sent("t6-q", "dropped") - before == 3
    assert notifier.pending == 2
    notifier.submit(Notification(("not-configured",), "failure", "j", "ns"))
    assert notifier.pending == 2


# --- real SMTP server with STARTTLS ------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl CLI is required to create the test certificates")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=openclaw-test-ca")
    run("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial")
    run(
        "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf",
    )  # fmt: skip
    return Pki(d / "ca.pem", d / "srv.pem", d / "srv.key")


class MailSink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tls_at_data: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        self.tls_at_data.append(session.ssl is not None)
        return "250 OK"


AUTH_ATTEMPTS: list[str] = []


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    AUTH_ATTEMPTS.append(mechanism)
    ok = isinstance(data, LoginPassword) and data.login == b"cron" and data.password == b"mail-pass"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535 itself


@pytest.fixture
def smtp_server(pki: Pki) -> Iterator[tuple[int, MailSink]]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.cert, pki.key)
    sink = MailSink()
    port = free_port()
    AUTH_ATTEMPTS.clear()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        authenticator=_auth,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def mail_config(port: int, name: str, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "username": "cron",
        "password": "mail-pass",
        "from": "cron@example.test",
        "to": ["ops@example.test", "oncall@example.test"],
        "timeoutSeconds": 5,
    }
    cfg.update(extra)
    return {"channels": {name: cfg}}


async def test_email_over_starttls_with_test_ca(smtp_server: tuple[int, MailSink], pki: Pki) -> None:
    port, sink = smtp_server
    channels = parse_channels(mail_config(port, "t7-mail", caFile=str(pki.ca)))
    notifier = Notifier(channels, backoff=0.01)
    await notifier.start()
    try:
        notify = Notify(channels=["t7-mail"])
        notifier.submit(Notification.for_run(notify, "alert", "ops", "daily", record(), 3))
        await wait_for(lambda: sent("t7-mail", "ok") == 1)
    finally:
        await notifier.stop()
    assert sink.tls_at_data == [True]
    mail = message_from_bytes(sink.messages[0])
    assert mail["Subject"] == "[ops/daily] FAILING: 3 consecutive failures"
    assert mail["To"] == "ops@example.test, oncall@example.test"
    assert "has failed 3 times in a row" in mail.get_payload()


async def test_email_refuses_untrusted_certificate_unless_insecure(
    smtp_server: tuple[int, MailSink], caplog: pytest.LogCaptureFixture
) -> None:
    port, sink = smtp_server
    channels = {
        **parse_channels(mail_config(port, "t8-strict")),
        **parse_channels(mail_config(port, "t8-insecure", insecureSkipVerify=True)),
    }
    notifier = Notifier(channels, retries=3, backoff=0.01)
    await notifier.start()
    try:
        notifier.submit(Notification(("t8-strict", "t8-insecure"), "failure", "j", "ns"))
        await wait_for(lambda: sent("t8-strict", "error") == 1 and sent("t8-insecure", "ok") == 1)
    finally:
        await notifier.stop()
    assert len(sink.messages) == 1
    assert "retry" not in caplog.text  # a certificate problem is final, not retried
    assert "mail-pass" not in caplog.text


async def test_email_wrong_password_is_final(smtp_server: tuple[int, MailSink], pki: Pki) -> None:
    port, sink = smtp_server
    channels = parse_channels(mail_config(port, "t9-mail", caFile=str(pki.ca), password="nope"))
    notifier = Notifier(channels, retries=3, backoff=0.01)
    await notifier.start()
    try:
        notifier.submit(Notification(("t9-mail",), "failure", "j", "ns"))
        await wait_for(lambda: sent("t9-mail", "error") == 1)
    finally:
        await notifier.stop()
    assert sink.messages == []
    assert 1 <= len(AUTH_ATTEMPTS) <= 2  # one connection (smtplib tries PLAIN, then LOGIN); no retries


async def test_email_never_falls_back_to_plaintext() -> None:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)  # no STARTTLS offered
    controller.start()
    try:
        cfg = mail_config(port, "t10-mail")
        del cfg["channels"]["t10-mail"]["username"], cfg["channels"]["t10-mail"]["password"]
        notifier = Notifier(parse_channels(cfg), backoff=0.01)
        await notifier.start()
        try:
            notifier.submit(Notification(("t10-mail",), "failure", "j", "ns"))
            await wait_for(lambda: sent("t10-mail", "error") == 1)
        finally:
            await notifier.stop()
    finally:
        controller.stop()
    assert sink.messages == []
