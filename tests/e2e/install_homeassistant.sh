#!/usr/bin/env bash
# A real Home Assistant core for the end-to-end tests, in its own virtualenv
# (it pins its own paho-mqtt), cached outside the checkout so that later runs on
# the same machine reuse it. Prints the venv's path.
set -euo pipefail

HA_VERSION="2024.3.3"   # the newest release that runs on Python 3.11
CACHE="${NEEDLECARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/needlecare}"
VENV="$CACHE/homeassistant-$HA_VERSION"
PYTHON="${PYTHON:-python3}"

if [ -f "$VENV/.complete-2" ]; then
  echo "$VENV"
  exit 0
fi
rm -rf "$VENV"
mkdir -p "$CACHE"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >&2
"$VENV/bin/pip" install -q "homeassistant==$HA_VERSION" >&2
constraints="$("$VENV/bin/python" -c 'import homeassistant, os; print(os.path.join(os.path.dirname(homeassistant.__file__), "package_constraints.txt"))')"
# What its default integrations and the MQTT entry import at start-up, so that
# `hass --skip-pip` never needs the network; josepy<2 keeps HTTP from failing.
# SQLAlchemy too: onboarding needs analytics, which imports the recorder.
"$VENV/bin/pip" install -q -c "$constraints" \
  "josepy<2" \
  home-assistant-frontend==20240307.0 Pillow==10.2.0 securetar==2024.2.1 \
  psutil-home-assistant==0.0.1 janus==1.0.0 paho-mqtt==1.6.1 PyTurboJPEG==1.7.1 \
  numpy==1.26.0 ical==7.0.3 SQLAlchemy==2.0.27 fnv-hash-fast==0.5.0 >&2
touch "$VENV/.complete-2"
echo "$VENV"
