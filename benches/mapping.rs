//! Mapping cost by message size (criterion): parse, plan and write the request body, plus the
//! Idempotency-Key digest — the work `Renderer::prepare` does for one message. Small messages
//! are mapped on the async worker that received them (`MAP_ON_WORKER_MAX` in
//! `src/pipeline/render.rs`), larger ones on the blocking pool: this says how long a worker
//! is held at each size.
//!
//! `cargo bench --ignore-rust-version --bench mapping`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sendpigeon_relay::message::{MimeLimits, Source, map_message};
use sendpigeon_relay::pipeline::derived_key;
use sendpigeon_relay::secret::ApiKey;
use sendpigeon_relay::smtp::Envelope;

/// A transactional message of about `size` bytes: text and html alternatives, and above
/// 32 KiB a base64 attachment (as the load generator makes them).
fn message(size: usize) -> Vec<u8> {
    let mut out = String::from(
        "From: Shop <orders@shop.example>\r\nTo: jane@example.com\r\nSubject: Your order\r\n\
         Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <o-1@shop.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    let body = (size.min(32 * 1024)).saturating_sub(600) / 2;
    let line = "Your order #48213 has shipped and will arrive on Monday.\r\n";
    while out.len() < body {
        out.push_str(line);
    }
    out.push_str("--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n");
    let html_end = out.len() + body;
    while out.len() < html_end {
        out.push_str("<p>Your order #48213 has shipped.</p>\r\n");
    }
    out.push_str("--alt--\r\n");
    if size > 32 * 1024 {
        out.push_str(
            "--mix\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
        );
        let mut seed: u32 = 0x9E37_79B9;
        while out.len() < size {
            let mut line = String::with_capacity(78);
            for _ in 0..76 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                line.push(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(seed % 64) as usize] as char,
                );
            }
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out.push_str("--mix--\r\n");
    out.into_bytes()
}

fn mapping(c: &mut Criterion) {
    let envelope = Envelope {
        mail_from: "orders@shop.example".into(),
        rcpt_to: vec!["jane@example.com".into()],
    };
    let source = Source {
        kind: "smtp",
        client_ip: "203.0.113.7".parse().expect("address"),
        tls: Some("TLSv1.3"),
        helo: "app-1.shop.example".into(),
        session_id: "01BENCH".into(),
    };
    let limits = MimeLimits {
        header_section: 1 << 20,
        parts: 1000,
        depth: 50,
        received_headers: 50,
    };
    let key = ApiKey::new("sk_live_bench_0000000000");
    let mut group = c.benchmark_group("map_and_write");
    for size in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let raw = message(size);
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &raw, |b, raw| {
            b.iter(|| {
                let mapped = map_message(raw.clone(), &envelope, &source, &limits)
                    .expect("the message maps");
                let key = derived_key(&key, &envelope, mapped.body.raw());
                black_box((mapped.body.into_vec(), key))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
