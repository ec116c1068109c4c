#!/usr/bin/env bash
# Installs a local AWS endpoint for the credential tests: PyPI's moto in server mode, in a
# venv under ~/.cache/tollgate (a second run only refreshes the patches). Prints the path of
# `tollgate-moto-server` (moto's server with tests/tools/moto_patches.py) on stdout; the
# tests start it on 127.0.0.1 with a free port (env TOLLGATE_MOTO_SERVER) and stop it when
# they end. Nothing here ever talks to real AWS.
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
venv="$cache/moto-venv"
version="5.2.5"

if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$version')" 2>/dev/null \
  || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$version" >&2
fi
# moto with tests/tools/moto_patches.py applied (what moto drops that the AWS provider reads
# back); copied on every run so an edited patch takes effect, atomically for concurrent runs.
here="$(cd "$(dirname "$0")" && pwd)"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp "$here/moto_patches.py" "$site/.tollgate_moto_patches.py.$$"
mv "$site/.tollgate_moto_patches.py.$$" "$site/tollgate_moto_patches.py"
server="$venv/bin/tollgate-moto-server"
cat > "$server.$$" <<PY
#!$venv/bin/python
# Written by tests/tools/install-moto.sh: moto's server with tollgate's patches.
import sys

import tollgate_moto_patches  # noqa: F401
from moto.server import main

sys.exit(main())
PY
chmod +x "$server.$$"
mv "$server.$$" "$server"
echo "$server"
