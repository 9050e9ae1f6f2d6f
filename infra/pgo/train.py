#!/usr/bin/env python3
"""The training load for a profile-guided build (infra/pgo/build.sh): what the one process does
for mail clients and the push service, for SECS seconds, so the compiler learns which paths are
hot. Not the benchmark's load (imaptest): its own mix of commands, written from what clients send.

    PYTHONPATH=infra/bench python3 infra/pgo/train.py --imap PORT --smtp PORT [--users 20] [--secs 20]

Accounts user1..userN@example.com (password imaptest-password) must exist. IMAP clients each
log in, fill and read their folders (APPEND of plain, multipart and encoded mail; FETCH of
flags, envelopes, structures, headers, sections and whole messages; STORE; SEARCH, SORT and
THREAD; COPY; EXPUNGE; STATUS; LIST; IDLE), some logging out and in again; SMTP clients deliver
mail to the same accounts. Any tagged answer but OK, or any SMTP refusal, is an error: counted,
the first few printed, and the exit status is 1 (a build trained on failures learns the wrong
paths).
"""

import argparse
import random
import smtplib
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate

from bench_client import logged_in_client  # infra/bench, on PYTHONPATH

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def message(rng, to):
    """A message like those clients append and servers receive: plain, multipart with an
    attachment, or with non-ASCII headers and text; from a few hundred bytes to about 40 KB."""
    mail = EmailMessage()
    sender = rng.randrange(17)
    mail["From"] = f"Sender {sender} <sender{sender}@example.org>"
    mail["To"] = to
    if rng.random() < 0.3:
        mail["Cc"] = f"list{rng.randrange(4)}@example.org, Other <other@example.net>"
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 7)))
    mail["Subject"] = ("Re: " if rng.random() < 0.3 else "") + subject
    if rng.random() < 0.2:
        mail.replace_header("Subject", subject + " — café résumé")
    mail["Date"] = formatdate(time.time() - rng.randrange(10**7), localtime=False)
    mail["Message-ID"] = f"<train-{rng.getrandbits(64):x}@example.org>"
    if rng.random() < 0.3:
        mail["In-Reply-To"] = f"<train-{rng.getrandbits(64):x}@example.org>"
    lines = "\n".join(
        " ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(rng.randrange(5, 400))
    )
    kind = rng.random()
    if kind < 0.6:
        mail.set_content(lines)
    elif kind < 0.8:
        mail.set_content(lines)
        mail.add_alternative(f"<html><body><p>{lines}</p></body></html>", subtype="html")
    else:
        mail.set_content(lines + "\nÜmlaut and ñ.\n")
        mail.add_attachment(
            rng.randbytes(rng.randrange(512, 32 * 1024)),
            maintype="application",
            subtype="octet-stream",
            filename="data.bin",
        )
    return mail.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Errors:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0

    def add(self, what):
        with self.lock:
            self.count += 1
            if self.count <= 5:
                print(f"train: {what}", file=sys.stderr)


def check(errors, what, answer):
    typ, data = answer
    if typ != "OK":
        errors.add(f"{what}: {typ} {data!r}")
    return data


def idle_briefly(client, errors):
    """IDLE, then DONE: imaplib of Python 3.11 has no IDLE of its own."""
    tag = client._new_tag().decode()
    client.send(f"{tag} IDLE\r\n".encode())
    if not client.readline().startswith(b"+"):
        errors.add("IDLE: no continuation")
        return
    client.send(b"DONE\r\n")
    while True:
        line = client.readline()
        if not line or line.startswith(tag.encode()):
            break
    if not line.startswith(f"{tag} OK".encode()):
        errors.add(f"IDLE: {line!r}")


def imap_client(port, user, deadline, seed, errors):
    rng = random.Random(seed)
    to = f"User {user} <user{user}@example.com>"
    client = logged_in_client(port, f"user{user}@example.com")
    folder = f"Train{seed}"
    check(errors, "CREATE", client.create(folder))
    check(errors, "SUBSCRIBE", client.subscribe(folder))
    while time.time() < deadline:
        for _ in range(rng.randrange(1, 4)):
            flags = rng.choice(["", "(\\Seen)", "(\\Flagged $Work)"])
            check(errors, "APPEND", client.append("INBOX", flags, None, message(rng, to)))
        check(errors, "LIST", client.list('""', "*"))
        check(errors, "LSUB", client.lsub('""', "*"))
        check(errors, "STATUS", client.status(folder, "(MESSAGES UNSEEN UIDNEXT HIGHESTMODSEQ)"))
        exists = int(check(errors, "SELECT", client.select("INBOX"))[0] or 0)
        if exists == 0:
            continue
        check(errors, "FETCH", client.fetch("1:*", "(UID FLAGS)"))
        low = max(1, exists - 20)
        check(errors, "FETCH", client.fetch(
            f"{low}:*", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"))
        check(errors, "FETCH", client.fetch(
            f"{low}:*", "(BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])"))
        one = rng.randrange(1, exists + 1)
        check(errors, "FETCH", client.fetch(str(one), "(BODY[])"))
        check(errors, "FETCH", client.fetch(str(one), "(BODY.PEEK[1] BODY.PEEK[1.MIME])"))
        check(errors, "FETCH", client.fetch(str(one), "(BODY.PEEK[TEXT]<0.2048> RFC822.HEADER)"))
        check(errors, "FETCH", client.fetch(str(one), "(BINARY.PEEK[1] BINARY.SIZE[1])"))
        check(errors, "UID FETCH", client.uid("FETCH", "1:*", "(FLAGS) (CHANGEDSINCE 1)"))
        check(errors, "STORE", client.store(f"{low}:*", "+FLAGS", "(\\Seen)"))
        check(errors, "STORE", client.store(str(one), "+FLAGS", "($Keyword" + str(seed % 5) + ")"))
        check(errors, "STORE", client.store(str(one), "-FLAGS.SILENT", "(\\Flagged)"))
        check(errors, "SEARCH", client.search(None, "UNSEEN"))
        check(errors, "SEARCH", client.search(None, f'(FROM "sender{rng.randrange(17)}")'))
        check(errors, "SEARCH", client.search(None, f'(SUBJECT "{rng.choice(WORDS)}" SINCE 1-Jan-2020)'))
        check(errors, "SEARCH", client.search(None, f"BODY {rng.choice(WORDS)}"))
        check(errors, "SORT", client.sort("(REVERSE DATE)", "UTF-8", "ALL"))
        check(errors, "THREAD", client.thread("REFERENCES", "UTF-8", "ALL"))
        check(errors, "COPY", client.copy(f"{low}:{low + 2}", folder))
        check(errors, "STORE", client.store(f"1:{min(exists, 5)}", "+FLAGS.SILENT", "(\\Deleted)"))
        check(errors, "EXPUNGE", client.expunge())
        check(errors, "NOOP", client.noop())
        idle_briefly(client, errors)
        check(errors, "EXAMINE", client.select(folder, readonly=True))
        check(errors, "FETCH", client.fetch("1:*", "(FLAGS ENVELOPE)"))
        check(errors, "CLOSE", client.close())
        if rng.random() < 0.2:
            client.logout()
            client = logged_in_client(port, f"user{user}@example.com")
    check(errors, "DELETE", client.delete(folder))
    client.logout()


def smtp_client(port, users, deadline, seed, errors):
    rng = random.Random(seed)
    while time.time() < deadline:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for _ in range(10):
                rcpts = [f"user{rng.randrange(1, users + 1)}@example.com" for _ in range(rng.randrange(1, 4))]
                try:
                    refused = smtp.sendmail("sender@example.org", rcpts, message(rng, ", ".join(rcpts)))
                except smtplib.SMTPException as why:
                    errors.add(f"SMTP: {why}")
                    break
                if refused:
                    errors.add(f"SMTP refused: {refused}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imap", type=int, required=True)
    parser.add_argument("--smtp", type=int, required=True)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--secs", type=float, default=20)
    args = parser.parse_args()
    deadline = time.time() + args.secs
    errors = Errors()
    def guarded(work, *work_args):
        try:
            work(*work_args)
        except Exception as why:  # a client that died is an error of the load, not a crash of it
            errors.add(f"{work.__name__}: {why!r}")

    threads = [
        threading.Thread(target=guarded, args=(imap_client, args.imap, 1 + n % args.users, deadline, n, errors))
        for n in range(args.clients)
    ] + [
        threading.Thread(target=guarded, args=(smtp_client, args.smtp, args.users, deadline, 1000 + n, errors))
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"train: {args.clients} IMAP and 2 SMTP clients, {args.secs:.0f} s, {errors.count} errors")
    sys.exit(1 if errors.count else 0)


if __name__ == "__main__":
    main()
