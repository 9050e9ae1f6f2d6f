#!/usr/bin/env python3
"""Two listener processes on one DynamoDB table: a mail taken by SMTP on one wakes an IMAPClient
idler on the other, and a flag set over IMAP on one reaches the idler too. Both processes poll
the change log only every 60 s here, so only a hint over SNS and SQS can wake the idler in time.

    python3 two_listeners.py --smtp-port A --imap-port-a A --imap-port-b B --user U --password P
"""

import argparse
import smtplib
import sys
import time

from imapclient import IMAPClient


def measure(args):
    """SMTP 250 on A -> `* n EXISTS` at an idler on B, `--latency-runs` times."""
    latencies = []
    with IMAPClient("127.0.0.1", port=args.imap_port_b, ssl=False) as idler, \
            smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=10) as smtp:
        idler.login(args.user, args.password)
        idler.select_folder("INBOX")
        idler.idle()
        for n in range(args.latency_runs):
            smtp.sendmail("bench@e2e.example", [args.user],
                          f"From: bench@e2e.example\r\nSubject: latency {n}\r\n\r\nx\r\n")
            acknowledged = time.monotonic()
            while not any(r[1] == b"EXISTS" for r in idler.idle_check(timeout=args.within)):
                pass
            latencies.append(time.monotonic() - acknowledged)
        idler.idle_done()
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp-port", type=int, required=True, help="process A's SMTP")
    parser.add_argument("--imap-port-a", type=int, required=True)
    parser.add_argument("--imap-port-b", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--within", type=float, default=10.0, help="seconds (the poll is 60)")
    parser.add_argument("--latency-runs", type=int, default=0,
                        help="then measure SMTP 250 on A -> EXISTS on B this many times (a benchmark)")
    args = parser.parse_args()
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} two listeners: {name}{'' if ok else ': ' + str(detail)}")
        passed, failed = passed + ok, failed + (not ok)

    subject = f"two listeners {time.time_ns()}"
    with IMAPClient("127.0.0.1", port=args.imap_port_b, ssl=False) as idler:
        idler.login(args.user, args.password)
        idler.select_folder("INBOX")
        idler.idle()
        sent = time.monotonic()
        with smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=10) as smtp:
            smtp.sendmail("sender@e2e.example", [args.user],
                          f"From: sender@e2e.example\r\nSubject: {subject}\r\n\r\nhi\r\n")
        responses = []
        while time.monotonic() - sent < args.within and not any(r[1] == b"EXISTS" for r in responses):
            responses += idler.idle_check(timeout=0.5)
        woke = time.monotonic() - sent
        check("SMTP on A wakes an idler on B with EXISTS", any(r[1] == b"EXISTS" for r in responses),
              responses)
        print(f"     SMTP 250 on A -> EXISTS on B in {woke * 1000:.0f} ms (moto; poll 60 s)")
        exists = next((r[0] for r in responses if r[1] == b"EXISTS"), None)

        # A flag set through A reaches B's idler as FETCH.
        with IMAPClient("127.0.0.1", port=args.imap_port_a, ssl=False) as other:
            other.login(args.user, args.password)
            other.select_folder("INBOX")
            newest = max(other.search(["SUBJECT", subject]))
            other.add_flags([newest], [b"\\Flagged"])
        flagged = time.monotonic()
        responses = []
        while time.monotonic() - flagged < args.within and not any(r[1] == b"FETCH" for r in responses):
            responses += idler.idle_check(timeout=0.5)
        check("a flag set on A reaches B's idler as FETCH",
              any(r[1] == b"FETCH" and b"\\Flagged" in str(r).encode() for r in responses), responses)
        idler.idle_done()
        fetched = idler.fetch([exists], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if exists else {}
        body = b"".join(v.get(b"BODY[HEADER.FIELDS (SUBJECT)]", b"") for v in fetched.values())
        check("B serves the message A took", subject.encode() in body, body)

    if args.latency_runs:
        latencies = measure(args)
        latencies.sort()
        pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))]
        print(f"     {len(latencies)} deliveries: SMTP 250 on A -> EXISTS on B "
              f"p50 {pick(0.50) * 1000:.1f} ms, p99 {pick(0.99) * 1000:.1f} ms")

    print(f"two listeners: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
