#!/usr/bin/env bash
# System packages some tests need (CI, as root): promtool from Debian's `prometheus` package.
# The package's service is never started: a temporary policy-rc.d forbids it.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "promtool is missing; install Debian's 'prometheus' package (the dashboards test needs it)" >&2
  exit 0
fi
guard=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$guard" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$guard" && chmod +x "$guard" && created=1
fi
trap '[ "$created" = 1 ] && rm -f "$guard"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool
