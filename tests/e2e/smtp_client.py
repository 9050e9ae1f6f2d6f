#!/usr/bin/env python3
"""Python's smtplib (a real SMTP client) against pushmail's SMTP listener, inbound role: a
delivery to the demo account, an unknown user, a relay attempt, and SMTP smuggling over a raw
socket. Standard library only.

    python3 smtp_client.py --port 2525 --to alice@example.com --remote victim@elsewhere.example
"""

import argparse
import smtplib
import socket
import sys
from email.message import EmailMessage


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--remote", default="victim@elsewhere.example")
    args = parser.parse_args()
    domain = args.to.split("@", 1)[1]
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} smtp: {name}{'' if ok else ': ' + detail}")
        passed, failed = passed + ok, failed + (not ok)

    message = EmailMessage()
    message["From"] = "sender@example.org"
    message["To"] = args.to
    message["Subject"] = "smtplib says hello"
    message.set_content("Hello from Python's smtplib.\n.leading dot\n")
    with smtplib.SMTP(args.host, args.port, timeout=10) as smtp:
        code, capabilities = smtp.ehlo("client.example")
        check("EHLO answers 250 with SIZE and PIPELINING",
              code == 250 and b"SIZE" in capabilities and b"PIPELINING" in capabilities,
              capabilities.decode(errors="replace"))
        refused = smtp.send_message(message)
        check("a mail to the local account is accepted", refused == {}, str(refused))
        for rcpt, expected in [(f"nobody@{domain}", 550), (args.remote, 550)]:
            try:
                smtp.sendmail("sender@example.org", [rcpt], message.as_bytes())
                check(f"{rcpt} refused", False, "accepted")
            except smtplib.SMTPRecipientsRefused as error:
                code = error.recipients[rcpt][0]
                check(f"{rcpt} refused with {expected}", code == expected, str(error.recipients))

    # Smuggling: a bare LF before ".\r\n" must not end DATA, and the message is refused whole.
    with socket.create_connection((args.host, args.port), timeout=10) as raw:
        stream = raw.makefile("rwb")

        def reply():
            lines = []
            while True:
                line = stream.readline().decode()
                lines.append(line)
                if len(line) < 4 or line[3] != "-":
                    return "".join(lines)

        reply()
        for command in ["EHLO raw.example", "MAIL FROM:<a@raw.example>", f"RCPT TO:<{args.to}>", "DATA"]:
            stream.write(f"{command}\r\n".encode())
            stream.flush()
            reply()
        stream.write(b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@raw.example>\r\n.\r\n")
        stream.flush()
        answer = reply()
        check("a bare LF in DATA is refused (no smuggling)", answer.startswith("550"), answer)

    print(f"smtp client: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
