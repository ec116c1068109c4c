#!/usr/bin/env bash
# Installs a real SMTP server for the email notification tests: PyPI's aiosmtpd in a venv
# under ~/.cache/tollgate (a second run is a no-op). Prints the venv's python on stdout;
# the tests run tests/tools/smtp-sink.py with it (env TOLLGATE_SMTP_PYTHON).
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
venv="$cache/aiosmtpd-venv"
version="1.4.6"

if ! "$venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$version')" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$version" >&2
fi
echo "$venv/bin/python"
