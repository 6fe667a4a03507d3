#!/usr/bin/env bash
# Builds the container images the real node runs, without a registry or a Docker engine: buildah
# (Debian's package) starts each one from scratch, copies statically linked binaries in and writes
# a docker-archive that `ctr images import` takes. Every layer's files and the image's creation
# time are fixed, so the same binaries give the same image digest.
#   hack/images.sh [operator|pause|workload]...   (all three by default)
# The archives land in $DOMICILE_CACHE/images; their image names are printed by `image_ref`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HACK_DIR/prerequisites.sh" real-node
mkdir -p "$IMAGES_DIR"
buildah_store=("--root=$IMAGES_DIR/.buildah/root" "--runroot=$IMAGES_DIR/.buildah/run")
buildah() { command buildah "${buildah_store[@]}" "$@"; }
export BUILDAH_ISOLATION=chroot

# build NAME USER ENTRYPOINT_JSON CMD_JSON SOURCE:DEST...  (in a subshell of its own)
build() (
  name="$1" user="$2" entrypoint="$3" cmd="$4"; shift 4
  archive="$IMAGES_DIR/$name.tar" start=$SECONDS
  ref="$(image_ref "$name")"
  log "building the image $ref"
  container="$(buildah from --quiet scratch)"
  # The working container goes whatever happens; the archive is written whole or not at all.
  trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
  root="$(buildah mount "$container")"
  for pair in "$@"; do
    install -D -m 0755 "${pair%%:*}" "$root/${pair#*:}"
  done
  if [[ -x "$root/bin/busybox" ]]; then
    chroot "$root" /bin/busybox --install -s /bin
  fi
  # Files of an image carry no build-time dates.
  find "$root" -exec touch -h -d @0 {} +
  buildah config --user "$user" --entrypoint "$entrypoint" --cmd "$cmd" --env PATH=/bin \
    --created-by "hack/images.sh" "$container"
  buildah commit --quiet --timestamp 0 --omit-history "$container" "$ref" >/dev/null
  buildah push --quiet "$ref" "docker-archive:$archive.tmp:$ref" >/dev/null
  mv "$archive.tmp" "$archive"
  log "built $ref in $((SECONDS - start))s: $(du -k "$archive" | cut -f1) KiB ($archive)"
)

operator() {
  # The operator, statically linked against glibc (the only Rust target on a machine without
  # rustup downloads), like the Dockerfile builds it for users with a registry. DOMICILE_PROFILE
  # picks the cargo profile: release (the default) or quick (make run: quicker to compile).
  local profile="${DOMICILE_PROFILE:-release}"
  build_operator "$profile" static
  local binary
  binary="$(operator_binary "$profile" static)"
  file_is_static "$binary" || die "$binary is not statically linked"
  # Without its symbol table: a quarter smaller, and nothing the operator reads at run time.
  strip --strip-all -o "$IMAGES_DIR/domicile" "$binary"
  # The same binary gives the same image: built already if the archive came from this one.
  local sum
  sum="$(sha256sum "$IMAGES_DIR/domicile" | cut -d' ' -f1)"
  if [[ -f "$IMAGES_DIR/operator.tar" && "$(cat "$IMAGES_DIR/operator.binary" 2>/dev/null)" == "$sum" ]]; then
    log "the image $(image_ref operator) is built from this binary already ($IMAGES_DIR/operator.tar)"
    return 0
  fi
  build operator 65532:65532 '["/domicile"]' '["run"]' "$IMAGES_DIR/domicile:/domicile"
  echo "$sum" > "$IMAGES_DIR/operator.binary"
}

pause() {
  # The sandbox of every pod holds its namespaces and waits for the end: busybox's shell as
  # PID 1, which exits on SIGTERM or SIGINT.
  build pause 65535:65535 \
    '["/bin/busybox","sh","-c","trap \"exit 0\" TERM INT; while :; do /bin/busybox sleep 3600 & wait $!; done"]' \
    '[]' /bin/busybox:/bin/busybox
}

workload() {
  # The data workload of the real-node tests: busybox, whose applets (sh, nc, nslookup, wget, ...)
  # are links to it in /bin.
  build workload 65532:65532 '["/bin/sh"]' '[]' /bin/busybox:/bin/busybox
}

file_is_static() { ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }

images=("$@")
((${#images[@]})) || images=(pause workload operator)
for name in "${images[@]}"; do
  case "$name" in
    operator | pause | workload) "$name" ;;
    *) die "unknown image $name (operator, pause or workload)" ;;
  esac
done
# The builds an image name no longer points to.
buildah rmi --prune >/dev/null 2>&1 || true
