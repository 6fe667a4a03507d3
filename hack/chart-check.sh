#!/usr/bin/env bash
# helm lint and helm template of charts/domicile, with the helm built from Go modules.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HACK_DIR/build-tools.sh"
helm="$HELM_BIN/helm"
"$helm" lint --strict "$REPO_ROOT/charts/domicile"
rendered="$("$helm" template domicile "$REPO_ROOT/charts/domicile" --namespace domicile-system --kube-version "$K8S_VERSION")"
for kind in Deployment ServiceAccount ClusterRole ClusterRoleBinding Service; do
  grep -q "^kind: $kind\$" <<<"$rendered" || die "helm template rendered no $kind"
done
log "helm lint and helm template passed"
