#!/usr/bin/env bash
# System packages some tests need (CI, as root): promtool from Debian's `prometheus` package, a
# PostgreSQL server from `postgresql` (the archive tests start their own on 127.0.0.1), and Debian's
# `chromium` for the console's browser tier (tests/browser drives it headless through Playwright;
# Playwright's own browser downloads are never used).
# The packages' services are never started: a temporary policy-rc.d forbids it.
set -euo pipefail
packages=()
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
if [ "${#packages[@]}" = 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${packages[*]} (the dashboards, archive and browser tests need them; they skip without)" >&2
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
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
command -v promtool
compgen -G '/usr/lib/postgresql/*/bin/initdb' 
command -v chromium
