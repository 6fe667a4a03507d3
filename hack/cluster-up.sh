#!/usr/bin/env bash
# Starts a fresh local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) with kwok playing the kubelets of fake nodes labelled by jurisdiction, and the
# real nodes that DOMICILE_REAL_NODES names with the add-ons of DOMICILE_REAL_ADDONS
# (hack/real-node.sh), and waits until every node is Ready. Any cluster left from an earlier run
# is stopped and wiped first.
# Afterwards: export KUBECONFIG="$(hack/cluster-kubeconfig.sh)".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HACK_DIR/prerequisites.sh"
"$HACK_DIR/build-tools.sh" cluster
if [[ -n "$REAL_NODES" ]]; then
  "$HACK_DIR/prerequisites.sh" real-node
  # The sandbox and workload images are quick to build; the operator's is the caller's to build.
  [[ -f "$IMAGES_DIR/pause.tar" && -f "$IMAGES_DIR/workload.tar" ]] || "$HACK_DIR/images.sh" pause workload
fi
# Whatever ran before goes, at once: its state is wiped below.
DOMICILE_STOP_SIGNAL=KILL "$HACK_DIR/cluster-down.sh"

start=$SECONDS
# Nothing may still be mounted below the folder (a real node's volumes) when it is removed.
unmount_under "$CLUSTER_DIR"
rm -rf "$CLUSTER_DIR"
mkdir -p "$CLUSTER_DIR"/{pki,logs,pids,etcd}
# What cluster-down.sh and component.sh read to know that this cluster has real nodes.
if [[ -n "$REAL_NODES" ]]; then
  printf '%s\n' "$REAL_NODES" > "$CLUSTER_DIR/real-nodes"
fi
pki="$CLUSTER_DIR/pki"

# --- Certificates: one CA, the API server's serving certificate, an admin client certificate
# (system:masters, used by the admin and kwok), the scheduler's and the controller manager's, and
# the service-account keys.
# OpenSSL 3 writes v3 certificates only with an extension file; rustls refuses anything else.
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=domicile-local-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# sign NAME SUBJECT EXTENSIONS
sign() {
  local name="$1" subject="$2" extensions="$3"
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$subject" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr"
  printf '%s\n' "$extensions" > "$pki/$name.ext"
  openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
}
sign apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:$POD_GATEWAY"
sign admin "/O=system:masters/CN=domicile-admin" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
# The API server's identity towards kubelets (logs, exec, port-forward), which the kubelets check
# against the CA and ask the API server about: bound to system:kubelet-api-admin below.
sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
# The scheduler and the controller manager act as themselves, as kubeadm sets them up: the
# admission policy that guards managed objects trusts them by name, and a person's admin
# certificate it does not.
for component in kube-scheduler kube-controller-manager; do
  sign "$component" "/CN=system:$component" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
done
openssl_quiet genrsa -out "$pki/sa.key" 2048
openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

server="https://127.0.0.1:$APISERVER_PORT"
# write_kubeconfig FILE USER CERTIFICATE: a kubeconfig of USER with the client certificate
# $pki/CERTIFICATE.crt.
write_kubeconfig() {
  cat > "$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: domicile-local
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $pki/$3.crt
    client-key: $pki/$3.key
contexts:
- name: domicile-local
  context: {cluster: domicile-local, user: $2}
current-context: domicile-local
KUBECONFIG
}
write_kubeconfig "$ADMIN_KUBECONFIG" domicile-admin admin
for component in kube-scheduler kube-controller-manager; do
  write_kubeconfig "$pki/$component.kubeconfig" "system:$component" "$component"
done

if [[ -n "$REAL_NODES" ]]; then
  "$HACK_DIR/real-node.sh" network-up
fi

log "starting etcd $ETCD_VERSION"
start_component etcd "$ETCD_BIN/etcd" \
  --name=domicile --data-dir="$CLUSTER_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="domicile=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --quota-backend-bytes=1073741824 --log-level=warn
wait_healthy etcd 60 "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

for component in kube-apiserver kube-controller-manager kube-scheduler kwok; do
  "$HACK_DIR/component.sh" start "$component"
done

kubectl() { "$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }
# DOMICILE_NODES: another file of fake nodes (the benchmark brings its own).
nodes_file="${DOMICILE_NODES:-$HACK_DIR/nodes.yaml}"
log "creating the fake nodes of $nodes_file"
kubectl apply --server-side -f "$nodes_file" >/dev/null
kubectl wait --for=condition=Ready node --all --timeout=120s >/dev/null
kubectl create clusterrolebinding kube-apiserver-kubelet-client --clusterrole=system:kubelet-api-admin \
  --user=kube-apiserver-kubelet-client >/dev/null

if [[ -n "$REAL_NODES" ]]; then
  index=0
  for node in $REAL_NODES; do
    index=$((index + 1))
    "$HACK_DIR/real-node.sh" up "${node%%=*}" "${node#*=}" "$index"
    if real_addon firewall; then "$HACK_DIR/real-node.sh" firewall-up "${node%%=*}"; fi
    ((index > 1)) || "$HACK_DIR/real-node.sh" proxy-up "${node%%=*}" "$index"
  done
  if real_addon storage; then "$HACK_DIR/real-node.sh" storage-up; fi
fi
# The not-ready taint that new nodes get is lifted by the node-lifecycle controller; until it is,
# nothing can be scheduled on them.
untainted() { [[ -z "$(kubectl get nodes -o jsonpath='{.items[*].spec.taints}')" ]]; }
wait_for 120 "the not-ready taints to be lifted" untainted
wait_for 60 "the default ServiceAccount" kubectl get serviceaccount default -n default

log "cluster ready in $((SECONDS - start))s: $(kubectl get nodes --no-headers | wc -l) nodes; KUBECONFIG=$ADMIN_KUBECONFIG"
kubectl get nodes -L domicile.node-restriction.kubernetes.io/jurisdiction \
  -L domicile.node-restriction.kubernetes.io/subdivision >&2
