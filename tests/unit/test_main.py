"""The operator process's own identity: nothing on its path needs a passwd entry for its UID."""

from __future__ import annotations

import getpass

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
