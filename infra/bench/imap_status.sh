#!/usr/bin/env bash
# What a STATUS (MESSAGES UNSEEN RECENT) costs the server over a folder of many messages: the
# process's CPU time (user + system, from /proc) over that many STATUS commands, one client.
# STATUS UNSEEN reads every message of the folder; imaptest's stress load sends one in every
# twelve or so commands.
#
#   infra/bench/imap_status.sh [messages] [statuses]     # defaults: 1000 3000
#
# PUSHMAIL_BIN picks the binary (default target/release/pushmail, built if missing). A fresh
# `pushmail --demo` in a temporary folder, user1@example.com's INBOX filled by APPEND (every
# other message \Seen), then the STATUS commands; stops what it starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
messages=${1:-1000} statuses=${2:-3000}
# shellcheck source=infra/bench/demo_pushmail.sh
source infra/bench/demo_pushmail.sh
start_bench_pushmail
PYTHONPATH=infra/bench python3 - "$imap" "$pid" "$messages" "$statuses" <<'PY'
import sys
import time

from bench_client import cpu_seconds, logged_in_client

port, pid, messages, statuses = (int(arg) for arg in sys.argv[1:5])

client = logged_in_client(port)
message = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nbody\r\n"
for n in range(messages):
    client.append("INBOX", "(\\Seen)" if n % 2 else None, None, message)
answer = client.status("INBOX", "(MESSAGES UNSEEN RECENT)")[1][0].decode()
expected = f"MESSAGES {messages} UNSEEN {(messages + 1) // 2}"
if expected not in answer:
    sys.exit(f"STATUS answered {answer!r}, not {expected}")
cpu, started = cpu_seconds(pid), time.perf_counter()
for _ in range(statuses):
    client.status("INBOX", "(MESSAGES UNSEEN RECENT)")
elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
client.logout()
print(
    f"{statuses} STATUS over {messages} messages: {cpu / statuses * 1e6:.0f} µs of the "
    f"server's CPU each, {elapsed / statuses * 1e6:.0f} µs each at the client"
)
PY
