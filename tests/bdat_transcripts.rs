//! CHUNKING (RFC 3030; docs/smtp.md "CHUNKING") through the sans-IO session: each transcript
//! whole, one byte per read and split at every byte boundary of each turn, with identical
//! replies and identical delivered bytes.

mod common;

use std::sync::Arc;

use common::transcript::*;
use sendpigeon_relay::smtp::Reply;
use sendpigeon_relay::smtp::data::BareLfPolicy;

const OK: &str = "250 2.0.0 OK\r\n";
const ENVELOPE: &str = "MAIL FROM:<s@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\n";
const ENVELOPE_OK: &str = "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n";
const QUEUED: &str = "250 2.0.0 OK: queued as Q1\r\n";
const BYE: &str = "221 2.0.0 Bye\r\n";
const NEED_MAIL: &str = "503 5.5.1 Need MAIL command\r\n";
const TOO_BIG: &str = "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
const BAD_SYNTAX: &str = "501 5.5.4 Syntax: BDAT size [LAST], closing connection\r\n";
const UNSUPPORTED: &str = "521 5.5.1 CHUNKING is not supported, closing connection\r\n";

fn octets(n: u64) -> String {
    format!("250 2.0.0 {n} octets received\r\n")
}

#[test]
fn chunks_make_one_message_with_dots_and_commands_kept_as_content() {
    // No dot-stuffing and no end-of-data scan: a `.` line, a lone dot and command lines inside
    // a chunk are content.
    let first = "Subject: hi\r\n\r\n.Hello\r\n.\r\n";
    let second = "MAIL FROM:<x@y.example>\r\nQUIT\r\n";
    let turn1 = format!("BDAT {}\r\n{first}", first.len());
    let turn2 = format!("BDAT {} LAST\r\n{second}", second.len());
    let run = check(
        &config(),
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            (&turn1, &octets(first.len() as u64)),
            (&turn2, QUEUED),
            ("QUIT\r\n", BYE),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].0, "s@sender.example");
    assert_eq!(run.delivered[0].1, vec!["r@rcpt.example".to_string()]);
    assert_eq!(
        run.delivered[0].2,
        format!("{first}{second}").into_bytes(),
        "the message is the chunks' octets, nothing removed"
    );
    assert!(run.closed);
}

#[test]
fn a_pipelined_transaction_in_one_write_and_bdat_0_last() {
    // As Exim sends it: MAIL, RCPT and the chunks in one write; `BDAT 0 LAST` ends a message
    // that earlier chunks carried; the next transaction follows in the same write.
    let script = format!(
        "{ENVELOPE}BDAT 14\r\nSubject: a\r\n\r\nBDAT 3\r\nab\nBDAT 0 LAST\r\n{ENVELOPE}BDAT 7 LAST\r\nx\r\n\r\nyz"
    );
    let expected = format!(
        "{ENVELOPE_OK}{}{}{QUEUED}{ENVELOPE_OK}{QUEUED}",
        octets(14),
        octets(3)
    );
    let run = check(&config(), None, &after_auth(&[(&script, &expected)]));
    assert_eq!(run.delivered.len(), 2);
    // The bare LF became CRLF: the upstream never sees a bare line ending.
    assert_eq!(run.delivered[0].2, b"Subject: a\r\n\r\nab\r\n");
    assert_eq!(run.delivered[1].2, b"x\r\n\r\nyz");
}

#[test]
fn bare_line_endings_are_normalised_never_refused_even_across_chunks() {
    // RFC 3030 content is not line-framed: the `reject` policy is DATA's alone. A CR that
    // ends one chunk and an LF that starts the next are one CRLF.
    let mut cfg = config();
    cfg.bare_lf = BareLfPolicy::Reject;
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 5\r\nA\nB\rC", &octets(5)),
            ("BDAT 3\r\n\r\n\r", &octets(3)),
            ("BDAT 2\r\n\nD", &octets(2)),
            ("BDAT 1 LAST\r\n\r", QUEUED),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].2, b"A\r\nB\r\nC\r\n\r\nD\r\n");
}

#[test]
fn a_chunk_without_a_transaction_is_read_and_refused_until_last() {
    // The octets are never commands. Only the first refusal counts as an error: a pipeline
    // of refused chunks does not reach the error limit (2 here).
    let mut cfg = config();
    cfg.max_errors = 2;
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            ("BDAT 6\r\nRSET\r\n", NEED_MAIL),
            ("BDAT 6\r\nQUIT\r\nBDAT 6\r\nQUIT\r\n", &NEED_MAIL.repeat(2)),
            ("BDAT 10 LAST\r\nMAIL FROM:", NEED_MAIL),
            // LAST ended the failed transaction: a new one works.
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 5 LAST\r\nx\r\n\r\n", QUEUED),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].2, b"x\r\n\r\n");
    assert!(!run.closed);
}

#[test]
fn without_an_accepted_recipient_or_auth_chunks_are_refused() {
    let no_rcpt = check(
        &config(),
        None,
        &after_auth(&[
            (
                "MAIL FROM:<s@sender.example>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde",
                "250 2.1.0 Sender OK\r\n503 5.5.1 Need RCPT command\r\n503 5.5.1 Need RCPT command\r\n",
            ),
            // The failed transaction is over: MAIL starts a new one.
            (ENVELOPE, ENVELOPE_OK),
        ]),
    );
    assert!(no_rcpt.delivered.is_empty());

    let mut script = authenticated();
    script.pop();
    script.push((
        "BDAT 4 LAST\r\nNOOP",
        "530 5.7.0 Authentication required\r\n",
    ));
    script.push(("NOOP\r\n", OK));
    check(&config(), None, &script);
}

#[test]
fn an_early_refusal_leaves_pipelined_chunks_discarded() {
    // Failing early (docs/upstream.md): no transaction starts, RCPT and BDAT get 503, and
    // the chunk's octets are read, never run.
    let run = check_gated(
        &config(),
        None,
        &after_auth(&[
            (
                "MAIL FROM:<a@blocked.example>\r\nRCPT TO:<r@rcpt.example>\r\nBDAT 6 LAST\r\nQUIT\r\n",
                &format!(
                    "451 4.7.1 Domain blocked.example is not verified\r\n{NEED_MAIL}{NEED_MAIL}"
                ),
            ),
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 5 LAST\r\nx\r\n\r\n", QUEUED),
        ]),
        &plenty,
        Some(Arc::new(BlockedDomain)),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].0, "s@sender.example");
}

#[test]
fn the_size_limit_applies_to_the_sum_and_closes_unread() {
    let mut cfg = config();
    cfg.max_message_size = 100;
    let sixty = "x".repeat(60);
    let forty = "y".repeat(40);
    let turn1 = format!("BDAT 60\r\n{sixty}");
    // 60 + 41 > 100: refused before its octets, which are never read.
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            (&turn1, &octets(60)),
            ("BDAT 41 LAST\r\nQUIT\r\n", TOO_BIG),
        ]),
    );
    assert!(run.closed);
    assert!(run.delivered.is_empty());

    // Exactly at the limit is fine.
    let turn2 = format!("BDAT 40 LAST\r\n{forty}");
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            (&turn1, &octets(60)),
            (&turn2, QUEUED),
        ]),
    );
    assert_eq!(run.delivered[0].2.len(), 100);

    // A size no limit allows, with or without a transaction, and the discarded octets of a
    // failed transaction count too: nothing sized by the client's number is read.
    for script in [
        vec![
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 99999999999999999999 LAST\r\n", TOO_BIG),
        ],
        vec![("BDAT 18446744073709551615\r\n", TOO_BIG)],
        vec![("BDAT 101\r\n", TOO_BIG)],
        vec![(turn1.as_str(), NEED_MAIL), ("BDAT 41\r\n", TOO_BIG)],
    ] {
        let run = check(&cfg, None, &after_auth(&script));
        assert!(run.closed);
        assert!(run.delivered.is_empty());
    }
}

#[test]
fn normalised_line_endings_count_towards_the_limit() {
    // 60 bare LFs become 120 octets: over 100 at the end of the chunk.
    let mut cfg = config();
    cfg.max_message_size = 100;
    let turn = format!("BDAT 60\r\n{}", "\n".repeat(60));
    let run = check(
        &cfg,
        None,
        &after_auth(&[(ENVELOPE, ENVELOPE_OK), (&turn, TOO_BIG)]),
    );
    assert!(run.closed);
}

#[test]
fn bdat_and_data_are_never_mixed() {
    let run = check(
        &config(),
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 5\r\nx\r\n\r\n", &octets(5)),
            (
                "DATA\r\n",
                "503 5.5.1 DATA cannot be mixed with BDAT in one transaction\r\n",
            ),
            ("BDAT 0 LAST\r\n", QUEUED),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].2, b"x\r\n\r\n");
}

#[test]
fn a_size_that_cannot_be_framed_closes() {
    for line in [
        "BDAT\r\n",
        "BDAT abc\r\n",
        "BDAT -1\r\n",
        "BDAT 10 FIRST\r\n",
        "BDAT 10 LAST now\r\n",
        "BDAT 100000000000000000000 LAST\r\n",
    ] {
        let run = check(
            &config(),
            None,
            &after_auth(&[(ENVELOPE, ENVELOPE_OK), (line, BAD_SYNTAX)]),
        );
        assert!(run.closed, "{line:?}");
    }
}

#[test]
fn chunking_is_offered_only_after_tls_and_when_configured() {
    // Before TLS: not offered; BDAT's payload would follow at once, so 521 and close (SMUG-16).
    let run = check(
        &config(),
        None,
        &[
            ("EHLO c.example\r\n", EHLO_PLAIN),
            (
                "BDAT 48 LAST\r\nMAIL FROM:<x@y.example>\r\nRCPT TO:<z@w.example>\r\n",
                UNSUPPORTED,
            ),
        ],
    );
    assert!(run.closed);

    // Configured off: not in the EHLO reply (the expected reply follows `chunking`), and
    // BDAT after TLS is refused the same way.
    let mut cfg = config();
    cfg.chunking = false;
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 5 LAST\r\nQUIT\r\n", UNSUPPORTED),
        ]),
    );
    assert!(run.closed);

    // Implicit TLS offers it at once.
    let mut h = Harness::with(config(), Some("TLSv1.3"), plenty().0);
    assert!(
        h.turn(b"EHLO c.example\r\n", Cut::Whole)
            .contains("250-CHUNKING\r\n")
    );
}

#[test]
fn an_upstream_refusal_after_last_is_relayed_and_the_session_goes_on() {
    let refusal = Reply::dynamic(550, "5.7.1", "Domain not verified");
    let turns: Vec<&[u8]> = vec![
        b"EHLO c.example\r\n",
        AUTH_PLAIN_OK.as_bytes(),
        ENVELOPE.as_bytes(),
        b"BDAT 5 LAST\r\nx\r\n\r\nNOOP\r\n",
    ];
    let mut h = Harness::with(config(), Some("TLSv1.3"), plenty().0)
        .upstream(move |_| Err(refusal.clone()));
    for turn in &turns[..3] {
        h.turn(turn, Cut::Whole);
    }
    assert_eq!(
        h.turn(turns[3], Cut::Whole),
        format!("550 5.7.1 Domain not verified\r\n{OK}")
    );
    assert_eq!(h.finish().delivered.len(), 1);
}

#[test]
fn a_budget_spent_mid_chunk_refuses_that_chunk_and_the_rest_of_the_transaction() {
    // The message outgrows the free small pool while the large pool stays held: the chunk is
    // read to its end holding nothing, gets 452, and so does every later chunk until LAST.
    let big = "x".repeat(600_000);
    let chunk = format!("BDAT {}\r\n{big}", big.len());
    let mut runs = Vec::new();
    for cut in [Cut::Whole, Cut::At(1), Cut::At(4096), Cut::At(300_000)] {
        let (budget, _held) = budget_mostly_held();
        let mut h = Harness::with(config(), Some("TLSv1.3"), budget);
        h.turn(b"EHLO c.example\r\n", Cut::Whole);
        h.turn(AUTH_PLAIN_OK.as_bytes(), Cut::Whole);
        assert_eq!(h.turn(ENVELOPE.as_bytes(), Cut::Whole), ENVELOPE_OK);
        let storage = "452 4.3.1 Insufficient system storage\r\n";
        assert_eq!(h.turn(chunk.as_bytes(), cut), storage);
        assert_eq!(
            h.turn(b"BDAT 3 LAST\r\nabcNOOP\r\n", cut),
            format!("{storage}{OK}")
        );
        runs.push(h.finish());
    }
    for run in &runs {
        assert!(run.delivered.is_empty());
        assert_eq!(run.memory_waits, 1);
        assert!(!run.closed);
    }
}

#[test]
fn rset_and_ehlo_end_a_chunked_transaction() {
    let run = check(
        &config(),
        None,
        &after_auth(&[
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 4\r\nabcd", &octets(4)),
            ("RSET\r\n", OK),
            ("BDAT 0 LAST\r\n", NEED_MAIL),
            ("RSET\r\n", OK),
            (ENVELOPE, ENVELOPE_OK),
            ("BDAT 4\r\nabcd", &octets(4)),
            ("EHLO c.example\r\n", EHLO_TLS),
            ("BDAT 0 LAST\r\n", NEED_MAIL),
        ]),
    );
    assert!(run.delivered.is_empty());
}
