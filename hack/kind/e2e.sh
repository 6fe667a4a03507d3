#!/usr/bin/env bash
# The end-to-end path for machines with a Docker engine: a kind cluster with jurisdiction-labelled
# workers, the operator's image installed by the Helm chart, and the end-to-end tests that hold
# on real kubelets: the CRD and its validation, the chart's RBAC and Pod Security.
# Needs: docker, kind, kubectl, helm, cargo. Not run where there is no Docker engine (such as
# the machines this project is developed on), so treat it as a recipe that CI with Docker runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

for tool in docker kind kubectl helm cargo; do
  command -v "$tool" >/dev/null || { echo "hack/kind/e2e.sh needs $tool" >&2; exit 1; }
done

cluster=domicile
kind create cluster --config hack/kind/cluster.yaml --wait 120s
trap 'kind delete cluster --name "$cluster"' EXIT
export KUBECONFIG="$(mktemp)"
kind get kubeconfig --name "$cluster" > "$KUBECONFIG"

key=domicile.node-restriction.kubernetes.io
mapfile -t workers < <(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o name | sort)
jurisdictions=(CN CN CN DE DE US)
for i in "${!jurisdictions[@]}"; do
  kubectl label "${workers[$i]}" "$key/jurisdiction=${jurisdictions[$i]}" --overwrite
done
kubectl label "${workers[2]}" "$key/subdivision=CN-SH" --overwrite

docker build -t domicile:dev .
kind load docker-image domicile:dev --name "$cluster"
helm install domicile charts/domicile --namespace domicile-system --create-namespace \
  --set image.repository=domicile --set image.tag=dev --set image.pullPolicy=Never \
  --set namespaces.label=true --wait

kubectl -n domicile-system port-forward deploy/domicile 18080:8080 >/dev/null &
trap 'kill %1; kind delete cluster --name "$cluster"' EXIT
cargo build --bin domicile
export DOMICILE_METRICS_URL=http://127.0.0.1:18080/metrics DOMICILE_BIN="$PWD/target/debug/domicile" \
  HELM="$(command -v helm)" DOMICILE_OPERATOR_ACCOUNT=system:serviceaccount:domicile-system:domicile
# Not here: the operator and drift scenarios. Their workloads use placeholder images and local
# volume paths that only kwok's fake kubelets accept, and some create kwok nodes or operators of
# their own; they run on the local cluster (hack/e2e.sh).
cargo test --features e2e --test e2e -- crd:: validation:: chart::
