"""Python smtplib against the running relay, the way SendPigeon's documentation shows it.

Usage: smtplib_client.py STARTTLS_PORT IMPLICIT_PORT CA_FILE API_KEY
Prints one JSON object: the final DATA reply of each case, keyed by case name.
"""

import json
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid

starttls_port, implicit_port, ca_file, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=ca_file)
replies = {}


def record(server, case):
    """Keep the reply to DATA (smtplib's sendmail discards it)."""
    original = server.data

    def data(msg):
        code, text = original(msg)
        replies[case] = f"{code} {text.decode()}"
        return code, text

    server.data = data


# 1. The documentation snippet: MIMEText html, starttls(), login(), send_message().
msg = MIMEText("<h1>Hello from SendPigeon</h1>", "html")
msg["Subject"] = "Docs snippet"
msg["From"] = "hello@yourdomain.com"
msg["To"] = "test@example.com"
with smtplib.SMTP("localhost", starttls_port) as server:
    server.starttls(context=context)
    server.login("apikey", key)
    record(server, "doc")
    server.send_message(msg)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def rich(case):
    logo = make_msgid(domain="acme.example")
    m = EmailMessage()
    m["Subject"] = "Grüße — Rechnung №1234 für Zoë"
    m["From"] = formataddr(("Zoë Müller", "billing@acme.example"))
    m["To"] = formataddr(("Jane Doe", "jane@example.com"))
    m["Cc"] = "ops@acme.example"
    m["Bcc"] = "audit@acme.example"
    m["Reply-To"] = formataddr(("Acme Support", "support@acme.example"))
    m["Message-ID"] = f"<{case}.1234@acme.example>"
    m["X-Entity-Ref-ID"] = "invoice-1234"
    m["List-Unsubscribe"] = "<https://acme.example/u/abc>"
    m["X-SP-Track-Opens"] = "true"
    m["X-SP-Track-Clicks"] = "false"
    m.set_content("Hi Jane,\nyour invoice is attached.\n")
    m.add_alternative(
        f'<p>Hi Jane, <img src="cid:{logo[1:-1]}"></p>', subtype="html"
    )
    m.get_payload()[1].add_related(PNG, "image", "png", cid=logo, filename="logo.png", disposition="inline")
    m.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return m


# 2. A rich message over STARTTLS.
with smtplib.SMTP("localhost", starttls_port) as server:
    server.starttls(context=context)
    server.login("apikey", key)
    record(server, "rich_starttls")
    server.send_message(rich("rich_starttls"))

# 3. The same over implicit TLS (SMTP_SSL).
with smtplib.SMTP_SSL("localhost", implicit_port, context=context) as server:
    server.login("apikey", key)
    record(server, "rich_implicit")
    server.send_message(rich("rich_implicit"))

print(json.dumps(replies))
