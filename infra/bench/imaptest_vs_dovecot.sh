#!/usr/bin/env bash
# imaptest's stress load against pushmail and against Dovecot on this machine, each server fresh
# for each run: cmd/s, and the CPU each command cost (the machine's busy time during the run,
# less imaptest's own, over the commands), so a result can be told apart from the load
# generator's share of the same cores.
#
#   infra/bench/imaptest_vs_dovecot.sh [secs] [clients] [logout] [rounds]   # defaults: 20 10 0 1
#
# logout=0: clients stay logged in (imaptest's logout=0); 1: imaptest's default, logging out and
# in. rounds: that many pairs, the servers alternating (pushmail first in odd rounds, Dovecot in
# even), each pair's ratio and their median printed last. This machine's speed drifts by a third
# within minutes (imaptest's own CPU a command moves from 31 to 46 µs between two runs of the same
# load), so one pair can favour either server; alternating pairs and their median do not.
# Set PERF_DATA=FILE to record pushmail's run with `perf record -g` (or PERF_ARGS, e.g.
# "--call-graph dwarf -F 300"; build with line tables:
# CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only),
# SKIP_DOVECOT=1 to measure pushmail alone, KEEP_LOGS=DIR to keep imaptest's logs. Each run also
# prints its server/imaptest CPU (the server's CPU a command over imaptest's, which moves far
# less with the machine's speed than either: 2.70-3.05 for one build over hours in which its
# cmd/s went from 7,802 to 14,844) and the share of the machine left idle.
# Before each load every user logs in once (WARM=0: not): pushmail keeps its passwords as argon2id
# and Dovecot's passwd-file here holds them in plaintext, so without it pushmail's first login
# of each user (a third of the CPU of a 10 s run that logs out and in) would be measured against
# none of Dovecot's; with it, neither server hashes a password during the load.
# pushmail: target/release/pushmail (built if missing), or PUSHMAIL_BIN (the image's profile-guided
# build: the path infra/pgo/build.sh prints), --demo with user1..user100 made through the admin
# API. Dovecot: Debian's dovecot-imapd (installed if missing), a maildir per user and a
# passwd-file of the same users, no TLS, in a temporary folder. Stops what it starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
secs=${1:-20} clients=${2:-10} logout=${3:-0} rounds=${4:-1}
bin=${PUSHMAIL_BIN:-target/release/pushmail}
[ -x "$bin" ] || cargo build --quiet --release --bin pushmail
imaptest=${IMAPTEST:-$(infra/bench/imaptest-build.sh)}
mbox=target/imaptest/stress-200.mbox
[ -f "$mbox" ] || { echo "no $mbox: run infra/bench/imaptest.sh once first" >&2; exit 1; }
if ! [ -x /usr/lib/dovecot/imap ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
fi
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  [ -f "$work/dovecot.conf" ] && doveadm -c "$work/dovecot.conf" stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
# shellcheck source=infra/bench/demo_pushmail.sh
. infra/bench/demo_pushmail.sh
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
# Time no task ran (idle and waiting on the disk), all cores.
unused() { awk '/^cpu /{print $5+$6}' /proc/stat; }
hz=$(getconf CLK_TCK)

# Logs each user in once, 8 at a time, before the measured load (unless WARM=0).
warm_logins() {
  [ "${WARM:-1}" = 0 ] || python3 infra/bench/imap_logins.py "$1" --warm --secs 0
}

# Runs the load against PORT; prints "NAME cmd/s, µs of CPU per command".
load() {
  local name=$1 port=$2 before after idle_before idle_after
  before=$(busy) idle_before=$(unused)
  /usr/bin/time -f '%U %S' -o "$work/time" "$imaptest" host=127.0.0.1 port="$port" \
    user='user%d@example.com' pass=imaptest-password users=100 clients="$clients" secs="$secs" \
    mbox="$mbox" logout="$logout" >"$work/$name.log" 2>&1 || true
  after=$(busy) idle_after=$(unused)
  [ -z "${KEEP_LOGS:-}" ] || { mkdir -p "$KEEP_LOGS" && cp "$work/$name.log" "$KEEP_LOGS/"; }
  python3 - "$name" "$work/$name.log" "$work/time" "$((after - before))" "$hz" "$secs" \
    "$((idle_after - idle_before))" <<'EOF'
import sys
name, log, timing, busy, hz, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
unused = int(sys.argv[7])
lines = open(log, errors="replace").read().splitlines()
at = max(i for i, line in enumerate(lines) if line.startswith("Totals:"))
commands = sum(int(n) for n in lines[at + 4].split() if n.isdigit())
user, system = (float(x) for x in open(timing).read().split()[-2:])
errors = sum("error" in line.lower() for line in lines)
served = busy / hz - user - system
open(log + ".rate", "w").write(f"{commands / secs}\n")
# The server's CPU a command over imaptest's: both move with the machine's speed, their ratio
# far less (a figure to compare builds by); and the share of the machine no task used.
print(f"{name}: {commands / secs:,.0f} cmd/s, {served / commands * 1e6:.0f} µs of CPU per command "
      f"(imaptest's own: {(user + system) / commands * 1e6:.0f} µs), {errors} error lines; "
      f"server/imaptest CPU {served / (user + system):.2f}, machine idle {100 * unused / (unused + busy):.0f} %")
EOF
}

dovecot_port=$(free_port)
mkdir -p "$work/run" "$work/state"
for n in $(seq 1 100); do
  echo "user$n@example.com:{PLAIN}imaptest-password:65534:65534::$work/mail/user$n::"
done >"$work/passwd"
cat >"$work/dovecot.conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $work/passwd
}
userdb {
  driver = passwd-file
  args = $work/passwd
}
service imap-login {
  inet_listener imap {
    port = $dovecot_port
  }
  inet_listener imaps {
    port = 0
  }
}
default_internal_user = nobody
default_login_user = nobody
EOF

# One run against a fresh pushmail: started, 100 accounts made, loaded, stopped, its data gone.
run_pushmail() {
  start_demo_pushmail "$bin" "$work/pushmail-$1"
  warm_logins "$imap"
  perf_pid=
  if [ -n "${PERF_DATA:-}" ]; then
    perf record ${PERF_ARGS:--g} -o "$PERF_DATA" -p "$pid" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  load pushmail "$imap"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  rm -rf "$work/pushmail-$1"
}

chmod 755 "$work"

# One run against a fresh Dovecot: empty maildirs, started, loaded, stopped.
run_dovecot() {
  rm -rf "$work/mail" && mkdir -p "$work/mail" && chmod 777 "$work/mail"
  dovecot -c "$work/dovecot.conf"
  sleep 1
  warm_logins "$dovecot_port"
  load dovecot "$dovecot_port"
  doveadm -c "$work/dovecot.conf" stop
  sleep 1
}

rate() { cat "$work/$1.log.rate"; }
ratios=()
for round in $(seq 1 "$rounds"); do
  [ "$rounds" -eq 1 ] || echo "round $round of $rounds"
  if [ -n "${SKIP_DOVECOT:-}" ]; then
    run_pushmail "$round"
    continue
  fi
  if [ $((round % 2)) -eq 1 ]; then run_pushmail "$round"; run_dovecot; else run_dovecot; run_pushmail "$round"; fi
  ratios+=("$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$(rate pushmail)" "$(rate dovecot)")")
  echo "ratio: ${ratios[-1]}×"
done
if [ "${#ratios[@]}" -gt 1 ]; then
  python3 -c "import statistics, sys; r = sorted(float(x) for x in sys.argv[1:]); print(f'ratios {\" \".join(f\"{x:.2f}\" for x in r)}; median {statistics.median(r):.2f}×')" "${ratios[@]}"
fi
