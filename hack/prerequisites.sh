#!/usr/bin/env bash
# Checks the host tools the local cluster needs; installs the Debian packages that are missing
# when it may (root with apt-get), and otherwise says what to install.
#   hack/prerequisites.sh             the control plane and kwok
#   hack/prerequisites.sh real-node   also a real node: containerd, runc, CNI plugins, iptables,
#                                     ipset (kube-router's firewall), buildah and a static busybox
#                                     for the images
set -euo pipefail

declare -A package=(
  [openssl]=openssl [curl]=curl [setsid]=util-linux
  [containerd]=containerd [ctr]=containerd [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables [ip]=iproute2 [buildah]=buildah [readelf]=binutils
  [/bin/busybox]=busybox-static [mount]=mount [ipset]=ipset
)
tools=(openssl curl setsid)
if [[ "${1:-}" == real-node ]]; then
  tools+=(containerd ctr runc /usr/lib/cni/bridge iptables ip buildah readelf mount /bin/busybox ipset)
fi

have() {
  if [[ "$1" == /bin/busybox ]]; then
    # Debian's plain busybox is linked dynamically; the images need the static one.
    [[ -x /bin/busybox ]] && ! LC_ALL=C readelf -l /bin/busybox 2>/dev/null | grep -q interpreter
  elif [[ "$1" == /* ]]; then
    [[ -x "$1" ]]
  else
    command -v "$1" >/dev/null
  fi
}

missing=()
for tool in "${tools[@]}"; do
  have "$tool" || missing+=("$tool")
done
if ((${#missing[@]})); then
  packages=()
  for tool in "${missing[@]}"; do packages+=("${package[$tool]}"); done
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${packages[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "missing tools: ${missing[*]}; install the packages ${packages[*]}" >&2
    exit 1
  fi
fi
command -v go >/dev/null || { echo "go (1.26 or newer) is required to build the control plane" >&2; exit 1; }
