#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian `chromium` + `chromium-driver`) for the
# dashboard's browser test (tests/e2e/tests/dashboard.rs). Skips when both are present.
# Needs root (apt) the first time. Prints the chromedriver's path on stdout; the browser is
# /usr/bin/chromium next to it.
set -euo pipefail

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
fi
command -v chromedriver
