#!/usr/bin/env bash
# The fleet audit end to end: a second local cluster beside the running one (a folder and ports
# of its own), the CRDs and the operator's rights there, a kubeconfig with a context for each and
# one for a cluster that answers nothing, then the fleet tests (which run an operator in each).
# hack/e2e.sh calls this with the first cluster up and no operator running; the second cluster
# is stopped whatever the outcome.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

one_dir="$CLUSTER_DIR"
one_port="$APISERVER_PORT"
two_dir="$DOMICILE_CACHE/cluster-two"
two=(DOMICILE_CLUSTER_DIR="$two_dir" DOMICILE_APISERVER_PORT=26443 DOMICILE_ETCD_PORT=22379
  DOMICILE_CONTROLLER_MANAGER_PORT=27257 DOMICILE_SCHEDULER_PORT=27259 DOMICILE_KWOK_PORT=27247)
trap 'env "${two[@]}" "$HACK_DIR/cluster-down.sh"' EXIT
env "${two[@]}" "$HACK_DIR/cluster-up.sh"

k2=("$KUBE_BIN/kubectl" --kubeconfig "$two_dir/admin.kubeconfig")
"${k2[@]}" apply --server-side -f "$REPO_ROOT/crds/" >/dev/null
"${k2[@]}" wait --for=condition=Established --timeout=60s \
  crd/regionaldatacenters.domicile.dev crd/residencyhistories.domicile.dev >/dev/null
# The operator's identity there, from the chart, as in the first cluster.
env "${two[@]}" bash -c 'source "$1/lib.sh" && chart_identity "$2"' _ "$HACK_DIR" "$two_dir/operator.kubeconfig"

# One kubeconfig for the fleet: each cluster's admin, and a context whose server refuses.
fleet="$one_dir/fleet.kubeconfig"
cat > "$fleet" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://127.0.0.1:$one_port", certificate-authority: "$one_dir/pki/ca.crt"}
- name: two
  cluster: {server: "https://127.0.0.1:26443", certificate-authority: "$two_dir/pki/ca.crt"}
- name: gone
  cluster: {server: "https://127.0.0.1:9", certificate-authority: "$one_dir/pki/ca.crt"}
users:
- name: one
  user: {client-certificate: "$one_dir/pki/admin.crt", client-key: "$one_dir/pki/admin.key"}
- name: two
  user: {client-certificate: "$two_dir/pki/admin.crt", client-key: "$two_dir/pki/admin.key"}
contexts:
- name: one
  context: {cluster: one, user: one}
- name: two
  context: {cluster: two, user: two}
- name: gone
  context: {cluster: gone, user: one}
current-context: one
KUBECONFIG

export DOMICILE_FLEET_KUBECONFIG="$fleet" DOMICILE_TWO_ADMIN_KUBECONFIG="$two_dir/admin.kubeconfig" \
  DOMICILE_TWO_OPERATOR_KUBECONFIG="$two_dir/operator.kubeconfig"
cd "$REPO_ROOT"
cargo test --features e2e --test e2e -- fleet:: --test-threads=1 --nocapture
