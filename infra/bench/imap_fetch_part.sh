#!/usr/bin/env bash
# What a FETCH of BODY.PEEK[1] costs the server for one message of one part: the process's CPU
# time (user + system, from /proc) over that many FETCHes, one client. A client that shows a
# message's text fetches its part 1; the message here is quoted-printable Latin-1 text of the
# size asked, the kind a full parse decodes to the end.
#
#   infra/bench/imap_fetch_part.sh [kilobytes] [fetches]     # defaults: 256 2000
#
# PUSHMAIL_BIN picks the binary (default target/release/pushmail, built if missing). A fresh
# `pushmail --demo` in a temporary folder, the message APPENDed to user1@example.com's INBOX, then
# the FETCHes; stops what it starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
kilobytes=${1:-256} fetches=${2:-2000}
# shellcheck source=infra/bench/demo_pushmail.sh
source infra/bench/demo_pushmail.sh
start_bench_pushmail
PYTHONPATH=infra/bench python3 - "$imap" "$pid" "$kilobytes" "$fetches" <<'PY'
import sys
import time

from bench_client import cpu_seconds, logged_in_client

port, pid, kilobytes, fetches = (int(arg) for arg in sys.argv[1:5])

line = b"Caf=E9 cr=E8me br=FBl=E9e, d=E9j=E0 vu: a line of quoted-printable text =\r\n"
body = line * (kilobytes * 1024 // len(line) + 1)
message = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body
)
client = logged_in_client(port)
client.append("INBOX", None, None, message)
client.select("INBOX", readonly=True)
answer = client.fetch("1", "(BODY.PEEK[1])")[1][0]
if answer[1] != body:
    sys.exit("FETCH BODY.PEEK[1] did not answer the message's text as stored")
cpu, started = cpu_seconds(pid), time.perf_counter()
for _ in range(fetches):
    client.fetch("1", "(BODY.PEEK[1])")
elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
client.logout()
print(
    f"{fetches} FETCH BODY.PEEK[1] of {len(message) // 1024} KiB: {cpu / fetches * 1e6:.0f} µs "
    f"of the server's CPU each, {elapsed / fetches * 1e6:.0f} µs each at the client"
)
PY
