#!/usr/bin/env bash
# Checks the host tools the local cluster needs; installs the Debian packages that are missing
# when it may (root with apt-get), and otherwise says what to install.
set -euo pipefail

missing=()
for tool in openssl curl setsid; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  declare -A package=([openssl]=openssl [curl]=curl [setsid]=util-linux)
  packages=()
  for tool in "${missing[@]}"; do packages+=("${package[$tool]}"); done
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${packages[*]}" >&2
    apt-get update -qq && apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "missing tools: ${missing[*]}; install the packages ${packages[*]}" >&2
    exit 1
  fi
fi
command -v go >/dev/null || { echo "go (1.26 or newer) is required to build the control plane" >&2; exit 1; }
