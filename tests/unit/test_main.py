"""The operator process's own identity: its peering name needs no passwd entry; kopf's login expires each minute."""

from __future__ import annotations

import getpass
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import kopf
import pytest

from openclaw_cron.main import own_identity


def test_the_peering_identity_needs_no_user_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's default identity calls getpass.getuser(), which raises under a UID with no passwd entry."""

    def no_such_user() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    monkeypatch.setattr(getpass, "getuser", no_such_user)
    first, second = own_identity({}), own_identity({})
    assert first != second  # two processes on one host are two peers
    assert first.count("/") == 2
    assert own_identity({"POD_ID": "ocj-openclaw-cron-operator-7d9f-abcde"}) == "ocj-openclaw-cron-operator-7d9f-abcde"


def test_kopf_logs_in_through_the_official_client_for_a_minute_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf keeps credentials until they expire: a rotated token file is read again within a minute."""
    from openclaw_cron.credentials import REFRESH_SECONDS
    from openclaw_cron.handlers import login

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "abc"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    (tmp_path / "config").write_text(json.dumps(config))
    from kubernetes.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "config"))  # read at import
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    info = login(logger=logging.getLogger("test"), settings=kopf.OperatorSettings())
    assert info is not None and info.token == "abc" and info.server == "https://127.0.0.1:6443"
    assert info.expiration is not None
    left = (info.expiration - datetime.now(UTC)).total_seconds()
    assert REFRESH_SECONDS - 5 < left <= REFRESH_SECONDS
