#!/usr/bin/env bash
# Renders deploy/tollgate.yaml, the plain manifest bundle for people who do not use Helm: the
# chart deploy/helm/tollgate with its default values, release `tollgate` in namespace
# `tollgate-system`, CRDs included, preceded by the Namespace.
#
#   deploy/render-bundle.sh           rewrite deploy/tollgate.yaml
#   deploy/render-bundle.sh --check   exit 1 (with a diff) when deploy/tollgate.yaml is stale
#
# HELM (default: `helm` on PATH) is the Helm binary; tests/tools/install-helm.sh builds one.
set -euo pipefail
cd "$(dirname "$0")/.."

helm="${HELM:-helm}"
bundle=deploy/tollgate.yaml
rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT

{
  cat <<'HEAD'
# tollgate: the plain manifest bundle, rendered from deploy/helm/tollgate with its default
# values by deploy/render-bundle.sh. Do not edit: change the chart and run that script.
#
#   kubectl apply --server-side -f deploy/tollgate.yaml
#
# The Job tollgate-webhook-configure creates the webhook's self-signed certificate and sets
# the caBundle of both webhook configurations (see docs/deploy.md).
apiVersion: v1
kind: Namespace
metadata:
  name: tollgate-system
  labels:
    app.kubernetes.io/name: tollgate
HEAD
  "$helm" template tollgate deploy/helm/tollgate --namespace tollgate-system --include-crds
} > "$rendered"

if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$bundle" "$rendered"; then
    echo "deploy/tollgate.yaml is stale: run deploy/render-bundle.sh" >&2
    exit 1
  fi
  echo "deploy/tollgate.yaml is fresh"
else
  cp "$rendered" "$bundle"
  echo "wrote $bundle"
fi
