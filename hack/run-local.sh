#!/usr/bin/env bash
# The main job on this machine: a fresh local cluster with jurisdiction-labelled nodes, the CRD,
# the operator, the example data centres, and `kubectl get rdc -A` once they are Ready. The
# cluster and the operator keep running afterwards; `make cluster-down` stops both.
#
# As root, the cluster also gets a real node (kubelet and containerd, no jurisdiction: it holds
# no data) and the operator is installed there by `helm install`, from its image built here, in
# two pods with leader election. Otherwise the operator runs out-of-cluster with the admin's rights.
set -euo pipefail
if [[ $(id -u) -eq 0 ]]; then
  export DOMICILE_REAL_NODES="${DOMICILE_REAL_NODES-infra-1=}" DOMICILE_REAL_ADDONS="${DOMICILE_REAL_ADDONS-}"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
kubectl() { "$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }
if [[ -n "$REAL_NODES" ]]; then
  "$HACK_DIR/build-tools.sh" real-node
  "$HACK_DIR/images.sh" pause workload operator
else
  cargo build --release --bin domicile
fi
"$HACK_DIR/cluster-up.sh"

if [[ -n "$REAL_NODES" ]]; then
  # The operator's namespace admits only pods that meet the restricted Pod Security Standard;
  # helm installs the CRD from the chart.
  kubectl create namespace "$OPERATOR_NAMESPACE" >/dev/null
  kubectl label namespace "$OPERATOR_NAMESPACE" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest >/dev/null
  image="$(image_ref operator)"
  log "helm install domicile onto the real node (image $image)"
  "$HELM_BIN/helm" install domicile "$REPO_ROOT/charts/domicile" --kubeconfig "$ADMIN_KUBECONFIG" \
    --namespace "$OPERATOR_NAMESPACE" --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
    --set image.pullPolicy=Never --set-string 'nodeSelector.domicile\.dev/node=real' \
    --set namespaces.label=true --wait --timeout 180s >/dev/null
  echo
  echo "\$ kubectl get pods -n $OPERATOR_NAMESPACE -o wide"
  kubectl get pods -n "$OPERATOR_NAMESPACE" -o wide
  logs_hint="kubectl logs -n $OPERATOR_NAMESPACE deployment/domicile"
  metrics_hint="kubectl port-forward -n $OPERATOR_NAMESPACE service/domicile-metrics 8080, then curl localhost:8080/metrics"
  # The operator labelled the examples' namespaces; the chart's admission policies guard them.
  probe_hint="
  kubectl run probe -n fleet-cn --image=busybox   (refused: fleet-cn belongs to CN)"
else
  probe_hint=""
  log "installing the RegionalDataCenter CRD from crds/"
  kubectl apply --server-side -f crds/ >/dev/null
  admin="127.0.0.1:${DOMICILE_ADMIN_PORT:-18080}"
  log "starting the operator (log: $CLUSTER_DIR/logs/domicile.log, metrics: http://$admin/metrics)"
  KUBECONFIG="$ADMIN_KUBECONFIG" setsid target/release/domicile run --admin-address "$admin" \
    >"$CLUSTER_DIR/logs/domicile.log" 2>&1 </dev/null &
  echo $! > "$CLUSTER_DIR/pids/domicile.pid"
  operator_ready() { curl -fsS --max-time 2 "http://$admin/readyz"; }
  wait_for 60 "the operator to be ready" operator_ready || { tail -n 30 "$CLUSTER_DIR/logs/domicile.log" >&2; exit 1; }
  logs_hint="less $CLUSTER_DIR/logs/domicile.log"
  metrics_hint="curl http://$admin/metrics"
fi
kubectl wait --for=condition=Established --timeout=60s crd/regionaldatacenters.domicile.dev >/dev/null
rdc_served() { kubectl get rdc -A -o name; }
wait_for 30 "the rdc resource to be served" rdc_served

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
  kubectl get pods,pvc -n fleet-cn -o wide${probe_hint}
  the operator's log: $logs_hint
  its metrics: $metrics_hint
Stop the operator and the cluster with: make cluster-down
TXT
