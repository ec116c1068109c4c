#!/usr/bin/env bash
# The whole loop on a local Kubernetes, with no cloud account: starts a real kube-apiserver +
# etcd (tests/e2e/control-plane.sh; built once from the Go module proxy and cached), installs
# the CRDs, the controller's RBAC and the in-apiserver admission policy, registers the admission
# webhook (`tollgate webhook configure`), runs `tollgate controller` as its own service account
# serving that webhook, creates the demo Project as the platform user carol, shows the
# Checkpoint it opens, approves it as the Technical Operator alice (recorded as decidedBy:
# alice, sealed by admission), waits for Ready and prints the outputs. Stops everything it
# started.
#
#   bash examples/demo/loop.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

export TOLLGATE_CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TOLLGATE_CACHE/target}"
export TOLLGATE_TERRAFORM="$(bash tests/tools/install-terraform.sh)"
export TF_CLI_CONFIG_FILE="$TOLLGATE_CACHE/terraformrc"

cargo build --quiet --release --bin tollgate
tollgate="$CARGO_TARGET_DIR/release/tollgate"

bash tests/e2e/control-plane.sh up
work="$(mktemp -d)"
controller_pid=""
cleanup() {
  [ -n "$controller_pid" ] && kill "$controller_pid" 2>/dev/null || true
  bash tests/e2e/control-plane.sh down >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck disable=SC1091
. "$TOLLGATE_CACHE/e2e/env"
admin=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG")
carol=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_CAROL_KUBECONFIG" -n team-a)
alice=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_ALICE_KUBECONFIG" -n team-a)

step() { printf '\n==> %s\n' "$*"; }

step "install the CRDs"
"${admin[@]}" apply -f crds/
"${admin[@]}" wait --for=condition=Established crd/projects.tollgate.dev crd/checkpoints.tollgate.dev

step "install the controller's RBAC (deploy/controller-rbac.yaml) and the admission policy"
"${admin[@]}" apply -f deploy/controller-rbac.yaml -f deploy/admission/checkpoint-decision-policy.yaml

step "register the admission webhook: self-signed certificate, both configurations"
"$tollgate" webhook configure --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG" \
  --url https://127.0.0.1:18443 --write-files "$work/tls"

step "start tollgate controller as its service account, serving the webhook (log: $work/controller.log)"
token="$("${admin[@]}" -n tollgate-system create token tollgate --duration=1h)"
cat >"$work/controller.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$TOLLGATE_E2E_SERVER", certificate-authority: "$TOLLGATE_E2E_CA_CERT"}}]
users: [{name: tollgate, user: {token: "$token"}}]
contexts: [{name: tollgate, context: {cluster: local, user: tollgate}}]
current-context: tollgate
KUBECONFIG
TOLLGATE_LOG=info "$tollgate" controller --kubeconfig "$work/controller.kubeconfig" \
  --work-dir "$work/work" --metrics-addr 127.0.0.1:18080 \
  --webhook-cert "$work/tls/tls.crt" --webhook-key "$work/tls/tls.key" \
  --webhook-listen 127.0.0.1:18443 >"$work/controller.log" 2>&1 &
controller_pid=$!
for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:18080/readyz >/dev/null && break
  kill -0 "$controller_pid" 2>/dev/null || { cat "$work/controller.log"; exit 1; }
  sleep 0.5
done
curl -sf http://127.0.0.1:18080/readyz >/dev/null || { echo "controller not ready" >&2; cat "$work/controller.log"; exit 1; }

step "carol (platform user) applies examples/demo/project.yaml"
"${carol[@]}" apply -f examples/demo/project.yaml
"${carol[@]}" wait --for=condition=AwaitingApproval proj/demo --timeout=120s
"${carol[@]}" get proj,cp
checkpoint="$("${carol[@]}" get proj demo -o jsonpath='{.status.checkpointRef.name}')"
"${carol[@]}" get cp "$checkpoint" -o jsonpath='{.spec.summary.text}{"\n"}{range .spec.reasons[*]}  - {@}{"\n"}{end}'

step "carol tries to approve: refused (she lacks the verb approve)"
if "${carol[@]}" patch cp "$checkpoint" --subresource=status --type=merge \
  -p '{"status":{"decision":"Approved","reason":"self-service"}}' 2>&1; then
  echo "unexpected: carol could approve" >&2
  exit 1
fi

step "alice (Technical Operator) approves exactly that plan"
"${alice[@]}" patch cp "$checkpoint" --subresource=status --type=merge \
  -p '{"status":{"decision":"Approved","reason":"reviewed the plan and its cost"}}'
"${carol[@]}" wait --for=condition=Ready proj/demo --timeout=180s
"${carol[@]}" get proj,cp
echo "decidedBy: $("${carol[@]}" get cp "$checkpoint" -o jsonpath='{.status.decidedBy}')"

step "outputs (Secret demo-outputs)"
"${admin[@]}" -n team-a get secret demo-outputs -o jsonpath='{.data.app_greeting}' | base64 -d
echo
step "done: the approved plan was applied; everything started here is stopped on exit"
