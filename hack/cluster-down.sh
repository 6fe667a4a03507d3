#!/usr/bin/env bash
# Stops the local cluster started by cluster-up.sh (and an operator that run-local.sh started): real
# nodes first (hack/real-node.sh down) and the pod network, then the other components, etcd last;
# SIGTERM first, SIGKILL for any that is still running after 15 seconds. Its files stay for
# post-mortems.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pids_dir="$CLUSTER_DIR/pids"
[[ -d "$pids_dir" ]] || exit 0
# Real nodes first: their pods, kubelets, containerds and mounts, then the pod network (the API
# server, asked to stop while kubelets still talk to it, can take more than 15 s). With SIGKILL
# nothing waits for anything, and everything stops at once.
nodes_down() {
  [[ -s "$CLUSTER_DIR/real-nodes" ]] || return 0
  local node
  for node in $(cat "$CLUSTER_DIR/real-nodes"); do
    "$HACK_DIR/real-node.sh" down "${node%%=*}"
  done
  "$HACK_DIR/real-node.sh" network-down
  # Down for good: a second cluster-down has nothing of theirs to stop.
  rm -f "$CLUSTER_DIR/real-nodes"
}
nodes=""
if [[ "${DOMICILE_STOP_SIGNAL:-TERM}" == KILL ]]; then
  nodes_down & nodes=$!
else
  nodes_down
fi
# The operator, kwok, the scheduler, the controller manager and the API server stop together (each
# takes a second or three to shut down gracefully), etcd last.
stopping=()
for name in domicile kwok kube-scheduler kube-controller-manager kube-apiserver; do
  stop_component "$name" & stopping+=($!)
done
for pid in "${stopping[@]}" $nodes; do wait "$pid"; done
stop_component etcd
