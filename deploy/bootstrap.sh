#!/usr/bin/env bash
# Prepare a machine to run Needlecare from this checkout: Mosquitto (for the
# trial broker and the tests), OpenSSL, and a virtualenv with the package.
# Idempotent: a second run only checks. Sourced by deploy/trial.sh and tests/run.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NEEDLECARE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || need_apt+=(mosquitto)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "needlecare: please install: ${need_apt[*]}" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian installs mosquitto in /usr/sbin, which is not on every user's PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# NEEDLECARE_EXTRAS: the optional dependencies to install with the package, comma
# separated: "test" (the default: the test suite needs it) or "" (runtime only, what
# deploy/trial.sh asks for). Reinstall only when the project's metadata changed since
# the last install of the same extras.
EXTRAS="${NEEDLECARE_EXTRAS-test}"
spec="$ROOT${EXTRAS:+[$EXTRAS]}"
stamp="$VENV/.needlecare-installed${EXTRAS:+-${EXTRAS//,/-}}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e "$spec"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
