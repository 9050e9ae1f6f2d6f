"""The admin console and the user's page in a real browser (Debian's chromium, driven by
Playwright), against README command 1's process: every screen loads with no console error, the
main flows run end to end, axe finds no serious or critical violation, and each screen is kept
as a screenshot.

    python3 browser.py --admin http://127.0.0.1:8081 --subscribe http://127.0.0.1:8080/subscribe \
        --smtp-port 2525 --token pma_… --axe path/to/axe.min.js --shots DIR
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
from email.message import EmailMessage

from playwright.sync_api import expect, sync_playwright

DOMAIN = f"ui{int(time.time())}.example"
ACCOUNT = f"dana@{DOMAIN}"
PASSWORD = "dana-password-1"


class Callback(http.server.BaseHTTPRequestHandler):
    """The push service's callback: takes every notice."""

    received = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        Callback.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def subscribe(url, secret, callback):
    body = json.dumps({
        "type": "SUBSCRIBE", "email": ACCOUNT, "password": PASSWORD, "registration": "r-browser",
        "generation": 1, "callback": callback, "device": {"pin": "2B3C4D5E", "model": "Bold 9900"},
    }).encode()
    timestamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Push-Timestamp": timestamp,
        "X-Push-Signature": f"v1={mac}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"SUBSCRIBE answered {error.code}: {error.read()!r}") from None
    assert answer["status"] == "subscribed", answer


def admin_call(base, token, method, path, body=None):
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def send_mail(port):
    message = EmailMessage()
    message["From"] = "erin@sender.example"
    message["To"] = ACCOUNT
    message["Subject"] = "Seen from the console"
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(message)


def main():
    parser = argparse.ArgumentParser()
    for name in ("--admin", "--subscribe", "--token", "--axe", "--shots"):
        parser.add_argument(name, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    axe = open(args.axe, encoding="utf-8").read()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{server.server_address[1]}/n/r-browser"
    problems = []
    checks = 0

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for width, height in ((1440, 900), (360, 740)):
            page = browser.new_page(viewport={"width": width, "height": height})
            errors = []
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))

            def screen(name):
                """Checks the screen now shown: no console error, no serious axe violation."""
                nonlocal checks
                page.wait_for_load_state("networkidle")
                # Evaluated from outside, as a devtools console would: the page's own CSP
                # (no inline script) stays on and is tested with everything else.
                page.evaluate(axe)
                found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
                    .violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)""")
                problems.extend(f"{name} at {width} px: axe {v}" for v in found)
                problems.extend(f"{name} at {width} px: console {e}" for e in errors)
                errors.clear()
                page.screenshot(path=f"{args.shots}/{name}-{width}.png", full_page=True)
                checks += 1

            page.goto(f"{args.admin}/admin/ui/")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            screen("sign-in")
            # Keyboard only: each screen puts focus on its heading, so the next Tab is its first
            # control; the skip link moves focus to the content.
            expect(page.get_by_role("heading", name="Sign in")).to_be_focused()
            page.keyboard.press("Tab")
            expect(page.get_by_label("Admin token")).to_be_focused()
            page.keyboard.press("Shift+Tab")
            expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.locator("main")).to_be_focused()
            # Keyboard only: the token field is reached and the form sent without a mouse.
            page.get_by_label("Admin token").fill(args.token)
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Domains")).to_be_visible()
            screen("domains")

            page.get_by_role("link", name="Server", exact=True).click()
            expect(page.get_by_role("heading", name="Server")).to_be_visible()
            push_switch = page.get_by_label("Push integration on, server-wide")
            if not push_switch.is_checked():
                push_switch.check()
                page.get_by_role("button", name="Save").click()
            screen("server")
            expect(page.get_by_role("cell", name="running", exact=True)).to_be_visible()
            delivered = page.get_by_role("region", name="New-mail notices, server-wide").get_by_role("cell").nth(1)
            delivered_before = int(delivered.inner_text())

            if width == 1440:
                page.get_by_role("link", name="Domains", exact=True).click()
                page.get_by_label("Domain name").fill(DOMAIN)
                page.get_by_label("Push integration on").check()
                page.get_by_label("Subscribe URL").fill(args.subscribe)
                page.get_by_label("SMTP server").fill("127.0.0.1")
                page.get_by_role("button", name="Create domain").click()
            else:
                page.goto(f"{args.admin}/admin/ui/#/domain/{DOMAIN}")
            expect(page.get_by_role("heading", name=f"Domain {DOMAIN}")).to_be_visible()
            screen("domain")

            if width == 1440:
                page.get_by_role("button", name="Create a push secret").click()
                # Shown once, after the Subscribe URL.
                expect(page.locator("code.secret")).to_have_count(2)
                secret = page.locator("code.secret").last.inner_text()
                page.get_by_role("link", name="Accounts", exact=True).click()
                expect(page.get_by_role("heading", name=f"Accounts of {DOMAIN}")).to_be_visible()
                page.get_by_label("Address (or its local part)").fill("dana")
                page.get_by_label("Password (empty: one is made and shown once)").fill(PASSWORD)
                page.get_by_role("button", name="Create account").click()
                expect(page.get_by_role("link", name=ACCOUNT)).to_have_count(2)
                # Searched by the start of the address, on the server.
                page.get_by_label("Addresses starting with").fill("zz")
                page.get_by_role("button", name="Find").click()
                expect(page.get_by_role("cell", name="None yet.")).to_be_visible()
                page.get_by_label("Addresses starting with").fill("DAN")
                page.keyboard.press("Enter")
                expect(page.get_by_role("region", name=f"Accounts of {DOMAIN} starting with “DAN”")
                       .get_by_role("link", name=ACCOUNT)).to_be_visible()
                screen("accounts")
                subscribe(args.subscribe, secret, callback)

            page.goto(f"{args.admin}/admin/ui/#/integrated/{DOMAIN}")
            expect(page.get_by_role("link", name=ACCOUNT)).to_be_visible()
            expect(page.get_by_role("cell", name="Bold 9900, PIN 2B3C4D5E")).to_be_visible()
            screen("integrated")

            page.get_by_role("link", name=ACCOUNT).click()
            expect(page.get_by_role("heading", name=f"Account {ACCOUNT}")).to_be_visible()
            screen("account")
            if width == 1440:
                # The pushed folders are picked from the account's real folders.
                page.get_by_label("Sent", exact=True).check()
                page.get_by_role("button", name="Save pushed folders").click()
                expect(page.locator("#status")).to_have_text("Pushed folders saved.")
                # A filing rule the API refuses: its own words are shown at the form.
                page.get_by_role("button", name="Add a rule").click()
                page.get_by_label("File into folder (empty: Inbox)").fill("a/../b" * 60)
                page.get_by_role("button", name="Save filing rules").click()
                expect(page.locator("section[aria-labelledby=rules-title] [role=alert]")).to_be_visible()
                # A rule that does nothing is refused by the API, which names the rule: the
                # field is marked and focused.
                page.get_by_label("File into folder (empty: Inbox)").fill("")
                page.get_by_role("button", name="Save filing rules").click()
                expect(page.get_by_label("File into folder (empty: Inbox)")).to_have_attribute("aria-invalid", "true")
                expect(page.get_by_label("File into folder (empty: Inbox)")).to_be_focused()
                # The browser logs the refused request (400) itself: that one was asked for.
                errors[:] = [e for e in errors if "status of 400" not in e]
                page.get_by_label("File into folder (empty: Inbox)").fill("Lists")
                page.get_by_label("Value (Rule 1, condition 1)").fill("lists.example")
                page.get_by_role("button", name="Save filing rules").click()
                expect(page.locator("#status")).to_have_text("Filing rules saved.")

                send_mail(args.smtp_port)
                deadline = time.time() + 20
                while not any(n.get("type") == "NEW_MAIL" for n in Callback.received):
                    assert time.time() < deadline, "no NEW_MAIL notice reached the callback"
                    time.sleep(0.2)
                page.get_by_role("link", name="Server", exact=True).click()
                expect(page.get_by_role("heading", name="Server")).to_be_visible()
                delivered = page.get_by_role("region", name="New-mail notices, server-wide").get_by_role("cell").nth(1)
                delivered_after = int(delivered.inner_text())
                assert delivered_after > delivered_before, (delivered_before, delivered_after)

            # The demo domain signs with a key the process reads: its record is there to copy.
            page.goto(f"{args.admin}/admin/ui/#/domain/example.com")
            expect(page.get_by_role("heading", name="DKIM record to publish")).to_be_visible()
            expect(page.locator("code.secret").filter(has_text="v=DKIM1; k=ed25519; p=")).to_be_visible()
            if width == 1440:
                screen("dkim")

            for name, route in (("audit", "audit"), ("tokens", "tokens")):
                page.goto(f"{args.admin}/admin/ui/#/{route}")
                page.wait_for_selector("h2")
                screen(name)

            # The user's own page: a pushed folder and a rule with the account's password.
            self_page = browser.new_page(viewport={"width": width, "height": height})
            self_page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            self_page.on("pageerror", lambda error: errors.append(str(error)))
            page, own = self_page, page
            page.goto(f"{args.admin}/self/ui/")
            page.get_by_label("Address").fill(ACCOUNT)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Your push mail", level=2)).to_be_visible()
            expect(page.get_by_role("cell", name="Bold 9900, PIN 2B3C4D5E")).to_be_visible()
            screen("self")
            if width == 1440:
                expect(page.get_by_label("Sent", exact=True)).to_be_checked()
                page.get_by_label("Junk", exact=True).check()
                page.get_by_role("button", name="Save pushed folders").click()
                expect(page.locator("#status")).to_have_text("Pushed folders saved.")
                page.get_by_role("button", name="Add a rule").click()
                page.get_by_label("File into folder (empty: Inbox)").last.fill("Receipts")
                page.get_by_label("Value (Rule 2, condition 1)").fill("shop.example")
                page.get_by_role("button", name="Save filing rules").click()
                expect(page.locator("#status")).to_have_text("Filing rules saved.")
            page, self_page = own, page
            self_page.close()

            if width == 360:
                # Removing the link tells the push service; the list is then empty.
                page.goto(f"{args.admin}/admin/ui/#/integrated/{DOMAIN}")
                page.once("dialog", lambda dialog: dialog.accept())
                page.get_by_role("button", name=f"Remove {ACCOUNT}'s link").click()
                expect(page.get_by_role("cell", name="None yet.")).to_be_visible()
                assert any(n.get("type") == "UNLINKED" for n in Callback.received), Callback.received
            page.close()

        # A domain's token: only its domain, none of the server-wide screens.
        scoped = admin_call(args.admin, args.token, "POST", "/admin/tokens",
                            {"scope": "domain", "domain": DOMAIN, "label": "browser"})["token"]
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda error: problems.append(f"domain token: {error}"))
        page.goto(f"{args.admin}/admin/ui/")
        page.get_by_label("Admin token").fill(scoped)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("link", name=DOMAIN)).to_be_visible()
        expect(page.get_by_role("link", name="Server", exact=True)).to_be_hidden()
        expect(page.get_by_role("link", name="Tokens", exact=True)).to_be_hidden()
        rows = page.get_by_role("region", name="Domains").get_by_role("row")
        expect(rows).to_have_count(2)
        page.close()
        browser.close()
    server.shutdown()

    for problem in problems:
        print(f"FAIL {problem}")
    print(f"browser: {checks} screens checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
