#!/usr/bin/env python3
"""Whole-account sync by real clients against pushmail's IMAP listener: mbsync (isync) pulls
every folder into a Maildir (over COMPRESS=DEFLATE, which it turns on when offered), then syncs both ways (a flag, a new draft and a deletion made
locally reach the server); fetchmail collects the INBOX. The server's state is read back with
imaplib.

    python3 sync_clients.py --imap-port 1143 --smtp-port 2525 --user alice@example.com --password P
"""

import argparse
import email
import imaplib
import os
import pathlib
import smtplib
import subprocess
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} sync: {name}{'' if ok else ': ' + str(detail)}")
        passed, failed = passed + ok, failed + (not ok)

    tag = f"sync-{time.time_ns()}"
    with smtplib.SMTP("127.0.0.1", args.smtp_port, timeout=10) as smtp:
        for i in range(3):
            smtp.sendmail("bob@sync.example", [args.user],
                          f"From: bob@sync.example\r\nSubject: {tag} {i}\r\n\r\nbody {i}\r\n")

    def server():
        imap = imaplib.IMAP4("127.0.0.1", args.imap_port)  # plaintext: loopback, --demo
        imap.login(args.user, args.password)
        return imap

    def subjects(imap, folder):
        imap.select(f'"{folder}"', readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        found = {}
        for item in data:
            if isinstance(item, tuple):
                header = email.message_from_bytes(item[1])
                found[str(header["Subject"])] = item[0].decode()
        return found

    with tempfile.TemporaryDirectory(prefix="pushmail-sync-") as work:
        work = pathlib.Path(work)
        maildir = work / "mail"
        maildir.mkdir()
        config = work / "mbsyncrc"
        config.write_text(f"""IMAPAccount pushmail
Host 127.0.0.1
Port {args.imap_port}
User {args.user}
Pass {args.password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account pushmail

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Near
Sync Pull
SyncState *
""")
        # -Dn: mbsync shows its IMAP traffic (inflated), so the test sees it turn COMPRESS on.
        run = subprocess.run(["mbsync", "-Dn", "-c", str(config), "all"], capture_output=True, text=True,
                             errors="replace")
        check("mbsync pulls the account", run.returncode == 0, run.stderr[-500:])
        check("mbsync pulls it over COMPRESS=DEFLATE",
              "COMPRESS DEFLATE" in run.stdout and "DEFLATE active" in run.stdout, run.stdout[-500:])
        imap = server()
        for folder in ["INBOX", "Sent", "Drafts", "Trash", "Junk"]:
            check(f"mbsync made {folder}", (maildir / folder).is_dir())
        on_server = subjects(imap, "INBOX")
        local = {}
        for path in (maildir / "INBOX").glob("*/*"):
            local[str(email.message_from_bytes(path.read_bytes())["Subject"])] = path
        check("every INBOX message is in the Maildir", set(on_server) <= set(local),
              (sorted(on_server), sorted(local)))

        # Both ways: one read, one deleted, one new draft, made locally.
        read, gone = local[f"{tag} 0"], local[f"{tag} 1"]
        read.rename(maildir / "INBOX" / "cur" / (read.name.split(":2,")[0] + ":2,S"))
        gone.unlink()
        (maildir / "Drafts" / "new" / f"{tag}.local").write_bytes(
            f"From: {args.user}\r\nSubject: {tag} draft\r\n\r\nwritten offline\r\n".encode())
        config.write_text(config.read_text().replace("Sync Pull", "Sync All\nExpunge Both").replace("Create Near", "Create Both"))
        time.sleep(1)  # mbsync waits out Maildir changes made in the same second anyway
        run = subprocess.run(["mbsync", "-c", str(config), "all"], capture_output=True, text=True)
        check("mbsync syncs both ways", run.returncode == 0, run.stderr[-500:])
        on_server = subjects(imap, "INBOX")
        check("a local read reached the server as \\Seen",
              "\\Seen" in on_server.get(f"{tag} 0", ""), on_server.get(f"{tag} 0"))
        check("a local deletion was expunged on the server", f"{tag} 1" not in on_server, sorted(on_server))
        check("a local draft was APPENDed", f"{tag} draft" in subjects(imap, "Drafts"))
        imap.logout()

        # fetchmail: the INBOX, kept on the server, each message through an MDA into a file.
        out = work / "fetched"
        out.mkdir()
        rc = work / "fetchmailrc"
        rc.write_text(
            f'poll 127.0.0.1 service {args.imap_port} protocol IMAP user "{args.user}" '
            f'password "{args.password}" is "{os.environ.get("USER", "root")}" here keep fetchall '
            f"sslproto '' mda \"/bin/sh -c 'cat > {out}/$$.eml'\"\n")
        rc.chmod(0o600)
        run = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "--nodetach", "--idfile", str(work / "ids")],
                             capture_output=True, text=True)
        check("fetchmail collects the INBOX", run.returncode == 0, (run.returncode, run.stderr[-500:]))
        fetched = [email.message_from_bytes(p.read_bytes()) for p in out.iterdir()]
        subjects_fetched = {str(m["Subject"]) for m in fetched}
        check("fetchmail got the messages whole",
              f"{tag} 2" in subjects_fetched and any("body 2" in m.get_payload() for m in fetched),
              sorted(subjects_fetched))

    print(f"sync: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
