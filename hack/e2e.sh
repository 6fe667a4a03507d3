#!/usr/bin/env bash
# Runs the end-to-end tests against a fresh local cluster, which is stopped afterwards whatever
# the outcome. On failure the cluster's logs stay under the cluster folder for post-mortems.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
# Compile first, so that the cluster is not kept waiting (and a compile error fails fast).
cargo test --features e2e --test e2e --no-run

trap '"$HACK_DIR/cluster-down.sh"' EXIT
"$HACK_DIR/cluster-up.sh"

export KUBECONFIG="$ADMIN_KUBECONFIG" KUBECTL="$KUBE_BIN/kubectl"
if ! cargo test --features e2e --test e2e; then
  log "end-to-end tests failed; component logs are in $CLUSTER_DIR/logs"
  exit 1
fi
