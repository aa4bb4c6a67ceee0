#!/usr/bin/env bash
# Try Needlecare on this machine: installs what it needs, starts a local
# Mosquitto (unless one already listens on 127.0.0.1:1883) and runs the daemon
# with the example config. Stop it with Ctrl-C. In another terminal:
#   .venv/bin/needlecare simulate -c config/needlecare.example.yaml
#   .venv/bin/needlecare sessions -c config/needlecare.example.yaml
set -euo pipefail
# The package and its runtime dependencies only (not the test suite's 355 MB);
# NEEDLECARE_EXTRAS=report adds the HTML report's plotting library.
export NEEDLECARE_EXTRAS="${NEEDLECARE_EXTRAS-}"
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
# The web app, on this machine only (127.0.0.1: no token needed).
export NEEDLECARE_WEB__ENABLED="${NEEDLECARE_WEB__ENABLED:-true}"
echo "Needlecare web app: http://127.0.0.1:${NEEDLECARE_WEB__PORT:-8470}/"
exec needlecare run -c "${NEEDLECARE_CONFIG:-config/needlecare.example.yaml}" --broker "$@"
