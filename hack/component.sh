#!/usr/bin/env bash
# Starts or stops one component of the local cluster (hack/cluster-up.sh starts them all; the
# outage tests stop and restart them under a running operator).
#   hack/component.sh start NAME         start it and wait until it is healthy
#   hack/component.sh stop NAME SIGNAL   send SIGNAL (KILL, TERM) and wait until it is gone
# NAME: kube-apiserver, kube-controller-manager, kube-scheduler or kwok.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pki="$CLUSTER_DIR/pki"
# kube_component_flags NAME: the flags kube-scheduler and kube-controller-manager share, with the
# kubeconfig of their own identity (system:NAME).
kube_component_flags() {
  local kubeconfig="$pki/$1.kubeconfig"
  printf '%s\n' --kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" \
    --authorization-kubeconfig="$kubeconfig" --leader-elect=false --bind-address=127.0.0.1
}

kubectl=("$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG")
kwok_nodes() { "${kubectl[@]}" get nodes --selector type=kwok --output name | sed 's|^node/||'; }
# Succeeds when no kwok node is without a lease.
leases_of_every_kwok_node() {
  local leases
  leases="$("${kubectl[@]}" get leases --namespace kube-node-lease --output name)" || return 1
  [[ -z "$(comm -23 <(kwok_nodes | sort) <(sed 's|^.*/||' <<<"$leases" | sort))" ]]
}

start() {
  local name="$1"
  case "$name" in
    kube-apiserver)
      log "starting kube-apiserver $K8S_VERSION"
      # With real nodes, pods reach the API server through the `kubernetes` Service, whose
      # endpoint is the pod bridge's address: it listens there too.
      local bind=127.0.0.1 advertise=127.0.0.1
      if [[ -s "$CLUSTER_DIR/real-nodes" ]]; then
        bind=0.0.0.0 advertise="$POD_GATEWAY"
      fi
      start_component kube-apiserver "$KUBE_BIN/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --bind-address="$bind" --advertise-address="$advertise" --secure-port="$APISERVER_PORT" \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP \
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
      # turns NotReady and tainted, and nothing is scheduled for a while after. Each controller
      # acts as a ServiceAccount of its own, as kubeadm sets it up; the admission policy that
      # guards managed objects trusts them by name.
      mapfile -t flags < <(kube_component_flags kube-controller-manager)
      start_component kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
        "${flags[@]}" --secure-port="$CONTROLLER_MANAGER_PORT" \
        --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
        --controllers='*' --use-service-account-credentials=true --allocate-node-cidrs=false --v=1 \
        --node-monitor-grace-period=180s
      wait_healthy kube-controller-manager 60 -k "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
      ;;
    kube-scheduler)
      mapfile -t flags < <(kube_component_flags kube-scheduler)
      start_component kube-scheduler "$KUBE_BIN/kube-scheduler" \
        "${flags[@]}" --secure-port="$SCHEDULER_PORT" --v=1
      wait_healthy kube-scheduler 60 -k "https://127.0.0.1:$SCHEDULER_PORT/healthz"
      ;;
    kwok)
      # A kwok plays only the nodes whose lease it holds, and v0.8 can miss a pod bound while it
      # takes over a lease of the kwok before it (it reads its own hold from a lease cache that
      # lags behind the takeover): the pod then stays Pending for good. The kwok before this one
      # is gone, so its leases go too; the new one creates them at once, before anything else
      # is scheduled, and is waited for until it holds every one.
      local nodes
      nodes="$(kwok_nodes)"
      if [[ -n "$nodes" ]]; then
        # shellcheck disable=SC2086 # one node name per word
        "${kubectl[@]}" delete leases --namespace kube-node-lease --ignore-not-found $nodes >/dev/null
      fi
      log "starting kwok $KWOK_VERSION"
      start_component kwok "$KWOK_BIN/kwok" \
        --kubeconfig="$ADMIN_KUBECONFIG" --config="$KWOK_BIN/stages.yaml" \
        --manage-all-nodes=false --manage-nodes-with-label-selector=type=kwok \
        --node-lease-duration-seconds=10 --cidr=10.244.0.0/16 --node-ip=10.0.0.1 \
        --server-address="127.0.0.1:$KWOK_PORT"
      wait_healthy kwok 60 "http://127.0.0.1:$KWOK_PORT/healthz"
      wait_for 30 "kwok to hold the lease of every kwok node" leases_of_every_kwok_node ||
        die "kwok did not take the nodes' leases (see $CLUSTER_DIR/logs/kwok.log)"
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
    running "$pid" || return 0
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
