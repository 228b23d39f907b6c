"""Metrics: drive the functions the operator calls, then scrape /metrics over real HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from openclaw_cron import metrics

ALLOWED_LABELS = {
    "namespace", "job", "result", "trigger", "kind", "channel", "outcome", "le", "version",
    "operation", "code",  # API errors: a fixed set of operations, codes folded into 'other' past a cap
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    metrics.start_http_server(port, addr="127.0.0.1")
    yield f"http://127.0.0.1:{port}/metrics"
    metrics.stop_http_servers()


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_run_lifecycle_series(endpoint: str) -> None:
    metrics.run_started("m-ns", "daily", "Schedule")
    metrics.run_started("m-ns", "daily", "Manual")
    metrics.run_finished("m-ns", "daily", "Succeeded", "Schedule", 12.5)
    metrics.run_finished("m-ns", "daily", "Failed", "Manual", 400.0)
    metrics.run_finished("m-ns", "daily", "Skipped", "Schedule", None)
    metrics.schedule_lag("m-ns", "daily", 0.07)
    metrics.schedule_lag("m-ns", "daily", 42.0)
    metrics.missed("m-ns", "daily", 3)
    metrics.skipped("m-ns", "daily", 2)
    metrics.missed("m-ns", "daily", 0)  # no-op, must not create noise
    s = scrape(endpoint)

    assert s[key("openclaw_cron_runs_started_total", namespace="m-ns", job="daily", trigger="Schedule")] == 1
    assert s[key("openclaw_cron_runs_started_total", namespace="m-ns", job="daily", trigger="Manual")] == 1
    assert s[key("openclaw_cron_runs_total", namespace="m-ns", job="daily", result="Failed", trigger="Manual")] == 1
    assert s[key("openclaw_cron_runs_total", namespace="m-ns", job="daily", result="Skipped", trigger="Schedule")] == 1
    dur = "openclaw_cron_run_duration_seconds"
    assert s[key(f"{dur}_count", namespace="m-ns", job="daily", result="Succeeded")] == 1
    assert s[key(f"{dur}_sum", namespace="m-ns", job="daily", result="Failed")] == 400.0
    assert s[key(f"{dur}_bucket", namespace="m-ns", job="daily", result="Succeeded", le="15.0")] == 1
    assert s[key(f"{dur}_bucket", namespace="m-ns", job="daily", result="Succeeded", le="5.0")] == 0
    assert key(f"{dur}_count", namespace="m-ns", job="daily", result="Skipped") not in s  # no duration
    lag = "openclaw_cron_schedule_lag_seconds"
    assert s[key(f"{lag}_count", namespace="m-ns")] == 2
    assert s[key(f"{lag}_bucket", namespace="m-ns", le="0.05")] == 0
    assert s[key(f"{lag}_bucket", namespace="m-ns", le="0.1")] == 1
    assert s[key(f"{lag}_bucket", namespace="m-ns", le="60.0")] == 2
    assert s[key(f"{lag}_bucket", namespace="m-ns", le="300.0")] == 2
    assert s[key("openclaw_cron_missed_runs_total", namespace="m-ns", job="daily")] == 3
    assert s[key("openclaw_cron_skipped_runs_total", namespace="m-ns", job="daily")] == 2


def test_job_state_gauges_and_forget(endpoint: str) -> None:
    metrics.set_job_state("g-ns", "j1", consecutive_failures=4, next_run_timestamp=1767250800.0, active=1, waiting=2)
    metrics.run_finished("g-ns", "j1", "Failed", "Schedule", 3.0)
    metrics.set_job_state("g-ns", "j2", consecutive_failures=0, next_run_timestamp=None, active=0, waiting=0)
    s = scrape(endpoint)
    assert s[key("openclaw_cron_job_consecutive_failures", namespace="g-ns", job="j1")] == 4
    assert s[key("openclaw_cron_job_next_run_timestamp_seconds", namespace="g-ns", job="j1")] == 1767250800.0
    assert s[key("openclaw_cron_job_active_runs", namespace="g-ns", job="j1")] == 1
    assert s[key("openclaw_cron_job_waiting_runs", namespace="g-ns", job="j1")] == 2
    assert key("openclaw_cron_job_next_run_timestamp_seconds", namespace="g-ns", job="j2") not in s

    # Suspending removes the next-run series instead of exporting a bogus 0.
    metrics.set_job_state("g-ns", "j1", consecutive_failures=4, next_run_timestamp=None, active=0, waiting=0)
    assert key("openclaw_cron_job_next_run_timestamp_seconds", namespace="g-ns", job="j1") not in scrape(endpoint)

    metrics.forget_job("g-ns", "j1")
    remaining = [k for k in scrape(endpoint) if ("job", "j1") in k[1] and ("namespace", "g-ns") in k[1]]
    assert remaining == []
    assert s[key("openclaw_cron_job_consecutive_failures", namespace="g-ns", job="j2")] == 0  # others stay


def test_operator_level_series(endpoint: str) -> None:
    metrics.reconcile_error("e-ns", "ApiError")
    metrics.notification_sent("ops-slack", "ok")
    metrics.notification_sent("ops-slack", "dropped")
    metrics.global_waiting(7)
    s = scrape(endpoint)
    assert s[key("openclaw_cron_reconcile_errors_total", namespace="e-ns", kind="ApiError")] == 1
    assert s[key("openclaw_cron_notifications_total", channel="ops-slack", outcome="ok")] == 1
    assert s[key("openclaw_cron_notifications_total", channel="ops-slack", outcome="dropped")] == 1
    assert s[key("openclaw_cron_global_waiting_runs")] == 7
    build = [k for k in s if k[0] == "openclaw_cron_build_info"]
    assert len(build) == 1 and dict(build[0][1]).keys() == {"version"}


def test_reconcile_error_kinds_are_capped(endpoint: str) -> None:
    for i in range(metrics.MAX_ERROR_KINDS + 10):
        metrics.reconcile_error("cap-ns", f"Kind{i}")
    kinds = {dict(k[1])["kind"] for k in scrape(endpoint) if k[0] == "openclaw_cron_reconcile_errors_total"}
    assert len(kinds) <= metrics.MAX_ERROR_KINDS + 1
    assert "other" in kinds


def test_only_bounded_labels_and_prefix(endpoint: str) -> None:
    for (name, labels), _value in scrape(endpoint).items():
        if name.startswith(("process_", "python_")):
            continue
        assert name.startswith("openclaw_cron_"), name
        assert {label for label, _ in labels} <= ALLOWED_LABELS, name
        assert not name.endswith("_created"), name  # disabled: doubles series for nothing
