#!/usr/bin/env bash
# Builds tests/tools/argocd-lua: Argo CD's way of running a health script (gopher-lua, the
# libraries Argo CD opens, the object as `obj`), from the Go module proxy, cached under
# ~/.cache/tollgate/bin. Rebuilds only when its source changes. Prints the binary's path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
target="$cache/bin/argocd-lua"
stamp="$target.source-sha256"
source_sum="$(cat "$here/argocd-lua/go.mod" "$here/argocd-lua/go.sum" "$here/argocd-lua/main.go" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$target" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$source_sum" ]; then
  mkdir -p "$(dirname "$target")"
  (
    cd "$here/argocd-lua"
    GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache" \
      GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$target.tmp" . >&2
  )
  mv "$target.tmp" "$target"
  echo "$source_sum" >"$stamp"
fi
echo "$target"
