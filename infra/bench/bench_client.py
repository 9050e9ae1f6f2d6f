"""What the one-process IMAP bench scripts (and the PGO training) share: the server's CPU time
from /proc, and an imaplib client logged in as one of the demo's users (`demo_pushmail.sh`'s
`start_bench_pushmail`)."""

import imaplib
import socket

DEMO_USER = "user1@example.com"
DEMO_PASSWORD = "imaptest-password"


def cpu_seconds(pid):
    """The process's user + system CPU time in seconds (/proc counts 10 ms ticks)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def logged_in_client(port, address=DEMO_USER):
    """An imaplib client logged in on 127.0.0.1:port as `address` (a demo account: the demo's
    first user unless told)."""
    client = imaplib.IMAP4("127.0.0.1", port)
    # imaplib sends an APPEND's literal and its line end in two writes: without this, each
    # waits for the server's delayed ACK (40 ms), and filling a folder takes minutes.
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(address, DEMO_PASSWORD)
    return client
