#!/usr/bin/env bash
# The chart's rendered manifests on the real apiserver (tests/e2e/control-plane.sh up first):
# `kubectl apply --dry-run=server` of the whole render (CRDs included), then a real apply of
# a release in a namespace of its own, then `tollgate webhook configure --url` (what the
# bootstrap Job does, for a controller out of the cluster since there is no kubelet here),
# then the controller out of cluster with the release's service-account token until /readyz.
# Everything created is deleted again. The control plane is shared: the release's cluster
# objects carry unique names, its webhooks select only its own namespace.
#
#   HELM=… TOLLGATE=target/debug/tollgate tests/deploy/chart-apply.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${HELM:?path of helm}" "${TOLLGATE:?path of the tollgate binary}"
# shellcheck disable=SC1091
. "${TOLLGATE_E2E_DIR:-$HOME/.cache/tollgate/e2e}/env"
kubectl=("$TOLLGATE_E2E_KUBECTL" --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG")

id="chart-$$-$RANDOM"
ns="tollgate-$id"
work="$(mktemp -d)"
controller_pid=""
cleanup() {
  [ -n "$controller_pid" ] && kill "$controller_pid" 2>/dev/null || true
  "${kubectl[@]}" delete -f "$work/release.yaml" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  "${kubectl[@]}" delete mutatingwebhookconfiguration,validatingwebhookconfiguration "$id" --ignore-not-found >/dev/null 2>&1 || true
  "${kubectl[@]}" delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

render() {
  "$HELM" template "$id" deploy/helm/tollgate --namespace "$ns" \
    --set rbac.userRoles=false \
    --set "webhook.configurationName=$id" \
    --set "webhook.namespaceSelector.matchLabels.tollgate\.dev/chart-test=$id" \
    --set "admissionPolicy.namespaceSelector.matchLabels.tollgate\.dev/chart-test=$id" "$@"
}

"${kubectl[@]}" create namespace "$ns" >/dev/null
render --include-crds > "$work/all.yaml"
if ! out="$("${kubectl[@]}" apply --dry-run=server -f "$work/all.yaml" 2>&1)"; then
  echo "$out" >&2
  exit 1
fi
echo "server dry-run: $(grep -c '^kind:' "$work/all.yaml") objects accepted"
# The Job runner's objects too (controller.runner.mode=job: the runner's ServiceAccount,
# Roles and configuration, the controller's flags).
render --set controller.runner.mode=job > "$work/job-runner.yaml"
if ! out="$("${kubectl[@]}" apply --dry-run=server -f "$work/job-runner.yaml" 2>&1)"; then
  echo "$out" >&2
  exit 1
fi
echo "server dry-run with controller.runner.mode=job: $(grep -c '^kind:' "$work/job-runner.yaml") objects accepted"

# For real, without the CRDs (installed by the e2e harness already) and without the hook
# Job (no kubelet runs it here; its work is done below with the same command).
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
render --no-hooks --set "webhook.url=https://127.0.0.1:$port" > "$work/release.yaml"
"${kubectl[@]}" apply -f "$work/release.yaml" >/dev/null
echo "applied: $(grep -c '^kind:' "$work/release.yaml") objects in $ns"

metrics="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# The configurations exist now (Helm-owned, no caBundle): configure fills them in.
"$TOLLGATE" webhook configure --kubeconfig "$TOLLGATE_E2E_ADMIN_KUBECONFIG" --namespace "$ns" \
  --url "https://127.0.0.1:$port" --name "$id" --secret "$id-webhook-tls" \
  --namespace-selector "tollgate.dev/chart-test=$id" --write-files "$work/tls"

# The controller as the release's service account, with only the chart's RBAC.
token="$("${kubectl[@]}" create token tollgate -n "$ns" --duration=1h)"
kc="$work/controller.kubeconfig"
"$TOLLGATE_E2E_KUBECTL" config set-cluster c --server="$TOLLGATE_E2E_SERVER" \
  --certificate-authority="$TOLLGATE_E2E_CA_CERT" --embed-certs --kubeconfig="$kc" >/dev/null
"$TOLLGATE_E2E_KUBECTL" config set-credentials sa --token="$token" --kubeconfig="$kc" >/dev/null
"$TOLLGATE_E2E_KUBECTL" config set-context sa --cluster=c --user=sa --kubeconfig="$kc" >/dev/null
"$TOLLGATE_E2E_KUBECTL" config use-context sa --kubeconfig="$kc" >/dev/null
"$TOLLGATE" controller --kubeconfig "$kc" --namespace "$ns" --work-dir "$work/work" \
  --metrics-addr "127.0.0.1:$metrics" --webhook-listen "127.0.0.1:$port" \
  --webhook-cert "$work/tls/tls.crt" --webhook-key "$work/tls/tls.key" \
  --webhook-configuration "$id" --controller-user "system:serviceaccount:$ns:tollgate" \
  --state-namespace "$ns" --leader-elect \
  2> "$work/controller.log" &
controller_pid=$!
deadline=$((SECONDS + 60))
until curl -fsS "http://127.0.0.1:$metrics/readyz" >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ] || ! kill -0 "$controller_pid" 2>/dev/null; then
    echo "the controller did not become ready:" >&2
    curl -sS "http://127.0.0.1:$metrics/readyz" >&2 || true
    tail -20 "$work/controller.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "controller ready as system:serviceaccount:$ns:tollgate with the chart's RBAC and registration"
# Leading needs the chart's Role on leases in the release namespace (the state namespace).
until curl -fsS "http://127.0.0.1:$metrics/metrics" 2>/dev/null | grep -qx 'tollgate_leader 1'; do
  if [ $SECONDS -ge $deadline ] || ! kill -0 "$controller_pid" 2>/dev/null; then
    echo "the controller did not become the leader:" >&2
    tail -20 "$work/controller.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "controller holds the leader Lease in $ns with the chart's RBAC"
