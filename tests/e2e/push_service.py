"""A push service that knows only docs/protocol.md (and spec §1-3), driving a running Subscribe URL.

Links, re-links and unlinks one account the way a BIS-like service would, and checks every answer
and the activation mails SES recorded. Standard library only.

    python3 push_service.py --url http://127.0.0.1:8080/subscribe --secret S --email E --password P \
        [--moto http://127.0.0.1:4566]
"""

import argparse
import hashlib
import hmac
import json
import sys
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


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--url", "--secret", "--email", "--password"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--moto")
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

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
