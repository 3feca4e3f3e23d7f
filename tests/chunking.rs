//! CHUNKING through real TLS sessions (docs/smtp.md "CHUNKING"): chunks of any size across
//! reads reach the stand-in API once, field by field; a pipelined transaction in one write; a
//! stalled chunk is timed out like DATA; a chunk past the size limit closes the session and
//! nothing is sent; the setting turns the extension off.

mod common;

use std::time::Duration;

use base64::Engine;
use common::client::Client;
use common::mock_api::MockApi;
use common::relay::{KEY, TestRelay};
use sendpigeon_relay::config::{HumanDuration, Size};

/// A multipart message with a 3 MB attachment, so chunks cross reads and memory grants.
fn message() -> (String, Vec<u8>) {
    let attachment: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let text = format!(
        "From: Billing <billing@sender.example>\r\nTo: r@rcpt.example\r\n\
         Subject: Your invoice\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n.Hello from BDAT\r\n.\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Disposition: attachment; filename=\"data.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        wrapped.join("\r\n")
    );
    (text, attachment)
}

async fn api_relay(
    tune: impl FnOnce(&mut sendpigeon_relay::config::Config),
) -> (MockApi, TestRelay) {
    let api = MockApi::start(KEY).await;
    let base = api.base.clone();
    let relay = TestRelay::start(move |c| {
        c.upstream.url = base;
        tune(c);
    })
    .await;
    (api, relay)
}

/// An authenticated STARTTLS session with MAIL and RCPT accepted.
async fn in_transaction(relay: &TestRelay) -> Client {
    let (mut c, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(auth.starts_with("235"), "{auth}");
    let mail = c.cmd("MAIL FROM:<s@sender.example>").await;
    assert_eq!(mail, "250 2.1.0 Sender OK\r\n");
    let rcpt = c.cmd("RCPT TO:<r@rcpt.example>").await;
    assert_eq!(rcpt, "250 2.1.5 Recipient OK\r\n");
    c
}

#[tokio::test]
async fn chunks_across_reads_reach_the_api_once_field_by_field() {
    let (api, relay) = api_relay(|_| {}).await;
    let (mut c, auth) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    assert!(auth.starts_with("235"), "{auth}");
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.contains("250-CHUNKING\r\n"), "{ehlo}");
    assert_eq!(
        c.cmd("MAIL FROM:<billing@sender.example>").await,
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(
        c.cmd("RCPT TO:<r@rcpt.example>").await,
        "250 2.1.5 Recipient OK\r\n"
    );
    let (text, attachment) = message();
    let bytes = text.as_bytes();
    // Uneven chunks: a small one, a large one, then the rest with LAST.
    let cuts = [0, 100, 2_000_000, bytes.len()];
    for w in cuts.windows(2).take(2) {
        let chunk = &bytes[w[0]..w[1]];
        c.send(format!("BDAT {}\r\n", chunk.len())).await;
        c.send(chunk).await;
        assert_eq!(
            c.reply().await,
            format!("250 2.0.0 {} octets received\r\n", chunk.len())
        );
    }
    let rest = &bytes[cuts[2]..];
    c.send(format!("BDAT {} LAST\r\n", rest.len())).await;
    c.send(rest).await;
    let queued = c.reply().await;
    assert!(queued.starts_with("250 2.0.0 OK: queued as "), "{queued}");
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");

    let sends = api.sends();
    assert_eq!(sends.len(), 1, "exactly one request");
    let body = sends[0].json();
    assert_eq!(
        body["from"],
        serde_json::json!({"email": "billing@sender.example", "name": "Billing"})
    );
    assert_eq!(body["to"], serde_json::json!([{"email": "r@rcpt.example"}]));
    assert_eq!(body["subject"], "Your invoice");
    // No dot was removed: BDAT content is not stuffed.
    assert_eq!(body["text"], ".Hello from BDAT\n.");
    let attachments = body["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["filename"], "data.bin");
    let content = base64::engine::general_purpose::STANDARD
        .decode(attachments[0]["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(content, attachment);
}

#[tokio::test]
async fn a_pipelined_transaction_over_implicit_tls_in_one_write() {
    let (api, relay) = api_relay(|_| {}).await;
    let (mut c, greeting) = Client::tls(relay.implicit, &relay.ca()).await;
    assert!(greeting.starts_with("220 "));
    c.authenticate(KEY).await;
    let msg = "From: s@sender.example\r\nTo: r@rcpt.example\r\nSubject: one write\r\n\r\nHi\n";
    let (head, tail) = msg.split_at(30);
    c.send(format!(
        "MAIL FROM:<s@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\nBDAT {}\r\n{head}BDAT {} LAST\r\n{tail}QUIT\r\n",
        head.len(),
        tail.len()
    ))
    .await;
    let mut replies = String::new();
    while !replies.contains("221 ") {
        replies.push_str(&c.reply().await);
    }
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines[0], "250 2.1.0 Sender OK");
    assert_eq!(lines[1], "250 2.1.5 Recipient OK");
    assert_eq!(lines[2], "250 2.0.0 30 octets received");
    assert!(
        lines[3].starts_with("250 2.0.0 OK: queued as "),
        "{replies}"
    );
    assert_eq!(lines[4], "221 2.0.0 Bye");
    let sends = api.sends();
    assert_eq!(sends.len(), 1);
    let body = sends[0].json();
    assert_eq!(body["subject"], "one write");
    // Line breaks in `text` are `\n` and never a CR (docs/mapping.md), bare or not.
    assert_eq!(body["text"], "Hi\n");
}

#[tokio::test]
async fn a_stalled_chunk_times_out_like_data_and_nothing_is_sent() {
    let (api, relay) =
        api_relay(|c| c.timeouts.data_read = HumanDuration(Duration::from_millis(300))).await;
    let mut c = in_transaction(&relay).await;
    c.send("BDAT 100 LAST\r\nSubject: half\r\n").await;
    let (closed, said) = c.closed_within(Duration::from_secs(10)).await;
    assert!(closed, "{said}");
    assert!(said.starts_with("421 4.4.2 "), "{said}");
    assert!(api.sends().is_empty());
}

#[tokio::test]
async fn a_chunk_past_the_size_limit_closes_and_nothing_is_sent() {
    let (api, relay) = api_relay(|c| c.limits.message_size = Size(1000)).await;
    let mut c = in_transaction(&relay).await;
    c.send(format!("BDAT 600\r\n{}", "x".repeat(600))).await;
    assert_eq!(c.reply().await, "250 2.0.0 600 octets received\r\n");
    c.send("BDAT 401 LAST\r\n").await;
    let (closed, said) = c.closed_within(Duration::from_secs(10)).await;
    assert!(closed);
    assert_eq!(
        said,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(api.sends().is_empty());
    assert_eq!(
        relay
            .metric("messages_refused_total{class=\"5xx\",reason=\"size\"}")
            .await,
        1
    );
}

#[tokio::test]
async fn chunking_off_is_not_offered_and_bdat_closes() {
    let (api, relay) = api_relay(|c| c.server.chunking = false).await;
    let (mut c, _) = Client::submission(relay.starttls, &relay.ca(), KEY).await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(!ehlo.contains("CHUNKING"), "{ehlo}");
    let mut c = in_transaction(&relay).await;
    c.send("BDAT 6 LAST\r\nQUIT\r\n").await;
    let (closed, said) = c.closed_within(Duration::from_secs(10)).await;
    assert!(closed);
    assert_eq!(
        said,
        "521 5.5.1 CHUNKING is not supported, closing connection\r\n"
    );
    assert!(api.sends().is_empty());
}
