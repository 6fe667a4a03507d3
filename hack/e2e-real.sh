#!/usr/bin/env bash
# End-to-end tests on a real node: a local cluster of its own (folder and ports apart from
# hack/e2e.sh's) with a kubelet and containerd node labelled CN beside a kwok node, the operator
# installed by `helm install` from the locally built image and running in pods on the real node,
# then the tests of tests/e2e/real_node.rs. Everything is stopped whatever the outcome; on failure
# the logs stay under the cluster folder.
set -euo pipefail
export DOMICILE_CLUSTER_DIR="${DOMICILE_REAL_CLUSTER_DIR:-${DOMICILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/domicile}/real-cluster}"
export DOMICILE_APISERVER_PORT=36443 DOMICILE_ETCD_PORT=32379 DOMICILE_CONTROLLER_MANAGER_PORT=37257 \
  DOMICILE_SCHEDULER_PORT=37259 DOMICILE_KWOK_PORT=37247
export DOMICILE_REAL_NODES="${DOMICILE_REAL_NODES:-cn-real-1=CN}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $(id -u) -eq 0 ]] || die "a real node needs root (kubelet and containerd mount, and make cgroups and network namespaces)"

cd "$REPO_ROOT"
start=$SECONDS
"$HACK_DIR/prerequisites.sh" real-node
"$HACK_DIR/build-tools.sh" real-node helm
"$HACK_DIR/images.sh" pause workload operator
cargo test --features e2e --test e2e --no-run
log "built the real node's binaries and images in $((SECONDS - start))s"

trap '"$HACK_DIR/cluster-down.sh"' EXIT
node_start=$SECONDS
DOMICILE_NODES="$HACK_DIR/nodes-real.yaml" "$HACK_DIR/cluster-up.sh"
log "cluster with real nodes up in $((SECONDS - node_start))s"

export KUBECONFIG="$ADMIN_KUBECONFIG" KUBECTL="$KUBE_BIN/kubectl" HELM="$HELM_BIN/helm"
kubectl() { "$KUBECTL" "$@"; }

# The operator's namespace admits only pods that meet the restricted Pod Security Standard.
kubectl create namespace "$OPERATOR_NAMESPACE" >/dev/null
kubectl label namespace "$OPERATOR_NAMESPACE" pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/enforce-version=latest >/dev/null
operator_image="$(image_ref operator)"
local_root="$CLUSTER_DIR/real/local-volumes"
mkdir -p "$local_root"
# The tests probe the network from inside the replicas with kubectl exec, as an admin: the break
# glass group of the connect policy.
log "helm install domicile (image $operator_image, local root $local_root)"
"$HELM" install domicile "$REPO_ROOT/charts/domicile" --namespace "$OPERATOR_NAMESPACE" \
  --set image.repository="${operator_image%:*}" --set image.tag="${operator_image##*:}" \
  --set image.pullPolicy=Never --set localRoot="$local_root" \
  --set 'admission.connect.groups={system:masters}' \
  --set-string 'nodeSelector.domicile\.dev/node=real' --wait --timeout 180s
kubectl get pods --namespace "$OPERATOR_NAMESPACE" -o wide

export DOMICILE_OPERATOR_NAMESPACE="$OPERATOR_NAMESPACE" DOMICILE_LOCAL_ROOT="$local_root" \
  DOMICILE_REAL_NODE="${DOMICILE_REAL_NODES%%=*}" DOMICILE_WORKLOAD_IMAGE="$(image_ref workload)" \
  DOMICILE_OPERATOR_IMAGE="$operator_image"
tests_start=$SECONDS
if ! cargo test --features e2e --test e2e -- real_node:: --test-threads=1 --nocapture "$@"; then
  log "real-node tests failed; logs are in $CLUSTER_DIR/logs (kubelet-*, containerd-*; the operator: kubectl logs)"
  kubectl logs --namespace "$OPERATOR_NAMESPACE" --selector app.kubernetes.io/name=domicile --tail=50 --prefix || true
  exit 1
fi
log "real-node tests passed in $((SECONDS - tests_start))s"
# Stopped whatever the outcome (the trap above); after a pass, also checked to leave nothing.
trap - EXIT
"$HACK_DIR/cluster-down.sh"
"$HACK_DIR/real-node.sh" leftovers
log "the real node's part of make test took $((SECONDS - start))s"
