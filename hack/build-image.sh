#!/usr/bin/env bash
# Build the container image (`make image`): `docker build` where a Docker engine answers; otherwise
# Debian's podman with runc and a base image made here, for machines with no engine and no registry.
#
# The podman path (as root) installs podman, buildah, runc and debootstrap from Debian's packages when
# they are missing, makes a bookworm base with Debian's python3 by debootstrap (stripped to what Python
# needs, 59 MB), `podman import`s it as localhost/openclaw-cron-base:<hash of its recipe> and keeps the
# rootfs tarball in .cache/image/, so a later build (or a wiped podman store) reuses it. The Dockerfile
# is the same for both paths; only --build-arg PYTHON_IMAGE points at the local base. What this
# machine needs stays on the command line: host network and the host's CA bundle for PyPI during the
# build, runc (crun fails here), and lowered ulimits (the process may not raise its limits).
#
# Env: IMAGE (tag), BUILD_WITH=docker|podman (default: docker if `docker info` answers),
# DEBIAN_MIRROR, IMAGE_CACHE (default .cache/image). Prints the image size at the end. Exit 3: no way
# to build here (no engine, and podman cannot be installed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-ghcr.io/openclaw/openclaw-cron-operator:0.1.0}
cache=${IMAGE_CACHE:-$root/.cache/image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
started=$(date +%s)

if [ -z "${BUILD_WITH:-}" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then BUILD_WITH=docker; else BUILD_WITH=podman; fi
fi
if [ "$BUILD_WITH" = docker ]; then
  docker build -t "$image" "$root"
  docker image inspect --format 'image {{index .RepoTags 0}}: {{.Size}} bytes' "$image"
  exit 0
fi

# --- tools from Debian's packages ------------------------------------------------------------
need=()
for tool in podman:podman buildah:buildah runc:runc debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "build-image: no Docker engine and no ${need[*]}: install them (apt-get install ${need[*]})" >&2
    exit 3  # 3: cannot build here (make test-image then lets the tier skip)
  fi
  echo "build-image: installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
runc=$(command -v runc)
podman=(podman --runtime "$runc")

# --- the base: debootstrap + Debian's python3, stripped -------------------------------------
# Kept: python3 with venv (the builder stage makes the venv with it), dash and coreutils (RUN steps),
# CA certificates, libc and the libraries Python's modules load. Purged: apt, PAM, login, util-linux,
# perl, bash, debconf, the openssl CLI, Kerberos/NIS and Berkeley DB (only `nis` and `dbm.ndbm` use
# them), docs, man pages, locales, iconv modules, dpkg's per-package files (its status stays, for
# scanners), and the stdlib's pydoc data, tests, IDLE and Tk (Python's own code needs none).
include=python3,python3-venv,ca-certificates
purge1="apt libapt-pkg6.0 adduser debian-archive-keyring gpgv e2fsprogs libext2fs2 libss2 logsave
  login passwd libpam-modules libpam-modules-bin libpam-runtime libpam0g util-linux util-linux-extra mount
  bsdutils libsmartcols1 libblkid1 libmount1 sysvinit-utils hostname ncurses-bin init-system-helpers
  libsystemd0 libudev1 libgnutls30 libnettle8 libhogweed6 libp11-kit0 libtasn1-6 libidn2-0 libunistring2
  libgcrypt20 libgpg-error0 liblz4-1 libxxhash0 libseccomp2 python3-lib2to3 libsemanage2 libsemanage-common
  libsepol2 libaudit1 libaudit-common libcap-ng0 openssl libdb5.3 libtirpc3 libtirpc-common libnsl2
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2"
purge2="debconf perl-base diffutils bash"  # last: the purges above run their scripts with these
strip_paths="var/lib/apt var/cache/apt var/cache/debconf usr/share/doc usr/share/man usr/share/locale
  usr/share/info usr/share/lintian usr/share/common-licenses usr/lib/x86_64-linux-gnu/gconv var/log/*
  usr/lib/python3.11/pydoc_data usr/lib/python3.11/test usr/lib/python3.11/idlelib usr/lib/python3.11/tkinter
  usr/lib/python3.11/turtledemo usr/lib/python3.11/turtle.py var/lib/dpkg/info"
# The standard library as bytecode only (as the Dockerfile keeps third-party code): -12 MB.
stdlib=/usr/lib/python3.11
stdlib_bytecode="python3 -m compileall -q -b -j 0 $stdlib && find $stdlib -name '*.py' -delete"
stdlib_bytecode+=" && find $stdlib -name __pycache__ -prune -exec rm -rf {} +"
recipe="$suite $mirror $include | $purge1 | $purge2 | $strip_paths | $stdlib_bytecode | v3"
hash=$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
base=localhost/openclaw-cron-base:$suite-$hash
tarball=$cache/base-$suite-$hash.tar

if ! "${podman[@]}" image exists "$base"; then
  if [ ! -f "$tarball" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "build-image: making the base needs root (debootstrap, chroot); run as root or use Docker" >&2
      exit 3
    fi
    echo "build-image: making the $suite base by debootstrap (a few minutes, once)"
    mkdir -p "$cache"
    rootfs=$cache/rootfs-$hash
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # shellcheck disable=SC2086  # word splitting of the package lists is intended
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends --force-remove-essential \
      $purge1 >>"$cache/debootstrap.log" 2>&1
    # shellcheck disable=SC2086
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends --force-remove-essential \
      $purge2 >>"$cache/debootstrap.log" 2>&1
    for path in $strip_paths; do
      # shellcheck disable=SC2115,SC2086  # $rootfs is set; globs in $path are intended
      rm -rf "$rootfs"/$path
    done
    chroot "$rootfs" /bin/sh -c "$stdlib_bytecode" >>"$cache/debootstrap.log" 2>&1
    modules="ssl, hashlib, lzma, bz2, zlib, uuid, decimal, sqlite3, zoneinfo, ctypes, venv, ensurepip, asyncio"
    chroot "$rootfs" python3 -c "import $modules; zoneinfo.ZoneInfo('America/Los_Angeles')" \
      || { echo "build-image: the stripped base lost part of Python" >&2; exit 1; }
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    find "$cache" -maxdepth 1 -name "base-$suite-*.tar" ! -name "${tarball##*/}.tmp" -delete  # older recipes
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  "${podman[@]}" import --message "debootstrap $suite + python3 ($hash)" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tarball" "$base" >/dev/null
  for old in $("${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' "${base%:*}"); do
    [ "$old" = "$base" ] || "${podman[@]}" rmi "$old" >/dev/null 2>&1 || true  # an older recipe's base
  done
fi
echo "build-image: base $base ($(( $(date +%s) - started )) s so far)"

# --- the image itself -------------------------------------------------------------------------
"${podman[@]}" build --pull=never --network=host -v /etc/ssl/certs:/etc/ssl/certs:ro \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --build-arg PYTHON_IMAGE="$base" -t "$image" -f "$root/Dockerfile" "$root"
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
echo "build-image: $image: $(( size / 1000000 )) MB ($size bytes), built in $(( $(date +%s) - started )) s"
