#!/usr/bin/env bash
# Prints the path of the local cluster's admin kubeconfig: export KUBECONFIG="$(hack/cluster-kubeconfig.sh)".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "$ADMIN_KUBECONFIG"
