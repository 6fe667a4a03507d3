#!/usr/bin/env bash
# Starts or stops one component of the local cluster (hack/cluster-up.sh starts them all; the
# outage tests stop and restart them under a running operator).
#   hack/component.sh start NAME         start it and wait until it is healthy
#   hack/component.sh stop NAME SIGNAL   send SIGNAL (KILL, TERM) and wait until it is gone
# NAME: kube-apiserver, kube-controller-manager, kube-scheduler or kwok.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pki="$CLUSTER_DIR/pki"
kube_component_flags=(
  --kubeconfig="$ADMIN_KUBECONFIG" --authentication-kubeconfig="$ADMIN_KUBECONFIG"
  --authorization-kubeconfig="$ADMIN_KUBECONFIG" --leader-elect=false --bind-address=127.0.0.1
)

start() {
  local name="$1"
  case "$name" in
    kube-apiserver)
      log "starting kube-apiserver $K8S_VERSION"
      start_component kube-apiserver "$KUBE_BIN/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
        --service-cluster-ip-range=10.96.0.0/16 \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --allow-privileged=true --profiling=false --v=1
      wait_healthy kube-apiserver 120 "https://127.0.0.1:$APISERVER_PORT/readyz" --cacert "$pki/ca.crt" \
        --cert "$pki/admin.crt" --key "$pki/admin.key"
      ;;
    kube-controller-manager)
      # The outage tests stop the API server for up to a minute and a half (a graceful stop
      # drains for 60 s); kwok's node leases must not be judged expired meanwhile, or every node
      # turns NotReady and tainted, and nothing is scheduled for a while after.
      start_component kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
        "${kube_component_flags[@]}" --secure-port="$CONTROLLER_MANAGER_PORT" \
        --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
        --controllers='*' --allocate-node-cidrs=false --v=1 --node-monitor-grace-period=180s
      wait_healthy kube-controller-manager 60 -k "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
      ;;
    kube-scheduler)
      start_component kube-scheduler "$KUBE_BIN/kube-scheduler" \
        "${kube_component_flags[@]}" --secure-port="$SCHEDULER_PORT" --v=1
      wait_healthy kube-scheduler 60 -k "https://127.0.0.1:$SCHEDULER_PORT/healthz"
      ;;
    kwok)
      # Short node leases: a restarted kwok plays only the nodes whose lease it holds, and takes
      # over the leases of the kwok before it once they expire.
      log "starting kwok $KWOK_VERSION"
      start_component kwok "$KWOK_BIN/kwok" \
        --kubeconfig="$ADMIN_KUBECONFIG" --config="$KWOK_BIN/stages.yaml" \
        --manage-all-nodes=false --manage-nodes-with-label-selector=type=kwok \
        --node-lease-duration-seconds=10 --cidr=10.244.0.0/16 --node-ip=10.0.0.1 \
        --server-address="127.0.0.1:$KWOK_PORT"
      wait_healthy kwok 60 "http://127.0.0.1:$KWOK_PORT/healthz"
      ;;
    *) die "unknown component $name" ;;
  esac
}

stop() {
  local name="$1" signal="$2"
  local pid
  pid="$(cat "$CLUSTER_DIR/pids/$name.pid")"
  kill -s "$signal" "$pid"
  # A graceful stop of the API server waits up to 60 s for open connections (watches).
  for _ in $(seq 180); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  die "$name (pid $pid) did not stop on SIG$signal"
}

case "${1:-}" in
  start) start "${2:?hack/component.sh start NAME}" ;;
  stop) stop "${2:?hack/component.sh stop NAME SIGNAL}" "${3:?hack/component.sh stop NAME SIGNAL, e.g. KILL or TERM}" ;;
  *)
    echo "usage: hack/component.sh start NAME | stop NAME SIGNAL" >&2
    exit 2
    ;;
esac
