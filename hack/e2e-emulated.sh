#!/usr/bin/env bash
# Run the e2e tier against the emulated API server (simulated kubelet), so the e2e code is
# exercised on every run even where no real cluster is at hand. A real cluster: make test-e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
.venv/bin/python hack/demo_cluster.py --no-kubelet --kubeconfig "$work/kubeconfig" --operator-kubeconfig "$work/operator.kubeconfig" >"$work/cluster.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  grep -q '^ready ' "$work/cluster.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/cluster.log"; exit 1; }
  sleep 0.2
done
grep -q '^ready ' "$work/cluster.log" || { echo "emulated cluster did not start"; cat "$work/cluster.log"; exit 1; }
E2E_SIMULATED_KUBELET=1 E2E_OPERATOR_KUBECONFIG="$work/operator.kubeconfig" KUBECONFIG="$work/kubeconfig" .venv/bin/python -m pytest -p no:cacheprovider tests/e2e -q -rs
