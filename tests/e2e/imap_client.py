#!/usr/bin/env python3
"""Real IMAP clients against pushmail's IMAP listener: imaplib over STARTTLS through every
RFC 3501 command (and UIDPLUS, MOVE, CONDSTORE), again over COMPRESS=DEFLATE with zlib on the
client's side, and IMAPClient's IDLE, woken by a mail sent over SMTP.

    python3 imap_client.py --imap-port 1143 --smtp-port 2525 --user alice@example.com --password P
"""

import argparse
import imaplib
import smtplib
import ssl
import sys
import time
import zlib

from imapclient import IMAPClient

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class DeflateIMAP4(imaplib.IMAP4):
    """imaplib with RFC 4978's COMPRESS=DEFLATE: zlib's raw DEFLATE both ways, a sync flush
    after every command, what the server sends inflated as it comes."""

    compressed = False

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK" and not self.compressed:
            self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            self._inflate = zlib.decompressobj(-15)
            self._inflated = b""
            self.wire_bytes = 0
            self.compressed = True
        return typ, data

    def send(self, data):
        if self.compressed:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        super().send(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise self.abort("closed while compressed")
        self.wire_bytes += len(chunk)
        self._inflated += self._inflate.decompress(chunk)

    def read(self, size):
        if not self.compressed:
            return super().read(size)
        while len(self._inflated) < size:
            self._fill()
        data, self._inflated = self._inflated[:size], self._inflated[size:]
        return data

    def readline(self):
        if not self.compressed:
            return super().readline()
        while b"\n" not in self._inflated:
            self._fill()
        end = self._inflated.index(b"\n") + 1
        line, self._inflated = self._inflated[:end], self._inflated[end:]
        return line


def compressed_session(port, user, password, context, check):
    """A session that turns COMPRESS=DEFLATE on after STARTTLS and LOGIN, then works as usual:
    a large APPEND, SELECT, SEARCH and a FETCH of the message whole."""
    imap = DeflateIMAP4("127.0.0.1", port)
    imap.starttls(ssl_context=context)
    imap.login(user, password)
    capabilities = imap.capability()[1][0].split()
    check("COMPRESS=DEFLATE offered after login", b"COMPRESS=DEFLATE" in capabilities, capabilities)
    typ, data = imap.compress()
    check("COMPRESS DEFLATE", typ == "OK" and imap.compressed, data)
    typ, data = imap.compress()
    check("a second COMPRESS is refused", typ == "NO" and b"COMPRESSIONACTIVE" in data[0], data)
    folder = f"deflate-{time.time_ns()}"
    line = "All work and no play makes a compressible message. " * 2
    message = ("From: a@e2e.example\r\nSubject: deflated\r\n\r\n" + (line + "\r\n") * 2000).encode()
    check("CREATE and APPEND compressed", imap.create(folder)[0] == "OK"
          and imap.append(folder, None, None, message)[0] == "OK")
    typ, data = imap.select(folder)
    check("SELECT compressed", typ == "OK" and data == [b"1"], data)
    typ, data = imap.search(None, "SUBJECT", "deflated")
    check("SEARCH compressed", typ == "OK" and data == [b"1"], data)
    received = imap.wire_bytes
    typ, data = imap.fetch("1", "(BODY.PEEK[])")
    body = data[0][1] if typ == "OK" and isinstance(data[0], tuple) else b""
    check("FETCH compressed gives the message whole", body == message, len(body))
    took = imap.wire_bytes - received
    check("the FETCH came compressed", took < len(message) // 10, (took, len(message)))
    imap.close()
    check("DELETE compressed", imap.delete(folder)[0] == "OK")
    imap.logout()


def every_command(imap, check):
    """The rest of RFC 3501's commands, in the order a client would use them."""
    folder = f"e2e-{time.time_ns()}"
    ok = lambda result: result[0] == "OK"
    typ, data = imap.capability()
    capabilities = data[0].decode().split()
    check("CAPABILITY lists the extensions",
          typ == "OK" and all(c in capabilities for c in ["IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN",
                                               "NAMESPACE", "ID", "ENABLE", "LITERAL+", "UNSELECT",
                                               "CONDSTORE", "QRESYNC", "COMPRESS=DEFLATE", "ESEARCH", "BINARY", "SORT", "SORT=DISPLAY", "THREAD=REFERENCES",
                                               "THREAD=ORDEREDSUBJECT"]), capabilities)
    check("NOOP", ok(imap.noop()))
    check("CREATE (with a superior level)", ok(imap.create(f"{folder}/sub")))
    check("SUBSCRIBE", ok(imap.subscribe(folder)))
    check("LSUB", folder.encode() in b" ".join(imap.lsub()[1]))
    check("UNSUBSCRIBE", ok(imap.unsubscribe(folder)))
    check("RENAME", ok(imap.rename(f"{folder}/sub", f"{folder}/renamed")))
    message = f"From: e2e@example.org\r\nSubject: {folder}\r\n\r\nappended\r\n".encode()
    typ, data = imap.append(folder, "(\\Flagged)", imaplib.Time2Internaldate(time.time()), message)
    check("APPEND answers APPENDUID", typ == "OK" and b"APPENDUID" in data[0], data)
    typ, data = imap.status(folder, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    check("STATUS", typ == "OK" and b"MESSAGES 1" in data[0], data)
    typ, data = imap.select(folder, readonly=True)
    check("EXAMINE", typ == "OK" and data == [b"1"], data)
    typ, data = imap.store("1", "+FLAGS", "(\\Seen)")
    check("STORE is refused under EXAMINE", typ == "NO", data)
    typ, data = imap.select(folder)
    check("SELECT", typ == "OK", data)
    typ, data = imap.fetch("1", "(FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[TEXT] RFC822.SIZE)")
    check("FETCH ENVELOPE BODYSTRUCTURE and a section",
          typ == "OK" and b"ENVELOPE" in data[0][0] and data[0][1] == b"appended\r\n", data)
    typ, data = imap.store("1", "+FLAGS", "(\\Seen $Label1)")
    check("STORE", typ == "OK" and b"$Label1" in data[0], data)
    typ, data = imap.search(None, "FLAGGED", "TEXT", "appended")
    check("SEARCH", typ == "OK" and data == [b"1"], data)
    typ, data = imap.sort("(REVERSE ARRIVAL SUBJECT)", "UTF-8", "ALL")
    check("SORT", typ == "OK" and data == [b"1"], data)
    typ, data = imap.thread("REFERENCES", "UTF-8", "ALL")
    check("THREAD", typ == "OK" and data == [b"(1)"], data)
    typ, data = imap.copy("1", "INBOX")
    check("COPY answers COPYUID", typ == "OK" and b"COPYUID" in data[0], data)
    typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
    check("UID FETCH", typ == "OK" and b"UID 1" in data[0], data)
    typ, data = imap.uid("MOVE", "1", f"{folder}/renamed")
    check("UID MOVE", typ == "OK", data)
    typ, data = imap.select(f"{folder}/renamed")
    imap.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = imap.expunge()
    check("EXPUNGE", typ == "OK" and data == [b"1"], data)
    check("CHECK", ok(imap.check()))
    check("CLOSE", ok(imap.close()))
    check("DELETE", ok(imap.delete(f"{folder}/renamed")) and ok(imap.delete(folder)))
    typ, data = imap.delete("INBOX")
    check("DELETE INBOX is refused", typ == "NO", data)


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
          all(f in listed for f in [b"INBOX", b"\\Sent)", b"\\Trash)", b"\\Drafts)", b"\\Junk)"]), listed)
    typ, data = imap.select("INBOX")
    check("SELECT INBOX", typ == "OK", data)
    every_command(imap, check)
    typ, data = imap.select("INBOX")
    before = int(data[0])
    imap.logout()

    compressed_session(args.imap_port, args.user, args.password, context, check)

    # AUTHENTICATE PLAIN, on a connection of its own.
    imap = imaplib.IMAP4("127.0.0.1", args.imap_port)
    imap.starttls(ssl_context=context)
    typ, _ = imap.authenticate("PLAIN", lambda _: f"\0{args.user}\0{args.password}".encode())
    check("AUTHENTICATE PLAIN", typ == "OK")
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
