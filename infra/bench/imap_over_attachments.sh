#!/usr/bin/env bash
# What one command costs the server over a folder of messages that each carry an attachment,
# in a process that has kept no summary of them yet: by default a client's first listing of the
# folder, FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE); or a search on a header field, or any
# command given. The process's CPU time (user + system, from /proc) over that command, and its
# time at the client; then the same for the command asked again (what the summaries kept).
#
#   infra/bench/imap_over_attachments.sh [messages] [kilobytes] [command] [shape]
#   # defaults: 200 256 'FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)' multipart;
#   # e.g. 'SEARCH FROM bob', or 'FETCH 1:* (BODYSTRUCTURE)' single
#
# shape: multipart (a line of text and the attachment) or single (the attachment alone, as a
# scanner sends it: a message of one part).
# PUSHMAIL_BIN picks the binary (default target/release/pushmail, built if missing). A fresh
# `pushmail --demo` in a temporary folder, the messages APPENDed to user1@example.com's INBOX,
# then the command; stops what it starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
messages=${1:-200} kilobytes=${2:-256}
command=${3:-FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)}
shape=${4:-multipart}
# shellcheck source=infra/bench/demo_pushmail.sh
source infra/bench/demo_pushmail.sh
start_bench_pushmail
PYTHONPATH=infra/bench python3 - "$imap" "$pid" "$messages" "$kilobytes" "$command" "$shape" <<'PY'
import base64
import os
import sys
import time

from bench_client import cpu_seconds, logged_in_client

port, pid, messages, kilobytes = (int(arg) for arg in sys.argv[1:5])
command, shape = sys.argv[5:7]

encoded = base64.encodebytes(os.urandom(kilobytes * 768)).replace(b"\n", b"\r\n")
client = logged_in_client(port)
for n in range(messages):
    header = (
        f"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: report {n}\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    )
    pdf = "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    if shape == "single":
        message = (header + pdf).encode() + encoded
    else:
        message = (
            header + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n" + pdf
        ).encode() + encoded + b"--b--\r\n"
    client.append("INBOX", None, None, message)
client.select("INBOX", readonly=True)
name, _, arguments = command.partition(" ")
for time_asked in ("first", "again"):
    cpu, started = cpu_seconds(pid), time.perf_counter()
    status, answers = client._simple_command(name.upper(), arguments)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    if status != "OK":
        sys.exit(f"{command} answered {status}: {answers}")
    print(
        f"{command} over {messages} messages of {kilobytes} KiB, {time_asked}: "
        f"{cpu * 1e3:.0f} ms of the server's CPU, {elapsed * 1e3:.0f} ms at the client"
    )
client.logout()
PY
