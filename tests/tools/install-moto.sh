#!/usr/bin/env bash
# Installs a local AWS endpoint for the credential tests: PyPI's moto in server mode, in a
# venv under ~/.cache/tollgate (a second run is a no-op). Prints the path of `moto_server`
# on stdout; the tests start it on 127.0.0.1 with a free port (env TOLLGATE_MOTO_SERVER)
# and stop it when they end. Nothing here ever talks to real AWS.
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
venv="$cache/moto-venv"
version="5.2.5"

if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$version')" 2>/dev/null \
  || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$version" >&2
fi
echo "$venv/bin/moto_server"
