#!/usr/bin/env bash
# Builds the `pushmail` binary profile-guided (PGO): an instrumented build first, run under
# infra/pgo/train.py (IMAP and SMTP clients against a --demo process on the embedded store),
# its profile merged, then the release build optimised with it. The one process spends its CPU
# across many small steps (parsing, the store, encoding, the allocator), where knowing which
# branches are taken and what to inline pays everywhere at once: about a tenth less CPU an IMAP
# command (docs/benchmarks.md). The Lambdas are not built here: they stay built for size.
#
#   infra/pgo/build.sh [RUST_TARGET]     # default: this machine's (x86_64-unknown-linux-gnu)
#
# The target must run here (the training runs it): x86_64 glibc or musl on an x86_64 machine.
# Prints the optimised binary's path (target/pgo/optimized/RUST_TARGET/release/pushmail) on its
# last line. Each build has a target folder of its own (target/pgo/…): the profile flags differ
# from a plain build's, so sharing one would rebuild everything each time. Installs
# llvm-tools (for llvm-profdata) when missing. Stops what it starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
host=$(rustc -vV | sed -n 's/^host: //p')
rust_target=${1:-$host}
case "$rust_target" in
  "${host%%-*}"-*) ;;
  *) echo "the training runs the instrumented binary: $rust_target does not run on $host" >&2; exit 2 ;;
esac

sysroot=$(rustc --print sysroot)
profdata="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  rustup component add llvm-tools-preview >&2
fi

# --target even for the host's: RUSTFLAGS then reach only the binary's code, not build scripts
# or proc macros (which would be instrumented too, and write profiles as they build). The
# profiles' folder is a fixed one, so the flags, and with them the build, do not change from one
# run to the next; LLVM_PROFILE_FILE gives it in full, whatever folder the process runs in.
profiles=target/pgo/profiles
echo "pgo: instrumented build" >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$root/$profiles" CARGO_TARGET_DIR=target/pgo/instrumented \
  cargo build --quiet --release --target "$rust_target" --bin pushmail >&2

echo "pgo: training" >&2
rm -rf "$profiles"
# shellcheck source=infra/bench/demo_pushmail.sh
. infra/bench/demo_pushmail.sh
LLVM_PROFILE_FILE="$root/$profiles/pushmail-%m-%p.profraw" \
  PUSHMAIL_BIN="target/pgo/instrumented/$rust_target/release/pushmail" start_bench_pushmail >&2
PYTHONPATH=infra/bench python3 infra/pgo/train.py --imap "$imap" --smtp "$smtp" --secs "${PGO_TRAIN_SECS:-20}" >&2
# The profile is written as the process exits: stopped as an operator would, by SIGTERM.
kill -TERM "$pid"
wait "$pid" || { echo "pgo: the instrumented process did not exit cleanly" >&2; exit 1; }
pid=
"$profdata" merge -o target/pgo/pushmail.profdata "$profiles"

echo "pgo: optimised build" >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$root/target/pgo/pushmail.profdata" CARGO_TARGET_DIR=target/pgo/optimized \
  cargo build --quiet --release --target "$rust_target" --bin pushmail >&2
echo "target/pgo/optimized/$rust_target/release/pushmail"
