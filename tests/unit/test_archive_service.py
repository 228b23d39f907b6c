"""The archive inside the operator: a bad store URL is a configuration error naming the setting."""

from __future__ import annotations

import pytest
from kubernetes import client

from openclaw_cron.archive.service import ArchiveService
from openclaw_cron.kube import Kube
from openclaw_cron.settings import Settings


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@db/x", "OPENCLAW_CRON_ARCHIVE_URL 'mysql://u:***@db/x': expected sqlite:///path/file.db or postgresql://..."),
        ("archive.db", "OPENCLAW_CRON_ARCHIVE_URL 'archive.db': expected sqlite:///path/file.db or postgresql://..."),
    ],
)  # fmt: skip
async def test_bad_store_url_names_the_setting_and_hides_the_password(url: str, message: str) -> None:
    conf = client.Configuration()
    conf.host = "http://127.0.0.1:9"
    service = ArchiveService(Settings(archive_url=url), Kube(conf), lambda uid: None)
    with pytest.raises(ValueError) as exc:
        await service.start()
    assert str(exc.value) == message
    assert "secret" not in str(exc.value)
    assert service.recorder is None
