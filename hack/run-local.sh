#!/usr/bin/env bash
# The main job on this machine: a fresh local cluster with jurisdiction-labelled nodes, the CRD,
# the example data centres, and `kubectl get rdc -A`. The cluster keeps running afterwards;
# `make cluster-down` stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
"$HACK_DIR/cluster-up.sh"
kubectl() { "$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }

log "installing the RegionalDataCenter CRD from crds/"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/regionaldatacenters.domicile.dev >/dev/null
rdc_served() { kubectl get rdc -A -o name; }
wait_for 30 "the rdc resource to be served" rdc_served

log "applying examples/"
kubectl apply -f examples/

echo
echo "\$ kubectl get rdc -A"
kubectl get rdc -A
cat <<TXT

The cluster keeps running. To look around:
  export KUBECONFIG=$ADMIN_KUBECONFIG PATH=$KUBE_BIN:\$PATH
  kubectl get nodes -L domicile.node-restriction.kubernetes.io/jurisdiction
  kubectl describe rdc -n fleet-cn vehicle-data
Stop it with: make cluster-down
TXT
