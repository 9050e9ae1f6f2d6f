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
python3 - "$imap" "$pid" "$messages" "$statuses" <<'PY'
import imaplib
import socket
import sys
import time

port, pid, messages, statuses = (int(arg) for arg in sys.argv[1:5])


def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


client = imaplib.IMAP4("127.0.0.1", port)
# imaplib sends an APPEND's literal and its line end in two writes: without this, each waits
# for the server's delayed ACK (40 ms), and filling the folder takes minutes.
client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
client.login("user1@example.com", "imaptest-password")
message = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nbody\r\n"
for n in range(messages):
    client.append("INBOX", "(\\Seen)" if n % 2 else None, None, message)
answer = client.status("INBOX", "(MESSAGES UNSEEN RECENT)")[1][0].decode()
expected = f"MESSAGES {messages} UNSEEN {(messages + 1) // 2}"
if expected not in answer:
    sys.exit(f"STATUS answered {answer!r}, not {expected}")
cpu, started = cpu_seconds(), time.perf_counter()
for _ in range(statuses):
    client.status("INBOX", "(MESSAGES UNSEEN RECENT)")
elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
client.logout()
print(
    f"{statuses} STATUS over {messages} messages: {cpu / statuses * 1e6:.0f} µs of the "
    f"server's CPU each, {elapsed / statuses * 1e6:.0f} µs each at the client"
)
PY
