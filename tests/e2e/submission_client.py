#!/usr/bin/env python3
"""Python's smtplib against pushmail's submission listener, as a device's mail client would use
it: STARTTLS, then AUTH (a wrong password first), then a message to another domain. The message
must reach the smarthost (Postfix's smtp-sink, dumping each message into --sink-dir) with a DKIM
signature that dkimpy verifies against the demo's published record, and a copy must be in the
sender's Sent folder (admin API).

    python3 submission_client.py --port 2587 --user alice@example.com --password alice-password \
        --sink-dir DIR --dkim-record 'v=DKIM1; k=ed25519; p=...' --admin http://127.0.0.1:8081
"""

import argparse
import glob
import json
import os
import smtplib
import ssl
import sys
import time
import urllib.request
from email.message import EmailMessage

import dkim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--sink-dir", required=True)
    parser.add_argument("--dkim-record", required=True)
    parser.add_argument("--admin", required=True)
    args = parser.parse_args()
    domain = args.user.split("@", 1)[1]
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} submission: {name}{'' if ok else ': ' + str(detail)}")
        passed, failed = passed + ok, failed + (not ok)

    # The demo's certificate is self-signed: this client checks the conversation, not the CA.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    subject = f"device mail {time.time_ns()}"
    with smtplib.SMTP(args.host, args.port, timeout=10) as smtp:
        smtp.ehlo("device.example")
        check("STARTTLS offered", smtp.has_extn("starttls"))
        smtp.starttls(context=context)
        smtp.ehlo("device.example")
        check("AUTH offered over TLS", "PLAIN" in smtp.esmtp_features.get("auth", "").upper())
        try:
            smtp.login(args.user, "wrong-password")
            check("a wrong password is refused", False, "accepted")
        except smtplib.SMTPAuthenticationError as error:
            check("a wrong password is refused with 535 5.7.8",
                  error.smtp_code == 535 and error.smtp_error.startswith(b"5.7.8"), error)
        smtp.login(args.user, args.password)
        try:
            smtp.sendmail(f"boss@{domain}", ["bob@example.net"], b"Subject: x\r\n\r\nx\r\n")
            check("another sender is refused", False, "accepted")
        except smtplib.SMTPSenderRefused as error:
            check("another sender is refused with 553", error.smtp_code == 553, error)
        message = EmailMessage()
        message["From"] = args.user
        message["To"] = "bob@example.net"
        message["Subject"] = subject
        message.set_content("Sent from my phone.\n.a line with a dot\n")
        refused = smtp.send_message(message)
        check("the message is accepted", refused == {}, refused)

    relayed = None
    deadline = time.time() + 15
    while relayed is None and time.time() < deadline:
        for path in glob.glob(os.path.join(args.sink_dir, "*")):
            with open(path, "rb") as file:
                raw = file.read()
            if subject.encode() in raw:
                relayed = raw
        time.sleep(0.2)
    check("the smarthost received it", relayed is not None, "nothing in the sink")
    if relayed is not None:
        record = args.dkim_record.encode()
        dns = lambda name, timeout=5: record if name == f"demo._domainkey.{domain}.".encode() else None
        check("its DKIM signature verifies (dkimpy)", dkim.verify(relayed, dnsfunc=dns), relayed[:600])
        check("dot-stuffing survived the relay", b"\n.a line with a dot" in relayed)

    request = urllib.request.Request(
        f"{args.admin}/admin/accounts/{args.user}/folders/Sent/messages",
        headers={"Authorization": f"Bearer {os.environ['PUSHMAIL_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        sent = json.load(answer)
    subjects = [m["subject"] for m in sent.get("items", [])]
    check("a copy is in Sent", subject in subjects, subjects)

    print(f"submission: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
