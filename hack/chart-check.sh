#!/usr/bin/env bash
# helm lint and helm template of charts/domicile, with the helm built from Go modules.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HACK_DIR/build-tools.sh"
helm="$HELM_BIN/helm"
"$helm" lint --strict "$REPO_ROOT/charts/domicile"
rendered="$("$helm" template domicile "$REPO_ROOT/charts/domicile" --namespace domicile-system --kube-version "$K8S_VERSION")"
for kind in Deployment ServiceAccount ClusterRole ClusterRoleBinding Role Service \
  ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding; do
  grep -q "^kind: $kind\$" <<<"$rendered" || die "helm template rendered no $kind"
done
# A validationActions the API server would refuse is refused by the chart, naming the value.
for bad in '{Block}' '{Deny,Warn}' '{}'; do
  if out="$("$helm" template domicile "$REPO_ROOT/charts/domicile" --kube-version "$K8S_VERSION" \
    --set "admission.pods.validationActions=$bad" 2>&1)"; then
    die "helm template accepted admission.pods.validationActions=$bad"
  fi
  grep -q "admission.pods.validationActions" <<<"$out" || die "no value named in: $out"
done
log "helm lint and helm template passed"
