#!/usr/bin/env bash
# Builds Helm from its source on the Go module proxy (no Helm download site is reachable
# here), for `helm lint` / `helm template` of deploy/helm/tollgate. The binary lives under
# ~/.cache/tollgate/bin/helm and is rebuilt only when the version below changes. Prints its
# path on stdout.
set -euo pipefail

cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
version="v4.3.2"
target="$cache/bin/helm"
stamp="$target.version"

if [ ! -x "$target" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  export GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache"
  mkdir -p "$cache/bin"
  # `go install pkg@version` builds in module mode from the proxy with Helm's own go.sum.
  # The version string is set as Helm's release Makefile does.
  GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$cache/bin/.helm-build" go install -trimpath \
    -ldflags "-X helm.sh/helm/v4/internal/version.version=$version" \
    "helm.sh/helm/v4/cmd/helm@$version" >&2
  mv "$cache/bin/.helm-build/helm" "$target"
  rmdir "$cache/bin/.helm-build" 2>/dev/null || true
  echo "$version" > "$stamp"
fi
echo "$target"
