#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*) from the
project's own material: the transcript tests (tests/session_transcripts.rs,
tests/bdat_transcripts.rs), the message fixtures (tests/fixtures/messages/*.eml), the shipped
configurations (config/*.toml), PROXY v1/v2 headers and AUTH PLAIN/LOGIN payloads.

Run from anywhere: python3 fuzz/make_corpus.py. Seeds are named seed-<name>; files that
fuzzing added (hash names) are left alone. The input layouts are described at the top of each
fuzz_targets/<target>.rs.
"""

import base64
import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"

# --- session -----------------------------------------------------------------------------
# byte 0: settings (0: STARTTLS listener, CHUNKING on, normalize, plenty of memory, 64 KiB);
# bytes 1-5: read-size seed; then turns separated by 0xFF.

AUTH_OK = "AUTH PLAIN AGFwaWtleQBza19saXZlX1RFU1RLRVk=\r\n"
AUTH_WRONG = "AUTH PLAIN AGFwaWtleQBza19saXZlX1dST05H\r\n"
OPEN = ["EHLO c.example\r\n", "STARTTLS\r\n", "EHLO c.example\r\n", AUTH_OK]
ENVELOPE = "MAIL FROM:<s@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\n"
TX = ENVELOPE + "DATA\r\n"


def bdat(payload, last=False):
    return f"BDAT {len(payload.encode('latin-1'))}{' LAST' if last else ''}\r\n{payload}"


SESSIONS = {
    "full-submission": (0, OPEN + [TX, "Subject: hi\r\n\r\nHello\r\n.\r\n", "QUIT\r\n"]),
    "implicit-tls": (1, ["EHLO c.example\r\n", "STARTTLS\r\n", AUTH_OK, TX,
                         "From: a@x.example\r\n\r\n..dot\r\n.\r\n", "QUIT\r\n"]),
    "before-tls": (0, ["EHLO c.example\r\n", "MAIL FROM:<s@x.example>\r\n", "RCPT TO:<r@x.example>\r\n",
                       "DATA\r\n", "VRFY apikey\r\n", "NOOP\r\n", "RSET\r\n", "HELP\r\n",
                       "STARTTLS now\r\n", "QUIT\r\n"]),
    "starttls-pipelined": (0, ["EHLO c.example\r\n",
                               "STARTTLS\r\n" + AUTH_OK + "MAIL FROM:<a@x.example>\r\n",
                               "MAIL FROM:<a@x.example>\r\n", "EHLO c.example\r\n",
                               "MAIL FROM:<a@x.example>\r\n"]),
    "client-hello": (0, ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]),
    "pipelined-group": (0, OPEN + [
        "MAIL FROM:<s@x.example>\r\nRCPT TO:<bad..addr@y.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
        "x: y\r\n\r\nz\r\n.\r\n",
        "MAIL FROM:<bad@@x>\r\nRCPT TO:<a@y.example>\r\nDATA\r\n"]),
    "address-literal": (0, OPEN + ["MAIL FROM:<s@x.example>\r\nRCPT TO:<u@[127.0.0.1]>\r\nDATA\r\n"]),
    "wrong-key": (0, OPEN[:3] + [AUTH_WRONG + "MAIL FROM:<s@x.example>\r\n", AUTH_WRONG, AUTH_WRONG]),
    "smuggling": (0, OPEN + [TX,
        "m1\r\n.\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<r@y.example>\r\nDATA\r\nFrom: s@x\r\n\r\nm2\r\n.\r\n"]),
    "bare-lf-end": (0, OPEN + [TX,
        "Subject: t\r\n\r\nhi\n.\nMAIL FROM:<ceo@victim.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n\r\nsmuggled\r\n.\r\n"]),
    "reject-bare": (4, OPEN + [TX, "hi\n.\nMAIL FROM:<x@y.example>\r\n.\r\n", TX, "Hey\r <3\r\n.\r\n",
                               "NOOP\r\n", "NOOP\n"]),
    "bare-cr-command": (0, OPEN + ["MAIL FROM:<a@x.example>\rRCPT TO:<b@y.example>\r\n"]),
    "line-limits": (0, OPEN + ["MAIL FROM:<s@x.example> " + "A" * 700 + "\r\n",
                               "X" * 600 + "RCPT TO:<victim@x.example>\r\nNOOP\r\n"]),
    "auth-line-cap": (0, OPEN[:3] + ["AUTH PLAIN\r\n", "QUFB" * 300 + "\r\n", AUTH_OK]),
    "helo-syntax": (1, ["EHLO\r\n", "EHLO " + "a" * 300 + "\r\n", "HELO\r\n", "EHLO a\rb\r\n",
                        "EHLO \x1b[2J\r\n", "HELO c.example\r\n"]),
    "recipients": (1, ["EHLO c\r\n", AUTH_OK, "MAIL FROM:<s@x.example> SIZE=100 BODY=8BITMIME\r\n"
                       + "".join(f"RCPT TO:<{c}@y.example>\r\n" for c in "abcdefA") + "DATA\r\n",
                       "x: y\r\n\r\n.\r\n"]),
    "messages-limit": (1, ["EHLO c\r\n", AUTH_OK] + [TX + "x: y\r\n\r\n.\r\n"] * 6 + ["NOOP\r\n"]),
    "errors": (0, ["XXXX\r\n", "\r\n", "ETRN x\r\n", "TURN\r\n"] * 3),
    "junk": (0, ["NOOP\r\n" * 30]),
    "auth-plain-forms": (1, ["EHLO c\r\n", "AUTH PLAIN =\r\n",
                             "AUTH PLAIN YWRtaW4AYXBpa2V5AHNrX2xpdmVfVEVTVEtFWQ==\r\n",
                             "AUTH PLAIN !!!notbase64\r\n", "AUTH PLAIN\r\n", "*\r\n",
                             "AUTH PLAIN\r\n", "YXBpa2V5AGFwaWtleQBza19saXZlX1RFU1RLRVk=\r\n"]),
    "auth-login-forms": (1, ["EHLO c\r\n", "AUTH LOGIN\r\n", "YXBpa2V5\r\n", "c2tfbGl2ZV9XUk9ORw==\r\n",
                             "auth login YXBpa2V5\r\n", "c2tfbGl2ZV9URVNUS0VZ\r\n"]),
    "auth-down": (1, ["EHLO c\r\n", "AUTH PLAIN " + base64.b64encode(b"\0apikey\0sk_live_DOWN").decode() + "\r\n"]),
    "smtputf8": (1, ["EHLO c\r\n", AUTH_OK,
                     "MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8\r\nRCPT TO:<\u00fc@x.example>\r\nDATA\r\n",
                     "Subject: \u00e9\r\n\r\n\u00e9t\u00e9\r\n.\r\n"]),
    "null-sender": (1, ["EHLO c\r\n", AUTH_OK, "MAIL FROM:<>\r\nRCPT TO:<r@x.example>\r\nDATA\r\n",
                        "\r\n.\r\n", "RSET\r\nQUIT\r\n"]),
    "gated": (0x81, ["EHLO c\r\n", AUTH_OK,
                     "MAIL FROM:<a@blocked.example>\r\nRCPT TO:<r@x.example>\r\nDATA\r\nx\r\n.\r\n",
                     TX + "odd\r\n.\r\n", TX + "even\r\n.\r\n"]),
    "memory-spent": (0x11, ["EHLO c\r\n", AUTH_OK, TX, "x: y\r\n\r\n.\r\n", ENVELOPE + bdat("abc", True)]),
    "memory-small-pool": (0x19, ["EHLO c\r\n", AUTH_OK,
                                 "MAIL FROM:<s@x.example> SIZE=900000\r\nRCPT TO:<r@x.example>\r\nDATA\r\n",
                                 "x: y\r\n\r\n.\r\n"]),
    "too-big": (0x21, ["EHLO c\r\n", AUTH_OK, "MAIL FROM:<s@x.example> SIZE=5000\r\n", TX,
                       "x: y\r\n\r\n" + "z" * 5000 + "\r\n.\r\n", ENVELOPE + bdat("q" * 4000) + bdat("r" * 200, True)]),
    # BDAT (tests/bdat_transcripts.rs).
    "bdat-dots-and-commands": (0, OPEN + [ENVELOPE, bdat("Subject: hi\r\n\r\n.Hello\r\n.\r\n"),
                                          bdat("MAIL FROM:<x@y.example>\r\nQUIT\r\n", True), "QUIT\r\n"]),
    "bdat-exim-pipeline": (0, OPEN + [ENVELOPE + "BDAT 14\r\nSubject: a\r\n\r\nBDAT 3\r\nab\nBDAT 0 LAST\r\n"
                                      + ENVELOPE + "BDAT 7 LAST\r\nx\r\n\r\nyz"]),
    "bdat-bare-endings": (4, OPEN + [ENVELOPE, "BDAT 5\r\nA\nB\rC", "BDAT 3\r\n\r\n\r", "BDAT 2\r\n\nD",
                                     "BDAT 1 LAST\r\n\r"]),
    "bdat-no-transaction": (0, OPEN + ["BDAT 6\r\nRSET\r\n", "BDAT 6\r\nQUIT\r\nBDAT 6\r\nQUIT\r\n",
                                       "BDAT 10 LAST\r\nMAIL FROM:", ENVELOPE, "BDAT 5 LAST\r\nx\r\n\r\n"]),
    "bdat-no-rcpt": (0, OPEN + ["MAIL FROM:<s@sender.example>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde", ENVELOPE]),
    "bdat-no-auth": (0, OPEN[:3] + ["BDAT 4 LAST\r\nNOOP", "NOOP\r\n"]),
    "bdat-syntax": (0, OPEN + [ENVELOPE + "BDAT x\r\n"]),
    "bdat-too-big": (0x20, OPEN + [ENVELOPE + "BDAT 99999999999 LAST\r\n"]),
    "bdat-before-tls": (0, ["EHLO c\r\n", "BDAT 4 LAST\r\nQUIT"]),
    "bdat-off": (3, ["EHLO c\r\n", AUTH_OK, ENVELOPE + "BDAT 4 LAST\r\nQUIT"]),
    "bdat-data-mixed": (1, ["EHLO c\r\n", AUTH_OK, ENVELOPE + bdat("a") + "DATA\r\n", bdat("b", True)]),
}

# --- data ------------------------------------------------------------------------------------
# byte 0: bit 0 chunked, bit 1 reject, bits 2-4 max size (6: 64 KiB); bytes 1-5: read sizes.

DATA_SMALL = [
    ("dot-stuffed", 0x18, b"Subject: x\r\n\r\n..leading\r\n.\r\n"),
    ("bare-lf", 0x18, b"a\nb\r\n.\nc\r\n.\r\n"),
    ("bare-cr", 0x1a, b"a\rb\r\n.\rc\r\n.\r\n"),
    ("too-big", 0x00, b"0123456789abcdefXYZ\r\n.\r\n"),
    ("trailing", 0x18, b"x\r\n.\r\nMAIL FROM:<a@b>\r\n"),
    ("bdat", 0x19, b"A\nB\rC\r\n.\r\n"),
    ("empty", 0x18, b".\r\n"),
]

# --- proxy ----------------------------------------------------------------------------------
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command, family, addresses, tlvs=b""):
    body = addresses + tlvs
    return V2_SIG + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body


PROXY = {
    "v1-tcp4": b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 2587\r\nEHLO c\r\n",
    "v1-tcp6": b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 2587\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n",
    "v1-partial": b"PROXY TCP4 203.0.113.7 10.0.",
    "v1-bad": b"PROXY TCP4 999.0.113.7 10.0.0.1 1 2\r\n",
    "v2-tcp4": v2(1, 0x11, bytes([203, 0, 113, 7, 10, 0, 0, 1]) + struct.pack(">HH", 51234, 2465)) + b"\x16\x03\x01",
    "v2-tcp6": v2(1, 0x21, bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">HH", 1, 2)),
    "v2-local": v2(0, 0x00, b""),
    "v2-unix": v2(1, 0x31, b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")),
    "v2-tlvs": v2(1, 0x11, bytes([192, 0, 2, 1, 192, 0, 2, 2]) + struct.pack(">HH", 3, 4),
                  b"\x01\x00\x02h2" + b"\x04\x00\x00" + b"\x20\x00\x05\x01\x00\x00\x00\x00"),
    "v2-mapped": v2(1, 0x21, bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 9]) + bytes(16) + struct.pack(">HH", 1, 2)),
}

# --- sasl -----------------------------------------------------------------------------------
# byte 0 % 3: 0 a response line, 1 raw bytes to encode, 2 LOGIN/PLAIN fields.
SASL = {
    "plain-ok": b"\x00AGFwaWtleQBza19saXZlX1RFU1RLRVk=",
    "plain-authzid": b"\x00YXBpa2V5AGFwaWtleQBza19saXZlX1RFU1RLRVk=",
    "plain-other-authzid": b"\x00YWRtaW4AYXBpa2V5AHNrX2xpdmVfVEVTVEtFWQ==",
    "plain-four-fields": b"\x00AGFwaWtleQBza19saXZlX1RFU1RLRVkAZXh0cmE=",
    "plain-not-utf8": b"\x00AGFwaWtleQD//g==",
    "abort": b"\x00 * ",
    "empty": b"\x00=",
    "bad": b"\x00!!!notbase64",
    "unpadded": b"\x00YQ",
    "login-user": b"\x00YXBpa2V5",
    "login-pass": b"\x00c2tfbGl2ZV9URVNUS0VZ",
    "raw-plain": b"\x01\x00apikey\x00sk_live_TESTKEY",
    "fields": b"\x02apikey\x00sk_live_" + b"k" * 520,
}


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def main():
    cut = bytes([7, 1, 2, 3, 4])  # whole-ish reads
    for name, (flags, turns) in SESSIONS.items():
        # Text is UTF-8 (SMTPUTF8); the ClientHello is raw bytes.
        encoding = "latin-1" if name == "client-hello" else "utf-8"
        script = b"\xff".join(t.encode(encoding) for t in turns)
        write("session", name, bytes([flags]) + cut + script)
        if name in ("full-submission", "bdat-exim-pipeline", "smuggling"):
            write("session", name + "-bytewise", bytes([flags, 0, 9, 9, 9, 9]) + script)

    emls = sorted((ROOT / "tests/fixtures/messages").glob("*.eml"))
    for eml in emls:
        raw = eml.read_bytes()
        write("mapping", eml.stem, raw)
        if len(raw) <= 8192:
            stuffed = b"".join((b"." + l if l.startswith(b".") else l)
                               for l in raw.splitlines(keepends=True))
            if stuffed and not stuffed.endswith(b"\r\n"):
                stuffed += b"\r\n"
            write("data", eml.stem, bytes([0x18, 3, 5, 6, 7, 8]) + stuffed + b".\r\n")
    for name, flags, payload in DATA_SMALL:
        write("data", name, bytes([flags, 2, 1, 2, 3, 4]) + payload)

    for toml in sorted((ROOT / "config").glob("*.toml")):
        write("config", toml.stem, toml.read_bytes())

    for name, header in PROXY.items():
        write("proxy", name, b"\x00" + header)

    for name, payload in SASL.items():
        write("sasl", name, payload)


if __name__ == "__main__":
    main()
