#!/usr/bin/env bash
# The main job on this machine: a fresh local cluster with jurisdiction-labelled nodes, the CRDs,
# the operator, the example data centres, and `kubectl get rdc -A` once they are Ready. The
# cluster and the operator keep running afterwards; `make cluster-down` stops both.
#
# As root, the cluster also gets a real node (kubelet and containerd, no jurisdiction: it holds
# no data) and the operator is installed there by `helm install`, from its image built here, in
# two pods with leader election. Otherwise the operator runs out-of-cluster with the admin's rights.
#
# What it needs is built in parallel, both cores busy: the Go builds of the cluster (etcd, the
# control plane, kwok, the kubelet), the operator (cargo profile `quick`: no optimisation, no debug
# information; a few reconciliations a second are all a local cluster asks of it) and the Debian
# packages. One line per step with its time; what the compilers print goes to $BUILD_LOGS.
set -euo pipefail
if [[ $(id -u) -eq 0 ]]; then
  export DOMICILE_REAL_NODES="${DOMICILE_REAL_NODES-infra-1=}" DOMICILE_REAL_ADDONS="${DOMICILE_REAL_ADDONS-}"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
kubectl() { "$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }
export DOMICILE_PROFILE=quick
mkdir -p "$BUILD_LOGS"
began=$SECONDS

# step LABEL LOG COMMAND...: COMMAND with its output in $BUILD_LOGS/LOG; a line when it ends: the
# time since the start, LABEL, its own time. On failure the last lines of its output, and where
# the rest is.
step() {
  local label="$1" log_file="$BUILD_LOGS/$2" start=$SECONDS; shift 2
  if "$@" >"$log_file" 2>&1; then
    printf '[%6s] %-62s %6s\n' "$(duration $((SECONDS - began)))" "$label" "$(duration $((SECONDS - start)))"
  else
    printf '[%6s] %-62s failed\n' "$(duration $((SECONDS - began)))" "$label"
    tail -n 30 "$log_file" | sed 's/^/    /'
    printf '  the whole output: %s\n' "$log_file"
    return 1
  fi
}

# Each lane runs in a process group of its own, so that a failure stops the others' compilers.
set -m
lanes=()
stop_lanes() {
  local pid
  for pid in "${lanes[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
}
trap stop_lanes EXIT
# lane FUNCTION: start FUNCTION in the background; its pid is $lane_pid.
lane() { "$@" & lane_pid=$!; lanes+=("$lane_pid"); }
# join PID: wait for a lane; exit if it failed (it said why).
join() { wait "$1" || exit 1; }

if [[ -n "$REAL_NODES" ]]; then
  what="etcd, Kubernetes $K8S_VERSION, kwok, the kubelet, helm, the operator and its image"
else
  what="etcd, Kubernetes $K8S_VERSION, kwok and the operator"
fi
echo "domicile: building $what where not built yet, in parallel"
echo "(compiler output in $BUILD_LOGS/; binaries in $BIN_ROOT/)"

cluster_tools() {
  step "etcd $ETCD_VERSION" etcd.log "$HACK_DIR/build-tools.sh" etcd
  step "kube-apiserver, -controller-manager, -scheduler, kubectl $K8S_VERSION" kubernetes.log \
    "$HACK_DIR/build-tools.sh" kubernetes
  if [[ -n "$REAL_NODES" ]]; then
    step "kubelet, kube-proxy $K8S_VERSION" node.log "$HACK_DIR/build-tools.sh" node
  fi
  step "kwok $KWOK_VERSION" kwok.log "$HACK_DIR/build-tools.sh" kwok
}
how=()
[[ -z "$REAL_NODES" ]] || how=(static)
build_the_operator() {
  step "the operator (cargo build --profile quick${how:+, static})" operator.log build_operator quick "${how[@]}"
}
node_packages() {
  step "Debian packages of the real node (containerd, runc, buildah, ...)" packages.log \
    "$HACK_DIR/prerequisites.sh" real-node
  step "the images of the pod sandbox and the workload" images.log "$HACK_DIR/images.sh" pause workload
}

lane cluster_tools; tools_lane=$lane_pid
lane build_the_operator; operator_lane=$lane_pid
if [[ -n "$REAL_NODES" ]]; then
  lane node_packages; packages_lane=$lane_pid
  join "$packages_lane"
fi
join "$tools_lane"
if [[ -n "$REAL_NODES" ]]; then
  lane step "helm $HELM_VERSION" helm.log "$HACK_DIR/build-tools.sh" helm; helm_lane=$lane_pid
fi
step "a fresh cluster: control plane, $(grep -c '^kind: Node' "$HACK_DIR/nodes.yaml") kwok nodes${REAL_NODES:+, a real node}" \
  cluster-up.log "$HACK_DIR/cluster-up.sh"
join "$operator_lane"

if [[ -n "$REAL_NODES" ]]; then
  operator_image() {
    "$HACK_DIR/images.sh" operator
    local node
    for node in $REAL_NODES; do "$HACK_DIR/real-node.sh" import "${node%%=*}" operator; done
  }
  step "the operator's image, loaded into the real node's containerd" operator-image.log operator_image
  join "$helm_lane"
  # The operator's namespace admits only pods that meet the restricted Pod Security Standard;
  # helm installs the CRDs from the chart.
  kubectl create namespace "$OPERATOR_NAMESPACE" >/dev/null
  kubectl label namespace "$OPERATOR_NAMESPACE" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest >/dev/null
  image="$(image_ref operator)"
  step "helm install domicile: 2 replicas on the real node (image $image)" helm-install.log \
    "$HELM_BIN/helm" install domicile "$REPO_ROOT/charts/domicile" --kubeconfig "$ADMIN_KUBECONFIG" \
    --namespace "$OPERATOR_NAMESPACE" --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
    --set image.pullPolicy=Never --set-string 'nodeSelector.domicile\.dev/node=real' \
    --set namespaces.label=true --wait --timeout 180s
  running="the operator, in two pods on the real node infra-1 (namespace $OPERATOR_NAMESPACE, one the leader)"
  logs_hint="kubectl logs -n $OPERATOR_NAMESPACE deployment/domicile"
  metrics_hint="kubectl port-forward -n $OPERATOR_NAMESPACE service/domicile-metrics 8080, then curl localhost:8080/metrics"
  # The operator labelled the examples' namespaces; the chart's admission policies guard them.
  probe_hint="
  kubectl run probe -n fleet-cn --image=busybox   (refused: fleet-cn belongs to CN)"
else
  kubectl apply --server-side -f crds/ >/dev/null
  admin="127.0.0.1:${DOMICILE_ADMIN_PORT:-18080}"
  operator_log="$CLUSTER_DIR/logs/domicile.log"
  KUBECONFIG="$ADMIN_KUBECONFIG" setsid "$(operator_binary quick)" run --admin-address "$admin" \
    >"$operator_log" 2>&1 </dev/null &
  echo $! > "$CLUSTER_DIR/pids/domicile.pid"
  operator_ready() { curl -fsS --max-time 2 "http://$admin/readyz"; }
  start=$SECONDS
  wait_for 60 "the operator to be ready" operator_ready || { tail -n 30 "$operator_log" >&2; exit 1; }
  printf '[%6s] %-62s %6s\n' "$(duration $((SECONDS - began)))" "the operator, out-of-cluster, ready" \
    "$(duration $((SECONDS - start)))"
  running="the operator, out-of-cluster with the admin's rights (not root: no real node to run it on)"
  logs_hint="less $operator_log"
  metrics_hint="curl http://$admin/metrics"
  probe_hint=""
fi
kubectl wait --for=condition=Established --timeout=60s crd/regionaldatacenters.domicile.dev >/dev/null
rdc_served() { kubectl get rdc -A -o name; }
wait_for 30 "the rdc resource to be served" rdc_served
ready() { kubectl apply -f examples/ && kubectl wait --for=condition=Ready --timeout=120s rdc --all -A; }
step "the examples/ applied, every RegionalDataCenter Ready" examples.log ready

# kubectl, helm and this build of domicile (also as the kubectl plugin) in one folder for PATH.
mkdir -p "$PATH_DIR"
ln -sfn "$KUBE_BIN/kubectl" "$PATH_DIR/kubectl"
[[ ! -x "$HELM_BIN/helm" ]] || ln -sfn "$HELM_BIN/helm" "$PATH_DIR/helm"
ln -sfn "$(operator_binary quick "${how[@]}")" "$PATH_DIR/domicile"
ln -sfn domicile "$PATH_DIR/kubectl-domicile"

echo
echo "\$ kubectl get rdc -A"
kubectl get rdc -A
cat <<TXT

Running: a local cluster ($(kubectl get nodes --no-headers | wc -l) nodes) and $running.
Logs: $CLUSTER_DIR/logs/ (cluster), $BUILD_LOGS/ (builds). Try:
  export KUBECONFIG=$ADMIN_KUBECONFIG PATH=$PATH_DIR:\$PATH
  kubectl get nodes -L domicile.node-restriction.kubernetes.io/jurisdiction
  kubectl describe rdc -n fleet-cn vehicle-data
  kubectl get pods,pvc -n fleet-cn -o wide${probe_hint}
  the operator's log: $logs_hint
  its metrics: $metrics_hint
  domicile audit
  the tour in README.md: relabel a node and watch the verdict turn, a refused manifest, the audit
Stop the operator and the cluster with: make cluster-down
TXT
