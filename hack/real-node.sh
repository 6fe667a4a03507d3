#!/usr/bin/env bash
# A real node beside the kwok nodes: containerd and runc from Debian's packages, a kubelet and a
# kube-proxy built from the same Go modules as the control plane, a bridge network of our own that
# keeps every pod packet on this machine, and as add-ons kube-router's NetworkPolicy firewall and
# the local-path provisioner. hack/cluster-up.sh starts the nodes that DOMICILE_REAL_NODES names
# and hack/cluster-down.sh stops them; by hand:
#   hack/real-node.sh up NAME JURISDICTION INDEX   start node INDEX (1, 2, ...) and label it
#                                                  (an empty JURISDICTION: no jurisdiction label)
#   hack/real-node.sh down NAME                    stop it: firewall, pods, kubelet, containerd, mounts
#   hack/real-node.sh network-up                   the bridge, our routing table and guard chain
#   hack/real-node.sh network-down                 stop kube-proxy and the provisioner, remove every
#                                                  rule of ours, kube-proxy's, kube-router's and the
#                                                  kubelets', and the bridge
#   hack/real-node.sh leftovers                    fail if a stopped cluster left anything behind
#   hack/real-node.sh proxy-up NAME INDEX          kube-proxy, once the node NAME is up
#   hack/real-node.sh storage-up                   the local-path provisioner (Dynamic mode)
#   hack/real-node.sh firewall-up NAME             kube-router's NetworkPolicy firewall for NAME
#   hack/real-node.sh import NAME IMAGE...         load images of hack/images.sh into NAME's
#                                                  containerd (it loads those built at its start)
# Everything a node keeps lives under $CLUSTER_DIR/real/NAME; it runs as root (kubelet and
# containerd mount, make network namespaces and cgroups).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pki="$CLUSTER_DIR/pki"
kubectl() { "$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }
# Two locks keep pod packets on this machine. Routing: a packet that comes in on the bridge and
# is not for this machine itself is routed by a table of our own, which knows the pod network
# and nothing else (a Service address that kube-proxy turns into a kwok pod's address, say, is
# unreachable). Filtering: a chain of our own in the mangle table, where neither kube-proxy nor
# kube-router writes, drops whatever would still be forwarded off the bridge or onto it.
GUARD_CHAIN=DOMICILE-POD-GUARD
ROUTE_TABLE=245
# Addresses of this machine on the bridge for the fence's tests to connect to: one inside the
# CIDR the test allows, one outside it.
TEST_ADDRESSES="10.245.250.1 10.245.251.1"

node_dir() { echo "$CLUSTER_DIR/real/$1"; }
node_ip() { echo "10.245.$1.1"; }
cgroup_root() { echo "domicile-$1"; }

# client_kubeconfig NAME SUBJECT FILE: a client certificate for SUBJECT signed by the cluster's CA,
# and a kubeconfig with it. A node's subject is system:node:NAME in the group system:nodes, so
# the Node authorizer and NodeRestriction treat it as any kubelet: it can set no label under
# node-restriction.kubernetes.io on its Node.
client_kubeconfig() {
  local name="$1" subject="$2" file="$3"
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$file.key" -out "$file.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$file.ext"
  openssl x509 -req -in "$file.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
    -extfile "$file.ext" -out "$file.crt" 2>/dev/null
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: domicile-local
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$pki/ca.crt"}
users:
- name: $name
  user: {client-certificate: "$file.crt", client-key: "$file.key"}
contexts:
- name: $name
  context: {cluster: domicile-local, user: $name}
current-context: $name
KUBECONFIG
}

# The pod network is one per machine: the cluster that made it is written down beside it.
OWNER_FILE="/run/$POD_BRIDGE.cluster"
owned_by_another_cluster() {
  local owner
  owner="$(cat "$OWNER_FILE" 2>/dev/null)" || return 1
  [[ "$owner" != "$CLUSTER_DIR" && -s "$owner/real-nodes" ]]
}

network_up() {
  "$HACK_DIR/prerequisites.sh" real-node
  if owned_by_another_cluster; then
    die "the pod network $POD_BRIDGE belongs to the cluster in $(cat "$OWNER_FILE"), which has real nodes too; stop it first: DOMICILE_CLUSTER_DIR=$(cat "$OWNER_FILE") hack/cluster-down.sh"
  fi
  echo "$CLUSTER_DIR" >"$OWNER_FILE"
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge
  fi
  ip addr replace "$POD_GATEWAY/16" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  # Routing between pods through a Service's address (DNAT on this machine, back out of the
  # bridge) needs forwarding, on the bridge only: eth0 and every other interface keep theirs off.
  sysctl -qw "net.ipv4.conf.$POD_BRIDGE.forwarding=1"
  ip route replace "$POD_NETWORK" dev "$POD_BRIDGE" table "$ROUTE_TABLE"
  ip route replace unreachable default table "$ROUTE_TABLE"
  ip rule show | grep -q "iif $POD_BRIDGE lookup $ROUTE_TABLE" ||
    ip rule add iif "$POD_BRIDGE" lookup "$ROUTE_TABLE" priority 1000
  local mangle=(iptables -w -t mangle)
  "${mangle[@]}" -N "$GUARD_CHAIN" 2>/dev/null || "${mangle[@]}" -F "$GUARD_CHAIN"
  "${mangle[@]}" -A "$GUARD_CHAIN" -i "$POD_BRIDGE" ! -o "$POD_BRIDGE" -j DROP
  "${mangle[@]}" -A "$GUARD_CHAIN" ! -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j DROP
  "${mangle[@]}" -C FORWARD -j "$GUARD_CHAIN" 2>/dev/null || "${mangle[@]}" -I FORWARD 1 -j "$GUARD_CHAIN"
  local address
  for address in $TEST_ADDRESSES; do
    ip addr replace "$address/32" dev "$POD_BRIDGE"
  done
}

network_down() {
  if owned_by_another_cluster; then
    log "the pod network $POD_BRIDGE belongs to the cluster in $(cat "$OWNER_FILE"); left as it is"
    return 0
  fi
  stop_component local-path-provisioner
  stop_component kube-proxy
  if [[ -x "$NODE_BIN/kube-proxy" ]]; then
    "$NODE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  # kube-router's chains and ipsets (its own --cleanup-config leaves the chains and then panics
  # without IPVS): every filter rule and chain of its names goes, the rest is restored as it was.
  local filter
  filter="$(iptables-save -t filter)"
  if grep -q -E 'KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-' <<<"$filter"; then
    grep -v -E 'KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-' <<<"$filter" | iptables-restore -w -T filter
  fi
  local set
  for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-SRC-|KUBE-DST-|kube-router-)' || true); do
    ipset destroy "$set" 2>/dev/null || true
  done
  # The kubelets' own chains (a guard for 127.0.0.0/8, and canaries that tell them when the
  # tables were flushed), in both address families.
  local tables chain table
  for tables in iptables ip6tables; do
    while "$tables" -w -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$tables" -w -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    for chain in filter/KUBE-FIREWALL filter/KUBE-KUBELET-CANARY nat/KUBE-KUBELET-CANARY \
      mangle/KUBE-KUBELET-CANARY mangle/KUBE-IPTABLES-HINT; do
      table="${chain%%/*}" chain="${chain#*/}"
      "$tables" -w -t "$table" -F "$chain" 2>/dev/null && "$tables" -w -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  local mangle=(iptables -w -t mangle)
  while "${mangle[@]}" -D FORWARD -j "$GUARD_CHAIN" 2>/dev/null; do :; done
  "${mangle[@]}" -F "$GUARD_CHAIN" 2>/dev/null || true
  "${mangle[@]}" -X "$GUARD_CHAIN" 2>/dev/null || true
  while ip rule del iif "$POD_BRIDGE" lookup "$ROUTE_TABLE" 2>/dev/null; do :; done
  ip route flush table "$ROUTE_TABLE" 2>/dev/null || true
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  # The network namespaces of the pods, which containerd keeps under /run/netns; every pod
  # process is gone by now (real-node.sh down).
  local netns
  for netns in /run/netns/cni-*; do
    [[ -e "$netns" ]] || continue
    if [[ -z "$(ip netns pids "$(basename "$netns")" 2>/dev/null)" ]]; then
      umount "$netns" 2>/dev/null || true
      rm -f "$netns"
    fi
  done
  rm -f "$OWNER_FILE"
}

# kube-proxy routes Service addresses (the API server's `kubernetes` Service among them) for the
# pods of every real node; one is enough on one machine.
proxy_up() {
  local dir="$CLUSTER_DIR/real/kube-proxy"
  mkdir -p "$dir"
  client_kubeconfig kube-proxy "/CN=system:kube-proxy" "$dir/kubeconfig"
  cat >"$dir/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$dir/kubeconfig"}
hostnameOverride: "$1"
bindAddress: "$(node_ip "$2")"
mode: iptables
clusterCIDR: $POD_NETWORK
# Node ports only on the bridge's addresses, never on this machine's other interfaces or loopback.
nodePortAddresses: ["$POD_NETWORK"]
iptables: {localhostNodePorts: false, masqueradeAll: false}
# Leave the machine's conntrack settings as they are.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
healthzBindAddress: "127.0.0.1:$((APISERVER_PORT + 3))"
metricsBindAddress: "127.0.0.1:$((APISERVER_PORT + 4))"
YAML
  log "starting kube-proxy"
  start_component kube-proxy "$NODE_BIN/kube-proxy" --config="$dir/config.yaml" --v=1
  wait_healthy kube-proxy 60 "http://127.0.0.1:$((APISERVER_PORT + 3))/healthz"
}

# The local-path provisioner (hack/local-path-storage.yaml), out-of-cluster with a client
# certificate of its own, creating volumes under $CLUSTER_DIR/real/dynamic-volumes of each real
# node, with the workload image (busybox) as its helper.
storage_up() {
  local dir="$CLUSTER_DIR/real/local-path-provisioner"
  mkdir -p "$dir" "$CLUSTER_DIR/real/dynamic-volumes"
  sed "s|HELPER_IMAGE|$(image_ref workload)|" "$HACK_DIR/local-path-storage.yaml" | kubectl apply -f - >/dev/null
  client_kubeconfig local-path-provisioner "/CN=local-path-provisioner" "$dir/kubeconfig"
  cat >"$dir/config.json" <<JSON
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$CLUSTER_DIR/real/dynamic-volumes"]}]}
JSON
  log "starting the local-path provisioner $LOCAL_PATH_VERSION (rancher.io/local-path)"
  start_component local-path-provisioner "$LOCAL_PATH_BIN/local-path-provisioner" start \
    --config "$dir/config.json" --kubeconfig "$dir/kubeconfig" --namespace local-path-storage \
    --provisioner-name rancher.io/local-path --helper-image "$(image_ref workload)" \
    --service-account-name local-path-provisioner --configmap-name local-path-config
  started() { alive local-path-provisioner && grep -q "Started provisioner controller" "$CLUSTER_DIR/logs/local-path-provisioner.log"; }
  wait_for 60 "the local-path provisioner" started || die "the local-path provisioner did not start (see $CLUSTER_DIR/logs/local-path-provisioner.log)"
}

# kube-router's firewall, alone (no routing, no service proxy, no CNI of its own: the bridge
# plugin stays), enforces NetworkPolicies on the pods of node NAME with iptables and ipset, for
# traffic between pods and for traffic from pods to this machine's own addresses.
firewall_up() {
  local name="$1" dir="$CLUSTER_DIR/real/kube-router-$1"
  mkdir -p "$dir"
  kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kube-router-firewall}
rules:
  - apiGroups: [""]
    resources: [pods, namespaces, nodes, services, endpoints]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [events]
    verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kube-router-firewall}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-router-firewall}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-router}
YAML
  client_kubeconfig kube-router "/CN=kube-router" "$dir/kubeconfig"
  local health=$((APISERVER_PORT + 5))
  log "starting kube-router $KUBE_ROUTER_VERSION (NetworkPolicy firewall only) for $name"
  start_component "kube-router-$name" "$KUBE_ROUTER_BIN/kube-router" --kubeconfig="$dir/kubeconfig" \
    --hostname-override="$name" --run-firewall=true --run-router=false --run-service-proxy=false \
    --enable-cni=false --enable-ipv6=false --service-cluster-ip-range="$SERVICE_NETWORK" \
    --health-port="$health" --metrics-port=0 --v=1
  wait_healthy "kube-router-$name" 60 "http://127.0.0.1:$health/healthz"
}

# mkdir the node's cgroup in every hierarchy; the kubelet puts its pods below it.
cgroups_up() {
  local root controller
  root="$(cgroup_root "$1")"
  for controller in /sys/fs/cgroup/*/; do
    [[ -d "$controller" ]] || continue
    mkdir -p "$controller$root"
    if [[ -f "${controller}cpuset.cpus" ]]; then
      cat "${controller}cpuset.cpus" >"$controller$root/cpuset.cpus"
      cat "${controller}cpuset.mems" >"$controller$root/cpuset.mems"
    fi
  done
}

# import_images NAME IMAGE...: the archives of hack/images.sh that exist, into the node's containerd.
import_images() {
  local name="$1" image; shift
  local ctr=(ctr --address "$(node_dir "$name")/containerd.sock" --namespace k8s.io)
  for image in "$@"; do
    if [[ -f "$IMAGES_DIR/$image.tar" ]]; then
      "${ctr[@]}" images import --no-unpack=false "$IMAGES_DIR/$image.tar" >/dev/null
    fi
  done
}

up() {
  local name="$1" jurisdiction="$2" index="$3"
  local dir ip start=$SECONDS
  dir="$(node_dir "$name")"
  ip="$(node_ip "$index")"
  [[ -x "$NODE_BIN/kubelet" ]] || die "$NODE_BIN/kubelet is missing: run hack/build-tools.sh node"
  mkdir -p "$dir"/{containerd,kubelet,cni/net.d,cni/ipam}
  ip addr replace "$ip/32" dev "$POD_BRIDGE"

  # containerd: its own root, state and socket; sandboxes from the locally built pause image;
  # OOM scores that the machine's root can set (it lacks CAP_SYS_RESOURCE for negative ones).
  local sock="$dir/containerd.sock"
  cat >"$dir/containerd/config.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$dir/containerd.ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(image_ref pause)"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
TOML
  # Pods of this node take addresses 10.245.INDEX.10-250 on the shared bridge, with routes to the
  # pod network and the Service range only: no default route, no masquerading.
  cat >"$dir/cni/net.d/10-domicile.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "domicile",
  "plugins": [{
    "type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "isDefaultGateway": false,
    "ipMasq": false, "hairpinMode": true,
    "ipam": {
      "type": "host-local", "dataDir": "$dir/cni/ipam",
      "ranges": [[{"subnet": "$POD_NETWORK", "rangeStart": "10.245.$index.10",
                   "rangeEnd": "10.245.$index.250", "gateway": "$POD_GATEWAY"}]],
      "routes": [{"dst": "$SERVICE_NETWORK"}]
    }
  }]
}
JSON
  log "starting containerd of $name"
  # Images come from the archives of hack/images.sh only: a pull of anything else goes to a
  # proxy address where nothing listens and fails at once, never off this machine.
  start_component "containerd-$name" env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    NO_PROXY= containerd --config "$dir/containerd/config.toml"
  local ctr=(ctr --address "$sock" --namespace k8s.io)
  wait_for 60 "containerd of $name" "${ctr[@]}" version || { alive "containerd-$name"; die "containerd of $name did not answer"; }
  import_images "$name" pause workload operator

  # The kubelet: cgroup v1 with the cgroupfs driver, pods in a cgroup of their own, serving on
  # the node's bridge address, checking clients against the cluster's CA and asking the API
  # server (webhook) what each may do.
  cgroups_up "$name"
  client_kubeconfig "$name" "/O=system:nodes/CN=system:node:$name" "$dir/kubelet/kubeconfig"
  printf 'nameserver %s\n' "$POD_GATEWAY" >"$dir/resolv.conf"
  local port=$((APISERVER_PORT + 10 * index))
  cat >"$dir/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$(cgroup_root "$name")
containerRuntimeEndpoint: unix://$sock
address: $ip
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $((port + 1))
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
clusterDomain: cluster.local
# Pods resolve names through the cluster DNS only: never through this machine's resolver.
resolvConf: "$dir/resolv.conf"
failSwapOn: false
maxPods: 30
# The machine's disk is shared with builds: evict only when it is nearly full.
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
YAML
  log "starting the kubelet of $name (${jurisdiction:-no jurisdiction}, $ip:$port)"
  start_component "kubelet-$name" "$NODE_BIN/kubelet" --config="$dir/kubelet/config.yaml" \
    --kubeconfig="$dir/kubelet/kubeconfig" --root-dir="$dir/kubelet/root" \
    --cert-dir="$dir/kubelet/pki" --hostname-override="$name" --node-ip="$ip" --v=1
  wait_healthy "kubelet-$name" 120 "http://127.0.0.1:$((port + 1))/healthz"
  wait_for 120 "node $name to register" kubectl get node "$name" || die "$name did not register (see $CLUSTER_DIR/logs/kubelet-$name.log)"
  # The jurisdiction is the admin's word, under the key the kubelet cannot set on itself; a node
  # without one (NAME=) holds no data, only what is scheduled onto it by name, like the operator.
  kubectl label node "$name" --overwrite domicile.dev/node=real >/dev/null
  if [[ -n "$jurisdiction" ]]; then
    kubectl label node "$name" --overwrite \
      "domicile.node-restriction.kubernetes.io/jurisdiction=$jurisdiction" >/dev/null
  fi
  kubectl wait --for=condition=Ready "node/$name" --timeout=120s >/dev/null ||
    die "$name is not Ready (see $CLUSTER_DIR/logs/kubelet-$name.log)"
  log "real node $name Ready in $((SECONDS - start))s"
}

# Every process in the node's cgroups (its pods' containers and sandboxes) gets SIGKILL, then
# the cgroups go, deepest first.
kill_pods() {
  local root
  root="$(cgroup_root "$1")"
  for _ in $(seq 20); do
    local pids
    pids="$(find "/sys/fs/cgroup/pids/$root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)"
    [[ -z "$pids" ]] && break
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null || true
    sleep 0.25
  done
  local controller
  for controller in /sys/fs/cgroup/*/; do
    [[ -d "$controller$root" ]] || continue
    find "$controller$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

down() {
  local name="$1" dir
  dir="$(node_dir "$name")"
  stop_component "kube-router-$name"
  stop_component "kubelet-$name"
  kill_pods "$name"
  # The shims of this containerd, then containerd itself.
  pkill -KILL -f "containerd-shim.* -address $dir/containerd.sock" 2>/dev/null || true
  stop_component "containerd-$name"
  unmount_under "$dir"
}

# Fails, naming them, if a stopped cluster left anything of its real nodes on this machine.
leftovers() {
  local found=()
  awk -v d="$CLUSTER_DIR/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo &&
    found+=("mounts below $CLUSTER_DIR")
  ip link show "$POD_BRIDGE" >/dev/null 2>&1 && found+=("the bridge $POD_BRIDGE")
  ip rule show | grep -q "lookup $ROUTE_TABLE" && found+=("the routing rule of table $ROUTE_TABLE")
  iptables-save 2>/dev/null | grep -q -E 'KUBE-|DOMICILE-' && found+=("iptables rules")
  ipset list -n 2>/dev/null | grep -q -E '^(KUBE-|kube-router-)' && found+=("ipsets")
  pgrep -f "$CLUSTER_DIR/real/" >/dev/null && found+=("processes")
  compgen -G "/sys/fs/cgroup/pids/domicile-*" >/dev/null && found+=("cgroups")
  ((${#found[@]} == 0)) || die "left on this machine after the cluster stopped: ${found[*]}"
  log "nothing of the real nodes is left: no mount, bridge, rule, ipset, process or cgroup"
}

case "${1:-}" in
  up) up "${2:?NAME}" "${3?JURISDICTION (may be empty)}" "${4:?INDEX}" ;;
  down) down "${2:?NAME}" ;;
  network-up) network_up ;;
  proxy-up) proxy_up "${2:?NAME of the node kube-proxy serves}" "${3:?INDEX of that node}" ;;
  storage-up) storage_up ;;
  firewall-up) firewall_up "${2:?NAME}" ;;
  network-down) network_down ;;
  leftovers) leftovers ;;
  import) import_images "${2:?NAME}" "${@:3}" ;;
  *)
    echo "usage: hack/real-node.sh up NAME JURISDICTION INDEX | down NAME | network-up | proxy-up NAME INDEX | storage-up | firewall-up NAME | import NAME IMAGE... | network-down | leftovers" >&2
    exit 2
    ;;
esac
