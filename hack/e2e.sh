#!/usr/bin/env bash
# Runs the end-to-end tests (or those matching the arguments) against a fresh local cluster with the operator running
# out-of-cluster, then stops both whatever the outcome. On failure the cluster's and the
# operator's logs stay under the cluster folder for post-mortems.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$REPO_ROOT"
# Compile first, so that the cluster is not kept waiting (and a compile error fails fast).
cargo build --bin domicile
cargo test --features e2e --test e2e --no-run

operator_pid=""
stop_all() {
  if [[ -n "$operator_pid" ]] && kill -0 "$operator_pid" 2>/dev/null; then
    kill -TERM "$operator_pid" 2>/dev/null || true
    wait "$operator_pid" 2>/dev/null || true
  fi
  "$HACK_DIR/cluster-down.sh"
}
trap stop_all EXIT
# The chart tests install the chart with helm.
"$HACK_DIR/build-tools.sh" helm
"$HACK_DIR/cluster-up.sh"

export KUBECONFIG="$ADMIN_KUBECONFIG" KUBECTL="$KUBE_BIN/kubectl"
"$KUBECTL" apply --server-side -f crds/ >/dev/null
"$KUBECTL" wait --for=condition=Established --timeout=60s crd/regionaldatacenters.domicile.dev >/dev/null
# The PolicyReport CRD, so the operator writes its reports; the OpenReports one is installed by
# the test that starts without it.
mapfile -t report_crd_files < <(report_crds)
"$KUBECTL" apply --server-side -f "${report_crd_files[0]}" >/dev/null
"$KUBECTL" wait --for=condition=Established --timeout=60s crd/policyreports.wgpolicyk8s.io >/dev/null
export DOMICILE_OPENREPORTS_CRD="${report_crd_files[1]}"
# The CSI snapshotter's CRDs, so the operator audits snapshots and the snapshots policy has them
# to match (no snapshot controller runs: the tests make VolumeSnapshots as a user would).
mapfile -t snapshot_crd_files < <(snapshot_crds)
for file in "${snapshot_crd_files[@]}"; do "$KUBECTL" apply --server-side -f "$file" >/dev/null; done
"$KUBECTL" wait --for=condition=Established --timeout=60s crd/volumesnapshots.snapshot.storage.k8s.io \
  crd/volumesnapshotclasses.snapshot.storage.k8s.io >/dev/null
# Velero's, so the operator audits backups (no Velero server runs: the tests make its objects).
mapfile -t velero_crd_files < <(velero_crds)
for file in "${velero_crd_files[@]}"; do "$KUBECTL" apply --server-side -f "$file" >/dev/null; done
"$KUBECTL" wait --for=condition=Established --timeout=60s crd/backups.velero.io crd/schedules.velero.io \
  crd/backupstoragelocations.velero.io crd/volumesnapshotlocations.velero.io >/dev/null

# The operator runs with the Helm chart's ServiceAccount and RBAC only, so every scenario below
# also proves that the chart grants enough. It labels namespaces with their jurisdiction, and the
# chart's admission policies are in force, every one on Deny: the whole suite runs guarded.
operator_kubeconfig="$CLUSTER_DIR/operator.kubeconfig"
chart_values=(--set namespaces.label=true)
chart_identity "$operator_kubeconfig" "${chart_values[@]}"
chart_template "${chart_values[@]}" --show-only templates/admission-policies.yaml |
  "$KUBECTL" apply -f - >/dev/null
export DOMICILE_OPERATOR_ACCOUNT="system:serviceaccount:$OPERATOR_NAMESPACE:domicile" HELM="$HELM_BIN/helm"

admin="127.0.0.1:${DOMICILE_E2E_ADMIN_PORT:-18080}"
export DOMICILE_METRICS_URL="http://$admin/metrics" DOMICILE_BIN="$REPO_ROOT/target/debug/domicile"
export DOMICILE_E2E_DUMP_DIR="$CLUSTER_DIR/logs" DOMICILE_OPERATOR_KUBECONFIG="$operator_kubeconfig"
log "starting the operator out-of-cluster as $DOMICILE_OPERATOR_ACCOUNT (log: $CLUSTER_DIR/logs/domicile.log)"
KUBECONFIG="$operator_kubeconfig" target/debug/domicile run --admin-address "$admin" \
  --label-namespaces --declared-classes="$OPERATOR_NAMESPACE/domicile-storage-classes" \
  >"$CLUSTER_DIR/logs/domicile.log" 2>&1 &
operator_pid=$!
operator_ready() { curl -fsS --max-time 2 "http://$admin/readyz"; }
wait_for 60 "the operator to be ready" operator_ready || { tail -n 30 "$CLUSTER_DIR/logs/domicile.log" >&2; exit 1; }

failed=0
if (($#)); then
  # hack/e2e.sh FILTER...: only the tests whose names contain a FILTER.
  cargo test --features e2e --test e2e -- --skip failover:: --skip admin::readyz --skip outage:: --skip real_node:: \
    --skip reports::absent_ --skip reports::split_ --skip history:: --skip fleet:: --skip tenant::serial_ "$@" || failed=1
else
  # Every scenario, in parallel; then, alone, the check that a converged operator stays
  # quiet, which no other test may disturb.
  cargo test --features e2e --test e2e -- --skip quiet:: --skip failover:: --skip admin::readyz \
    --skip outage:: --skip real_node:: --skip reports::absent_ --skip reports::split_ --skip history:: --skip fleet:: \
    --skip tour::the_readme_tour_works --skip tenant::serial_ --show-output || failed=1
  if ((failed == 0)); then
    cargo test --features e2e --test e2e -- quiet:: --nocapture || failed=1
  fi
  # An edited admission policy is seen by every namespace, so that test runs alone.
  if ((failed == 0)); then
    cargo test --features e2e --test e2e -- tenant::serial_ --nocapture || failed=1
  fi
  # The README's tour relabels a node, so it runs alone.
  if ((failed == 0)); then
    cargo test --features e2e --test e2e -- tour::the_readme_tour_works --nocapture || failed=1
  fi
fi
# The API server is stopped and restarted under the running operator, so nothing else may run.
if ((failed == 0)) && { (($# == 0)) || [[ " $* " == *outage* ]]; }; then
  cargo test --features e2e --test e2e -- outage:: --test-threads=1 --nocapture || failed=1
fi

kill -0 "$operator_pid" 2>/dev/null || { log "the operator died during the tests"; failed=1; }
if ((failed)); then
  # The last complaints of the operator and of the cluster's components, where a shortened log
  # still shows them.
  for name in domicile kube-apiserver kube-controller-manager kube-scheduler; do
    echo "---- last warnings and errors in $name.log ----" >&2
    grep -E ' (WARN|ERROR) |^[EW][0-9]{4} ' "$CLUSTER_DIR/logs/$name.log" | tail -n 12 | cut -c1-400 >&2 || true
  done
  log "end-to-end tests failed; logs are in $CLUSTER_DIR/logs (the operator's in domicile.log, each failed test's objects in e2e-*.yaml)"
  exit 1
fi
# A graceful stop on SIGTERM is part of what is tested.
kill -TERM "$operator_pid"
if ! wait "$operator_pid"; then
  log "the operator did not exit cleanly on SIGTERM"
  exit 1
fi
operator_pid=""

# Tests that start operators of their own (leader failover, readiness, reports without their
# CRD, history across a restart), one at a time and with nothing else running.
if (($# == 0)) || [[ " $* " == *failover* || " $* " == *readyz* || " $* " == *reports* || " $* " == *history* ]]; then
  if ! cargo test --features e2e --test e2e -- failover:: admin::readyz reports::absent_ reports::split_ history:: \
    --test-threads=1 --nocapture; then
    log "a test with operators of its own failed; their logs are in ${TMPDIR:-/tmp}/domicile-e2e-*.log"
    exit 1
  fi
fi

# The fleet audit: a second cluster beside this one, each with an operator of the test's own.
if (($# == 0)) || [[ " $* " == *fleet* ]]; then
  if ! "$HACK_DIR/fleet.sh"; then
    log "the fleet test failed; the operators' logs are in ${TMPDIR:-/tmp}/domicile-e2e-fleet-*.log"
    exit 1
  fi
fi
