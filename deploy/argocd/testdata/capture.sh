#!/usr/bin/env bash
# Captures the Argo CD health-check fixtures (deploy/argocd/testdata/*.json) from REAL objects:
# the real `tollgate controller` binary, real Terraform, the real kube-apiserver of
# tests/e2e/control-plane.sh, the admission webhook registered with `tollgate webhook
# configure` (so decisions are sealed and take effect), and people deciding with their own
# kubeconfigs (carol creates, alice approves, bob rejects).
#
#   bash deploy/argocd/testdata/capture.sh
#
# Everything happens in the namespace `argocd-capture`, with a webhook registration and an
# ApprovalPolicy of its own (scoped to that namespace by label), all removed at the end: the
# control plane is shared with other tests and is never stopped here. Writes one JSON file per
# object and phase, without managedFields, uid and resourceVersion. Two fixtures are derived
# from captured ones with jq, for fields main does not write yet (spec.sla, Escalated,
# Expired); their names start with `derived-`. See README.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."

export TOLLGATE_CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TOLLGATE_CACHE/target}"
export TOLLGATE_TERRAFORM="${TOLLGATE_TERRAFORM:-$(bash tests/tools/install-terraform.sh)}"
export TF_CLI_CONFIG_FILE="${TF_CLI_CONFIG_FILE:-$TOLLGATE_CACHE/terraformrc}"

cargo build --quiet -p tollgate --bin tollgate
tollgate="$CARGO_TARGET_DIR/debug/tollgate"

bash tests/e2e/control-plane.sh up >&2
# shellcheck disable=SC1091
. "${TOLLGATE_E2E_DIR:-$TOLLGATE_CACHE/e2e}/env"

ns=argocd-capture
label=tollgate.dev/argocd-capture
registration="tollgate-argocd-capture"
policy="tollgate-argocd-capture"
out="${CAPTURE_OUT:-deploy/argocd/testdata}"   # CAPTURE_OUT: elsewhere, to compare
work="$(mktemp -d)"
admin=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG")
carol=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_CAROL_KUBECONFIG" -n "$ns")
alice=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_ALICE_KUBECONFIG" -n "$ns")
bob=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_BOB_KUBECONFIG" -n "$ns")

step() { printf '\n==> %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

controller_pid=""
cleanup() {
  set +e
  step "clean up: Projects orphaned and deleted, controller stopped, registration, policy and namespace removed"
  "${admin[@]}" delete approvalpolicy "$policy" --ignore-not-found >/dev/null
  for p in $("${admin[@]}" -n "$ns" get projects -o name 2>/dev/null); do
    "${admin[@]}" -n "$ns" patch "$p" --type=merge -p '{"spec":{"deletionPolicy":"Orphan"}}' >/dev/null
  done
  "${admin[@]}" -n "$ns" delete projects --all --wait=false >/dev/null 2>&1
  "${admin[@]}" -n "$ns" wait --for=delete projects --all --timeout=60s >/dev/null 2>&1
  [ -n "$controller_pid" ] && kill "$controller_pid" 2>/dev/null && wait "$controller_pid" 2>/dev/null
  "${admin[@]}" delete mutatingwebhookconfiguration,validatingwebhookconfiguration "$registration" --ignore-not-found >/dev/null
  for p in $("${admin[@]}" -n "$ns" get projects -o name 2>/dev/null); do
    "${admin[@]}" -n "$ns" patch "$p" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
  done
  "${admin[@]}" delete namespace "$ns" --ignore-not-found --wait=false >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Saves `kubectl get -o json` of KIND/NAME as testdata/FILE, without the per-run noise.
snap() {
  "${admin[@]}" -n "$ns" get "$1" "$2" -o json | strip >"$out/$3"
  echo "captured $3: $(jq -r '.status.phase // "no phase"' "$out/$3")" >&2
}
strip() {
  jq -S 'del(.metadata.managedFields, .metadata.uid, .metadata.resourceVersion)
    | if .metadata.ownerReferences then .metadata.ownerReferences |= map(del(.uid)) else . end'
}
phase() { "${admin[@]}" -n "$ns" get project "$1" -o jsonpath='{.status.phase}'; }
checkpoint_of() { "${admin[@]}" -n "$ns" get project "$1" -o jsonpath='{.status.checkpointRef.name}'; }
wait_phase() { # PROJECT PHASE [TIMEOUT]
  "${admin[@]}" -n "$ns" wait "project/$1" --for=jsonpath='{.status.phase}'="$2" --timeout="${3:-180s}" >/dev/null
}
# Polls fast for a short-lived phase; warns (and captures nothing) when it was missed.
catch_phase() { # PROJECT PHASE FILE
  for _ in $(seq 1 600); do
    if [ "$(phase "$1")" = "$2" ]; then
      snap project "$1" "$3"
      return 0
    fi
    sleep 0.1
  done
  echo "WARNING: missed phase $2 of $1; $3 not captured" >&2
}
project() { # NAME INPUTS-JSON
  cat <<EOF
{"apiVersion": "tollgate.dev/v1alpha1", "kind": "Project",
 "metadata": {"name": "$1", "namespace": "$ns"},
 "spec": {"environment": "dev", "deletionPolicy": "Destroy", "budget": {"monthlyLimit": "1"},
          "components": [{"name": "app", "module": "demo", "inputs": $2}]}}
EOF
}
decide() { # WHO-ARRAY-NAME CHECKPOINT DECISION REASON
  local -n who="$1"
  "${who[@]}" patch cp "$2" --subresource=status --type=merge \
    -p "{\"status\":{\"decision\":\"$3\",\"reason\":\"$4\"}}" >/dev/null
}

step "namespace $ns (webhook not yet selecting it), carol may edit Projects there"
if "${admin[@]}" get namespace "$ns" >/dev/null 2>&1; then
  echo "namespace $ns exists (a previous capture still terminating?): delete it first" >&2
  exit 1
fi
"${admin[@]}" create namespace "$ns" >/dev/null
"${admin[@]}" -n "$ns" create rolebinding carol-editor --clusterrole=tollgate-editor --user="$TOLLGATE_E2E_CAROL_USER" >/dev/null

step "register the webhook for namespaces labelled $label=on, start the controller serving it"
webhook_port="$(free_port)"
metrics_port="$(free_port)"
"$tollgate" webhook configure --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG" \
  --namespace "$ns" --name "$registration" --url "https://127.0.0.1:$webhook_port" \
  --namespace-selector "$label=on" --write-files "$work/tls" >&2
TOLLGATE_LOG=info "$tollgate" --catalog modules controller \
  --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG" --namespace "$ns" \
  --work-dir "$work/work" --metrics-addr "127.0.0.1:$metrics_port" \
  --webhook-cert "$work/tls/tls.crt" --webhook-key "$work/tls/tls.key" \
  --webhook-listen "127.0.0.1:$webhook_port" --webhook-configuration "$registration" \
  --controller-user "$TOLLGATE_E2E_ADMIN_USER" \
  --decision-key-secret "$ns/tollgate-decision-key" >"$work/controller.log" 2>&1 &
controller_pid=$!
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null && break
  kill -0 "$controller_pid" 2>/dev/null || { cat "$work/controller.log" >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null || { echo "controller not ready" >&2; cat "$work/controller.log" >&2; exit 1; }

step "a decision admission never saw (namespace not selected by the webhook): DecisionUnverified"
project unverified '{"greeting": "unverified"}' | "${carol[@]}" create -f - -o json | strip >"$out/project-new.json"
echo "captured project-new.json (the create response: no status yet)" >&2
wait_phase unverified AwaitingApproval
cp_unverified="$(checkpoint_of unverified)"
decide alice "$cp_unverified" Approved "approved without admission"
"${admin[@]}" -n "$ns" wait "project/unverified" --timeout=60s \
  --for=jsonpath='{.status.conditions[?(@.type=="AwaitingApproval")].reason}'=DecisionUnverified >/dev/null
"${admin[@]}" -n "$ns" wait "cp/$cp_unverified" --timeout=60s --for=condition=DecisionVerified=False >/dev/null
snap project unverified project-decision-unverified.json
snap cp "$cp_unverified" checkpoint-decision-unverified.json

step "select the namespace: from now on admission seals every decision"
"${admin[@]}" label namespace "$ns" "$label=on" >/dev/null
for _ in $(seq 1 120); do
  if project probe '{}' | "${carol[@]}" create --dry-run=server -f - -o json 2>/dev/null |
    jq -e '.metadata.annotations["tollgate.dev/last-changed-by"]' >/dev/null; then
    break
  fi
  sleep 0.5
done

step "carol creates four Projects; each waits for a person"
project demo '{"greeting": "hello from tollgate", "apply_delay_seconds": 8}' | "${carol[@]}" create -f - >/dev/null
catch_phase demo Planning project-planning.json
project rejected '{"greeting": "to be rejected"}' | "${carol[@]}" create -f - >/dev/null
project failing '{"greeting": "to fail", "fail_apply": true}' | "${carol[@]}" create -f - >/dev/null
project superseded '{"greeting": "first plan"}' | "${carol[@]}" create -f - >/dev/null
for p in demo rejected failing superseded; do wait_phase "$p" AwaitingApproval; done
cp_demo="$(checkpoint_of demo)"
snap project demo project-awaiting-approval.json
snap cp "$cp_demo" checkpoint-pending.json

step "bob rejects"
cp_rejected="$(checkpoint_of rejected)"
decide bob "$cp_rejected" Rejected "not this quarter"
wait_phase rejected Rejected
"${admin[@]}" -n "$ns" wait "cp/$cp_rejected" --for=jsonpath='{.status.phase}'=Rejected --timeout=60s >/dev/null
snap project rejected project-rejected.json
snap cp "$cp_rejected" checkpoint-rejected.json

step "alice approves a plan whose apply fails (demo input fail_apply: true)"
cp_failing="$(checkpoint_of failing)"
decide alice "$cp_failing" Approved "let us see it fail"
wait_phase failing Failed
snap project failing project-failed.json
snap cp "$cp_failing" checkpoint-approved-apply-failed.json

step "alice approves demo: Applying (the module sleeps 8 s), then Ready"
decide alice "$cp_demo" Approved "reviewed the plan and its cost"
catch_phase demo Applying project-applying.json
wait_phase demo Ready
snap project demo project-ready.json
snap cp "$cp_demo" checkpoint-approved.json

step "carol changes a Project awaiting approval: a new generation, the old checkpoint Superseded"
cp_first="$(checkpoint_of superseded)"
"${carol[@]}" patch project superseded --type=merge -o json \
  -p '{"spec":{"components":[{"name":"app","module":"demo","inputs":{"greeting":"second plan"}}]}}' |
  strip >"$out/project-new-generation.json"
echo "captured project-new-generation.json (the patch response: generation not yet observed)" >&2
"${admin[@]}" -n "$ns" wait "cp/$cp_first" --for=jsonpath='{.status.phase}'=Superseded --timeout=120s >/dev/null
snap cp "$cp_first" checkpoint-superseded.json

step "carol suspends the rejected Project"
"${carol[@]}" patch project rejected --type=merge -p '{"spec":{"suspend":true}}' >/dev/null
wait_phase rejected Suspended 60s
snap project rejected project-suspended.json

step "carol deletes demo (deletionPolicy: Destroy): a Destroy checkpoint waits for a person"
"${carol[@]}" delete project demo --wait=false >/dev/null
"${admin[@]}" -n "$ns" wait project/demo --for=condition=AwaitingApproval --timeout=180s >/dev/null
snap project demo project-destroy-awaiting-approval.json
snap cp "$(checkpoint_of demo)" checkpoint-destroy-pending.json

step "an ApprovalPolicy for this namespace pre-approves first applies: Ready without a checkpoint"
"${admin[@]}" apply -f - >/dev/null <<EOF
apiVersion: tollgate.dev/v1alpha1
kind: ApprovalPolicy
metadata:
  name: $policy
spec:
  namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: $ns
  autoApprove: [FirstApply, Create]
EOF
project auto '{"greeting": "pre-approved"}' | "${carol[@]}" create -f - >/dev/null
wait_phase auto Ready
snap project auto project-ready-auto-approved.json

step "derived fixtures (fields main does not write yet), from checkpoint-pending.json"
jq -S '.spec.sla = {"respondBy": "2026-12-03T12:00:00Z", "escalateAt": "2026-12-03T16:00:00Z", "expireAt": "2026-12-06T08:00:00Z"}
  | .status.phase = "Escalated"' "$out/checkpoint-pending.json" >"$out/derived-checkpoint-escalated.json"
jq -S '.spec.sla = {"respondBy": "2026-12-03T12:00:00Z", "expireAt": "2026-12-06T08:00:00Z"}
  | .status.phase = "Expired"' "$out/checkpoint-pending.json" >"$out/derived-checkpoint-expired.json"

step "controller log: $work/controller.log (removed on exit); captured $(date -u +%Y-%m-%dT%H:%M:%SZ)"
grep -c '"level":"ERROR"' "$work/controller.log" >&2 || true
