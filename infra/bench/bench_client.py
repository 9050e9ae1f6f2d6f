"""What the one-process IMAP bench scripts share: the server's CPU time from /proc, and an
imaplib client logged in as the demo's user1 (`demo_pushmail.sh`'s `start_bench_pushmail`)."""

import imaplib
import socket

DEMO_USER = "user1@example.com"
DEMO_PASSWORD = "imaptest-password"


def cpu_seconds(pid):
    """The process's user + system CPU time in seconds (/proc counts 10 ms ticks)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def logged_in_client(port):
    """An imaplib client of the demo's first user on 127.0.0.1:port."""
    client = imaplib.IMAP4("127.0.0.1", port)
    # imaplib sends an APPEND's literal and its line end in two writes: without this, each
    # waits for the server's delayed ACK (40 ms), and filling a folder takes minutes.
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(DEMO_USER, DEMO_PASSWORD)
    return client
