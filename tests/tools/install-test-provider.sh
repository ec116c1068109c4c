#!/usr/bin/env bash
# Builds tollgate's test-only Terraform provider (tests/tools/test-provider: `tgtest_file`, a
# local file that can drift) from the Go module proxy, puts it in a filesystem mirror under
# ~/.cache/tollgate/providers, and writes the Terraform CLI config that uses that mirror for
# registry.terraform.io/tollgate/* (everything else installs as before). Rebuilds only when
# the provider's source changes. Prints the CLI config's path on stdout.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
mirror="$cache/providers"
version="0.1.0"
target="$mirror/registry.terraform.io/tollgate/tgtest/$version/linux_amd64/terraform-provider-tgtest_v$version"
stamp="$target.source-sha256"
source_sum="$(cat "$here/test-provider/go.mod" "$here/test-provider/go.sum" "$here/test-provider/main.go" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$target" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$source_sum" ]; then
  mkdir -p "$(dirname "$target")"
  (
    cd "$here/test-provider"
    GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache" \
      GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$target.tmp" . >&2
  )
  mv "$target.tmp" "$target"
  echo "$source_sum" > "$stamp"
fi

config="$cache/terraformrc"
cat > "$config.tmp" <<HCL
# Written by tests/tools/install-test-provider.sh.
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/tollgate/*"]
  }
  direct {
    exclude = ["registry.terraform.io/tollgate/*"]
  }
}
HCL
mv "$config.tmp" "$config"
echo "$config"
