#!/usr/bin/env bash
# Builds the real hashicorp/aws Terraform provider from its source on the Go module proxy (no
# Terraform registry is reachable here), puts it in the filesystem mirror under
# ~/.cache/tollgate/providers and writes a Terraform CLI config, ~/.cache/tollgate/terraformrc-aws,
# that installs registry.terraform.io/hashicorp/aws and tollgate's test provider from that
# mirror, so the modules' `required_providers` resolve to it unchanged. Rebuilds only when the
# pinned version below changes. Prints the CLI config's path on stdout.
#
# A cold build is long and large (see README, "AWS module suite"). `--if-cached` builds
# nothing: it exits 3 unless the pinned version is already in the mirror, which is how
# tests/run.sh decides whether to run the AWS suite.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
mirror="$cache/providers"
# The proxy serves main only as pseudo-versions of the v1 module path (tags v2+ are not
# served); this commit of main is after the 6.47.1 release (its CHANGELOG opens 6.48.0).
module_version="v1.60.1-0.20260602190131-5f2286d6d836"
# The version the source itself declares (version/VERSION): the mirror registers it under
# this, so constraints like `< 7.0` mean what they say.
provider_version="6.47.1"
target="$mirror/registry.terraform.io/hashicorp/aws/$provider_version/linux_amd64/terraform-provider-aws_v$provider_version"
stamp="$target.module-version"

cached=false
[ -x "$target" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module_version" ] && cached=true
if [ "${1:-}" = "--if-cached" ] && ! $cached; then
  echo "install-aws-provider.sh: hashicorp/aws $provider_version ($module_version) is not built;" \
    "run tests/tools/install-aws-provider.sh once (see README, AWS module suite)" >&2
  exit 3
fi

if ! $cached; then
  export GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache"
  module_dir="$(go mod download -json "github.com/hashicorp/terraform-provider-aws@$module_version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  declared="$(tr -d '[:space:]' < "$module_dir/version/VERSION")"
  if [ "$declared" != "$provider_version" ]; then
    echo "install-aws-provider.sh: $module_version declares version $declared, not $provider_version;" \
      "set provider_version to what the source declares" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$target")"
  bin="$(mktemp -d)"
  trap 'rm -rf "$bin"' EXIT
  # -s -w: no symbol table or DWARF, which roughly halves the link's memory and the binary.
  GOBIN="$bin" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X github.com/hashicorp/terraform-provider-aws/version.ProviderVersion=$provider_version" \
    "github.com/hashicorp/terraform-provider-aws@$module_version" >&2
  mv "$bin/terraform-provider-aws" "$target"
  echo "$module_version" > "$stamp"
fi

# The test provider shares the mirror; a config that knows both lets the AWS suite and the
# static-site e2e use one file.
bash "$here/install-test-provider.sh" > /dev/null
config="$cache/terraformrc-aws"
cat > "$config.tmp" <<HCL
# Written by tests/tools/install-aws-provider.sh.
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/tollgate/*", "registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/tollgate/*", "registry.terraform.io/hashicorp/aws"]
  }
}
HCL
mv "$config.tmp" "$config"
echo "$config"
