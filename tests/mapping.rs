//! Golden tests for the message mapping: every `tests/fixtures/messages/<name>.eml` is mapped
//! and compared, as JSON values, with `<name>.json` beside it — the full request body, or
//! `{"error": "<the SMTP reply>"}` for a refused message.
//!
//! The envelope is `<name>.envelope.json` when present, else [`default_envelope`]; the source
//! and the limits are fixed ([`source`], [`limits`]). On a mismatch the actual mapping is
//! written to `<name>.failed.json` and the test fails listing every mismatching fixture.
//! `UPDATE_GOLDEN=1 cargo test --test mapping` rewrites the expected files instead: each
//! rewritten file must then be reviewed by hand, because the expected files are the
//! specification, not a snapshot. How each `.eml` was made is in the fixtures' README.md.

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

#[test]
fn golden_fixtures() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut emls: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    assert!(
        emls.len() >= 30,
        "expected the fixture corpus, found {}",
        emls.len()
    );

    let mut failures = Vec::new();
    for eml in &emls {
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
