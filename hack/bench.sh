#!/usr/bin/env bash
# `make bench`: measures the operator at scale on a local cluster of its own (own folder and
# ports, so a test cluster can keep running): 33 CN nodes and 1 US node played by kwok, 110 pods
# each. The operator runs out-of-cluster, release build, with the chart's ServiceAccount and
# RBAC, and is started and stopped by the benchmark (benches/scale.rs). Prints the figures and
# writes them to BENCHMARKS.md. Not part of `make test`: it takes about half an hour.
#   DOMICILE_BENCH_SIZES=100,500   data centres per converge run (3 replicas each)
#   DOMICILE_BENCH_RELABELS=20     relabels of the drift figure
set -euo pipefail
export DOMICILE_CLUSTER_DIR="${DOMICILE_BENCH_CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/domicile/bench-cluster}"
export DOMICILE_APISERVER_PORT="${DOMICILE_APISERVER_PORT:-26443}" DOMICILE_ETCD_PORT="${DOMICILE_ETCD_PORT:-22379}"
export DOMICILE_CONTROLLER_MANAGER_PORT="${DOMICILE_CONTROLLER_MANAGER_PORT:-27257}"
export DOMICILE_SCHEDULER_PORT="${DOMICILE_SCHEDULER_PORT:-27259}" DOMICILE_KWOK_PORT="${DOMICILE_KWOK_PORT:-27247}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
cargo build --release --bin domicile
cargo bench --features bench --bench scale --no-run
# The chart's RBAC and admission policies are rendered with helm.
"$HACK_DIR/build-tools.sh" helm

nodes="$(mktemp)"
trap 'rm -f "$nodes"; "$HACK_DIR/cluster-down.sh"' EXIT
node() { # NAME JURISDICTION
  cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/hostname: $1, kubernetes.io/os: linux, domicile.node-restriction.kubernetes.io/jurisdiction: $2}
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
  capacity: {cpu: "32", memory: 128Gi, pods: "110"}
YAML
}
for i in $(seq -w 1 33); do node "cn-bench-$i" CN; done > "$nodes"
node us-bench-1 US >> "$nodes"
DOMICILE_NODES="$nodes" "$HACK_DIR/cluster-up.sh"

export KUBECONFIG="$ADMIN_KUBECONFIG"
kubectl() { "$KUBE_BIN/kubectl" "$@"; }
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/regionaldatacenters.domicile.dev >/dev/null
# As users run it: policy reports written, the admission policies in force on Deny, namespaces
# labelled with their jurisdiction by the operator. The raw baseline applies as the admin, whom
# the managed policy is told to trust (it refuses people), in namespaces of no jurisdiction.
mapfile -t report_crd_files < <(report_crds)
kubectl apply --server-side -f "${report_crd_files[0]}" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/policyreports.wgpolicyk8s.io >/dev/null
# The CSI snapshotter's CRDs: one data centre in five covers a database with a snapshot of its claim.
mapfile -t snapshot_crd_files < <(snapshot_crds)
for file in "${snapshot_crd_files[@]}"; do kubectl apply --server-side -f "$file" >/dev/null; done
kubectl wait --for=condition=Established --timeout=60s crd/volumesnapshots.snapshot.storage.k8s.io \
  crd/volumesnapshotclasses.snapshot.storage.k8s.io >/dev/null
chart_values=(--set namespaces.label=true --set namespaces.labelAnyNamespace=true)
chart_identity "$CLUSTER_DIR/operator.kubeconfig" "${chart_values[@]}"
admin_user="$(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')"
# The chart's trusted accounts as it renders them, less the operator (which it adds itself).
controllers="$(chart_template --show-only templates/admission-policies.yaml |
  awk '/- name: not-the-operator-nor-a-controller/ { getline; getline; print; exit }' |
  grep -o '\[.*\]')"
others="${controllers#*,}"
chart_template "${chart_values[@]}" --show-only templates/admission-policies.yaml \
  --set-json "admission.managed.controllers=[${others%]},\"$admin_user\"]" |
  kubectl apply -f - >/dev/null

export DOMICILE_BIN="$REPO_ROOT/target/release/domicile" \
  DOMICILE_OPERATOR_KUBECONFIG="$CLUSTER_DIR/operator.kubeconfig" \
  DOMICILE_OPERATOR_NAMESPACE="$OPERATOR_NAMESPACE" \
  DOMICILE_BENCH_LOG="$CLUSTER_DIR/logs/domicile.log" \
  DOMICILE_BENCH_OUT="${DOMICILE_BENCH_OUT:-$REPO_ROOT/BENCHMARKS.md}" \
  DOMICILE_BENCH_VERSIONS="Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION" \
  DOMICILE_BENCH_COMMIT="$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
log "running the benchmark (operator log: $DOMICILE_BENCH_LOG)"
cargo bench --features bench --bench scale
