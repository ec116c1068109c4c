#!/usr/bin/env bash
# Installs Lua 5.1 (Debian `lua5.1`, 5.1.5) for the Argo CD health-check tests: Argo CD runs
# its health scripts in gopher-lua, which follows Lua 5.1. Skips when `lua5.1` is present.
# Needs root (apt) the first time. Prints the interpreter's path on stdout.
set -euo pipefail

if ! command -v lua5.1 >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq lua5.1 >&2
fi
command -v lua5.1
