#!/usr/bin/env bash
# The whole test suite: unit, integration (real Mosquitto) and end-to-end.
# Extra arguments go to pytest, e.g. tests/run.sh -k sigkill -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/bootstrap.sh"
cd "$ROOT"
exec python -m pytest "$@"
