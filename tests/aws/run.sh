#!/usr/bin/env bash
# The AWS suite in one command: builds the real hashicorp/aws provider once (cached under
# ~/.cache/tollgate; a cold build is long, see README "AWS module suite"), installs moto, then
#   1. tests/aws/modules.sh: every AWS module's example validated, planned, applied, planned
#      again with no changes and destroyed against moto;
#   2. tests/e2e/tests/static_site.rs: the static-site Project through the whole loop on the
#      real control plane (started here unless it already runs, and then stopped again);
#      tests/e2e/tests/budget.rs: the namespace budget with priced EC2 Projects;
#      tests/e2e/tests/spend.rs: estimate vs actual (Cost Explorer: moto + a recorded forecast).
# tests/run.sh runs this when the provider is already cached.
set -euo pipefail
cd "$(dirname "$0")/../.."

export TOLLGATE_CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TOLLGATE_CACHE/target}"
TOLLGATE_TERRAFORM="${TOLLGATE_TERRAFORM:-$(bash tests/tools/install-terraform.sh)}"
TOLLGATE_AWS_PROVIDER_CONFIG="$(bash tests/tools/install-aws-provider.sh)"
TOLLGATE_MOTO_SERVER="$(bash tests/tools/install-moto.sh)"
export TOLLGATE_TERRAFORM TOLLGATE_AWS_PROVIDER_CONFIG TOLLGATE_MOTO_SERVER

cargo build -q -p tollgate --bin tollgate --locked
TOLLGATE="$CARGO_TARGET_DIR/debug/tollgate" bash tests/aws/modules.sh

if ! tests/e2e/control-plane.sh status >/dev/null 2>&1; then
  tests/e2e/control-plane.sh up
  trap 'tests/e2e/control-plane.sh down || true' EXIT
fi
# shellcheck disable=SC1091
. "${TOLLGATE_E2E_DIR:-$TOLLGATE_CACHE/e2e}/env"
cargo test -p tollgate-e2e --locked --test static_site --test budget --test spend -- --ignored
