"""A kubelet for one Pod spec: what a node does with the chart's rendered Pod, done with podman.

Given the Pod template `helm template` rendered, `PodRun` prepares what a kubelet would and turns
it into one `podman run`: the image and pull policy, `command`/`args` with `$(VAR)` expanded from
the container's env, env values and `fieldRef`/`secretKeyRef`/`configMapKeyRef` sources, the
service env (`KUBERNETES_SERVICE_HOST/PORT`), the Pod's and container's securityContext (user,
group, fsGroup, non-root check, read-only root, no privilege escalation, dropped capabilities),
volumes (emptyDir, Secret items, a PersistentVolumeClaim as a directory owned by fsGroup) and the
ServiceAccount token, CA and namespace where a kubelet mounts them, the Pod name as hostname.
Probes are run by the caller (`probe_url`), as the kubelet runs them from outside.

What it cannot do is said, not skipped: an unsupported volume or env source raises.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: (kind "Secret"|"ConfigMap", namespace, name) -> data (decoded strings), or None when missing.
Lookup = Callable[[str, str, str], Mapping[str, str] | None]
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion in command/args/env: `$$` escapes, unknown references stay."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR.sub(one, text)


@dataclass
class PodRun:
    pod: JSON  # the Pod template: {"metadata": ..., "spec": ...}
    name: str
    namespace: str
    workdir: Path
    api_host: str
    api_port: int
    #: What the kubelet mounts at SA_DIR (token, ca.crt, namespace; `Cluster.write_service_account_files`).
    service_account_dir: Path
    lookup: Lookup
    #: Replaces the securityContext's user and group, as a platform that picks UIDs does (OpenShift).
    uid_override: tuple[int, int] | None = None
    mounts: list[str] = field(default_factory=list, init=False)

    @property
    def spec(self) -> JSON:
        return dict(self.pod["spec"])

    @property
    def container(self) -> JSON:
        (container,) = self.spec["containers"]
        return dict(container)

    def user(self) -> tuple[int, int, int | None]:
        """(uid, gid, fsGroup): the container's securityContext over the Pod's."""
        pod_sc, c_sc = self.spec.get("securityContext") or {}, self.container.get("securityContext") or {}
        uid = c_sc.get("runAsUser", pod_sc.get("runAsUser"))
        gid = c_sc.get("runAsGroup", pod_sc.get("runAsGroup", 0))
        fs_group = pod_sc.get("fsGroup")
        if self.uid_override is not None:
            uid, gid = self.uid_override
            fs_group = gid
        if uid is None:
            raise ValueError("the Pod sets no runAsUser: this stand-in kubelet cannot check runAsNonRoot")
        if (c_sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")) and int(uid) == 0:
            raise ValueError("container has runAsNonRoot and image will run as root")  # the kubelet's words
        return int(uid), int(gid), (None if fs_group is None else int(fs_group))

    def env(self) -> dict[str, str]:
        """The container's environment as the kubelet builds it (service env first, then the spec's, in order)."""
        meta = self.pod.get("metadata") or {}
        env = {
            "KUBERNETES_SERVICE_HOST": self.api_host,
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.api_port),
            "KUBERNETES_PORT": f"tcp://{self.api_host}:{self.api_port}",
            "HOSTNAME": self.name,
        }
        fields = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "spec.nodeName": "install-tier-node",
            "status.podIP": "127.0.0.1",
        }
        for key, value in (meta.get("labels") or {}).items():
            fields[f"metadata.labels['{key}']"] = value
        for var in self.container.get("env") or []:
            source = var.get("valueFrom")
            if source is None:
                env[var["name"]] = expand(str(var.get("value", "")), env)
            elif "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                if path not in fields:
                    raise ValueError(f"env {var['name']}: fieldRef {path} is not known to this stand-in kubelet")
                env[var["name"]] = fields[path]
            elif "secretKeyRef" in source or "configMapKeyRef" in source:
                kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
                ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
                data = self.lookup(kind, self.namespace, ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise ValueError(f'env {var["name"]}: {kind.lower()} "{ref["name"]}" has no key {ref["key"]!r}')
                env[var["name"]] = data[ref["key"]]
            else:
                raise ValueError(f"env {var['name']}: unsupported source {sorted(source)}")
        return env

    def _volume_dir(self, volume: JSON, uid: int, fs_group: int | None) -> tuple[Path, bool]:
        """A host directory holding the volume's content, and whether it is mounted read-only."""
        path = self.workdir / "volumes" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            path.chmod(0o1777)  # the kubelet makes emptyDirs world-writable
            return path, False
        if "persistentVolumeClaim" in volume:
            # a fresh volume, group-owned by fsGroup with the setgid bit, as the kubelet prepares it
            os.chown(path, 0, fs_group if fs_group is not None else 0)
            path.chmod(0o2775 if fs_group is not None else 0o777)
            return path, bool(volume["persistentVolumeClaim"].get("readOnly"))
        if "secret" in volume or "configMap" in volume:
            kind = "Secret" if "secret" in volume else "ConfigMap"
            source = volume.get("secret") or volume.get("configMap") or {}
            name = source.get("secretName") or source.get("name")
            data = self.lookup(kind, self.namespace, name)
            if data is None:
                raise ValueError(f'volume {volume["name"]}: {kind.lower()} "{name}" not found')
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                target = path / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(data[item["key"]])
                os.chown(target, 0, fs_group if fs_group is not None else 0)
                target.chmod(0o640 if fs_group is not None else 0o644)
            return path, True
        raise ValueError(f"volume {volume['name']}: only emptyDir, secret, configMap and persistentVolumeClaim here")

    def argv(self, engine: list[str], image: str, extra: list[str]) -> list[str]:
        """The `podman run` command line for this Pod's one container."""
        spec, c = self.spec, self.container
        uid, gid, fs_group = self.user()
        sc = c.get("securityContext") or {}
        args = [*engine, "run", "--rm", "--name", f"ocj-install-{self.name}", "--hostname", self.name]
        args += [
            "--network=host",
            "--user",
            f"{uid}:{gid}",
            "--passwd=false",  # podman would add a passwd entry for an unknown UID; a kubelet's runtime does not
            "--pull=never" if c.get("imagePullPolicy") == "Never" else "--pull=missing",
        ]
        if fs_group is not None:
            args += ["--group-add", str(fs_group)]
        if sc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        for cap in (sc.get("capabilities") or {}).get("drop") or []:
            args += ["--cap-drop", cap]
        for cap in (sc.get("capabilities") or {}).get("add") or []:
            args += ["--cap-add", cap]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for mount in c.get("volumeMounts") or []:
            host, read_only = self._volume_dir(volumes[mount["name"]], uid, fs_group)
            ro = read_only or bool(mount.get("readOnly"))
            args += ["-v", f"{host}:{mount['mountPath']}:{'ro' if ro else 'rw'}"]
        if spec.get("automountServiceAccountToken", True):
            args += ["-v", f"{self.service_account_dir}:{SA_DIR}:ro"]
        env = self.env()
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        command = [expand(part, env) for part in c.get("command") or []]
        if command:
            args += ["--entrypoint", command[0]]
        args += [*extra, image, *command[1:], *(expand(a, env) for a in c.get("args") or [])]
        return args

    def probe_url(self, kind: str = "readinessProbe") -> str:
        """The URL a kubelet's httpGet probe asks (host network: 127.0.0.1)."""
        probe = self.container[kind]["httpGet"]
        port = probe["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in self.container.get("ports") or [] if p.get("name") == port)
        return f"{probe.get('scheme', 'HTTP').lower()}://127.0.0.1:{port}{probe.get('path', '/')}"


def clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
