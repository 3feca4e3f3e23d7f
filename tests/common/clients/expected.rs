//! What a message sent by the client programs should map to, and the field-by-field
//! comparison with the request body the mock API received.

use serde_json::{Value, json};

/// The attachment and inline image every rich message carries (written to `FILES`).
pub const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0x54, 0xa2, 0x4f, 0x5d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];
/// 19 MiB: over 25 MB once base64-encoded, whatever line length a client picks.
pub const BIG_ATTACHMENT: usize = 19 * 1024 * 1024;

/// What the rich messages say, in every client program.
pub const RICH_SUBJECT: &str =
    "Grüße aus Köln — Rechnung №1234 für Zoë Müller, fällig am 1. März 2026";
pub const RICH_TEXT: &str = "Hi Jane,\nyour invoice №1234 is attached. Grüße!\n";
pub const PDF_NAME: &str = "Rechnung №1234.pdf";

/// The html of the rich message, referring to the inline image by `cid`.
pub fn rich_html(cid: &str) -> String {
    format!(r#"<p>Hi Jane, your invoice №1234 is attached.</p><img src="cid:{cid}" alt="Acme">"#)
}

/// The reply every wrong key and wrong username gets.
pub const AUTH_FAILED: &str = "535 5.7.8 Authentication credentials invalid (username must be \"apikey\", password an API key)";
pub const TOO_BIG: &str = "552 5.3.4 Message size exceeds fixed maximum message size";
pub const NO_STARTTLS: &str = "530 5.7.0 Must issue a STARTTLS command first";

/// Compares a request body with what the message should map to, field by field. Absent,
/// null and empty-list fields are the same; `envelope.rcpt_to` is compared as a set,
/// `attachments` by file name, `headers` by name (the order of same-named headers kept);
/// `source` is checked for the fields every TLS client has.
pub fn assert_body(what: &str, actual: &Value, expected: &Value) {
    let actual = normalise(actual);
    let expected = normalise(expected);
    let (a, e) = (actual.as_object().unwrap(), expected.as_object().unwrap());
    for (name, want) in e {
        if name == "source" {
            continue;
        }
        assert_eq!(
            a.get(name).unwrap_or(&Value::Null),
            want,
            "{what}: field {name}"
        );
    }
    for name in a.keys() {
        assert!(
            e.contains_key(name) || name == "source",
            "{what}: unexpected field {name}: {}",
            a[name]
        );
    }
    let source = &a["source"];
    assert_eq!(source["type"], "smtp", "{what}: source");
    assert_eq!(source["client_ip"], "127.0.0.1", "{what}: source");
    assert!(
        source["tls"]
            .as_str()
            .is_some_and(|v| v == "TLSv1.3" || v == "TLSv1.2"),
        "{what}: source.tls {source}"
    );
    assert!(
        source["helo"].as_str().is_some_and(|h| !h.is_empty()),
        "{what}: source.helo {source}"
    );
}

fn normalise(body: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (name, value) in body.as_object().expect("a JSON object") {
        let empty = value.is_null() || value.as_array().is_some_and(|a| a.is_empty());
        if empty {
            continue;
        }
        let value = match name.as_str() {
            "envelope" => {
                let mut rcpts: Vec<Value> = value["rcpt_to"].as_array().unwrap().clone();
                rcpts.sort_by_key(|v| v.to_string());
                json!({"mail_from": value["mail_from"], "rcpt_to": rcpts})
            }
            "attachments" => {
                let mut list = value.as_array().unwrap().clone();
                list.sort_by_key(|a| a["filename"].to_string());
                Value::Array(list)
            }
            "headers" => {
                let mut list = value.as_array().unwrap().clone();
                list.sort_by_key(|h| h["name"].to_string());
                Value::Array(list)
            }
            _ => value.clone(),
        };
        out.insert(name.clone(), value);
    }
    Value::Object(out)
}

/// An attachment entry as the API should get it.
pub fn attachment(
    filename: &str,
    content_type: &str,
    bytes: &[u8],
    disposition: &str,
    content_id: Option<&str>,
) -> Value {
    use base64::Engine;
    let mut a = json!({
        "filename": filename,
        "content_type": content_type,
        "content": base64::engine::general_purpose::STANDARD.encode(bytes),
        "disposition": disposition,
    });
    if let Some(cid) = content_id {
        a["content_id"] = json!(cid);
    }
    a
}

/// A header entry as the API should get it.
pub fn header(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// What every rich message maps to; `html`, the headers the library adds and the Content-ID
/// of the PDF (the mail gem gives every attachment one) differ by client.
pub fn rich_expected(html: &str, cid: &str, headers: Vec<Value>, pdf_cid: Option<&str>) -> Value {
    json!({
        "from": {"email": "billing@acme.example", "name": "Zoë Müller"},
        "to": [{"email": "jane@example.com", "name": "Jane Doe"}],
        "cc": [{"email": "ops@acme.example", "name": "Öps Team"}],
        "bcc": [{"email": "audit@acme.example"}],
        "reply_to": [{"email": "support@acme.example", "name": "Acme Support"}],
        "subject": RICH_SUBJECT,
        "text": RICH_TEXT,
        "html": html,
        "headers": headers,
        "attachments": [
            attachment(PDF_NAME, "application/pdf", PDF, "attachment", pdf_cid),
            attachment("logo.png", "image/png", PNG, "inline", Some(cid)),
        ],
        "tracking": {"opens": true, "clicks": false},
        "envelope": {
            "mail_from": "billing@acme.example",
            "rcpt_to": ["jane@example.com", "ops@acme.example", "audit@acme.example"],
        },
    })
}

/// The documentation's simple message from hello@yourdomain.com to test@example.com.
pub fn docs_expected(subject: &str, fields: Value, headers: Vec<Value>) -> Value {
    let mut body = json!({
        "from": {"email": "hello@yourdomain.com"},
        "to": [{"email": "test@example.com"}],
        "subject": subject,
        "headers": headers,
        "tracking": {"opens": null, "clicks": null},
        "envelope": {"mail_from": "hello@yourdomain.com", "rcpt_to": ["test@example.com"]},
    });
    for (name, value) in fields.as_object().unwrap() {
        body[name] = value.clone();
    }
    body
}
