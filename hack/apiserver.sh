#!/usr/bin/env bash
# Starts or stops the local cluster's kube-apiserver (hack/cluster-up.sh starts it first; the
# outage tests stop and restart it under a running operator).
#   hack/apiserver.sh start         start it and wait until /readyz answers
#   hack/apiserver.sh stop SIGNAL   send SIGNAL (KILL, TERM) and wait until the process is gone
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pki="$CLUSTER_DIR/pki"
case "${1:-}" in
  start)
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
  stop)
    signal="${2:?hack/apiserver.sh stop SIGNAL, e.g. KILL or TERM}"
    pid="$(cat "$CLUSTER_DIR/pids/kube-apiserver.pid")"
    kill -s "$signal" "$pid"
    # A graceful stop waits up to 60 s for open connections (watches) before it exits.
    for _ in $(seq 180); do
      kill -0 "$pid" 2>/dev/null || exit 0
      sleep 0.5
    done
    die "kube-apiserver (pid $pid) did not stop on SIG$signal"
    ;;
  *)
    echo "usage: hack/apiserver.sh start | stop SIGNAL" >&2
    exit 2
    ;;
esac
