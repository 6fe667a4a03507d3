#!/usr/bin/env bash
# The main job on this machine: a fresh local cluster with jurisdiction-labelled nodes, the CRD,
# the operator (out-of-cluster), the example data centres, and `kubectl get rdc -A` once they are
# Ready. The cluster and the operator keep running afterwards; `make cluster-down` stops both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
cargo build --release --bin domicile
"$HACK_DIR/cluster-up.sh"
kubectl() { "$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }

log "installing the RegionalDataCenter CRD from crds/"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/regionaldatacenters.domicile.dev >/dev/null
rdc_served() { kubectl get rdc -A -o name; }
wait_for 30 "the rdc resource to be served" rdc_served

admin="127.0.0.1:${DOMICILE_ADMIN_PORT:-18080}"
log "starting the operator (log: $CLUSTER_DIR/logs/domicile.log, metrics: http://$admin/metrics)"
KUBECONFIG="$ADMIN_KUBECONFIG" setsid target/release/domicile run --admin-address "$admin" \
  >"$CLUSTER_DIR/logs/domicile.log" 2>&1 </dev/null &
echo $! > "$CLUSTER_DIR/pids/domicile.pid"
operator_ready() { curl -fsS --max-time 2 "http://$admin/readyz"; }
wait_for 60 "the operator to be ready" operator_ready || { tail -n 30 "$CLUSTER_DIR/logs/domicile.log" >&2; exit 1; }

log "applying examples/"
kubectl apply -f examples/
kubectl wait --for=condition=Ready --timeout=120s rdc --all -A >/dev/null

echo
echo "\$ kubectl get rdc -A"
kubectl get rdc -A
cat <<TXT

The cluster keeps running. To look around:
  export KUBECONFIG=$ADMIN_KUBECONFIG PATH=$KUBE_BIN:\$PATH
  kubectl get nodes -L domicile.node-restriction.kubernetes.io/jurisdiction
  kubectl describe rdc -n fleet-cn vehicle-data
  kubectl get pods,pvc -n fleet-cn -o wide
Stop the operator and the cluster with: make cluster-down
TXT
