#!/usr/bin/env bash
# Make sure Debian's Chromium is installed, for the browser tests (Playwright drives
# it through executable_path; Playwright's own browser download is not used).
# Idempotent: when chromium is on PATH it only prints its path. Prints the path last.
set -euo pipefail

find_chromium() {
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

found="$(find_chromium)"
if [ -z "$found" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: chromium is missing and there is no apt-get; install Chromium" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup_browser: run as root, or: apt-get install chromium" >&2; exit 1; }
    SUDO="sudo"
  fi
  lock=(-o DPkg::Lock::Timeout=600)
  $SUDO apt-get "${lock[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
  found="$(find_chromium)"
  [ -n "$found" ] || { echo "setup_browser: chromium still missing after apt-get" >&2; exit 1; }
fi
echo "$found"
