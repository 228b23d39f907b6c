"""Argo CD integration: the health check and resource actions, run as Lua against sample objects.

Argo CD runs these scripts in gopher-lua (Lua 5.1), so they run here in lupa's Lua 5.1 runtime,
with the object as the global `obj`, exactly as written in manifests/argocd/*.lua; the
argocd-cm snippet must carry the same text (it is generated from the files).
"""

from __future__ import annotations

import copy
import importlib.util
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

lua51 = pytest.importorskip("lupa.lua51")

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "manifests" / "argocd"
GROUP_KIND = "cron.openclaw.io_OpenClawCronJob"
RUN_NOW = "cron.openclaw.io/run-now"


def to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def from_lua(value: Any) -> Any:
    if lua51.lua_type(value) != "table":
        return value
    items = dict(value.items())
    if items and all(isinstance(k, int) for k in items) and sorted(items) == list(range(1, len(items) + 1)):
        return [from_lua(items[i]) for i in range(1, len(items) + 1)]
    return {k: from_lua(v) for k, v in items.items()}


def run_lua(script: str, obj: dict[str, Any]) -> Any:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, copy.deepcopy(obj))
    return from_lua(runtime.execute(script))


def script(name: str) -> str:
    return (ARGOCD / name).read_text()


def job(
    *, generation: int = 2, observed: int | None = 2, ready: tuple[str, str, str] | None = ("True", "Scheduled", ""),
    healthy: tuple[str, str, str] | None = ("True", "Succeeded", ""), suspend: bool | None = None,
    annotations: dict[str, str] | None = None, status: bool = True,
) -> dict[str, Any]:  # fmt: skip
    obj: dict[str, Any] = {
        "apiVersion": "cron.openclaw.io/v1alpha1",
        "kind": "OpenClawCronJob",
        "metadata": {"name": "morning-status", "namespace": "assistants", "generation": generation},
        "spec": {"schedule": {"kind": "cron", "expr": "0 7 * * *"}, "payload": {"kind": "agentTurn", "message": "hi"}},
    }
    if suspend is not None:
        obj["spec"]["suspend"] = suspend
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if status:
        conditions = []
        for kind, cond in (("Ready", ready), ("Healthy", healthy)):
            if cond:
                conditions.append({"type": kind, "status": cond[0], "reason": cond[1], "message": cond[2]})
        obj["status"] = {"conditions": conditions, "state": "Scheduled", "nextRunTime": "2026-01-02T07:00:00Z"}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


def paused_job(*, condition: bool = True, **kw: Any) -> dict[str, Any]:
    """A job the operator paused after failures (status only: its spec says nothing about it)."""
    obj = job(**kw)
    obj["status"]["state"] = "Paused"
    obj["status"].pop("nextRunTime")
    if condition:
        message = "paused after 3 consecutive failed runs (failurePolicy.pauseAfterConsecutiveFailures 3)"
        obj["status"]["conditions"].append(
            {"type": "Paused", "status": "True", "reason": "ConsecutiveFailures", "message": message}
        )
    return obj


# --- health ----------------------------------------------------------------------------

HEALTH_CASES = [
    ("no status yet", job(status=False), "Progressing", "Waiting for the operator"),
    ("generation not observed", job(generation=3, observed=2), "Progressing", "Waiting for the operator"),
    ("observedGeneration missing", job(observed=None), "Progressing", None),
    ("not ready, message", job(ready=("False", "InvalidSchedule", "spec.schedule.expr: bad cron")),
     "Degraded", "spec.schedule.expr: bad cron"),
    ("not ready, reason only", job(ready=("False", "SecretMissing", "")), "Degraded", "SecretMissing"),
    ("not healthy", job(healthy=("False", "RunsFailing", "3 consecutive failures")),
     "Degraded", "3 consecutive failures"),
    ("not ready wins over unhealthy", job(ready=("False", "Invalid", "bad"), healthy=("False", "F", "failing")),
     "Degraded", "bad"),
    ("degraded even when suspended", job(ready=("False", "Invalid", "bad"), suspend=True), "Degraded", "bad"),
    ("suspended", job(suspend=True), "Suspended", "Suspended"),
    ("healthy", job(), "Healthy", "Next run 2026-01-02T07:00:00Z"),
    ("healthy without conditions yet", job(ready=None, healthy=None), "Healthy", None),
    ("healthy unknown", job(healthy=("Unknown", "NoRunsYet", "")), "Healthy", None),
    ("paused by the failure policy", paused_job(), "Degraded",
     "Paused: paused after 3 consecutive failed runs (failurePolicy.pauseAfterConsecutiveFailures 3)"),
    ("paused wins over unhealthy and suspended", paused_job(suspend=True, healthy=("False", "F", "failing")),
     "Degraded", "Paused: paused after 3"),
    ("paused state without its condition", paused_job(condition=False), "Degraded", "Paused"),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "status", "message"), [c[1:] for c in HEALTH_CASES], ids=[c[0] for c in HEALTH_CASES])
def test_health(obj: dict[str, Any], status: str, message: str | None) -> None:
    hs = run_lua(script("health.lua"), obj)
    assert hs["status"] == status
    if message is not None:
        assert message in hs["message"]


def test_health_statuses_are_argo_cd_ones() -> None:
    assert {c[2] for c in HEALTH_CASES} <= {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


# --- actions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suspend", "disabled"),
    [
        (None, {"run-now": False, "suspend": False, "resume": True}),
        (False, {"run-now": False, "suspend": False, "resume": True}),
        (True, {"run-now": False, "suspend": True, "resume": False}),
    ],
)
def test_action_discovery(suspend: bool | None, disabled: dict[str, bool]) -> None:
    actions = run_lua(script("actions/discovery.lua"), job(suspend=suspend))
    assert {name: a["disabled"] for name, a in actions.items()} == disabled
    assert all(a["iconClass"].startswith("fa ") for a in actions.values())


def test_suspend_and_resume() -> None:
    suspended = run_lua(script("actions/suspend.lua"), job())
    assert suspended["spec"]["suspend"] is True
    assert suspended["spec"]["schedule"] == job()["spec"]["schedule"]
    resumed = run_lua(script("actions/resume.lua"), job(suspend=True))
    assert resumed["spec"]["suspend"] is False


def run_now(annotations: dict[str, str] | None) -> str:
    out = run_lua(script("actions/run-now.lua"), job(annotations=annotations))
    value: str = out["metadata"]["annotations"][RUN_NOW]
    return value


def test_run_now_sets_a_fresh_timestamp() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    value = run_now(None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value)
    when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= when <= datetime.now(UTC) + timedelta(seconds=1)


def test_run_now_keeps_other_annotations_and_changes_an_old_value() -> None:
    out = run_lua(script("actions/run-now.lua"), job(annotations={"team": "ops", RUN_NOW: "2020-01-01T00:00:00Z"}))
    assert out["metadata"]["annotations"]["team"] == "ops"
    assert out["metadata"]["annotations"][RUN_NOW] != "2020-01-01T00:00:00Z"


def test_run_now_twice_in_one_second_is_still_new() -> None:
    first = run_now(None)
    second = run_now({RUN_NOW: first})
    third = run_now({RUN_NOW: second})
    if second.startswith(first):  # same second (almost always)
        assert second == first + "-1"
        assert third == first + "-2"
    assert len({first, second, third}) == 3


# --- argocd-cm and Application ---------------------------------------------------------


def load_render_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_manifests", ROOT / "hack" / "render_manifests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_argocd_cm_is_fresh_and_carries_the_lua_files() -> None:
    text = (ARGOCD / "argocd-cm.yaml").read_text()
    assert text == load_render_script().render_argocd_cm(), "manifests/argocd/argocd-cm.yaml is stale: make manifests"
    cm = yaml.safe_load(text)
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    assert cm["data"][f"resource.customizations.health.{GROUP_KIND}"] == script("health.lua")
    actions = yaml.safe_load(cm["data"][f"resource.customizations.actions.{GROUP_KIND}"])
    assert actions["discovery.lua"] == script("actions/discovery.lua")
    assert [d["name"] for d in actions["definitions"]] == ["run-now", "suspend", "resume"]
    for definition in actions["definitions"]:
        assert definition["action.lua"] == script(f"actions/{definition['name']}.lua")


def test_argocd_cm_scripts_run() -> None:
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    health = cm["data"][f"resource.customizations.health.{GROUP_KIND}"]
    assert run_lua(health, job(suspend=True))["status"] == "Suspended"


def test_applications() -> None:
    apps = {d["metadata"]["name"]: d for d in yaml.safe_load_all((ARGOCD / "application.yaml").read_text()) if d}
    assert set(apps) == {"openclaw-cron-operator", "openclaw-cron-jobs"}
    for app in apps.values():
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
        assert (ROOT / app["spec"]["source"]["path"]).is_dir()
        assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
    operator = apps["openclaw-cron-operator"]["spec"]
    assert operator["destination"]["namespace"] == "openclaw-cron-system"
    assert "ServerSideApply=true" in operator["syncPolicy"]["syncOptions"]
    (ignored,) = apps["openclaw-cron-jobs"]["spec"]["ignoreDifferences"]
    assert ignored["jsonPointers"] == ["/spec/suspend"]
