#!/usr/bin/env bash
# Stops the local cluster started by cluster-up.sh (and an operator that run-local.sh started): real
# nodes first (hack/real-node.sh down), then the components in reverse order, SIGTERM first,
# SIGKILL for any that is still running after 15 seconds. Its files stay for post-mortems.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pids_dir="$CLUSTER_DIR/pids"
[[ -d "$pids_dir" ]] || exit 0
# Real nodes first: their pods, kubelets, containerds and mounts, then the pod network.
if [[ -s "$CLUSTER_DIR/real-nodes" ]]; then
  for node in $(cat "$CLUSTER_DIR/real-nodes"); do
    "$HACK_DIR/real-node.sh" down "${node%%=*}"
  done
  "$HACK_DIR/real-node.sh" network-down
fi
for name in domicile kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_component "$name"
done
