#!/usr/bin/env bash
# Runs Dovecot's imaptest (../shared/tools/imaptest: compliance groups, then the stress load)
# against a fresh `pushmail --demo` on free ports, with user1..user100@example.com made through
# the admin API, and stops what it started.
#
#   infra/bench/imaptest.sh [secs] [clients]      # defaults: 20 s, 10 clients
#
# Environment: PUSHMAIL_BIN (default target/release/pushmail, built if missing),
# SKIP_COMPLIANCE=1 / SKIP_STRESS=1 and the other run.sh overrides; IMAPTEST_ARGS is not used.
# IMAPTEST_STRICT=1 (the test command): fail if a compliance group failed or the stress log has
# an error line.
# Prints run.sh's two summary lines, then whether the process was still running at the end.
# IMAPTEST: the imaptest binary (default: built by infra/bench/imaptest-build.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tools=${IMAPTEST_TOOLS:-$root/../shared/tools/imaptest}
secs=${1:-20}
clients=${2:-10}
bin=${PUSHMAIL_BIN:-target/release/pushmail}
[ -x "$bin" ] || cargo build --quiet --release --bin pushmail
export IMAPTEST=${IMAPTEST:-$(IMAPTEST_TOOLS="$tools" infra/bench/imaptest-build.sh)}
export TESTS_DIR=${TESTS_DIR:-target/imaptest/share/imaptest-tests}

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
# shellcheck source=infra/bench/demo_pushmail.sh
. infra/bench/demo_pushmail.sh
start_demo_pushmail "$bin" "$work"
status=0
export OUTDIR=${OUTDIR:-$root/target/imaptest/results/$(date +%Y%m%d-%H%M%S)-$imap}
"$tools/run.sh" 127.0.0.1 "$imap" 'user%d@example.com' imaptest-password "$secs" "$clients" \
  | tee "$work/summary" || status=$?
if [ "${IMAPTEST_STRICT:-0}" = 1 ]; then
  if [ "${SKIP_COMPLIANCE:-0}" != 1 ] && ! grep -Eq '^compliance: [0-9]+ groups, 0 failed$' "$work/summary"; then
    grep -E -B1 -A5 '^ - failed' "$OUTDIR/compliance.log" | head -n 60
    echo "imaptest: a compliance group failed (log: $OUTDIR/compliance.log)"; status=1
  fi
  errors=$(grep -ci 'error' "$OUTDIR/stress.log" 2>/dev/null || true)
  if [ "${SKIP_STRESS:-0}" != 1 ] && [ "${errors:-0}" -gt 0 ]; then
    grep -i 'error' "$OUTDIR/stress.log" | head -n 20
    echo "imaptest: $errors error lines in the stress run (log: $OUTDIR/stress.log)"; status=1
  fi
fi
if kill -0 "$pid" 2>/dev/null; then
  echo "process: still running"
else
  echo "process: ENDED during the run"; tail -n 20 "$work/err.log"; status=1
fi
echo "panics logged: $(grep -c 'panic' "$work/err.log" || true)"
exit "$status"
