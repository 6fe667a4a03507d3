#!/usr/bin/env bash
# Builds etcd, the Kubernetes control plane, kubectl, kwok and helm from Go modules into the cache,
# once per version. What to build is named by the arguments:
#   etcd kubernetes kwok helm      one each (kubernetes: kube-apiserver, -controller-manager,
#                                  -scheduler and kubectl)
#   node                           the kubelet and kube-proxy of a real node, and the add-ons
#                                  DOMICILE_REAL_ADDONS names (local-path provisioner, kube-router)
#   promtool                       for the chart's alerting rules
#   cluster                        what hack/cluster-up.sh starts: etcd kubernetes kwok, and node
#                                  when DOMICILE_REAL_NODES is set
#   real-node                      cluster and node
# No argument: cluster and helm. A build goes to a temporary folder and is moved into place only
# when whole; two runs that ask for the same build wait for each other. The compiler's output goes
# to $DOMICILE_CACHE/logs/build-NAME.log, shown when a build fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || die "go is not installed; the control plane is built from Go modules"
mkdir -p "$BUILD_LOGS"

# build_into DEST MODULE_DIR LDFLAGS OUTPUT PACKAGE...: OUTPUT is a binary name for a single
# package, or empty to name each binary after its package.
build_into() {
  local dest="$1" module="$2" ldflags="$3" output="$4"; shift 4
  [[ -f "$dest/.complete" ]] && return 0
  local name lock_fd
  name="$(basename "$dest")"
  mkdir -p "$(dirname "$dest")"
  exec {lock_fd}>"$dest.lock"
  flock "$lock_fd"
  if [[ ! -f "$dest/.complete" ]]; then
    local tmp="$dest.tmp" build_log="$BUILD_LOGS/build-$name.log" start=$SECONDS
    rm -rf "$tmp"; mkdir -p "$tmp"
    log "building $name (compiler output: $build_log)"
    if ! (cd "$HACK_DIR/tools/$module" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" \
      -o "$tmp/$output" "$@") >"$build_log" 2>&1; then
      tail -n 30 "$build_log" >&2
      die "building $name failed; the whole output is in $build_log"
    fi
    touch "$tmp/.complete"
    rm -rf "$dest"; mv "$tmp" "$dest"
    log "built $name in $(duration $((SECONDS - start)))"
  fi
  exec {lock_fd}>&-
}

targets=()
for arg in "${@:-cluster helm}"; do
  for word in $arg; do
    case "$word" in
      etcd | kubernetes | kwok | helm | node | promtool) targets+=("$word") ;;
      cluster) targets+=(etcd kubernetes kwok); [[ -z "$REAL_NODES" ]] || targets+=(node) ;;
      real-node) targets+=(etcd kubernetes kwok node) ;;
      *) die "unknown build $word (etcd, kubernetes, kwok, helm, node, promtool, cluster or real-node)" ;;
    esac
  done
done
wanted() { [[ " ${targets[*]} " == *" $1 "* ]]; }

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

if wanted etcd; then build_into "$ETCD_BIN" etcd "" etcd go.etcd.io/etcd/server/v3; fi
if wanted kubernetes; then
  build_into "$KUBE_BIN" kubernetes "$k8s_ldflags" "" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
fi
if wanted kwok; then build_into "$KWOK_BIN" kwok "" kwok sigs.k8s.io/kwok/cmd/kwok; fi
if wanted helm; then
  build_into "$HELM_BIN" helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm helm.sh/helm/v3/cmd/helm
fi
if wanted promtool; then
  build_into "$PROMTOOL_BIN" promtool "" promtool github.com/prometheus/prometheus/cmd/promtool
fi

# The kubelet and kube-proxy of a real node, the dynamic provisioner of its volumes and the
# firewall that enforces NetworkPolicies there.
if wanted node; then
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
if wanted kwok && [[ ! -s "$KWOK_BIN/stages.yaml" ]]; then
  kwok_src="$(cd "$HACK_DIR/tools/kwok" && go mod download -json sigs.k8s.io/kwok | awk -F'"' '$2 == "Dir" { print $4 }')"
  [[ -d "$kwok_src/kustomize/stage" ]] || die "kwok stages not found in the module cache ($kwok_src)"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"; cat "$kwok_src/kustomize/stage/$stage.yaml"
  done > "$KWOK_BIN/stages.yaml.tmp"
  mv "$KWOK_BIN/stages.yaml.tmp" "$KWOK_BIN/stages.yaml"
fi

check() { [[ -x "$1" ]] || die "$1 is missing after the build"; }
if wanted etcd; then check "$ETCD_BIN/etcd"; fi
if wanted kubernetes; then for bin in kube-apiserver kube-controller-manager kube-scheduler kubectl; do check "$KUBE_BIN/$bin"; done; fi
if wanted kwok; then check "$KWOK_BIN/kwok"; fi
if wanted helm; then check "$HELM_BIN/helm"; fi
if wanted node; then check "$NODE_BIN/kubelet"; check "$NODE_BIN/kube-proxy"; fi
if wanted promtool; then check "$PROMTOOL_BIN/promtool"; fi
