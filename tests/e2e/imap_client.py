#!/usr/bin/env python3
"""Real IMAP clients against pushmail's IMAP listener: imaplib over STARTTLS (LOGIN, LIST with
SPECIAL-USE, SELECT, FETCH) and IMAPClient's IDLE, woken by a mail sent over SMTP.

    python3 imap_client.py --imap-port 1143 --smtp-port 2525 --user alice@example.com --password P
"""

import argparse
import imaplib
import smtplib
import ssl
import sys
import time

from imapclient import IMAPClient


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--imaps-port", type=int, help="also log in over IMAPS (TLS from the start)")
    args = parser.parse_args()
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} imap: {name}{'' if ok else ': ' + str(detail)}")
        passed, failed = passed + ok, failed + (not ok)

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the demo's certificate is self-signed
    imap = imaplib.IMAP4("127.0.0.1", args.imap_port)
    check("STARTTLS offered", "STARTTLS" in imap.capabilities, imap.capabilities)
    imap.starttls(ssl_context=context)
    typ, _ = imap.login(args.user, args.password)
    check("LOGIN over TLS", typ == "OK")
    typ, folders = imap.list()
    listed = b" ".join(folders)
    check("LIST shows INBOX and the special-use folders",
          all(f in listed for f in [b"INBOX", b"(\\Sent)", b"(\\Trash)", b"(\\Drafts)", b"(\\Junk)"]), listed)
    typ, data = imap.select("INBOX")
    check("SELECT INBOX", typ == "OK", data)
    before = int(data[0])
    imap.logout()

    subject = f"imap e2e {time.time_ns()}"
    with IMAPClient("127.0.0.1", port=args.imap_port, ssl=False) as client:
        client.login(args.user, args.password)
        client.select_folder("INBOX")
        client.idle()
        sent_at = time.monotonic()
        with smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=10) as smtp:
            smtp.sendmail("sender@e2e.example", [args.user],
                          f"From: sender@e2e.example\r\nSubject: {subject}\r\n\r\nhi\r\n")
        responses = client.idle_check(timeout=10)
        woke = time.monotonic() - sent_at
        client.idle_done()
        check("IMAPClient IDLE is told EXISTS", any(r[1] == b"EXISTS" for r in responses), responses)
        print(f"     SMTP sent -> EXISTS at the idler in {woke * 1000:.1f} ms")
        uids = client.fetch("1:*", ["UID"])
        newest = max(uids)
        fetched = client.fetch([newest], ["BODY.PEEK[]", "RFC822.SIZE"])
        body = fetched[newest][b"BODY[]"]
        check("the new message can be fetched", subject.encode() in body, body[:200])
        check("there is one more message", len(uids) == before + 1, (len(uids), before))

    if args.imaps_port:
        with IMAPClient("127.0.0.1", port=args.imaps_port, ssl=True, ssl_context=context) as client:
            caps = client.capabilities()
            check("IMAPS offers LOGIN, not STARTTLS",
                  b"STARTTLS" not in caps and b"LOGINDISABLED" not in caps, caps)
            client.login(args.user, args.password)
            selected = client.select_folder("INBOX")
            check("IMAPS LOGIN and SELECT", selected[b"EXISTS"] >= 1, selected)

    print(f"imap: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
