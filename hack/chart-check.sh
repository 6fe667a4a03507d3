#!/usr/bin/env bash
# helm lint and helm template of charts/domicile, with the helm built from Go modules.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HACK_DIR/build-tools.sh" helm promtool
helm="$HELM_BIN/helm"
"$helm" lint --strict "$REPO_ROOT/charts/domicile"
render() { "$helm" template domicile "$REPO_ROOT/charts/domicile" --namespace domicile-system --kube-version "$K8S_VERSION" "$@"; }
rendered="$(render)"
for kind in Deployment ServiceAccount ClusterRole ClusterRoleBinding Role Service PodDisruptionBudget \
  CustomResourceDefinition ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding; do
  grep -q "^kind: $kind\$" <<<"$rendered" || die "helm template rendered no $kind"
done
grep -q "helm.sh/resource-policy: keep" <<<"$rendered" || die "the CRD is not kept on uninstall"
! grep -q "^kind: CustomResourceDefinition$" <<<"$(render --set crds.install=false)" || die "crds.install=false rendered the CRD"
! grep -q "^kind: PodDisruptionBudget$" <<<"$(render --set replicas=1)" || die "a PodDisruptionBudget for one replica"
digest="sha256:$(printf '0%.0s' {1..64})"
# (Rendered whole first: grep -q stops reading at its match, and the writer's broken pipe would
# fail the pipeline.)
grep -q "image: \"domicile@$digest\"" <<<"$(render --set image.digest="$digest")" || die "image.digest is not used"

# values.schema.json refuses bad values before anything is rendered, and names them; the chart's
# own checks name the value too.
refused() { # VALUE PATH_IN_THE_MESSAGE
  local out
  if out="$(render --set "$1" 2>&1)"; then
    die "helm template accepted $1"
  fi
  grep -qF "$2" <<<"$out" || die "$2 not named in: $out"
}
refused 'admission.pods.validationActions={Block}' "/admission/pods/validationActions/0"
refused 'admission.pods.validationActions={Deny,Warn}' "/admission/pods/validationActions/1"
refused 'admission.pods.validationActions={}' "/admission/pods/validationActions"
refused 'replica=3' "additional properties 'replica' not allowed"
refused 'adminPort=70000' "/adminPort"
refused 'image.digest=latest' "/image/digest"
refused 'localRoot=/' "/localRoot"
refused 'leaderElection.enabled=false' "replicas > 1 needs leaderElection.enabled"
# The monitoring bundle renders, and its alerting rules pass promtool's check and its tests.
monitoring=(--set monitoring.serviceMonitor.enabled=true --set monitoring.prometheusRule.enabled=true
  --set monitoring.dashboard.enabled=true)
"$helm" lint --strict "$REPO_ROOT/charts/domicile" "${monitoring[@]}" >/dev/null
rendered="$(render "${monitoring[@]}")"
for kind in ServiceMonitor PrometheusRule ConfigMap; do
  grep -q "^kind: $kind\$" <<<"$rendered" || die "helm template with the monitoring values rendered no $kind"
done
refused 'monitoring.prometheusRule.violatedFor=five minutes' "/monitoring/prometheusRule/violatedFor"
# The alerts follow the ServiceMonitor unless set: a scraped operator is alerted on when stalled.
grep -q "^kind: PrometheusRule$" <<<"$(render --set monitoring.serviceMonitor.enabled=true)" ||
  die "the ServiceMonitor without the alerts (stalled, no leader)"
! render --set monitoring.serviceMonitor.enabled=true --set monitoring.prometheusRule.enabled=false |
  grep -q "^kind: PrometheusRule$" || die "prometheusRule.enabled=false rendered the alerts"
rules_dir="$(mktemp -d)"
trap 'rm -rf "$rules_dir"' EXIT
# The PrometheusRule's spec is a Prometheus rule file.
render "${monitoring[@]}" --show-only templates/monitoring.yaml |
  awk '/^kind: PrometheusRule$/ { rule = 1 } rule && /^spec:$/ { spec = 1; next } spec && /^---/ { exit }
       spec { sub(/^  /, ""); print }' > "$rules_dir/rules.yaml"
cp "$HACK_DIR/monitoring/alerts-test.yaml" "$rules_dir/"
"$PROMTOOL_BIN/promtool" check rules "$rules_dir/rules.yaml"
(cd "$rules_dir" && "$PROMTOOL_BIN/promtool" test rules alerts-test.yaml)
log "helm lint, helm template and promtool passed"
