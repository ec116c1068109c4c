#!/bin/sh
# Runs the input-validation tests of the AWS modules (<module>/tests/variables/*.tftest.hcl).
#
# The AWS modules cannot be initialised here (no registry for the AWS provider), so each
# module's variables.tf is copied, alone, into a scratch directory together with its
# validation tests and `terraform test` runs there: every validation rule is evaluated by
# real Terraform, nothing else of the module is. Usage:
#   TERRAFORM=/path/to/terraform sh modules/test-variables.sh [module...]
set -eu

terraform="${TERRAFORM:-terraform}"
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM

if [ "$#" -eq 0 ]; then
  set -- $(cd "$here" && for d in */tests/variables; do [ -d "$d" ] && dirname "$(dirname "$d")"; done)
fi

status=0
for module in "$@"; do
  work="$scratch/$module"
  mkdir -p "$work/tests"
  cp "$here/$module/variables.tf" "$work/"
  cp "$here/$module/tests/variables/"*.tftest.hcl "$work/tests/"
  echo "== $module"
  if ! "$terraform" -chdir="$work" init -input=false -no-color >"$work/init.log" 2>&1; then
    cat "$work/init.log" >&2
    status=1
    continue
  fi
  "$terraform" -chdir="$work" test -no-color || status=1
done
exit "$status"
