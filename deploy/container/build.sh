#!/usr/bin/env bash
# Build the Needlecare image from this checkout.
#
#   deploy/container/build.sh                     # FROM debian:bookworm-slim (a registry pull)
#   deploy/container/build.sh --local-base        # FROM a Debian base made here with debootstrap
#   deploy/container/build.sh --tag needlecare:0.1.0
#
# --local-base is for hosts that reach Debian's package mirror but no image registry
# (the project's CI, for one): debootstrap makes a minimal bookworm root file system,
# cached as a tarball under ~/.cache/needlecare/ (or $NEEDLECARE_CACHE), and imports it
# as localhost/needlecare-base:bookworm-rN. Later builds reuse both; the base is made
# again when it is older than 30 days, so security updates reach new builds.
#
# The engine is $CONTAINER_ENGINE, else podman, else docker. As root on Debian, a
# missing podman (and debootstrap, for --local-base) is installed with apt-get.
# The build context is a clean copy of what the image needs (pyproject.toml, README.md,
# service/, integrations/), so caches and databases in the work tree never reach it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TAG="localhost/needlecare:latest"
LOCAL_BASE=0
BASE_IMAGE="docker.io/library/debian:bookworm-slim"
CACHE="${NEEDLECARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/needlecare}"
# The recipe's revision is in both names: changing how the base is made means a new one.
BASE_REVISION=2
ROOTFS_TARBALL="$CACHE/debian-bookworm-minbase-r$BASE_REVISION.tar.gz"
MAX_AGE_DAYS=30
LOCAL_BASE_IMAGE="localhost/needlecare-base:bookworm-r$BASE_REVISION"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --local-base) LOCAL_BASE=1 ;;
    --tag) TAG="$2"; shift ;;
    --tag=*) TAG="${1#--tag=}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

log() { echo "build.sh: $*" >&2; }

apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "please install: $*"
    exit 1
  fi
  log "installing $* with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ENGINE="${CONTAINER_ENGINE:-}"
if [ -z "$ENGINE" ]; then
  if command -v podman >/dev/null 2>&1; then ENGINE=podman
  elif command -v docker >/dev/null 2>&1; then ENGINE=docker
  else apt_install podman; ENGINE=podman
  fi
fi

# Debian's apt sources for the base: updates and security suites, like Debian's images.
debian_sources() {
  printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
    'Suites: bookworm bookworm-updates' 'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' \
    'Types: deb' 'URIs: http://deb.debian.org/debian-security' \
    'Suites: bookworm-security' 'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
}

# The cached root file system: made once, and again when older than MAX_AGE_DAYS so
# security updates reach new builds.
make_rootfs_tarball() {
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || apt_install debootstrap
  case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac
  mkdir -p "$CACHE"
  local rootfs
  rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
  trap "rm -rf '$rootfs'" EXIT
  log "debootstrap --variant=minbase bookworm from $MIRROR (about half a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
    tail -20 "$CACHE/debootstrap.log" >&2
    exit 1
  }
  # Every path below is inside $rootfs, which is set and holds a system (checked first).
  [ -n "$rootfs" ] && [ -d "$rootfs/etc/apt" ] || { log "no root file system in '$rootfs'"; exit 1; }
  rm -f "$rootfs/etc/apt/sources.list"
  debian_sources >"$rootfs/etc/apt/sources.list.d/debian.sources"
  # What Debian's slim images leave out, also for packages installed later.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/usr/share/lintian/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  tar --numeric-owner -C "$rootfs" -czf "$ROOTFS_TARBALL.tmp" .
  mv "$ROOTFS_TARBALL.tmp" "$ROOTFS_TARBALL"
  rm -rf "$rootfs"
  trap - EXIT
}

local_base() {
  local fresh=0
  if [ ! -s "$ROOTFS_TARBALL" ] || [ -n "$(find "$ROOTFS_TARBALL" -mtime +"$MAX_AGE_DAYS")" ]; then
    make_rootfs_tarball
    fresh=1
  fi
  if [ "$fresh" -eq 0 ] && "$ENGINE" image inspect "$LOCAL_BASE_IMAGE" >/dev/null 2>&1; then
    log "reusing $LOCAL_BASE_IMAGE (from $ROOTFS_TARBALL)"
    return
  fi
  log "importing $ROOTFS_TARBALL as $LOCAL_BASE_IMAGE"
  "$ENGINE" import --change 'CMD ["/bin/bash"]' "$ROOTFS_TARBALL" "$LOCAL_BASE_IMAGE" >/dev/null
}

if [ "$LOCAL_BASE" -eq 1 ]; then
  local_base
  BASE_IMAGE="$LOCAL_BASE_IMAGE"
fi

CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT"' EXIT
tar -C "$ROOT" --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
  -cf - pyproject.toml README.md service integrations | tar -C "$CONTEXT" -xf -
cp "$ROOT/deploy/container/Containerfile" "$CONTEXT/Containerfile"

extra=()
# Podman writes OCI images by default, and the OCI format has no HEALTHCHECK.
[ "$(basename "$ENGINE")" = podman ] && extra+=(--format docker)
# pip in the build trusts what this host trusts: behind a TLS-inspecting proxy, PyPI's
# certificate is signed by a CA that only the host's bundle holds. A build secret, so
# the bundle is in no layer of the image.
CA_BUNDLE="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
[ -s "$CA_BUNDLE" ] && extra+=(--secret "id=pip_cert,src=$CA_BUNDLE")

log "building $TAG FROM $BASE_IMAGE with $ENGINE"
"$ENGINE" build "${extra[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f "$CONTEXT/Containerfile" -t "$TAG" "$CONTEXT"
"$ENGINE" image inspect --format '{{.Size}}' "$TAG" |
  awk -v tag="$TAG" '{ printf "build.sh: %s is %.0f MB\n", tag, $1 / 1e6 }' >&2
