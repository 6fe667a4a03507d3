#!/usr/bin/env bash
# Builds etcd, the Kubernetes control plane, kubectl, kwok and helm from Go modules into the cache,
# once per version; with `real-node` (or DOMICILE_REAL_NODES set) also the kubelet and kube-proxy,
# and the add-ons DOMICILE_REAL_ADDONS names; with `promtool`, promtool.
# A build goes to a temporary folder and is moved into place only when whole.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || die "go is not installed; the control plane is built from Go modules"

# build_into DEST MODULE_DIR LDFLAGS OUTPUT PACKAGE...: OUTPUT is a binary name for a single
# package, or empty to name each binary after its package.
build_into() {
  local dest="$1" module="$2" ldflags="$3" output="$4"; shift 4
  if [[ -f "$dest/.complete" ]]; then
    return 0
  fi
  local tmp="$dest.tmp.$$"
  rm -rf "$dest".tmp.*; mkdir -p "$tmp"
  log "building $(basename "$dest") (the first build takes several minutes)"
  local start=$SECONDS
  (cd "$HACK_DIR/tools/$module" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp/$output" "$@")
  touch "$tmp/.complete"
  rm -rf "$dest"; mv "$tmp" "$dest"
  log "built $(basename "$dest") in $((SECONDS - start))s"
}

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build_into "$ETCD_BIN" etcd "" etcd go.etcd.io/etcd/server/v3
build_into "$KUBE_BIN" kubernetes "$k8s_ldflags" "" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
build_into "$KWOK_BIN" kwok "" kwok sigs.k8s.io/kwok/cmd/kwok
build_into "$HELM_BIN" helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm helm.sh/helm/v3/cmd/helm

# promtool, for the chart's alerting rules, only when asked for (hack/chart-check.sh).
if [[ " $* " == *" promtool "* ]]; then
  build_into "$PROMTOOL_BIN" promtool "" promtool github.com/prometheus/prometheus/cmd/promtool
fi

# The kubelet and kube-proxy of a real node, the dynamic provisioner of its volumes and the
# firewall that enforces NetworkPolicies there, only when a real node is asked for.
if [[ " $* " == *" real-node "* || -n "$REAL_NODES" ]]; then
  build_into "$NODE_BIN" kubernetes "$k8s_ldflags" "" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  if real_addon storage; then
    build_into "$LOCAL_PATH_BIN" local-path-provisioner "" local-path-provisioner \
      github.com/rancher/local-path-provisioner
  fi
  if real_addon firewall; then
    build_into "$KUBE_ROUTER_BIN" kube-router "" kube-router \
      github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
  fi
fi

# The standalone kwok binary has no default stages. Take the ones its module ships (nodes go
# Ready and keep their Lease; bound pods go Running; deleted pods go away) from the module cache.
if [[ ! -s "$KWOK_BIN/stages.yaml" ]]; then
  kwok_src="$(cd "$HACK_DIR/tools/kwok" && go mod download -json sigs.k8s.io/kwok | awk -F'"' '$2 == "Dir" { print $4 }')"
  [[ -d "$kwok_src/kustomize/stage" ]] || die "kwok stages not found in the module cache ($kwok_src)"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"; cat "$kwok_src/kustomize/stage/$stage.yaml"
  done > "$KWOK_BIN/stages.yaml.tmp"
  mv "$KWOK_BIN/stages.yaml.tmp" "$KWOK_BIN/stages.yaml"
fi

for bin in "$ETCD_BIN/etcd" "$KUBE_BIN/kube-apiserver" "$KUBE_BIN/kube-controller-manager" \
  "$KUBE_BIN/kube-scheduler" "$KUBE_BIN/kubectl" "$KWOK_BIN/kwok" "$HELM_BIN/helm"; do
  [[ -x "$bin" ]] || die "$bin is missing after the build"
done
