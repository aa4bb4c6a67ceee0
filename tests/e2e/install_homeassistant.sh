#!/usr/bin/env bash
# A real Home Assistant core for the end-to-end tests, in its own virtualenv
# (it pins its own paho-mqtt), cached outside the checkout so that later runs on
# the same machine reuse it. Prints the venv's path.
#
#   install_homeassistant.sh [VERSION]     # default 2024.3.3
#
# 2024.3.3 is the newest release that runs on Python 3.11 (the project's own
# interpreter; $PYTHON, python3.11 or 3.12, pyenv's); 2025.x needs Python 3.13:
# pyenv's 3.13.x on Debian 12, python3.13 from apt on Debian 13 (installed with
# apt-get when it is missing there; $PYTHON313 overrides).
# Then the requirements of every integration the tests' Home Assistant loads,
# read from the integrations' manifest.json files (homeassistant_requirements.py),
# so that it starts without ever reaching for the network. The list is kept in
# the venv: when it changes (new integrations in the tests), only it is installed.
set -euo pipefail

HA_VERSION="${1:-2024.3.3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${NEEDLECARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/needlecare}"
VENV="$CACHE/homeassistant-$HA_VERSION"
# Integrations in the tests' configuration.yaml and config entries
# (tests/support/homeassistant_config.py, the calendar and to-do tests).
DOMAINS=(homeassistant persistent_notification http api websocket_api config onboarding
  input_boolean person script automation notify file command_line logger mqtt
  local_calendar local_todo calendar todo)

# The first interpreter of the given minor versions that can make a venv (with pip).
find_python() {
  local minor candidate root=""
  command -v pyenv >/dev/null 2>&1 && root="$(pyenv root)"
  for minor in "$@"; do
    for candidate in ${PYTHON:+"$PYTHON"} "$(command -v "python$minor" || true)" \
      "$root"/versions/"$minor".*/bin/"python$minor" /usr/bin/"python$minor"; do
      if [ -x "$candidate" ] && "$candidate" -c "import sys, ensurepip, venv
sys.exit(sys.version_info[:2] != tuple(map(int, '$minor'.split('.'))))" 2>/dev/null; then
        echo "$candidate"
        return 0
      fi
    done
  done
  return 1
}

python_for() {
  case "$1" in
    2023.*|2024.1.*|2024.2.*|2024.3.*)
      find_python 3.11 3.12 && return
      echo "no Python 3.11 or 3.12 for Home Assistant $1 (set PYTHON)" >&2
      exit 1
      ;;
    *)
      PYTHON="${PYTHON313:-}" find_python 3.13 && return
      # Debian 13 packages it; Debian 12 needs pyenv (or PYTHON313).
      if command -v apt-get >/dev/null 2>&1 && apt-cache show python3.13-venv >/dev/null 2>&1; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get install -y -qq python3.13 python3.13-venv >&2
        PYTHON="" find_python 3.13 && return
      fi
      echo "no Python 3.13 for Home Assistant $1 (pyenv's, python3.13 from apt, or PYTHON313)" >&2
      exit 1
      ;;
  esac
}

# Pins of packages that Home Assistant does not constrain and whose newer releases
# break it. josepy 2 drops ComparableX509, which hass_nabucasa's acme imports (every
# HTTP request answers 500). pyparsing 3.3 makes the ical of these releases fail to
# read its own files (Local Calendar and Local To-do break after a restart).
extras_for() {
  case "$1" in
    2024.*) echo "josepy<2 pyparsing==3.1.2" ;;
    2025.*) echo "pyparsing==3.2.3" ;;
    *) echo "" ;;
  esac
}

# Venvs made by earlier versions of this script are marked .complete-2.
if [ ! -f "$VENV/.complete-3" ] && [ ! -f "$VENV/.complete-2" ]; then
  python="$(python_for "$HA_VERSION")"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  # shellcheck disable=SC2046 # extras_for prints zero or more words
  "$VENV/bin/pip" install -q --disable-pip-version-check "homeassistant==$HA_VERSION" \
    $(extras_for "$HA_VERSION") >&2
  touch "$VENV/.complete-3"
fi

wanted="$(extras_for "$HA_VERSION" | tr ' ' '\n'; "$VENV/bin/python" "$HERE/homeassistant_requirements.py" "${DOMAINS[@]}")"
if [ "$wanted" != "$(cat "$VENV/.requirements" 2>/dev/null || true)" ]; then
  constraints="$("$VENV/bin/python" -c 'import homeassistant, os; print(os.path.join(os.path.dirname(homeassistant.__file__), "package_constraints.txt"))')"
  # shellcheck disable=SC2046 # one requirement per line, none with spaces
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$constraints" $wanted >&2
  printf '%s' "$wanted" >"$VENV/.requirements"  # no newline: $(...) strips it
fi
echo "$VENV"
