#!/usr/bin/env bash
# Builds the three Lambda bootstraps (release: LTO, one codegen unit, stripped) with cargo-lambda
# for the architecture the template deploys: arm64 by default, PUSHMAIL_LAMBDA_ARCH=x86_64 for
# x86_64 (then deploy with --parameter-overrides Architecture=x86_64). cargo-lambda and zig come
# from PyPI (cargo-lambda, ziglang) into .tools/venv when cargo-lambda is not on PATH already.
# Afterwards `sam build` works from the repository root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
arch=${PUSHMAIL_LAMBDA_ARCH:-arm64}
case "$arch" in
  arm64) target=aarch64-unknown-linux-gnu flag=--arm64 ;;
  x86_64) target=x86_64-unknown-linux-gnu flag=--x86-64 ;;
  *) echo "PUSHMAIL_LAMBDA_ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac

if ! command -v cargo-lambda >/dev/null 2>&1; then
  if [ ! -x .tools/venv/bin/cargo-lambda ]; then
    python3 -m venv .tools/venv
    .tools/venv/bin/pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.15.1
  fi
  export PATH="$root/.tools/venv/bin:$PATH"
fi

if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target" || {
    echo "The Rust standard library for $target is not installed and could not be fetched." >&2
    echo "Install it (rustup target add $target) or build for the host: PUSHMAIL_LAMBDA_ARCH=x86_64 $0" >&2
    exit 1
  }
fi

cargo lambda build --release "$flag" --bin subscribe --bin admin --bin sweeper
for function in subscribe admin sweeper; do
  bootstrap="target/lambda/$function/bootstrap"
  printf '%-10s %s bytes (%s)\n' "$function" "$(stat -c %s "$bootstrap")" "$bootstrap"
done
if [[ ":$PATH:" == *":$root/.tools/venv/bin:"* ]]; then
  echo "sam build calls cargo-lambda too: export PATH=\"$root/.tools/venv/bin:\$PATH\" first"
fi
