#!/usr/bin/env bash
# Builds a real OpenTofu CLI from its source on the Go module proxy (no OpenTofu download site
# is reachable here), so the runner's tests also run against OpenTofu. The binary lives under
# ~/.cache/tollgate/bin/tofu and is rebuilt only when the version below changes. Prints its
# path on stdout.
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
version="v1.12.6"
target="$cache/bin/tofu"
stamp="$target.version"

if [ ! -x "$target" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  export GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache"
  mkdir -p "$cache/bin"
  module_dir="$(go mod download -json "github.com/opentofu/opentofu@$version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  # OpenTofu's go.mod has `replace` lines, which `go install pkg@version` refuses; building
  # inside a writable copy of the module honours them, as OpenTofu's own release build does.
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -r "$module_dir/." "$work"
  chmod -R u+w "$work"
  (
    cd "$work"
    # version.dev=no: report "1.12.6", not "1.12.6-dev", as release binaries do.
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "$target.tmp" ./cmd/tofu >&2
  )
  mv "$target.tmp" "$target"
  echo "$version" > "$stamp"
fi
echo "$target"
