//! Golden tests for the message mapping: every `tests/fixtures/messages/<name>.eml` is mapped
//! and compared, as JSON values, with `<name>.json` beside it — the full request body, or
//! `{"error": "<the SMTP reply>"}` for a refused message.
//!
//! The envelope is `<name>.envelope.json` when present, else [`default_envelope`]; the source
//! and the limits are fixed ([`source`], [`limits`]). On a mismatch the actual mapping is
//! written to `<name>.failed.json` and the test fails listing every mismatching fixture.
//!
//! Two sets:
//! - **the hand-written core**, [`HAND_WRITTEN`]: expected files written by hand from
//!   docs/mapping.md and never regenerated. They are the evidence that does not come from the
//!   code under test: [`hand_written_core`] ignores `UPDATE_GOLDEN`, never writes them, and
//!   fails on any mismatch. A change to a mapping rule changes a core `.json` by hand, with
//!   docs/mapping.md, in the same commit.
//! - **the rest**: `UPDATE_GOLDEN=1 cargo test --test mapping` rewrites their expected files
//!   instead of comparing ([`golden_fixtures`]): each rewritten file must then be reviewed by
//!   hand, because the expected files are the specification, not a snapshot.
//!
//! The core stays in the same folder as the rest (other tests and the fuzz corpus read every
//! fixture there). How each `.eml` was made is in the fixtures' README.md.

use std::fs;
use std::path::{Path, PathBuf};

use sendpigeon_relay::message::{MimeLimits, Source, map_message};
use sendpigeon_relay::smtp::Envelope;
use serde_json::{Value, json};

/// The envelope of a fixture without `<name>.envelope.json`.
fn default_envelope() -> Envelope {
    Envelope {
        mail_from: "bounces@example.com".into(),
        rcpt_to: vec!["jane@example.com".into()],
    }
}

fn source() -> Source {
    Source {
        kind: "smtp",
        client_ip: "203.0.113.7".parse().unwrap(),
        tls: Some("TLSv1.3"),
        helo: "client.example".into(),
        session_id: "01HF0TESTSESSION".into(),
    }
}

/// The configuration defaults, except a 16 KiB header section so that a small fixture can
/// exceed it.
fn limits() -> MimeLimits {
    MimeLimits {
        header_section: 16 * 1024,
        parts: 1000,
        depth: 50,
        received_headers: 50,
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/messages")
}

fn envelope_for(eml: &Path) -> Envelope {
    let path = eml.with_extension("envelope.json");
    let Ok(text) = fs::read_to_string(&path) else {
        return default_envelope();
    };
    let value: Value = serde_json::from_str(&text).unwrap();
    Envelope {
        mail_from: value["mail_from"].as_str().unwrap().into(),
        rcpt_to: value["rcpt_to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().into())
            .collect(),
    }
}

/// The mapping of one fixture as a JSON value, written the way the relay writes it (in
/// chunks, checked against the length announced up front), then read back.
fn map_fixture(eml: &Path) -> Value {
    let raw = fs::read(eml).unwrap();
    let envelope = envelope_for(eml);
    match map_message(raw, &envelope, &source(), &limits()) {
        Ok(mapped) => {
            let announced = mapped.body.len();
            let mut bytes = Vec::new();
            mapped.body.write_to(&mut bytes).unwrap();
            assert_eq!(bytes.len(), announced, "{}", eml.display());
            serde_json::from_slice(&bytes).unwrap()
        }
        Err(err) => json!({ "error": err.reply().to_string() }),
    }
}

/// The hand-written core: fixtures whose `.json` was written by hand from docs/mapping.md
/// (those of `generate/gen_realworld.py` and `generate/gen_core.py`) and is never rewritten.
/// Together they hold every mapping rule: addresses (from, to, cc, reply_to, bcc), subject,
/// text and html, attachments, headers, control fields, tracking, the nesting limit.
const HAND_WRITTEN: &[&str] = &[
    // generate/gen_core.py: the address, header and tracking rules.
    "addresses-headers-tracking-rules",
    "tracking-opens-false-then-true",
    // generate/gen_realworld.py.
    "apple-mail-qp-quotes-boundary-header",
    "nodemailer-base64-text-mentions-boundary",
    "thunderbird-8bit-utf8-mentions-boundary",
    "newsletter-json-escaped-boundary",
    "python-rfc2231-boundary-prose",
    "helpdesk-reply-quotes-raw-message",
    "thunderbird-pasted-source-other-boundary",
    "mutt-signature-dash-dash-space",
    "javamail-dash-boundary-signature",
    "nesting-12-levels",
    "mime-nesting-50-levels",
    "mime-nesting-51-levels",
    "outlook-related-two-inline-images",
    "google-calendar-invite",
    "calendar-cancel-component-base64",
    "thunderbird-text-attachments-iso-8859-1",
    "thunderbird-csv-windows-1252-base64",
    "script-base64-without-padding",
    "base64-line-lengths",
    "forwarded-rfc822-7bit-utf8-boundary-mentioned",
];

fn is_hand_written(eml: &Path) -> bool {
    eml.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|stem| HAND_WRITTEN.contains(&stem))
}

/// Every `.eml` of the corpus, sorted.
fn all_emls() -> Vec<PathBuf> {
    let mut emls: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    emls
}

/// Maps each fixture and compares it with its `.json`, or (with `update`) rewrites the
/// `.json`. Returns the fixtures that differ.
fn compare(emls: &[PathBuf], update: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for eml in emls {
        let actual = map_fixture(eml);
        let expected_path = eml.with_extension("json");
        let failed_path = eml.with_extension("failed.json");
        let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        if update {
            fs::write(&expected_path, &pretty).unwrap();
            continue;
        }
        let expected: Option<Value> = fs::read_to_string(&expected_path)
            .ok()
            .map(|text| serde_json::from_str(&text).unwrap());
        if expected.as_ref() == Some(&actual) {
            let _ = fs::remove_file(&failed_path);
        } else {
            fs::write(&failed_path, &pretty).unwrap();
            failures.push(eml.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    failures
}

/// The core against its hand-written expectations, whatever `UPDATE_GOLDEN` says.
#[test]
fn hand_written_core() {
    let emls: Vec<PathBuf> = HAND_WRITTEN
        .iter()
        .map(|name| fixtures_dir().join(format!("{name}.eml")))
        .collect();
    for eml in &emls {
        assert!(
            eml.is_file() && eml.with_extension("json").is_file(),
            "core fixture {} or its .json is missing",
            eml.display()
        );
    }
    // Every fixture of the hand-written generators is in the core, and nothing else.
    let mut generated: Vec<String> = ["gen_core.py", "gen_realworld.py"]
        .iter()
        .flat_map(|script| {
            let text = fs::read_to_string(fixtures_dir().join("generate").join(script)).unwrap();
            text.lines()
                .filter_map(|l| l.strip_prefix("write(\""))
                .map(|l| l.split('"').next().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    generated.sort();
    let mut listed: Vec<String> = HAND_WRITTEN.iter().map(|n| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        listed, generated,
        "HAND_WRITTEN and the fixtures of gen_core.py and gen_realworld.py differ"
    );
    let failures = compare(&emls, false);
    assert!(
        failures.is_empty(),
        "{} core fixture(s) differ from their hand-written .json (actual output in \
         <name>.failed.json; UPDATE_GOLDEN never rewrites these: fix the code, or change \
         the rule in docs/mapping.md and the .json by hand): {}",
        failures.len(),
        failures.join(", ")
    );
}

/// The rest of the corpus; `UPDATE_GOLDEN=1` rewrites their expected files.
#[test]
fn golden_fixtures() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let emls: Vec<PathBuf> = all_emls()
        .into_iter()
        .filter(|eml| !is_hand_written(eml))
        .collect();
    assert!(
        emls.len() >= 30,
        "expected the fixture corpus, found {}",
        emls.len()
    );
    let failures = compare(&emls, update);
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ from their .json (actual output in <name>.failed.json): {}",
        failures.len(),
        failures.join(", ")
    );
}

/// Chunks of any size make the same body: read through the HTTP body interface, one frame
/// at a time, the bytes equal the whole write, and the size hint is exact from the start.
#[test]
fn chunked_reads_and_whole_writes_agree() {
    use http_body::Body as _;
    for name in [
        "nodemailer-full.eml",
        "python-email-alternative-related-attachment.eml",
    ] {
        let eml = fixtures_dir().join(name);
        let raw = fs::read(&eml).unwrap();
        let envelope = envelope_for(&eml);
        let whole = map_message(raw.clone(), &envelope, &source(), &limits())
            .unwrap()
            .body
            .into_vec();
        let mut body = map_message(raw, &envelope, &source(), &limits())
            .unwrap()
            .body;
        assert_eq!(body.size_hint().exact(), Some(whole.len() as u64));
        let mut chunked = Vec::new();
        while let Some(chunk) = body.next_chunk() {
            chunked.extend_from_slice(&chunk);
        }
        assert_eq!(chunked, whole);
    }
}

/// A measurement, not a check: maps the message at `$SP_MEASURE_EML` and writes its body to a
/// file, and prints the time. For peak memory, run it alone under `/usr/bin/time -v`:
/// `SP_MEASURE_EML=big.eml /usr/bin/time -v cargo test --release --test mapping -- --ignored measure`
/// (or the test binary directly, to leave cargo out of the numbers).
#[test]
#[ignore]
fn measure_large_message() {
    let Some(path) = std::env::var_os("SP_MEASURE_EML") else {
        eprintln!("set SP_MEASURE_EML to a message file");
        return;
    };
    let raw = fs::read(&path).unwrap();
    let size = raw.len();
    let started = std::time::Instant::now();
    match map_message(raw, &default_envelope(), &source(), &limits()) {
        Ok(mapped) => {
            let mapped_in = started.elapsed();
            let len = mapped.body.len();
            let extra = mapped.body.extra_cost();
            let file = tempfile::tempfile().unwrap();
            mapped
                .body
                .write_to(std::io::BufWriter::new(&file))
                .unwrap();
            eprintln!(
                "mapped {size} bytes in {mapped_in:?} (extra cost {extra} bytes); \
                 wrote {len} bytes of JSON in {:?} in all",
                started.elapsed()
            );
        }
        Err(err) => eprintln!(
            "refused {size} bytes in {:?}: {}",
            started.elapsed(),
            err.reply()
        ),
    }
}
