#!/usr/bin/env python3
"""Peak memory of the pushmail process under a flood of unauthenticated password checks: 100
parallel self-service logins with wrong passwords (HTTP Basic), several rounds, against
`pushmail --demo` on a fresh embedded store. Prints the process's peak RSS (VmHWM) and how the
logins were answered. A benchmark, run by hand (figures in docs/benchmarks.md):

    cargo build --release -p pushmail
    python3 infra/bench/login_flood.py [--parallel 100] [--rounds 5] [--sources 20] [--hash-concurrency 4]

Standard library only. Target: peak RSS under 200 MB (before the hashing gate: 2.0 GB).
"""

import argparse
import base64
import collections
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def login(port, user, source, results):
    token = base64.b64encode(f"{user}:wrong-password".encode()).decode()
    try:
        # From one of several loopback addresses, so the per-source limit does not end the flood.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                                source_address=(source, 0))
        connection.request("GET", "/self/pushed-folders", headers={"Authorization": f"Basic {token}"})
        results[connection.getresponse().status] += 1
        connection.close()
    except OSError:
        results["error"] += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hash-concurrency", type=int, default=4)
    parser.add_argument("--sources", type=int, default=20, help="loopback addresses to send from")
    args = parser.parse_args()
    binary = os.path.join(ROOT, "target/release/pushmail")
    if not os.path.exists(binary):
        sys.exit("target/release/pushmail is missing: cargo build --release -p pushmail")
    data = tempfile.mkdtemp(prefix="pushmail-flood-")
    sub, admin = free_port(), free_port()
    process = subprocess.Popen(
        [binary, "--demo", "--data-dir", data,
         "--subscribe-addr", f"127.0.0.1:{sub}", "--admin-addr", f"127.0.0.1:{admin}",
         "--hash-concurrency", str(args.hash_concurrency),
         "--http-max-connections-per-source", str(args.parallel + 10)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"})
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/admin/openapi.yaml", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        idle = peak_rss_kib(process.pid)
        results = collections.Counter()
        started = time.perf_counter()
        for round_ in range(args.rounds):
            # A different account each login: the per-account limit does not stop the flood.
            threads = [threading.Thread(target=login, args=(
                admin, f"u{round_}x{i}@example.com", f"127.0.0.{2 + i % args.sources}", results))
                for i in range(args.parallel)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        took = time.perf_counter() - started
        peak = peak_rss_kib(process.pid)
        print(f"{args.rounds} rounds of {args.parallel} parallel wrong logins from {args.sources} "
              f"addresses in {took:.1f} s, hash concurrency {args.hash_concurrency}")
        print(f"answers: {dict(results)}")
        print(f"peak RSS: {peak / 1024:.1f} MiB (idle before the flood: {idle / 1024:.1f} MiB)")
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
