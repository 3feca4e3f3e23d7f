// Nodemailer, configured the way SendPigeon's documentation shows it.
//
// Usage: node client.js CASE
// Settings come from the environment: SMTP_HOST, SMTP_PORT (STARTTLS), SMTPS_PORT (implicit
// TLS), CA_FILE (the private CA to trust; empty: Node's store), API_KEY, FILES (invoice.pdf, logo.png, big.bin).
// Prints one JSON line: {"ok": true, "response": info.response, "messageId": ..., "cid": <the
// rich message's inline image>} (the pool case: {"ok": true, "sent": [...]}) or
// {"ok": false, "error": ...}.
"use strict";
const fs = require("fs");
const nodemailer = require("nodemailer");

const env = process.env;
const files = env.FILES;
// Trust the development CA (CA_FILE); in production the relay's chain is publicly trusted and
// Node's own store is enough.
const tls = env.CA_FILE ? { ca: fs.readFileSync(env.CA_FILE) } : {};

// The documentation's transport: STARTTLS on the submission port.
function docsTransport(overrides = {}) {
  return nodemailer.createTransport({
    host: env.SMTP_HOST,
    port: Number(env.SMTP_PORT),
    secure: false,
    auth: { user: "apikey", pass: env.API_KEY },
    tls,
    ...overrides,
  });
}

const docsMessage = {
  from: "hello@yourdomain.com",
  to: "test@example.com",
  subject: "Test",
  text: "Hello from SMTP",
  html: "<p>Hello from SMTP</p>",
};

const cid = "logo.1234@acme.example";
const richMessage = {
  from: { name: "Zoë Müller", address: "billing@acme.example" },
  to: { name: "Jane Doe", address: "jane@example.com" },
  cc: { name: "Öps Team", address: "ops@acme.example" },
  bcc: "audit@acme.example",
  replyTo: { name: "Acme Support", address: "support@acme.example" },
  subject: "Grüße aus Köln — Rechnung №1234 für Zoë Müller, fällig am 1. März 2026",
  text: "Hi Jane,\nyour invoice №1234 is attached. Grüße!\n",
  html: `<p>Hi Jane, your invoice №1234 is attached.</p><img src="cid:${cid}" alt="Acme">`,
  attachments: [
    { filename: "Rechnung №1234.pdf", path: `${files}/invoice.pdf` },
    { filename: "logo.png", path: `${files}/logo.png`, cid },
  ],
  headers: {
    "X-Entity-Ref-ID": "invoice-1234",
    "X-SP-Track-Opens": "true",
    "X-SP-Track-Clicks": "false",
  },
  // Two List-Unsubscribe headers, one for each entry.
  list: {
    unsubscribe: [
      { url: "https://acme.example/u/abc", comment: "Unsubscribe" },
      "mailto:unsubscribe@acme.example?subject=abc",
    ],
  },
};

const bigMessage = {
  ...docsMessage,
  subject: "Too big",
  attachments: [{ filename: "big.bin", path: `${files}/big.bin` }],
};

const cases = {
  docs: () => docsTransport().sendMail(docsMessage),
  rich: () => docsTransport().sendMail(richMessage),
  // Implicit TLS: secure: true on the other port.
  implicit: () =>
    docsTransport({ port: Number(env.SMTPS_PORT), secure: true }).sendMail(richMessage),
  async pool() {
    // 20 messages at once through a pooled transport: up to 5 connections, several each.
    const transport = docsTransport({ pool: true });
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        transport.sendMail({ ...docsMessage, subject: `Pooled ${i + 1}`, text: `Message ${i + 1}` }),
      ),
    );
    transport.close();
    return { sent: sent.map((info) => ({ response: info.response, messageId: info.messageId })) };
  },
  wrong_key: () =>
    docsTransport({ auth: { user: "apikey", pass: "sk_live_not_a_real_key" } }).sendMail(docsMessage),
  wrong_user: () =>
    docsTransport({ auth: { user: "admin", pass: env.API_KEY } }).sendMail(docsMessage),
  too_big: () => docsTransport().sendMail(bigMessage),
  // The mistake of turning STARTTLS off: no AUTH is offered in plaintext, and Nodemailer
  // goes on without it.
  no_starttls: () => docsTransport({ ignoreTLS: true }).sendMail(docsMessage),
};

(async () => {
  const run = cases[process.argv[2]];
  if (!run) throw new Error(`unknown case ${process.argv[2]}`);
  try {
    const info = await run();
    const out = info.sent ? info : { response: info.response, messageId: info.messageId, cid };
    console.log(JSON.stringify({ ok: true, ...out }));
  } catch (err) {
    console.log(JSON.stringify({ ok: false, error: err.message, code: err.code }));
  }
})();
