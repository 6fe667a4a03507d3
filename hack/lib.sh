# shellcheck shell=bash
# Shared settings of the hack/ scripts: versions, cache and cluster locations, helpers.
# Every path here lives outside the checkout, so a fresh clone reuses what an earlier run built.

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"

# The versions are read from the wrapper modules, so go.mod is the one place to change them.
module_version() {
  awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit } $1 == m && $2 != "=>" { print $2; exit }' \
    "$HACK_DIR/tools/$1/go.mod"
}
K8S_VERSION="$(module_version kubernetes k8s.io/kubernetes)"
ETCD_VERSION="$(module_version etcd go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(module_version kwok sigs.k8s.io/kwok)"
HELM_VERSION="$(module_version helm helm.sh/helm/v3)"
PROMETHEUS_VERSION="$(module_version promtool github.com/prometheus/prometheus)"
LOCAL_PATH_VERSION="$(module_version local-path-provisioner github.com/rancher/local-path-provisioner)"
KUBE_ROUTER_VERSION="$(module_version kube-router github.com/cloudnativelabs/kube-router/v2)"
if [[ -z "$K8S_VERSION" || -z "$ETCD_VERSION" || -z "$KWOK_VERSION" || -z "$HELM_VERSION" || -z "$LOCAL_PATH_VERSION" || -z "$KUBE_ROUTER_VERSION" ]]; then
  echo "hack/lib.sh: cannot read the component versions from hack/tools/*/go.mod" >&2
  exit 1
fi

# The policy report CRDs the end-to-end tests install (hack/tools/reports/go.mod pins them).
REPORTS_KYVERNO_VERSION="$(module_version reports github.com/kyverno/kyverno)"
REPORTS_OPENREPORTS_VERSION="$(module_version reports github.com/openreports/reports-api)"
# The CRDs of copies of the data (hack/tools/copies/go.mod pins them).
SNAPSHOTTER_VERSION="$(module_version copies github.com/kubernetes-csi/external-snapshotter/client/v8)"
VELERO_VERSION="$(module_version copies github.com/vmware-tanzu/velero)"

DOMICILE_CACHE="${DOMICILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/domicile}"
BIN_ROOT="$DOMICILE_CACHE/bin"
KUBE_BIN="$BIN_ROOT/kubernetes-$K8S_VERSION"
ETCD_BIN="$BIN_ROOT/etcd-$ETCD_VERSION"
KWOK_BIN="$BIN_ROOT/kwok-$KWOK_VERSION"
HELM_BIN="$BIN_ROOT/helm-$HELM_VERSION"
PROMTOOL_BIN="$BIN_ROOT/promtool-$PROMETHEUS_VERSION"

# The running cluster: certificates, etcd data, logs, pid files and the admin kubeconfig.
CLUSTER_DIR="${DOMICILE_CLUSTER_DIR:-$DOMICILE_CACHE/cluster}"
ADMIN_KUBECONFIG="$CLUSTER_DIR/admin.kubeconfig"
APISERVER_PORT="${DOMICILE_APISERVER_PORT:-16443}"
ETCD_CLIENT_PORT="${DOMICILE_ETCD_PORT:-12379}"
ETCD_PEER_PORT="$((ETCD_CLIENT_PORT + 1))"
CONTROLLER_MANAGER_PORT="${DOMICILE_CONTROLLER_MANAGER_PORT:-17257}"
SCHEDULER_PORT="${DOMICILE_SCHEDULER_PORT:-17259}"
KWOK_PORT="${DOMICILE_KWOK_PORT:-17247}"

# Real nodes (hack/real-node.sh): a kubelet with containerd each, beside the kwok nodes.
# DOMICILE_REAL_NODES lists them as NAME=JURISDICTION, e.g. "cn-real-1=CN"; empty: none.
REAL_NODES="${DOMICILE_REAL_NODES:-}"
# What runs beside them: `storage` (the local-path provisioner, for Dynamic mode) and `firewall`
# (kube-router, which enforces NetworkPolicies).
REAL_ADDONS="${DOMICILE_REAL_ADDONS-storage firewall}"
real_addon() { [[ " $REAL_ADDONS " == *" $1 "* ]]; }
NODE_BIN="$BIN_ROOT/kubernetes-node-$K8S_VERSION"
LOCAL_PATH_BIN="$BIN_ROOT/local-path-provisioner-$LOCAL_PATH_VERSION"
KUBE_ROUTER_BIN="$BIN_ROOT/kube-router-$KUBE_ROUTER_VERSION"
IMAGES_DIR="$DOMICILE_CACHE/images"
# Links to the tools a person uses on the local cluster (kubectl, helm, domicile), for PATH.
PATH_DIR="$DOMICILE_CACHE/path"
# What the builds print (compilers, package managers), one file each.
BUILD_LOGS="$DOMICILE_CACHE/logs"
STATIC_TARGET=x86_64-unknown-linux-gnu
# build_operator PROFILE [static]: cargo build of the operator with the cargo profile PROFILE
# (release, or quick: `make run`'s, which also goes without jemalloc); static: linked statically
# for the image. operator_binary PROFILE [static]: where that build puts the binary.
build_operator() {
  local args=(--profile "$1" --locked --bin domicile)
  [[ "$1" != quick ]] || args+=(--no-default-features)
  if [[ "${2:-}" == static ]]; then
    (cd "$REPO_ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build "${args[@]}" --target "$STATIC_TARGET")
  else
    (cd "$REPO_ROOT" && cargo build "${args[@]}")
  fi
}
operator_binary() {
  local target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
  if [[ "${2:-}" == static ]]; then echo "$target/$STATIC_TARGET/$1/domicile"; else echo "$target/$1/domicile"; fi
}
# image_ref NAME: the name under which hack/images.sh builds an image and the nodes hold it.
image_ref() { echo "domicile.local/$1:dev"; }
# The pods' network: a bridge of our own for 10.245.0.0/16; real node INDEX gives its pods
# addresses from 10.245.INDEX.0/24. Pods get routes to 10.245.0.0/16 (pods and this machine's
# test addresses) and to the Service range only, no default route, and nothing that comes in on
# the bridge is forwarded anywhere else: pod traffic stays on this machine.
POD_BRIDGE="${DOMICILE_POD_BRIDGE:-domicile0}"
POD_NETWORK=10.245.0.0/16
SERVICE_NETWORK=10.96.0.0/16
# The bridge's own address: the real nodes' InternalIP, and where pods reach the API server.
POD_GATEWAY=10.245.0.1

export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}"

# duration SECONDS: 42s, 2m10s.
duration() { if (($1 < 60)); then echo "$1s"; else printf '%dm%02ds\n' $(($1 / 60)) $(($1 % 60)); fi; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND every half second until it succeeds.
wait_for() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# start_component NAME COMMAND...: run a component in its own session, appending to logs/NAME.log.
start_component() {
  local name="$1"; shift
  setsid "$@" >>"$CLUSTER_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$CLUSTER_DIR/pids/$name.pid"
}
# running PID: the process exists and is not a zombie (its parent gone, it waits to be reaped).
running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}
# stop_component NAME: SIGTERM to a component that start_component started, SIGKILL if it is still
# running 15 s later; nothing if it is not running. DOMICILE_STOP_SIGNAL=KILL: SIGKILL at once
# (cluster-up.sh, wiping a cluster whose state goes anyway).
stop_component() {
  local name="$1" pid_file="$CLUSTER_DIR/pids/$1.pid" pid
  [[ -f "$pid_file" ]] || return 0
  pid="$(cat "$pid_file")"
  if running "$pid"; then
    kill "-${DOMICILE_STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      log "$name did not stop on SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pid_file"
}
# alive NAME: the component has not exited (it would say why in its log).
alive() {
  local name="$1"
  if ! running "$(cat "$CLUSTER_DIR/pids/$name.pid")"; then
    log "$name exited; last lines of $CLUSTER_DIR/logs/$name.log:"
    tail -n 30 "$CLUSTER_DIR/logs/$name.log" >&2
    die "$name failed to start"
  fi
}
# wait_healthy NAME SECONDS URL CURL_ARGS...
wait_healthy() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until curl -fsS --max-time 2 "$@" >/dev/null 2>&1; do
    alive "$name"
    ((SECONDS < deadline)) || die "$name was not healthy within ${timeout}s (see $CLUSTER_DIR/logs/$name.log)"
    sleep 0.5
  done
}


# unmount_under DIR: unmount everything mounted at or below DIR, deepest first (a real node's
# pod volumes, container root filesystems and its kubelet's bind mounts of local volumes), so
# that removing DIR never reaches into a volume's data.
unmount_under() {
  local dir="$1" mounts mount
  mapfile -t mounts < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for mount in "${mounts[@]}"; do
    # A mount may go by itself meanwhile (a runtime shim that was just killed had it).
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null ||
      ! awk -v m="$mount" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo ||
      die "cannot unmount $mount"
  done
}

# chart_identity KUBECONFIG_FILE [HELM_ARGS...]: the chart's ServiceAccount and RBAC (nothing else
# of the chart) in $OPERATOR_NAMESPACE, and a kubeconfig with a token of that account, so that an
# operator run out-of-cluster has exactly the rights the chart grants.
OPERATOR_NAMESPACE=domicile-system
chart_identity() {
  local file="$1" k=("$KUBE_BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG")
  shift
  "${k[@]}" create namespace "$OPERATOR_NAMESPACE" >/dev/null
  chart_template "$@" --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml \
    --show-only templates/leader-election-rbac.yaml --show-only templates/declared-classes-rbac.yaml |
    "${k[@]}" apply -f - >/dev/null
  local token
  token="$("${k[@]}" create token domicile --namespace "$OPERATOR_NAMESPACE" --duration=3h)"
  cat > "$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: domicile-local
  cluster: {server: "https://127.0.0.1:$APISERVER_PORT", certificate-authority: "$CLUSTER_DIR/pki/ca.crt"}
users:
- name: operator
  user: {token: "$token"}
contexts:
- name: operator
  context: {cluster: domicile-local, user: operator}
current-context: operator
KUBECONFIG
}

# chart_template [HELM_ARGS...]: helm template of the chart as the release domicile in
# $OPERATOR_NAMESPACE.
chart_template() {
  "$HELM_BIN/helm" template domicile "$REPO_ROOT/charts/domicile" --namespace "$OPERATOR_NAMESPACE" \
    --kube-version "$K8S_VERSION" "$@"
}

# snapshot_crds: the paths of the VolumeSnapshot and VolumeSnapshotClass CRDs
# (snapshot.storage.k8s.io/v1), from the module cache (downloaded through the Go module proxy when
# missing).
snapshot_crds() {
  local dir
  dir="$(cd "$HACK_DIR/tools/copies" && go mod download -json "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION" |
    awk -F'"' '$2 == "Dir" { print $4 }')"
  local kind file
  for kind in volumesnapshotclasses volumesnapshots volumesnapshotcontents; do
    file="$dir/config/crd/snapshot.storage.k8s.io_$kind.yaml"
    [[ -f "$file" ]] || die "the VolumeSnapshot CRDs are not in the module cache ($file)"
    printf '%s\n' "$file"
  done
}

# velero_crds: the paths of Velero's Backup, Schedule, BackupStorageLocation and
# VolumeSnapshotLocation CRDs (velero.io/v1), from the module cache (downloaded when missing).
velero_crds() {
  local dir
  dir="$(cd "$HACK_DIR/tools/copies" && go mod download -json "github.com/vmware-tanzu/velero@$VELERO_VERSION" |
    awk -F'"' '$2 == "Dir" { print $4 }')"
  local kind file
  for kind in backups schedules backupstoragelocations volumesnapshotlocations; do
    file="$dir/config/crd/v1/bases/velero.io_$kind.yaml"
    [[ -f "$file" ]] || die "Velero's CRDs are not in the module cache ($file)"
    printf '%s\n' "$file"
  done
}

# report_crds: the paths of the wgpolicyk8s.io PolicyReport CRD and the openreports.io Report CRD,
# from the module cache (downloaded through the Go module proxy when missing).
report_crds() {
  local kyverno openreports
  kyverno="$(cd "$HACK_DIR/tools/reports" && go mod download -json "github.com/kyverno/kyverno@$REPORTS_KYVERNO_VERSION" |
    awk -F'"' '$2 == "Dir" { print $4 }')"
  openreports="$(cd "$HACK_DIR/tools/reports" && go mod download -json "github.com/openreports/reports-api@$REPORTS_OPENREPORTS_VERSION" |
    awk -F'"' '$2 == "Dir" { print $4 }')"
  local wgpolicy="$kyverno/config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml"
  local report="$openreports/config/crd/openreports.io_reports.yaml"
  [[ -f "$wgpolicy" && -f "$report" ]] || die "policy report CRDs not found in the module cache ($wgpolicy, $report)"
  printf '%s\n' "$wgpolicy" "$report"
}
