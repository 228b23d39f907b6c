#!/usr/bin/env bash
# First run: the operator against the current kube context, or the self-contained demo.
#
#   make install && bash hack/start.sh [operator flags...]
#
# With a reachable cluster (`kubectl cluster-info` answers within 5 s) it applies crds/
# server-side and runs `openclaw-cron-operator --standalone` in the foreground against it.
# Without one it says so and runs `make demo` (emulated API server, simulated kubelet).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PWD/.venv/bin:$PATH"

if [[ ! -x .venv/bin/openclaw-cron-operator || ! -x .tools/bin/kubectl ]]; then
  echo "missing .venv or kubectl: run 'make install' first" >&2
  exit 1
fi

if kubectl cluster-info --request-timeout=5s >/dev/null 2>&1; then
  context="$(kubectl config current-context 2>/dev/null || echo '?')"
  echo "cluster reachable (context ${context}): applying crds/ (server-side) ..."
  kubectl apply --server-side --force-conflicts -f crds/
  cat <<'NOTE'
Starting openclaw-cron-operator --standalone in the foreground (Ctrl-C stops it).
Note: --standalone means no kopf peering: run only one such operator against this cluster.
For a real installation (Deployment, RBAC, HA peering, metrics) use the Helm chart or
manifests/install.yaml, see docs/install.md. Jobs that call a gateway need the token Secret
(default 'openclaw-hooks', key 'token') in their namespace; examples are in manifests/examples/.
NOTE
  exec openclaw-cron-operator --standalone "$@"
fi

echo "no reachable cluster in the current kube context; starting the self-contained demo"
exec make demo
