"""Python smtplib, used the way SendPigeon's documentation shows it.

Usage: smtplib_client.py CASE
Settings come from the environment: SMTP_HOST, SMTP_PORT (STARTTLS), SMTPS_PORT (implicit
TLS), CA_FILE (the private CA to trust; empty: the system store), API_KEY, FILES
(invoice.pdf, logo.png, big.bin).
Prints one JSON line: {"ok": true, "reply": <the 250 to DATA>, "cid": <the inline image's
Content-ID, for the rich message>} or {"ok": false, "error": ...}.
"""

import json
import os
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid

HOST = os.environ["SMTP_HOST"]
PORT = int(os.environ["SMTP_PORT"])
SSL_PORT = int(os.environ["SMTPS_PORT"])
KEY = os.environ["API_KEY"]
FILES = os.environ["FILES"]
# Trust the development CA (CA_FILE); in production the relay's chain is publicly trusted and
# the default context (the system store) is enough.
context = ssl.create_default_context(cafile=os.environ.get("CA_FILE") or None)
result = {}


def keep_data_reply(server):
    """smtplib's send_message drops the reply to DATA; keep it to show the queue id."""
    data = server.data

    def wrapped(msg):
        code, text = data(msg)
        result["reply"] = f"{code} {text.decode()}"
        return code, text

    server.data = wrapped


def docs_message():
    msg = MIMEText("<h1>Hello from SendPigeon</h1>", "html")
    msg["Subject"] = "Test"
    msg["From"] = "hello@yourdomain.com"
    msg["To"] = "test@example.com"
    return msg


def rich_message():
    """Text and html alternatives, an inline image, an attachment, every header."""
    logo = make_msgid(domain="acme.example")
    result["cid"] = logo[1:-1]
    m = EmailMessage()
    m["Subject"] = "Grüße aus Köln — Rechnung №1234 für Zoë Müller, fällig am 1. März 2026"
    m["From"] = formataddr(("Zoë Müller", "billing@acme.example"))
    m["To"] = formataddr(("Jane Doe", "jane@example.com"))
    m["Cc"] = formataddr(("Öps Team", "ops@acme.example"))
    m["Bcc"] = "audit@acme.example"
    m["Reply-To"] = formataddr(("Acme Support", "support@acme.example"))
    m["X-Entity-Ref-ID"] = "invoice-1234"
    m["List-Unsubscribe"] = "<https://acme.example/u/abc>"
    m["X-SP-Track-Opens"] = "true"
    m["X-SP-Track-Clicks"] = "false"
    m.set_content("Hi Jane,\nyour invoice №1234 is attached. Grüße!\n")
    m.add_alternative(
        f'<p>Hi Jane, your invoice №1234 is attached.</p><img src="cid:{logo[1:-1]}" alt="Acme">',
        subtype="html",
    )
    with open(f"{FILES}/logo.png", "rb") as f:
        m.get_payload()[1].add_related(
            f.read(), "image", "png", cid=logo, filename="logo.png", disposition="inline"
        )
    with open(f"{FILES}/invoice.pdf", "rb") as f:
        m.add_attachment(f.read(), maintype="application", subtype="pdf", filename="Rechnung №1234.pdf")
    return m


def big_message():
    m = EmailMessage()
    m["Subject"], m["From"], m["To"] = "Too big", "hello@yourdomain.com", "test@example.com"
    m.set_content("See the attachment.\n")
    with open(f"{FILES}/big.bin", "rb") as f:
        m.add_attachment(f.read(), maintype="application", subtype="octet-stream", filename="big.bin")
    return m


def starttls_send(msg, user="apikey", key=KEY):
    with smtplib.SMTP(HOST, PORT) as server:
        server.starttls(context=context)
        server.login(user, key)
        keep_data_reply(server)
        server.send_message(msg)


def run(case):
    if case == "docs":
        starttls_send(docs_message())
    elif case == "rich":
        starttls_send(rich_message())
    elif case == "implicit":
        with smtplib.SMTP_SSL(HOST, SSL_PORT, context=context) as server:
            server.login("apikey", KEY)
            keep_data_reply(server)
            server.send_message(rich_message())
    elif case == "wrong_key":
        starttls_send(docs_message(), key="sk_live_not_a_real_key")
    elif case == "wrong_user":
        starttls_send(docs_message(), user="admin")
    elif case == "too_big":
        starttls_send(big_message())
    elif case == "no_starttls":
        # The common mistake: no starttls(). login() finds no AUTH before TLS, so send directly.
        with smtplib.SMTP(HOST, PORT) as server:
            server.send_message(docs_message())
    elif case == "login_without_starttls":
        with smtplib.SMTP(HOST, PORT) as server:
            server.login("apikey", KEY)
            server.send_message(docs_message())
    else:
        sys.exit(f"unknown case {case}")


try:
    run(sys.argv[1])
    result["ok"] = True
except (smtplib.SMTPException, ssl.SSLError) as e:
    result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
print(json.dumps(result))
