#!/usr/bin/env python3
"""IMAP logins per second: CLIENTS clients, each connecting, logging in as one of USERS accounts
(user1..userN@example.com, password imaptest-password) and logging out, again and again, for
SECS seconds. Prints logins/s and the LOGIN's latency (from its command to its tagged answer).

    python3 infra/bench/imap_logins.py PORT [--clients 50] [--users 100] [--secs 10] [--warm]

--warm logs each account in once first (a server with a verified-credentials cache then checks
no password hash during the measured seconds); with --secs 0, that is all it does. Any answer
but OK to LOGIN or LOGOUT is an error: counted, printed, and the exit status is 1.
"""

import argparse
import asyncio
import random
import statistics
import sys
import time


async def session(port, user, latencies, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()  # greeting
        started = time.perf_counter()
        writer.write(f"a LOGIN user{user}@example.com imaptest-password\r\n".encode())
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed during LOGIN")
            if line.startswith(b"a "):
                break
        if not line.startswith(b"a OK"):
            errors.append(line.decode(errors="replace").strip())
            return
        latencies.append(time.perf_counter() - started)
        writer.write(b"b LOGOUT\r\n")
        while True:
            line = await reader.readline()
            if not line or line.startswith(b"b "):
                break
        if not line.startswith(b"b OK"):
            errors.append(f"LOGOUT: {line!r}")
    finally:
        writer.close()


async def client(port, users, until, latencies, errors):
    while time.perf_counter() < until:
        try:
            await session(port, random.randint(1, users), latencies, errors)
        except (OSError, ConnectionError) as error:
            errors.append(str(error))


def finish(errors, failed):
    for error in errors[:5]:
        print("error:", error, file=sys.stderr)
    sys.exit(1 if failed else 0)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--secs", type=float, default=10)
    parser.add_argument("--warm", action="store_true")
    args = parser.parse_args()
    errors = []
    if args.warm:
        warmed = []
        for first in range(1, args.users + 1, 8):
            batch = range(first, min(first + 8, args.users + 1))
            await asyncio.gather(*(session(args.port, n, warmed, errors) for n in batch))
    if args.secs == 0:
        finish(errors, failed=bool(errors))
    latencies = []
    started = time.perf_counter()
    until = started + args.secs
    await asyncio.gather(
        *(client(args.port, args.users, until, latencies, errors) for _ in range(args.clients))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    if latencies:
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
        print(
            f"{len(latencies) / elapsed:,.0f} logins/s from {args.clients} clients of "
            f"{args.users} accounts{' (warm)' if args.warm else ''}; LOGIN p50 {p(0.5):.2f} ms, "
            f"p90 {p(0.9):.2f} ms, p99 {p(0.99):.2f} ms, "
            f"mean {statistics.mean(latencies) * 1000:.2f} ms; {len(errors)} errors"
        )
    finish(errors, failed=bool(errors) or not latencies)


asyncio.run(main())
