#!/usr/bin/env python3
"""Memory of idle sessions with COMPRESS=DEFLATE on: N sessions each LOGIN, COMPRESS DEFLATE,
SELECT INBOX and IDLE, against a running pushmail (README command 1, or `pushmail --demo`);
the server's resident memory (VmRSS of --pid) before and after, over N. With --plain, the same
sessions without COMPRESS, for the difference.

    python3 infra/bench/imap_deflate_memory.py --port 1143 --pid PID --user alice@example.com \\
        --password alice-password --sessions 500 [--plain]
"""

import argparse
import socket
import time
import zlib


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


class Session:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.deflate = self.inflate = None
        self.buffer = b""
        self.line()

    def send(self, data):
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("closed")
            self.buffer += self.inflate.decompress(chunk) if self.inflate else chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def command(self, tag, text):
        self.send(f"{tag} {text}\r\n".encode())
        while True:
            line = self.line()
            if line.startswith(tag.encode() + b" "):
                if b" OK" not in line:
                    raise SystemExit(f"{text}: {line!r}")
                return


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--plain", action="store_true", help="without COMPRESS, for comparison")
    args = parser.parse_args()
    warm = Session(args.port)
    warm.command("w", f'LOGIN {args.user} "{args.password}"')
    warm.command("s", "SELECT INBOX")
    time.sleep(1)
    before = rss(args.pid)
    sessions = []
    for _ in range(args.sessions):
        session = Session(args.port)
        session.command("l", f'LOGIN {args.user} "{args.password}"')
        if not args.plain:
            session.command("c", "COMPRESS DEFLATE")
            session.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            session.inflate = zlib.decompressobj(-15)
        session.command("s", "SELECT INBOX")
        session.send(b"i IDLE\r\n")
        session.line()
        sessions.append(session)
    time.sleep(2)
    after = rss(args.pid)
    kind = "plaintext" if args.plain else "plaintext + COMPRESS=DEFLATE"
    print(f"| {args.sessions} | {kind} | {before / 1e6:.1f} MB | {after / 1e6:.1f} MB | "
          f"{(after - before) / args.sessions / 1024:.1f} KB |")


if __name__ == "__main__":
    main()
