"""A push service that knows only docs/protocol.md (and spec §1-3), driving a running Subscribe URL.

Links, re-links and unlinks one account the way a BIS-like service would, and checks every answer
and the activation mails SES recorded. Standard library only.

    python3 push_service.py --url http://127.0.0.1:8080/subscribe --secret S --email E --password P \
        [--moto http://127.0.0.1:4566]
"""

import argparse
import hashlib
import hmac
import http.server
import json
import smtplib
import sys
import threading
import time
import urllib.error
import urllib.request

SUBJECT = "Email activation information (push mail)"


class PushService:
    def __init__(self, url, secret):
        self.url = url
        self.secret = secret.encode()
        self.last_timestamp = 0

    def post(self, message, content_type="application/json"):
        body = json.dumps(message).encode()
        # Every attempt is signed afresh; identical bodies need distinct timestamps.
        timestamp = max(int(time.time()), self.last_timestamp + 1)
        self.last_timestamp = timestamp
        mac = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Push-Timestamp": str(timestamp),
                "X-Push-Signature": f"v1={mac}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


class Callback:
    """The push service's callback endpoint on loopback: answers `status`, keeps every notice
    with whether its signature (spec §1) checks out and when it came."""

    def __init__(self, secret):
        self.status = 503
        self.received = []
        callback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stamp = self.headers.get("X-Push-Timestamp", "")
                mac = hmac.new(secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(self.headers.get("X-Push-Signature", ""), f"v1={mac}")
                callback.received.append((json.loads(body), signed, callback.status, time.monotonic()))
                self.send_response(callback.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/n/e2e"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, what, done, seconds=15):
        deadline = time.monotonic() + seconds
        while not done(self.received):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def new_mail_checks(push, check, email, password, smtp_port):
    """Spec §4 against the SMTP listener: a NEW_MAIL for mail sent while the callback was down,
    once it is up, and one within milliseconds with it up."""
    callback = Callback(push.secret)
    status, body = push.post({"type": "SUBSCRIBE", "email": email, "password": password,
                              "registration": "r-e2e-notices", "generation": 10,
                              "callback": callback.url})
    check("SUBSCRIBE with a loopback callback", status == 200, body)

    def send(subject):
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail("sender@e2e.example", [email],
                          f"From: sender@e2e.example\r\nSubject: {subject}\r\n\r\nhi\r\n")
        return time.monotonic()

    def announced(subject):
        return lambda got: any(n["subject"] == subject and s == 200 for n, _, s, _ in got)

    send("while the callback is down")
    check("the notice is tried while the callback is down",
          callback.wait("a failed attempt", lambda got: any(s == 503 for _, _, s, _ in got)))
    callback.status = 200
    check("NEW_MAIL arrives once the callback is back",
          callback.wait("the notice", announced("while the callback is down"), seconds=30),
          [n for n, _, _, _ in callback.received])
    sent_at = send("with the callback up")
    arrived = callback.wait("the second notice", announced("with the callback up"))
    check("NEW_MAIL arrives with the callback up", arrived)
    if arrived:
        at = next(t for n, _, s, t in callback.received if n["subject"] == "with the callback up")
        print(f"     250 -> NEW_MAIL in {(at - sent_at) * 1000:.1f} ms")
    notices = [n for n, _, _, _ in callback.received if n.get("type") == "NEW_MAIL"]
    check("every notice is signed with the domain secret", all(s for _, s, _, _ in callback.received))
    check("notices carry the spec's fields", all(
        {"id", "subscription", "registration", "email", "folder", "uid", "uidvalidity", "from",
         "subject", "received"} <= set(n) and n["email"] == email and n["registration"] == "r-e2e-notices"
        for n in notices), notices)
    ids = {n["id"] for n, _, _, _ in callback.received if n["subject"] == "while the callback is down"}
    check("a retried notice keeps its id", len(ids) == 1, ids)
    callback.server.shutdown()


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--url", "--secret", "--email", "--password"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--moto")
    parser.add_argument("--smtp-port", type=int, help="also check NEW_MAIL notices (spec §4)")
    args = parser.parse_args()
    push = PushService(args.url, args.secret)
    results = {"passed": 0, "failed": 0}

    def check(name, condition, detail=""):
        results["passed" if condition else "failed"] += 1
        print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"))

    def subscribe(registration, generation, password=args.password):
        return push.post({
            "type": "SUBSCRIBE", "email": args.email, "password": password,
            "registration": registration, "generation": generation,
            "callback": f"https://push.example.net/n/{registration}",
            "device": {"pin": "2A3B4C5D", "model": "Bold 9700"},
        })

    def unsubscribe(registration, generation):
        return push.post({"type": "UNSUBSCRIBE", "email": args.email,
                          "registration": registration, "generation": generation})

    def mails():
        if not args.moto:
            return None
        with urllib.request.urlopen(f"{args.moto}/moto-api/data.json") as response:
            data = json.loads(response.read())
        return [m for m in data["ses"]["Message"]
                if args.email.lower() in m["destinations"]["ToAddresses"] and m["subject"] == SUBJECT]

    status, body = subscribe("r-e2e-1", 1, password="wrong")
    check("wrong password is 401 bad_credentials", (status, body.get("error")) == (401, "bad_credentials"), body)
    status, first = subscribe("r-e2e-1", 1)
    check("SUBSCRIBE links", status == 200 and first.get("status") == "subscribed"
          and first.get("activation") == "sent", (status, first))
    status, replay = subscribe("r-e2e-1", 1)
    check("exact replay answers the same", (status, replay) == (200, first), replay)
    status, relinked = subscribe("r-e2e-2", 2)
    check("higher generation re-links", status == 200 and relinked.get("subscription") != first.get("subscription"),
          relinked)
    status, body = subscribe("r-e2e-1", 1)
    check("lower generation is 409", (status, body.get("error")) == (409, "stale_generation"), body)
    status, body = unsubscribe("r-e2e-1", 1)
    check("late UNSUBSCRIBE is ignored", (status, body) == (200, {"status": "ignored_stale"}), body)
    status, body = unsubscribe("r-e2e-2", 2)
    check("UNSUBSCRIBE unlinks", (status, body) == (200, {"status": "unsubscribed"}), body)
    status, body = unsubscribe("r-e2e-2", 2)
    check("second UNSUBSCRIBE", (status, body) == (200, {"status": "not_subscribed"}), body)
    sent = mails()
    if sent is not None:
        check("two activation mails, one per subscription", len(sent) == 2, sent)
    if args.smtp_port:
        new_mail_checks(push, check, args.email, args.password, args.smtp_port)

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
