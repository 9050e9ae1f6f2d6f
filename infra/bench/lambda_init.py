#!/usr/bin/env python3
"""Lambda start-up time of the built functions, as the Lambda service sees it: from process
start to the function's first `GET /2018-06-01/runtime/invocation/next` against a stand-in
Runtime API on loopback. A benchmark, run by hand (figures in docs/benchmarks.md):

    cargo build --release -p pushmail-subscribe -p pushmail-admin --bin subscribe --bin admin \
        --example bare_lambda
    python3 infra/bench/lambda_init.py [--starts 20]

`bare_lambda` (functions/subscribe/examples) is a bare lambda_http + axum function with the
same release profile: the yardstick. Standard library only.
"""

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARIES = {
    "bare lambda_http + axum": "target/release/examples/bare_lambda",
    "subscribe": "target/release/subscribe",
    "admin": "target/release/admin",
}

first_poll = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            first_poll.set()
            # Hold the poll open, as Lambda does while there is no event; the child is killed.
            time.sleep(5)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def start_once(binary, port):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "PUSHMAIL_TABLE": "bench",
        "RUST_LOG": "warn",
    }
    first_poll.clear()
    started = time.perf_counter()
    child = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not first_poll.wait(10):
            sys.exit(f"{binary} never polled the Runtime API")
        return (time.perf_counter() - started) * 1000
    finally:
        child.kill()
        child.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    results = {}
    for name, path in BINARIES.items():
        binary = os.path.join(ROOT, path)
        if not os.path.exists(binary):
            sys.exit(f"{path} is missing: build it first (see this script's header)")
        start_once(binary, port)  # warm the page cache
        results[name] = sorted(start_once(binary, port) for _ in range(args.starts))
    bare = statistics.median(results["bare lambda_http + axum"])
    print(f"{'function':<26}{'p50 ms':>8}{'p90 ms':>8}{'min':>8}{'max':>8}{'p50/bare':>10}")
    for name, times in results.items():
        p50 = statistics.median(times)
        p90 = times[int(len(times) * 0.9) - 1]
        print(f"{name:<26}{p50:8.1f}{p90:8.1f}{times[0]:8.1f}{times[-1]:8.1f}{p50 / bare:10.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
