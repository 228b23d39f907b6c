"""The Grafana dashboard and the Prometheus alerts only use metrics the operator exports.

A renamed metric otherwise leaves a silently empty panel or an alert that can never fire.
Rules are also checked (and unit-tested) with the real `promtool` (Debian package
`prometheus`); without it the promtool tests skip locally and FAIL under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_cron import metrics

FILES = Path(__file__).resolve().parents[2] / "charts" / "openclaw-cron-operator" / "files"
DASHBOARD = FILES / "grafana-dashboard.json"
RULES = FILES / "prometheus-rules.yaml"

#: Scrape-generated series (Prometheus adds `up` to every target); rules may use them.
SCRAPE_SERIES = {"up"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "atan2",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords, labels, strings removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def test_metric_name_parser() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{job=~"x|y", le!="1"}[5m] offset 1h)))'
        ' > 30 and on (job) b_total or vector(0) / absent(c) unless max without (le) (d{x="{y}"})'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}
    assert metric_names("label_values(foo, namespace)") == {"foo", "namespace"}  # see template handling


def exported() -> set[str]:
    return metrics.sample_names()


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels") or [])


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every templating query."""
    out = []
    for panel in panels(dashboard()["panels"]):
        for target in panel.get("targets") or []:
            out.append((f"panel {panel['title']!r}", target["expr"]))
    for var in dashboard()["templating"]["list"]:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query":
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.strip())
            assert match, f"variable {var['name']}: unexpected query {query!r}"
            out.append((f"variable {var['name']}", match.group(1)))
    return out


def test_dashboard_is_valid_grafana_json() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    ids = [p["id"] for p in panels(data["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(data["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {v["name"] for v in data["templating"]["list"]}
    assert {"datasource", "namespace", "job"} <= variables


def test_dashboard_queries_use_only_exported_metrics() -> None:
    known = exported()
    seen: set[str] = set()
    for where, expr in dashboard_queries():
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - known
        assert not unknown, f"{where}: {sorted(unknown)} not exported by openclaw_cron.metrics ({expr})"
        seen |= names
    # Every operator metric is on the dashboard somewhere (families, by their sample names).
    families = {name for name in metrics.exported_names() if name.startswith(metrics.PREFIX)}
    for family in families:
        assert any(s == family or s.startswith(family + "_") for s in seen), f"{family} is on no panel"


def rule_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return data


def test_rules_use_only_exported_metrics_and_cover_the_required_alerts() -> None:
    data = rule_file()
    assert set(data) == {"groups"}, "the chart reads `groups` from this file"
    known = exported() | SCRAPE_SERIES
    alerts = {}
    for group in data["groups"]:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            assert names and names <= known, f"{rule.get('alert')}: {sorted(names - known)} not exported"
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            alerts[rule["alert"]] = rule
    assert "openclaw_cron_job_consecutive_failures" in alerts["OpenClawCronJobFailing"]["expr"]
    assert ">= 3" in alerts["OpenClawCronJobFailing"]["expr"]
    assert "histogram_quantile(0.99" in alerts["OpenClawCronScheduleLagHigh"]["expr"]
    assert alerts["OpenClawCronScheduleLagHigh"]["for"] == "10m"
    assert "absent(openclaw_cron_build_info)" in alerts["OpenClawCronOperatorDown"]["expr"]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found: install the Debian/Ubuntu package `prometheus` (apt-get install prometheus)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_promtool_check_rules(tmp_path: Path) -> None:
    # The same content the chart renders into PrometheusRule.spec.groups.
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_file()["groups"]}))
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


PROMTOOL_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'openclaw_cron_job_consecutive_failures{namespace="ops", job="daily"}'
        values: '0 1 2 3 3 3 3 3'
      - series: 'openclaw_cron_job_consecutive_failures{namespace="ops", job="fine"}'
        values: '0 0 0 0 0 0 0 0'
      - series: 'openclaw_cron_build_info{version="0.1.0"}'
        values: '1 1 1 _ _ _ _ _ _ _ _ _ _ _ _ _'
    alert_rule_test:
      - eval_time: 2m
        alertname: OpenClawCronJobFailing
        exp_alerts: []
      - eval_time: 5m
        alertname: OpenClawCronJobFailing
        exp_alerts:
          - exp_labels: {severity: warning, namespace: ops, job: daily}
            exp_annotations:
              summary: "OpenClawCronJob ops/daily failed 3 runs in a row"
              description: >-
                The last 3 runs of ops/daily failed.
                Inspect with `kubectl openclaw runs daily -n ops` and
                `kubectl openclaw logs daily -n ops`.
      - eval_time: 4m
        alertname: OpenClawCronOperatorDown
        exp_alerts: []
      - eval_time: 15m
        alertname: OpenClawCronOperatorDown
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations:
              summary: "The OpenClaw Cron Operator exposes no metrics"
              description: >-
                No operator replica has been scraped for 5 minutes: it is down, or its metrics are not
                scraped (ServiceMonitor, NetworkPolicy). Scheduled runs are being missed.
  - interval: 1m
    input_series:
      # 1 run per minute, each 60 s late: p99 lag is far above 30 s.
      - series: 'openclaw_cron_schedule_lag_seconds_bucket{namespace="slow", le="30.0"}'
        values: '0x40'
      - series: 'openclaw_cron_schedule_lag_seconds_bucket{namespace="slow", le="60.0"}'
        values: '0+1x40'
      - series: 'openclaw_cron_schedule_lag_seconds_bucket{namespace="slow", le="+Inf"}'
        values: '0+1x40'
      # on time: everything within 1 s.
      - series: 'openclaw_cron_schedule_lag_seconds_bucket{namespace="fast", le="1.0"}'
        values: '0+1x40'
      - series: 'openclaw_cron_schedule_lag_seconds_bucket{namespace="fast", le="+Inf"}'
        values: '0+1x40'
    alert_rule_test:
      - eval_time: 8m
        alertname: OpenClawCronScheduleLagHigh
        exp_alerts: []  # lagging, but not yet for 10 minutes
      - eval_time: 30m
        alertname: OpenClawCronScheduleLagHigh
        exp_alerts:
          - exp_labels: {severity: warning, namespace: slow}
            exp_annotations:
              summary: "Runs in slow start late (p99 lag 59.7s)"
              description: >-
                The 99th percentile delay from a run's due time to its Pod being created has been above 30s
                for 10 minutes. Check the operator's CPU, API server latency and maxConcurrentRuns.
"""


def test_promtool_alert_unit_tests(tmp_path: Path) -> None:
    """The alerts fire (and only then) on synthetic series shaped like the operator's."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_file()["groups"]}))
    (tmp_path / "tests.yaml").write_text(PROMTOOL_TESTS)
    result = subprocess.run(
        [promtool(), "test", "rules", "tests.yaml"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
