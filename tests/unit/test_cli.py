"""`kubectl openclaw`: pure parts in-process, every verb as a subprocess against the emulated API.

The cluster tests run the installed console script (and once through kubectl's plugin
discovery) with KUBECONFIG pointing at tests/support's emulated API server; where a verb
waits for the operator (run --wait), the test plays the operator's part by writing the
run Pod and the status record the way the operator does.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_cron import cli
from openclaw_cron import naming as n
from openclaw_cron import schedule as sched
from openclaw_cron.api import OpenClawCronJobSpec, Schedule

# --- pure: formatting ---------------------------------------------------------------------


def test_table_is_aligned_like_kubectl() -> None:
    text = cli.table(["NAME", "STATE", "FAILURES"], [["a", "Scheduled", 0], ["longer-name", None, 12]])
    assert text.splitlines() == [
        "NAME          STATE       FAILURES",
        "a             Scheduled   0",
        "longer-name               12",
    ]


def test_csv_quotes_and_empty_cells() -> None:
    text = cli.to_csv(["runId", "message"], [["r1", 'said "hi", left'], ["r2", None]])
    assert list(csv.reader(io.StringIO(text))) == [["runId", "message"], ["r1", 'said "hi", left'], ["r2", ""]]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (150, "2m30s"), (600, "10m"), (3725, "1h2m"), (36000, "10h"), (3 * 86400, "3d")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert cli.human_duration(seconds) == text


def test_relative_and_rfc3339_ms() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert cli.relative(now + timedelta(minutes=5), now) == "in 5m"
    assert cli.relative(now - timedelta(hours=2), now) == "2h ago"
    assert cli.relative(None, now) == "<none>"
    stamp = cli.rfc3339_ms(datetime(2026, 1, 1, 7, 0, 0, 123456, tzinfo=UTC))
    assert stamp == "2026-01-01T07:00:00.123Z"
    assert n.parse_time(stamp) == datetime(2026, 1, 1, 7, 0, 0, 123000, tzinfo=UTC)


JOB = {
    "metadata": {"name": "daily", "namespace": "ops"},
    "spec": {"notify": {"alertAfterConsecutiveFailures": 2}},
    "status": {
        "consecutiveFailures": 2,
        "active": [{"runId": "daily-300", "podName": "daily-300", "scheduledTime": "2026-01-01T00:05:00Z"}],
        "recentRuns": [
            {"runId": "daily-100", "scheduledTime": "2026-01-01T00:01:40Z", "result": "Succeeded", "attempts": 1},
            {"runId": "daily-200", "scheduledTime": "2026-01-01T00:03:20Z", "result": "Failed", "reason": "Exit"},
            {"runId": "daily-250", "scheduledTime": "2026-01-01T00:04:10Z", "result": "TimedOut", "trigger": "Manual"},
        ],
    },
}


def test_run_rows_order_filter_limit() -> None:
    assert [r["runId"] for r in cli.run_rows(JOB, None, None)] == ["daily-300", "daily-250", "daily-200", "daily-100"]
    assert [r["runId"] for r in cli.run_rows(JOB, "failed", None)] == ["daily-200"]
    assert [r["runId"] for r in cli.run_rows(JOB, "running", None)] == ["daily-300"]
    assert [r["runId"] for r in cli.run_rows(JOB, None, 2)] == ["daily-300", "daily-250"]


def test_alert_reason_threshold_and_health() -> None:
    assert cli.alert_reason(JOB) is not None and cli.alert_reason(JOB)[0] == "ConsecutiveFailures"  # type: ignore[index]
    ok = {**JOB, "status": {**JOB["status"], "consecutiveFailures": 1}}  # type: ignore[dict-item]
    assert cli.alert_reason(ok) is None
    unhealthy = {
        "status": {"conditions": [{"type": "Healthy", "status": "False", "reason": "PodFailed", "message": "x"}]}
    }
    assert cli.alert_reason(unhealthy) == ("PodFailed", "x")
    default = {"status": {"consecutiveFailures": 3}}  # no notify: default threshold 3
    assert cli.alert_reason(default) is not None


# --- pure: import ---------------------------------------------------------------------

OPENCLAW_JOBS: dict[str, Any] = {
    "version": 1,
    "jobs": [
        {
            "id": "0b3f-1",
            "name": "Morning brief",
            "description": "inbox + calendar",
            "enabled": True,
            "createdAtMs": 1767225600000,
            "updatedAtMs": 1767225600000,
            "agentId": "ops",
            "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "America/Los_Angeles", "staggerMs": 1500},
            "sessionTarget": "isolated",
            "wakeMode": "now",
            "payload": {
                "kind": "agentTurn",
                "message": "Summarize inbox + calendar for today.",
                "model": "opus",
                "thinking": "high",
                "timeoutSeconds": 300,
                "lightContext": True,
            },
            "delivery": {"mode": "announce", "channel": "telegram", "to": "-1001234567890", "threadId": 123},
            "failureAlert": {"after": 2, "channel": "slack", "to": "#ops"},
            "state": {"nextRunAtMs": 1767279600000, "consecutiveErrors": 0},
        },
        {
            "id": "0b3f-2",
            "name": "heartbeat-nudge",
            "enabled": False,
            "schedule": {"kind": "every", "everyMs": 5_400_000, "anchorMs": 1767225600000},
            "sessionTarget": "main",
            "wakeMode": "next-heartbeat",
            "payload": {"kind": "systemEvent", "text": "Check the queue."},
            "sessionKey": "agent:main:main",
        },
        {
            "id": "0b3f-3",
            "name": "heartbeat-nudge",
            "deleteAfterRun": True,
            "schedule": {"kind": "at", "at": "2099-01-12T18:00:00Z"},
            "sessionTarget": "main",
            "wakeMode": "now",
            "payload": {"kind": "systemEvent", "text": "Reminder"},
        },
        {
            "id": "0b3f-4",
            "name": "legacy-at-ms",
            "schedule": {"kind": "at", "atMs": 4_102_444_800_000},
            "sessionTarget": "isolated",
            "wakeMode": "now",
            "payload": {
                "kind": "agentTurn",
                "message": "Ping",
                "deliver": True,
                "channel": "slack",
                "to": "#general",
                "bestEffortDeliver": True,
                "thinking": "galaxy-brain",
            },
        },
        {
            "id": "0b3f-5",
            "name": "webhook-delivery",
            "schedule": {"kind": "every", "everyMs": 60_000},
            "sessionTarget": "isolated",
            "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "x"},
            "delivery": {"mode": "webhook", "to": "https://example.test/hook"},
            "hooks": {"pre": [{"command": "true"}]},
        },
        {
            "id": "0b3f-6",
            "name": "unsupported",
            "schedule": {"kind": "rrule", "rule": "FREQ=DAILY"},
            "payload": {"kind": "systemEvent", "text": "x"},
        },
    ],
}


def test_import_maps_every_schedule_and_payload_kind() -> None:
    result = cli.import_jobs(OPENCLAW_JOBS, "assistants")
    docs = {d["metadata"]["annotations"][cli.ANNOTATION_IMPORTED_ID]: d for d in result.docs}
    assert set(docs) == {"0b3f-1", "0b3f-2", "0b3f-3", "0b3f-4", "0b3f-5"}
    assert result.skipped == 1

    brief = docs["0b3f-1"]
    assert brief["apiVersion"] == "cron.openclaw.io/v1alpha1" and brief["kind"] == "OpenClawCronJob"
    assert brief["metadata"]["name"] == "morning-brief" and brief["metadata"]["namespace"] == "assistants"
    assert brief["metadata"]["annotations"][cli.ANNOTATION_IMPORTED_NAME] == "Morning brief"
    assert brief["metadata"]["annotations"][cli.ANNOTATION_DESCRIPTION] == "inbox + calendar"
    assert brief["spec"]["schedule"] == {
        "kind": "cron",
        "expr": "0 7 * * *",
        "tz": "America/Los_Angeles",
        "staggerSeconds": 2,
    }
    assert brief["spec"]["payload"] == {
        "kind": "agentTurn",
        "message": "Summarize inbox + calendar for today.",
        "model": "opus",
        "timeoutSeconds": 300,
        "thinking": "high",
    }
    assert brief["spec"]["sessionTarget"] == "isolated" and brief["spec"]["wakeMode"] == "now"
    assert brief["spec"]["agentId"] == "ops"
    assert brief["spec"]["delivery"] == {"mode": "announce", "channel": "telegram", "to": "-1001234567890:topic:123"}
    assert brief["spec"]["notify"] == {"onFailure": True, "alertAfterConsecutiveFailures": 2}
    assert "suspend" not in brief["spec"]

    every = docs["0b3f-2"]
    assert every["metadata"]["name"] == "heartbeat-nudge"
    assert every["spec"]["schedule"] == {"kind": "every", "every": "1h30m", "anchor": "2026-01-01T00:00:00Z"}
    assert every["spec"]["suspend"] is True
    assert every["spec"]["payload"] == {"kind": "systemEvent", "text": "Check the queue."}
    assert every["spec"]["wakeMode"] == "next-heartbeat" and every["spec"]["sessionTarget"] == "main"

    at = docs["0b3f-3"]
    assert at["metadata"]["name"] == "heartbeat-nudge-2"  # names stay unique
    assert at["spec"]["schedule"] == {"kind": "at", "at": "2099-01-12T18:00:00Z"}
    assert at["spec"]["deleteAfterRun"] is True

    legacy = docs["0b3f-4"]
    assert legacy["spec"]["schedule"] == {"kind": "at", "at": "2100-01-01T00:00:00Z"}
    assert legacy["spec"]["delivery"] == {"mode": "announce", "channel": "slack", "to": "#general", "bestEffort": True}
    assert "thinking" not in legacy["spec"]["payload"]

    hook = docs["0b3f-5"]
    assert hook["spec"]["schedule"] == {"kind": "every", "every": "1m"}
    assert "delivery" not in hook["spec"]

    warnings = "\n".join(result.warnings)
    for expected in (
        'job "Morning brief": payload.lightContext: no equivalent',
        "schedule.staggerMs: 1500 rounded up to 2s",
        "delivery.threadId: folded into delivery.to",
        "failureAlert.channel, failureAlert.to: no per-job equivalent",
        'job "heartbeat-nudge": sessionKey: no equivalent',
        "already used by another imported job",
        "payload.thinking: 'galaxy-brain' is not one of",
        "delivery.mode: webhook has no equivalent",
        "hooks: pre-run hooks have no equivalent",
        "schedule.kind: 'rrule' is not cron, every or at; skipped",
    ):
        assert expected in warnings, expected
    assert "state" not in warnings and "createdAtMs" not in warnings  # runtime state is not a loss
    assert "not valid" not in warnings  # every imported spec passes validation

    for doc in result.docs:  # and is a valid resource by the API models
        OpenClawCronJobSpec.model_validate(doc["spec"])


def test_import_accepts_cron_list_output_and_bare_lists() -> None:
    job = OPENCLAW_JOBS["jobs"][1]
    assert len(cli.import_jobs({"jobs": [job], "total": 1, "hasMore": False}).docs) == 1
    assert len(cli.import_jobs({"ok": True, "payload": {"jobs": [job]}}).docs) == 1
    assert len(cli.import_jobs([job]).docs) == 1
    with pytest.raises(cli.CliError):
        cli.import_jobs({"something": "else"})


def test_ms_duration_and_dns_name() -> None:
    assert cli.ms_duration(86_400_000) == "1d"
    assert cli.ms_duration(90_061_500) == "1d1h1m1s500ms"
    assert cli.dns_name("Daily  Report (EU)!") == "daily-report-eu"
    assert len(cli.dns_name("x" * 300)) == 63


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_import_verb_writes_yaml_and_warnings(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(OPENCLAW_JOBS))
    code, out, err = run_main("import", str(path), "-n", "assistants")
    assert code == cli.EXIT_FAILURE  # one job could not be imported
    docs = list(yaml.safe_load_all(out))
    assert len(docs) == 5 and all(d["metadata"]["namespace"] == "assistants" for d in docs)
    assert "warning:" in err and "imported 5 job(s), skipped 1" in err
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"version": 1, "jobs": OPENCLAW_JOBS["jobs"][1:2]}))
    code, out, _err = run_main("import", str(ok), "-o", "json")
    assert code == cli.EXIT_OK and json.loads(out)["items"][0]["kind"] == "OpenClawCronJob"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert run_main("import", str(bad))[0] == cli.EXIT_ERROR


# --- pure: validate -------------------------------------------------------------------

GOOD = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: not-ours}
data: {schedule: "not validated"}
---
apiVersion: cron.openclaw.io/v1alpha1
kind: OpenClawCronJob
metadata: {name: morning-status}
spec:
  schedule: {kind: cron, expr: "0 7 * * *", tz: America/Los_Angeles}
  payload: {kind: agentTurn, message: "Summarize."}
---
apiVersion: cron.openclaw.io/v1alpha1
kind: OpenClawCronJob
metadata: {name: ping}
spec:
  schedule: {kind: every, every: 20m}
  payload: {kind: systemEvent, text: ping}
"""

BAD = """\
apiVersion: cron.openclaw.io/v1alpha1
kind: OpenClawCronJob
metadata: {name: broken}
spec:
  schedule: {kind: cron, expr: "61 * * * *", tz: Mars/Olympus}
  payload: {kind: agentTurn, message: "x"}
---
apiVersion: v1
kind: List
items:
- apiVersion: cron.openclaw.io/v1alpha1
  kind: OpenClawCronJob
  metadata: {name: Not_DNS}
  spec:
    schedule: {kind: cron, expr: "0 7 * * *"}
    payload: {kind: systemEvent, text: hi}
"""


def test_validate_good_and_bad_files(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    code, out, _ = run_main("validate", str(good))
    assert code == cli.EXIT_OK
    assert out.splitlines() == [f"{good}: morning-status: valid", f"{good}: ping: valid"]

    code, out, _ = run_main("validate", str(good), str(bad))
    assert code == cli.EXIT_FAILURE
    lines = out.splitlines()
    assert any(line.startswith(f"{bad}: broken: spec.schedule.expr: ") for line in lines)
    assert any(line.startswith(f"{bad}: broken: spec.schedule.tz: ") and "Mars/Olympus" in line for line in lines)
    assert any(line.startswith(f"{bad}: Not_DNS: metadata.name: ") for line in lines)

    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("kind: [unclosed\n")
    code, out, _ = run_main("validate", str(broken_yaml))
    assert code == cli.EXIT_FAILURE and "invalid YAML (line" in out
    assert run_main("validate", str(tmp_path / "missing.yaml"))[0] == cli.EXIT_ERROR


# --- pure: next --expr ----------------------------------------------------------------


def test_next_expr_table_and_json() -> None:
    code, out, _ = run_main("next", "--expr", "0 7 * * 1-5", "--tz", "America/Los_Angeles", "--count", "3")
    assert code == cli.EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["NEXT", "RUN", "(UTC)", "LOCAL", "(America/Los_Angeles)", "IN"]
    assert len(lines) == 4
    for line in lines[1:]:
        utc = n.parse_time(line.split()[0])
        local = utc.astimezone(sched.zone("America/Los_Angeles"))
        assert (local.hour, local.minute) == (7, 0) and local.weekday() < 5
        assert line.split()[1:3] == [local.strftime("%Y-%m-%d"), "07:00:00"]

    code, out, _ = run_main("next", "--expr", "*/15 * * * *", "--count", "4", "-o", "json")
    times = [n.parse_time(t) for t in json.loads(out)]
    assert len(times) == 4 and all(t.minute % 15 == 0 for t in times)
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(times))


def test_next_expr_errors_are_usage_errors() -> None:
    code, _, err = run_main("next", "--expr", "0 70 * * *")
    assert code == cli.EXIT_ERROR and "0 70 * * *" in err
    code, _, err = run_main("next", "--expr", "0 7 * * *", "--tz", "Mars/Olympus")
    assert code == cli.EXIT_ERROR and "Mars/Olympus" in err
    assert run_main("next")[0] == cli.EXIT_ERROR
    with pytest.raises(SystemExit) as exc:
        cli.main(["runs"])  # NAME missing: argparse usage error
    assert exc.value.code == cli.EXIT_ERROR


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "2  usage error, API error" in out


# --- every verb against the emulated API server ---------------------------------------

support = pytest.importorskip("support", reason="tests/support (the emulated API server) is missing")

PLUGIN = Path(sys.executable).parent / "kubectl-openclaw"
API_VERSION = "cron.openclaw.io/v1alpha1"


def ocj(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "Europe/Berlin"},
        "payload": {"kind": "agentTurn", "message": "hi"},
    }
    body.update(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": "OpenClawCronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def set_status(cluster: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    from kubernetes import client

    api = cluster.api_client()
    try:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            "cron.openclaw.io",
            "v1alpha1",
            namespace,
            "openclawcronjobs",
            name,
            {"status": status},
            _content_type="application/merge-patch+json",
        )
    finally:
        api.close()


NOW = datetime.now(UTC).replace(microsecond=0)


def ago(seconds: float) -> str:
    return n.rfc3339(NOW - timedelta(seconds=seconds))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} is missing: install the package (pip install -e .)")
    with support.Cluster(tmp_path_factory.mktemp("cli-cluster")) as c:
        c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}})
        c.apply(
            ocj("daily"),
            ocj("sick"),
            ocj("flaky", "team-b", notify={"channels": ["ops"], "alertAfterConsecutiveFailures": 3}),
            ocj("quiet", "team-b", suspend=True),
        )
        set_status(
            c,
            "default",
            "daily",
            {
                "state": "Scheduled",
                "schedule": "0 7 * * * (Europe/Berlin)",
                "nextRunTime": n.rfc3339(NOW + timedelta(hours=3)),
                "lastScheduleTime": ago(3600),
                "lastRunResult": "Succeeded",
                "consecutiveFailures": 0,
                "recentRuns": [
                    {"runId": "daily-1", "trigger": "Schedule", "scheduledTime": ago(3 * 86400), "result": "Succeeded",
                     "durationSeconds": 12.0, "attempts": 1},
                    {"runId": "daily-2", "trigger": "Schedule", "scheduledTime": ago(2 * 86400), "result": "Failed",
                     "durationSeconds": 150.0, "attempts": 3, "reason": "PodFailed", "message": 'exit 1, "boom"'},
                    {"runId": "daily-3", "trigger": "Manual", "scheduledTime": ago(86400), "result": "Succeeded",
                     "durationSeconds": 7.5, "attempts": 1},
                ],
            },
        )  # fmt: skip
        set_status(
            c,
            "default",
            "sick",
            {
                "state": "Scheduled",
                "consecutiveFailures": 1,
                "lastRunResult": "Failed",
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Scheduled", "message": ""},
                    {
                        "type": "Healthy",
                        "status": "False",
                        "reason": "GatewayUnreachable",
                        "message": "connect refused",
                    },
                ],
            },
        )
        set_status(c, "team-b", "flaky", {"state": "Scheduled", "consecutiveFailures": 4, "lastRunResult": "Failed"})
        set_status(c, "team-b", "quiet", {"state": "Suspended", "consecutiveFailures": 0})
        yield c


def plugin(
    cluster: Any, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLUGIN), *args], capture_output=True, text=True, env=env or cluster.env(), timeout=timeout
    )


def rows(text: str) -> list[list[str]]:
    """Split a kubectl-style table on runs of 2+ spaces."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def test_summary_namespaced_all_and_json(cluster: Any) -> None:
    r = plugin(cluster, "summary")
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert table[0] == ["NAME", "STATE", "LAST RESULT", "NEXT RUN", "FAILURES"]
    assert [row[0] for row in table[1:]] == ["daily", "sick"]
    assert table[1][:3] == ["daily", "Scheduled", "Succeeded"] and table[1][4] == "0"
    # nextRunTime was now + 3h when the module's fixture made it, minutes ago on a slow machine
    assert re.fullmatch(r"in (3h|2h[1-5]\dm)", table[1][3]), table[1][3]
    assert table[2] == ["sick", "Scheduled", "Failed", "<none>", "1"]

    r = plugin(cluster, "summary", "-A")
    table = rows(r.stdout)
    assert table[0][0] == "NAMESPACE"
    assert [(row[0], row[1]) for row in table[1:]] == [
        ("default", "daily"),
        ("default", "sick"),
        ("team-b", "flaky"),
        ("team-b", "quiet"),
    ]

    r = plugin(cluster, "summary", "-n", "team-b", "-o", "json")
    data = json.loads(r.stdout)
    assert [(j["name"], j["suspend"], j["consecutiveFailures"]) for j in data] == [
        ("flaky", False, 4),
        ("quiet", True, 0),
    ]

    r = plugin(cluster, "summary", "-n", "empty-ns")
    assert r.returncode == 0 and r.stdout == "" and "No resources found in empty-ns namespace." in r.stderr


def test_runs_table_filter_csv_json(cluster: Any) -> None:
    r = plugin(cluster, "runs", "daily")
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert table[0] == list(cli.RUN_COLUMNS)
    assert [row[0] for row in table[1:]] == ["daily-3", "daily-2", "daily-1"]
    assert table[2][1:] == ["Schedule", ago(2 * 86400), "2m30s", "3", "Failed", "PodFailed"]

    r = plugin(cluster, "runs", "daily", "--result", "failed")
    assert [row[0] for row in rows(r.stdout)[1:]] == ["daily-2"]
    r = plugin(cluster, "runs", "daily", "--limit", "1", "-o", "json")
    assert [x["runId"] for x in json.loads(r.stdout)] == ["daily-3"]
    r = plugin(cluster, "runs", "daily", "-o", "csv")
    records = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["runId"] for x in records] == ["daily-3", "daily-2", "daily-1"]
    assert records[1]["message"] == 'exit 1, "boom"' and records[1]["durationSeconds"] == "150.0"


def test_next_for_a_job_uses_its_schedule(cluster: Any) -> None:
    obj = cluster.get(API_VERSION, "openclawcronjobs", "default", "daily")
    r = plugin(cluster, "next", "daily", "--count", "3", "-o", "json")
    assert r.returncode == 0, r.stderr
    got = [n.parse_time(t) for t in json.loads(r.stdout)]
    clock = sched.JobClock(
        Schedule.model_validate(obj["spec"]["schedule"]),
        n.parse_time(obj["metadata"]["creationTimestamp"]),
        obj["metadata"]["uid"],
    )
    expected = sched.next_n(clock, got[0] - timedelta(seconds=1), 3)
    assert got == expected
    assert all(t.astimezone(sched.zone("Europe/Berlin")).hour == 7 for t in got)

    r = plugin(cluster, "next", "daily")
    assert rows(r.stdout)[0] == ["NEXT RUN (UTC)", "LOCAL (Europe/Berlin)", "IN"] and len(rows(r.stdout)) == 6
    r = plugin(cluster, "next", "quiet", "-n", "team-b", "--count", "1")
    assert r.returncode == 0 and "suspended" in r.stderr


def test_suspend_and_resume_patch_the_spec(cluster: Any) -> None:
    def suspended() -> Any:
        return cluster.get(API_VERSION, "openclawcronjobs", "default", "daily")["spec"].get("suspend")

    r = plugin(cluster, "suspend", "daily")
    assert r.returncode == 0 and r.stdout.strip() == "openclawcronjob.cron.openclaw.io/daily suspended"
    assert suspended() is True
    r = plugin(cluster, "suspend", "daily")
    assert r.stdout.strip().endswith("suspended (no change)")
    r = plugin(cluster, "resume", "daily")
    assert r.returncode == 0 and r.stdout.strip() == "openclawcronjob.cron.openclaw.io/daily resumed"
    assert suspended() is False


def test_alerts_lists_failing_and_unhealthy_jobs(cluster: Any) -> None:
    r = plugin(cluster, "alerts", "-A")
    assert r.returncode == 1, r.stderr
    table = rows(r.stdout)
    assert table[0] == ["NAMESPACE", "NAME", "FAILURES", "THRESHOLD", "LAST RESULT", "REASON", "MESSAGE"]
    by_name = {row[1]: row for row in table[1:]}
    assert set(by_name) == {"sick", "flaky"}
    assert by_name["flaky"][2:6] == ["4", "3", "Failed", "ConsecutiveFailures"]
    assert by_name["sick"][5:] == ["GatewayUnreachable", "connect refused"]

    r = plugin(cluster, "alerts", "-n", "team-b", "-o", "json")
    assert r.returncode == 1 and [a["name"] for a in json.loads(r.stdout)] == ["flaky"]
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "calm"}})
    cluster.apply(ocj("fine", "calm"))
    r = plugin(cluster, "alerts", "-n", "calm")
    assert r.returncode == 0 and "No alerting jobs." in r.stderr


def run_pod(job: str, run_id: str, attempt: int, output: str, run_now: str | None = None) -> dict[str, Any]:
    annotations = {"kubelet.emulated/script": json.dumps({"output": output, "run_seconds": 0.05})}
    if run_now:
        annotations[n.ANNOTATION_RUN_NOW] = run_now
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{run_id}-{attempt}" if attempt > 1 else run_id,
            "namespace": "default",
            "labels": {n.LABEL_JOB: job, n.LABEL_RUN_ID: run_id, n.LABEL_ATTEMPT: str(attempt)},
            "annotations": annotations,
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "run", "image": "busybox:1.36"}]},
    }


def test_logs_latest_run_or_a_given_run(cluster: Any) -> None:
    cluster.apply(ocj("chatty"))
    cluster.apply(run_pod("chatty", "chatty-100", 1, "first run\n"))
    time.sleep(1.1)  # creationTimestamp has second precision
    cluster.apply(run_pod("chatty", "chatty-200", 1, "second run, attempt 1\n"))
    time.sleep(1.1)
    cluster.apply(run_pod("chatty", "chatty-200", 2, "second run, attempt 2\n"))
    support.wait_for(
        lambda: all(
            p["status"].get("phase") == "Succeeded"
            for p in cluster.pods()
            if p["metadata"]["name"].startswith("chatty")
        ),
        30,
    )
    r = plugin(cluster, "logs", "chatty")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "second run, attempt 2\n"
    assert "pod/chatty-200-2 (run chatty-200, attempt 2)" in r.stderr
    r = plugin(cluster, "logs", "chatty", "--run", "chatty-100", "-f")
    assert r.returncode == 0 and r.stdout == "first run\n"
    r = plugin(cluster, "logs", "daily")
    assert r.returncode == 2 and "no run Pods found" in r.stderr


class FakeOperator(threading.Thread):
    """Acts on the run-now annotation like the operator: a run Pod, then a status record."""

    def __init__(self, cluster: Any, job: str, result: str, *, skew: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.cluster, self.job, self.result, self.skew = cluster, job, result, skew
        self.value: str | None = None
        self.error: BaseException | None = None

    def annotation(self) -> str | None:
        obj = self.cluster.get(API_VERSION, "openclawcronjobs", "default", self.job)
        value: str | None = (obj["metadata"].get("annotations") or {}).get(n.ANNOTATION_RUN_NOW)
        return value

    def run(self) -> None:
        try:
            before = self.annotation()
            self.value = support.wait_for(lambda: (v := self.annotation()) != before and v, 30)
            # The operator's clock may lag the client's: `skew` moves its scheduledTime back.
            when = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=self.skew)
            run_id = n.run_id(self.job, when)
            self.cluster.apply(run_pod(self.job, run_id, 1, "manual\n", run_now=self.value))
            time.sleep(0.5)  # the plugin polls meanwhile and must keep waiting
            record = {"runId": run_id, "trigger": "Manual", "scheduledTime": n.rfc3339(when),
                      "result": self.result, "durationSeconds": 3.0, "attempts": 1}  # fmt: skip
            if self.result != "Succeeded":
                record.update(reason="GatewayError", message="completion status error")
            set_status(self.cluster, "default", self.job, {"lastManualRun": self.value, "recentRuns": [record]})
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize(("result", "code", "skew"), [("Succeeded", 0, 0.0), ("Failed", 1, 0.0), ("TimedOut", 1, 90.0)])
def test_run_wait_reports_the_manual_run(cluster: Any, result: str, code: int, skew: float) -> None:
    job = f"manual-{result.lower()}"
    cluster.apply(ocj(job))
    operator = FakeOperator(cluster, job, result, skew=skew)
    operator.start()
    r = plugin(cluster, "run", job, "--wait", "--timeout", "30", "--poll-interval", "0.2")
    operator.join(10)
    assert operator.error is None, operator.error
    assert r.returncode == code, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == f"openclawcronjob.cron.openclaw.io/{job} triggered (run-now={operator.value})"
    assert f" {result} in 3s (attempts: 1)" in r.stdout
    if code:
        assert "reason: GatewayError" in r.stdout and "message: completion status error" in r.stdout


def test_run_without_wait_sets_a_fresh_annotation(cluster: Any) -> None:
    cluster.apply(ocj("oneshot"))
    values = []
    for _ in range(2):
        r = plugin(cluster, "run", "oneshot")
        assert r.returncode == 0, r.stderr
        obj = cluster.get(API_VERSION, "openclawcronjobs", "default", "oneshot")
        values.append(obj["metadata"]["annotations"][n.ANNOTATION_RUN_NOW])
    assert values[0] != values[1]
    assert all(abs((n.parse_time(v) - datetime.now(UTC)).total_seconds()) < 60 for v in values)


def test_run_wait_times_out_with_exit_1(cluster: Any) -> None:
    cluster.apply(ocj("nobody-home"))
    r = plugin(cluster, "run", "nobody-home", "--wait", "--timeout", "1", "--poll-interval", "0.2")
    assert r.returncode == 1 and "timed out" in r.stderr


def test_api_errors_and_missing_objects_exit_2(cluster: Any) -> None:
    for args in (("runs", "nope"), ("run", "nope"), ("suspend", "nope"), ("next", "nope")):
        r = plugin(cluster, *args)
        assert r.returncode == 2, args
        assert "Error from server (NotFound)" in r.stderr and "nope" in r.stderr
    env = cluster.env(KUBECONFIG=str(cluster.workdir / "absent-kubeconfig"))
    r = plugin(cluster, "summary", env=env)
    assert r.returncode == 2 and "kubeconfig" in r.stderr.lower()
    r = plugin(cluster, "summary", "--kubeconfig", str(cluster.kubeconfig), "--context", "no-such-context", env=env)
    assert r.returncode == 2


def test_kubeconfig_context_and_namespace_flags(cluster: Any, tmp_path: Path) -> None:
    other = cluster.kubeconfig_for("team-b-admin", ("system:masters",), namespace="team-b", path=tmp_path / "team-b")
    env = cluster.env(KUBECONFIG=str(tmp_path / "absent"))
    r = plugin(cluster, "summary", "--kubeconfig", str(other), "--context", "emulated", env=env)
    assert r.returncode == 0, r.stderr
    assert [row[0] for row in rows(r.stdout)[1:]] == ["flaky", "quiet"]  # the context's namespace
    r = plugin(cluster, "summary", "--kubeconfig", str(other), "-n", "default", env=env)
    names = [row[0] for row in rows(r.stdout)[1:]]
    assert "daily" in names and "flaky" not in names


def test_kubectl_discovers_the_plugin(cluster: Any) -> None:
    r = subprocess.run(
        [support.cluster.KUBECTL, "openclaw", "summary", "-n", "team-b"],
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert rows(r.stdout)[0][0] == "NAME" and "flaky" in r.stdout
