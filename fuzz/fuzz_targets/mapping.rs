//! The MIME mapping as the upstreams run it: `Renderer::prepare(Submission)` (header checks,
//! mail-parser, the request body), then the body written in chunks as the HTTP client and the
//! outbox read it.
//!
//! Input: the message bytes. They are first given CRLF-only line endings (every bare CR or LF
//! becomes CRLF), as the session delivers them; the envelope, key and source are fixed, as in
//! `tests/mapping.rs`; the limits are the configuration defaults with a 16 KiB header section.
//!
//! Properties: no panic; a refusal is fine; an accepted message's body is exactly as long as
//! announced (`Content-Length`), is valid JSON (serde_json parses it) and is an object with
//! the request's fields; and its length is bounded by [`body_bound`].
//!
//! Set `MAPPING_SHOW_RATIO=1` to print each accepted input's size, body length and ratio.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use relay_fuzz::normalize_line_endings;
use sendpigeon_relay::memory::budget::MemoryBudget;
use sendpigeon_relay::message::{MimeLimits, Source};
use sendpigeon_relay::pipeline::{CommitGate, Renderer, Submission};
use sendpigeon_relay::secret::ApiKey;
use sendpigeon_relay::smtp::Envelope;

const PARTS: usize = 1000;

/// The most the request body can be for a message of `size` bytes (CRLF-normalised).
///
/// The simple bound `ceil(4/3 × size) + overhead` (attachments as base64) does NOT hold,
/// because text is JSON-escaped and the request names items that cost a fixed amount each:
/// - a text or html body, and the subject, keep control characters: each becomes `\u00XX`,
///   six bytes for one (measured: 65 000 × `\x01` in a text body gives 6.0 × size); decoding
///   only shrinks the input first (quoted-printable `=01`: 2 ×, base64: 4.5 ×, UTF-16: 3 ×);
/// - a mailbox of `To:`/`Cc:`/`Reply-To:` is `{"email":"…"}`: mail-parser takes `@` alone as
///   an address, so `To: @,@,@,…` costs 14 bytes per 2 (measured 7.0 ×); a display name of
///   control characters tends to 6 ×; a forwarded `X-:` header costs 25 per 5 (5.0 ×);
/// - an attachment is `{"filename":"attachment-<n>.txt","content_type":"text/plain",
///   "content":"QQ==","disposition":"attachment"}`: about 106 bytes (under 128 with the
///   longest generated type and name) for a part of 10 bytes (`--x` CRLF CRLF `A` CRLF;
///   measured 10.5 × for 998 such parts), at most `PARTS` of them (`limits.parts`);
/// - the fixed fields (envelope, source, tracking, empty lists) are about 430 bytes.
///
/// Hence the bound asserted: 7 × size + 128 × min(PARTS, size / 8) + 1 KiB. Attachment
/// content is only 4/3 × (its decoded bytes never exceed its raw bytes).
fn body_bound(size: usize) -> usize {
    7 * size + 128 * PARTS.min(size / 8) + 1024
}

fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        let counter = prometheus::IntCounter::new("without_identity", "fuzz").unwrap();
        Renderer::new(
            MimeLimits {
                header_section: 16 * 1024,
                parts: PARTS,
                depth: 50,
                received_headers: 50,
            },
            counter,
        )
    })
}

fn show_ratio() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("MAPPING_SHOW_RATIO").is_some())
}

fuzz_target!(|data: &[u8]| {
    let message = normalize_line_endings(data);
    let size = message.len();
    let budget = MemoryBudget::new(1 << 30);
    let sub = Submission {
        envelope: Envelope {
            mail_from: "bounces@example.com".into(),
            rcpt_to: vec!["jane@example.com".into(), "bob@example.com".into()],
        },
        message,
        reservation: budget.reservation(),
        key: ApiKey::new("sk_live_TESTKEY"),
        source: Source {
            kind: "smtp",
            client_ip: "203.0.113.7".parse().unwrap(),
            tls: Some("TLSv1.3"),
            helo: "client.example".into(),
            session_id: "01HF0TESTSESSION".into(),
        },
        request_id: "01HF0TESTSESSION.1".into(),
        received_at: SystemTime::UNIX_EPOCH,
        commit: CommitGate::new(),
    };
    let prepared = match renderer().prepare(sub) {
        Ok(prepared) => prepared,
        Err(e) => {
            assert!(e.reply.code() >= 400, "a refusal with reply {:?}", e.reply);
            return;
        }
    };
    let announced = prepared.body.len();
    let mut body = Vec::new();
    prepared
        .body
        .write_to(&mut body)
        .expect("the body is not as long as announced");
    assert_eq!(body.len(), announced);
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => panic!(
            "the request body is not JSON: {e}\n{}",
            String::from_utf8_lossy(&body)
        ),
    };
    let object = value.as_object().expect("the body is not a JSON object");
    for field in ["from", "to", "subject", "attachments", "envelope", "source"] {
        assert!(object.contains_key(field), "no {field:?} in the body");
    }
    if show_ratio() {
        eprintln!(
            "size {size} body {announced} ratio {:.3}",
            announced as f64 / size.max(1) as f64
        );
    }
    assert!(
        announced <= body_bound(size),
        "a {size}-byte message made a {announced}-byte body (bound {})",
        body_bound(size)
    );
    drop(prepared.reservation);
});
