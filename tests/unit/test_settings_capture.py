"""Settings of the archive capture: session keys and the operator-only gateway tokens."""

from __future__ import annotations

import json

import pytest

from openclaw_cron.settings import Settings, gateway_key

VAR = "OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILES"


def test_defaults_send_session_keys_and_hold_no_token() -> None:
    settings = Settings.from_env({})
    assert settings.session_keys is True
    assert settings.gateway_admin_token_file == "" and settings.gateway_admin_token_files == {}


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "OPENCLAW_CRON_SESSION_KEYS": "false",
            "OPENCLAW_CRON_GATEWAY_ADMIN_TOKEN_FILE": " /var/run/openclaw-cron/gateway-token/token ",
            VAR: json.dumps({"HTTP://GW.team-a.svc:18789/": "/var/run/openclaw-cron/gateway-tokens/0/token"}),
        }
    )
    assert settings.session_keys is False
    assert settings.gateway_admin_token_file == "/var/run/openclaw-cron/gateway-token/token"
    assert settings.gateway_admin_token_files == {
        "http://gw.team-a.svc:18789": "/var/run/openclaw-cron/gateway-tokens/0/token"
    }


def test_gateway_key_matches_spellings_of_one_url() -> None:
    assert gateway_key("HTTP://Gw:18789/") == gateway_key("http://gw:18789") == "http://gw:18789"
    assert gateway_key("http://gw:18789/prefix/") == "http://gw:18789/prefix"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENCLAW_CRON_SESSION_KEYS": "maybe"}, "OPENCLAW_CRON_SESSION_KEYS: expected true or false, got 'maybe'"),
        ({VAR: "{not json"}, f"{VAR}: expected a JSON object of gateway URL to token file"),
        ({VAR: '["/a"]'}, f"{VAR}: expected a JSON object of gateway URL to token file, got list"),
        ({VAR: '{"gw:18789": "/t"}'}, f"{VAR}: 'gw:18789' is not an http(s)://host[:port] gateway URL"),
        ({VAR: '{"http://gw:18789": "tok"}'}, f"{VAR}: the token file for http://gw:18789 must be an absolute"),
        ({VAR: '{"http://gw:18789": 3}'}, f"{VAR}: the token file for http://gw:18789 must be an absolute path, got 3"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(message)
