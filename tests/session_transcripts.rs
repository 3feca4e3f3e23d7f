//! The sans-IO session fed transcripts: each transcript whole, one byte per read, and split
//! at every byte boundary of each turn, with identical replies and identical delivered bytes.
//! Case names (SMUG-13, AUTH-09, ...) are the hostile-input cases of docs/smtp.md "Hostile input".

mod common;

use common::transcript::*;
use sendpigeon_relay::smtp::Reply;
use sendpigeon_relay::smtp::data::BareLfPolicy;

const OK: &str = "250 2.0.0 OK\r\n";
const SENDER_OK: &str = "250 2.1.0 Sender OK\r\n";
const RCPT_OK: &str = "250 2.1.5 Recipient OK\r\n";
const GO_AHEAD: &str = "354 End data with <CR><LF>.<CR><LF>\r\n";
const QUEUED: &str = "250 2.0.0 OK: queued as Q1\r\n";
const BYE: &str = "221 2.0.0 Bye\r\n";
const MUST_TLS: &str = "530 5.7.0 Must issue a STARTTLS command first\r\n";
const AUTH_INVALID: &str = "535 5.7.8 Authentication credentials invalid (username must be \"apikey\", password an API key)\r\n";
const TX: &str = "MAIL FROM:<s@sender.example>\r\nRCPT TO:<r@rcpt.example>\r\nDATA\r\n";
const TX_OK: &str =
    "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n";

fn cfg() -> sendpigeon_relay::smtp::SessionConfig {
    config()
}

#[test]
fn full_submission_and_quit() {
    let run = check(
        &cfg(),
        None,
        &after_auth(&[
            (TX, TX_OK),
            ("Subject: hi\r\n\r\nHello\r\n.\r\n", QUEUED),
            ("QUIT\r\n", BYE),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].0, "s@sender.example");
    assert_eq!(run.delivered[0].1, vec!["r@rcpt.example".to_string()]);
    assert_eq!(run.delivered[0].2, b"Subject: hi\r\n\r\nHello\r\n");
    assert!(run.closed);
}

#[test]
fn implicit_tls_session_offers_auth_at_once() {
    check(
        &cfg(),
        Some("TLSv1.3"),
        &[
            ("EHLO c.example\r\n", EHLO_TLS),
            ("STARTTLS\r\n", "503 5.5.1 TLS already active\r\n"),
            (AUTH_PLAIN_OK, "235 2.7.0 Authentication successful\r\n"),
        ],
    );
}

// ---- STARTTLS (§2) ---------------------------------------------------------------------

#[test]
fn before_tls_only_the_basic_commands_work() {
    // AUTH-01, AUTH-02, AUTH-03, TLS-INJ-04.
    check(
        &cfg(),
        None,
        &[
            ("EHLO c.example\r\n", EHLO_PLAIN),
            (AUTH_PLAIN_OK, MUST_TLS),
            ("MAIL FROM:<s@x.example>\r\n", MUST_TLS),
            ("RCPT TO:<r@x.example>\r\n", MUST_TLS),
            ("DATA\r\n", MUST_TLS),
            ("VRFY apikey\r\n", MUST_TLS),
            ("NOOP\r\n", OK),
            ("RSET\r\n", OK),
            (
                "HELP\r\n",
                "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT\r\n",
            ),
            ("STARTTLS now\r\n", "501 5.5.4 Syntax: STARTTLS\r\n"),
            ("QUIT\r\n", BYE),
        ],
    );
}

#[test]
fn starttls_discards_pipelined_plaintext_and_resets_state() {
    // TLS-INJ-01, TLS-INJ-02, TLS-INJ-03.
    let run = check(
        &cfg(),
        None,
        &[
            ("EHLO c.example\r\n", EHLO_PLAIN),
            (
                "STARTTLS\r\nAUTH PLAIN AGFwaWtleQBza19saXZlX1RFU1RLRVk=\r\nMAIL FROM:<a@x.example>\r\n",
                "220 2.0.0 Ready to start TLS\r\n",
            ),
            (
                "MAIL FROM:<a@x.example>\r\n",
                "503 5.5.1 Send EHLO or HELO first\r\n",
            ),
            ("EHLO c.example\r\n", EHLO_TLS),
            (
                "MAIL FROM:<a@x.example>\r\n",
                "530 5.7.0 Authentication required\r\n",
            ),
        ],
    );
    assert_eq!(run.auth_checks, 0, "the injected AUTH never ran");
}

#[test]
fn starttls_discards_a_whole_pipelined_plaintext_session() {
    // TLS-INJ-01 with everything an attacker needs injected: EHLO, a valid AUTH and a
    // transaction. Kept past the handshake, these would be answered over TLS (and the key
    // checked); discarded, the session is silent until the client speaks over TLS.
    let run = check(
        &cfg(),
        None,
        &[
            ("EHLO c.example\r\n", EHLO_PLAIN),
            (
                "STARTTLS\r\nEHLO evil.example\r\nAUTH PLAIN AGFwaWtleQBza19saXZlX1RFU1RLRVk=\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<r@x.example>\r\nDATA\r\nSubject: injected\r\n\r\nbody\r\n.\r\n",
                "220 2.0.0 Ready to start TLS\r\n",
            ),
            ("EHLO c.example\r\n", EHLO_TLS),
            (
                "MAIL FROM:<a@x.example>\r\n",
                "530 5.7.0 Authentication required\r\n",
            ),
        ],
    );
    assert_eq!(run.auth_checks, 0, "the injected AUTH never ran");
    assert!(
        run.delivered.is_empty(),
        "the injected message was delivered"
    );
}

#[test]
fn replies_before_starttls_come_before_the_go_ahead() {
    // TLS-INJ-10.
    check(
        &cfg(),
        None,
        &[(
            "EHLO c.example\r\nNOOP\r\nSTARTTLS\r\n",
            &format!("{EHLO_PLAIN}{OK}220 2.0.0 Ready to start TLS\r\n"),
        )],
    );
}

#[test]
fn a_tls_client_hello_on_the_starttls_port_gets_a_clear_answer() {
    // TLS-09.
    let run = check(
        &cfg(),
        None,
        &[(
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03",
            "501 5.5.1 TLS handshake on a STARTTLS port: connect in plaintext and use STARTTLS, or use the implicit TLS port\r\n",
        )],
    );
    assert!(run.closed);
}

// ---- Pipelining (§3) --------------------------------------------------------------------

#[test]
fn pipelined_group_is_answered_in_order() {
    // PIPE-01, PIPE-02, PIPE-03.
    check(
        &cfg(),
        None,
        &after_auth(&[
            (
                "MAIL FROM:<s@x.example>\r\nRCPT TO:<bad..addr@y.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n",
                "250 2.1.0 Sender OK\r\n501 5.1.3 Bad recipient address syntax\r\n250 2.1.5 Recipient OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
            ),
            ("x: y\r\n\r\nz\r\n.\r\n", QUEUED),
            (
                "MAIL FROM:<bad@@x>\r\nRCPT TO:<a@y.example>\r\nDATA\r\n",
                "501 5.1.7 Bad sender address syntax\r\n503 5.5.1 Need MAIL command\r\n503 5.5.1 Need MAIL command\r\n",
            ),
        ]),
    );
}

#[test]
fn data_without_valid_recipients_never_gets_354() {
    // PIPE-04.
    check(
        &cfg(),
        None,
        &after_auth(&[(
            "MAIL FROM:<s@x.example>\r\nRCPT TO:<u@[127.0.0.1]>\r\nDATA\r\n",
            "250 2.1.0 Sender OK\r\n550 5.1.2 Address literals are not accepted as recipient domain\r\n554 5.5.1 No valid recipients\r\n",
        )]),
    );
}

#[test]
fn a_wrong_key_is_judged_before_the_pipelined_mail() {
    // PIPE-08.
    check(
        &cfg(),
        None,
        &[
            ("EHLO c.example\r\n", EHLO_PLAIN),
            ("STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n"),
            ("EHLO c.example\r\n", EHLO_TLS),
            (
                "AUTH PLAIN AGFwaWtleQBza19saXZlX1dST05H\r\nMAIL FROM:<s@x.example>\r\n",
                &format!("{AUTH_INVALID}530 5.7.0 Authentication required\r\n"),
            ),
        ],
    );
}

#[test]
fn nothing_after_quit_is_processed() {
    // PIPE-10.
    let run = check(
        &cfg(),
        None,
        &[("NOOP\r\nQUIT\r\nNOOP\r\n", &format!("{OK}{BYE}"))],
    );
    assert!(run.closed);
}

#[test]
fn smuggled_second_transaction_is_one_message_per_dot() {
    // SMUG-13, lenient as docs/smtp.md "Pipelining" describes: two transactions, two replies, in order.
    let run = check(
        &cfg(),
        None,
        &after_auth(&[
            (TX, TX_OK),
            (
                "m1\r\n.\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<r@y.example>\r\nDATA\r\nFrom: s@x\r\n\r\nm2\r\n.\r\n",
                &format!("{QUEUED}{SENDER_OK}{RCPT_OK}{GO_AHEAD}{QUEUED}"),
            ),
        ]),
    );
    assert_eq!(run.delivered.len(), 2);
    assert_eq!(run.delivered[0].2, b"m1\r\n");
    assert_eq!(run.delivered[1].2, b"From: s@x\r\n\r\nm2\r\n");
}

// ---- Smuggling through the session (§1) -------------------------------------------------

#[test]
fn bare_lf_end_of_data_is_not_the_end() {
    // SMUG-01 with the default `normalize` policy: one message, no second transaction.
    let run = check(
        &cfg(),
        None,
        &after_auth(&[
            (TX, TX_OK),
            (
                "Subject: t\r\n\r\nhi\n.\nMAIL FROM:<ceo@victim.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n\r\nsmuggled\r\n.\r\n",
                QUEUED,
            ),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(
        run.delivered[0].2,
        b"Subject: t\r\n\r\nhi\r\nMAIL FROM:<ceo@victim.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n\r\nsmuggled\r\n"
    );
}

#[test]
fn reject_policy_refuses_bare_line_endings_after_the_end() {
    // SMUG-01/07/08 and SMUG-14 under `reject`.
    let mut cfg = cfg();
    cfg.bare_lf = BareLfPolicy::Reject;
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (TX, TX_OK),
            (
                "hi\n.\nMAIL FROM:<x@y.example>\r\n.\r\n",
                "550 5.5.2 Bare <LF> received\r\n",
            ),
            (TX, TX_OK),
            ("Hey\r <3\r\n.\r\n", "550 5.5.2 Bare <CR> received\r\n"),
            ("NOOP\r\n", OK),
            ("NOOP\n", "550 5.5.2 Bare <LF> received\r\n"),
        ]),
    );
    assert!(run.delivered.is_empty());
    assert!(run.closed);
}

#[test]
fn bare_lf_command_lines_are_accepted_under_normalize() {
    // SMUG-14, lenient default (as Postfix `normalize`).
    check(&cfg(), None, &[("NOOP\n", OK)]);
}

#[test]
fn a_bare_cr_never_splits_a_command() {
    // SMUG-15.
    check(
        &cfg(),
        None,
        &after_auth(&[(
            "MAIL FROM:<a@x.example>\rRCPT TO:<b@y.example>\r\n",
            "501 5.5.2 Control characters are not allowed in commands\r\n",
        )]),
    );
}

// ---- Line limits (§4) --------------------------------------------------------------------

#[test]
fn line_limits() {
    // LIM-01: a 512-octet MAIL line is fine. LIM-02 / LIM-04: an over-long line is one error,
    // and its tail never runs as a command.
    let local = "a".repeat(64);
    let domain = format!("{}.example", ["d".repeat(60)].join("."));
    let mail512 = format!("MAIL FROM:<{local}@{domain}> BODY=8BITMIME\r\n");
    let long = format!("MAIL FROM:<s@x.example> {}\r\n", "A".repeat(4000));
    let tail = format!("{}RCPT TO:<victim@x.example>\r\nNOOP\r\n", "X".repeat(2100));
    let script = after_auth(&[]);
    let mut owned: Vec<(String, String)> = script
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    owned.push((mail512, SENDER_OK.into()));
    owned.push((long, "500 5.5.2 Line too long\r\n".into()));
    owned.push((tail, format!("500 5.5.2 Line too long\r\n{OK}")));
    let script: Vec<(&str, &str)> = owned
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    check(&cfg(), None, &script);
}

#[test]
fn auth_lines_have_their_own_cap() {
    // LIM-07: a 20 KB response at the 334 prompt.
    let huge = format!("{}\r\n", "QUFB".repeat(5000));
    let mut owned = vec![
        ("EHLO c.example\r\n".to_string(), EHLO_PLAIN.to_string()),
        (
            "STARTTLS\r\n".into(),
            "220 2.0.0 Ready to start TLS\r\n".into(),
        ),
        ("EHLO c.example\r\n".into(), EHLO_TLS.into()),
        ("AUTH PLAIN\r\n".into(), "334 \r\n".into()),
        (
            huge,
            "500 5.5.6 Authentication exchange line is too long\r\n".into(),
        ),
    ];
    owned.push((
        AUTH_PLAIN_OK.into(),
        "235 2.7.0 Authentication successful\r\n".into(),
    ));
    let script: Vec<(&str, &str)> = owned
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    check(&cfg(), None, &script);
}

#[test]
fn helo_syntax() {
    // LIM-08, XPROTO-03.
    let long = format!("EHLO {}\r\n", "a".repeat(300));
    check(
        &cfg(),
        None,
        &[
            ("EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n"),
            (&long, "501 5.5.4 Syntax: EHLO hostname\r\n"),
            ("HELO\r\n", "501 5.5.4 Syntax: HELO hostname\r\n"),
            (
                "EHLO a\rb\r\n",
                "501 5.5.2 Control characters are not allowed in commands\r\n",
            ),
            (
                "EHLO \x1b[2J\r\n",
                "501 5.5.2 Control characters are not allowed in commands\r\n",
            ),
            ("HELO c.example\r\n", "250 relay.test\r\n"),
        ],
    );
}

#[test]
fn too_many_recipients_keeps_the_earlier_ones() {
    // LIM-10.
    let mut cfg = cfg();
    cfg.max_recipients = 2;
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (
                "MAIL FROM:<s@x.example>\r\nRCPT TO:<a@y.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nRCPT TO:<A@y.example>\r\nDATA\r\n",
                &format!(
                    "{SENDER_OK}{RCPT_OK}{RCPT_OK}452 4.5.3 Too many recipients\r\n{RCPT_OK}{GO_AHEAD}"
                ),
            ),
            ("x: y\r\n\r\n.\r\n", QUEUED),
        ]),
    );
    assert_eq!(run.delivered[0].1, vec!["a@y.example", "b@y.example"]);
}

#[test]
fn messages_per_connection_limit() {
    // LIM-11.
    let mut cfg = cfg();
    cfg.max_messages = 1;
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (TX, TX_OK),
            ("x: y\r\n\r\n.\r\n", QUEUED),
            (
                "MAIL FROM:<s@x.example>\r\n",
                "452 4.4.5 Too many messages in this session, reconnect to send more\r\n",
            ),
            (
                "NOOP\r\n",
                "421 4.4.5 Too many messages in this session, closing connection\r\n",
            ),
        ]),
    );
    assert!(run.closed);
}

#[test]
fn too_many_errors_closes() {
    // LIM-12, ENV-27.
    let mut cfg = cfg();
    cfg.max_errors = 4;
    let run = check(
        &cfg,
        Some("TLSv1.3"),
        &[
            ("XXXX\r\n", "500 5.5.2 Command not recognized\r\n"),
            ("\r\n", "500 5.5.2 Empty command\r\n"),
            ("ETRN x\r\n", "502 5.5.1 Command not implemented\r\n"),
            (
                "TURN\r\n",
                "502 5.5.1 Command not implemented\r\n421 4.7.0 Too many errors\r\n",
            ),
        ],
    );
    assert!(run.closed);
}

#[test]
fn junk_commands_count_as_errors_past_the_limit() {
    // PIPE-09.
    let mut cfg = cfg();
    cfg.max_junk_commands = 3;
    cfg.max_errors = 2;
    let run = check(
        &cfg,
        None,
        &[(
            "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n",
            &format!("{OK}{OK}{OK}{OK}{OK}421 4.7.0 Too many errors\r\n"),
        )],
    );
    assert!(run.closed);
}

// ---- AUTH (§6) ---------------------------------------------------------------------------

fn tls_greeted<'a>(rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut script = authenticated();
    script.pop();
    script.extend_from_slice(rest);
    script
}

#[test]
fn auth_plain_forms() {
    // AUTH-05, AUTH-06, AUTH-07, AUTH-08, AUTH-10, AUTH-11, AUTH-12, AUTH-15, AUTH-16.
    let mut cfg = cfg();
    cfg.max_auth_failures = 10;
    check(
        &cfg,
        None,
        &tls_greeted(&[
            (
                "AUTH PLAIN =\r\n",
                "501 5.5.2 Malformed PLAIN authentication message\r\n",
            ),
            (
                "AUTH PLAIN YWRtaW4AYXBpa2V5AHNrX2xpdmVfVEVTVEtFWQ==\r\n",
                AUTH_INVALID,
            ),
            (
                "AUTH PLAIN AGFwaWtleQBza19saXZlX1RFU1RLRVkAZXh0cmE=\r\n",
                "501 5.5.2 Malformed PLAIN authentication message\r\n",
            ),
            (
                "AUTH PLAIN !!!notbase64\r\n",
                "501 5.5.2 Cannot decode the authentication response (base64)\r\n",
            ),
            ("AUTH PLAIN\r\n", "334 \r\n"),
            (
                "dXNlckB0ZXN0c2VydmVyAHlalala==\r\n",
                "501 5.5.2 Cannot decode the authentication response (base64)\r\n",
            ),
            ("AUTH PLAIN AGFwaWtleQD//g==\r\n", AUTH_INVALID),
            ("AUTH PLAIN\r\n", "334 \r\n"),
            ("*\r\n", "501 5.7.0 Authentication aborted\r\n"),
            ("AUTH PLAIN\r\n", "334 \r\n"),
            (
                "\r\n",
                "501 5.5.2 Malformed PLAIN authentication message\r\n",
            ),
            ("AUTH PLAIN\r\n", "334 \r\n"),
            (
                "YXBpa2V5AGFwaWtleQBza19saXZlX1RFU1RLRVk=\r\n",
                "235 2.7.0 Authentication successful\r\n",
            ),
        ]),
    );
}

#[test]
fn auth_login_forms() {
    // AUTH-13, AUTH-14, lower-case mechanism names (.NET SmtpClient sends `AUTH login <b64>`).
    check(
        &cfg(),
        None,
        &tls_greeted(&[
            ("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"),
            ("YXBpa2V5\r\n", "334 UGFzc3dvcmQ6\r\n"),
            ("c2tfbGl2ZV9XUk9ORw==\r\n", AUTH_INVALID),
            ("auth login YXBpa2V5\r\n", "334 UGFzc3dvcmQ6\r\n"),
            (
                "c2tfbGl2ZV9URVNUS0VZ\r\n",
                "235 2.7.0 Authentication successful\r\n",
            ),
        ]),
    );
}

#[test]
fn auth_sequencing() {
    // AUTH-17, AUTH-18, AUTH-19, AUTH-20, AUTH-21, AUTH-22.
    check(
        &cfg(),
        Some("TLSv1.3"),
        &[
            (AUTH_PLAIN_OK, "503 5.5.1 Send EHLO or HELO first\r\n"),
            ("EHLO c.example\r\n", EHLO_TLS),
            (
                "MAIL FROM:<s@x.example>\r\n",
                "530 5.7.0 Authentication required\r\n",
            ),
            (
                "AUTH\r\n",
                "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n",
            ),
            (
                "AUTH CRAM-MD5\r\n",
                "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN\r\n",
            ),
            (
                "AUTH XOAUTH2 abc\r\n",
                "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN\r\n",
            ),
            (AUTH_PLAIN_OK, "235 2.7.0 Authentication successful\r\n"),
            ("RSET\r\n", OK),
            (AUTH_PLAIN_OK, "503 5.5.1 Already authenticated\r\n"),
            ("MAIL FROM:<s@x.example>\r\n", SENDER_OK),
            (AUTH_PLAIN_OK, "503 5.5.1 Already authenticated\r\n"),
        ],
    );
}

#[test]
fn three_failures_close_the_session() {
    // AUTH-23, AUTH-09 (same text for a wrong user and a wrong key).
    let run = check(
        &cfg(),
        None,
        &tls_greeted(&[
            (AUTH_PLAIN_WRONG, AUTH_INVALID),
            ("AUTH PLAIN AHJvb3QAc2tfbGl2ZV9URVNUS0VZ\r\n", AUTH_INVALID),
            (
                "AUTH PLAIN AGFwaWtleQBwYXNzd29yZA==\r\n",
                &format!("{AUTH_INVALID}421 4.7.0 Too many authentication failures\r\n"),
            ),
        ]),
    );
    assert!(run.closed);
    assert_eq!(
        run.auth_checks, 3,
        "every attempt goes through the same check path"
    );
}

#[test]
fn key_store_down_is_temporary() {
    // AUTH-24: `\0apikey\0sk_live_DOWN`.
    check(
        &cfg(),
        None,
        &tls_greeted(&[(
            "AUTH PLAIN AGFwaWtleQBza19saXZlX0RPV04=\r\n",
            "454 4.7.0 Temporary authentication failure\r\n",
        )]),
    );
}

// ---- MAIL, RCPT and the other commands (§7) -----------------------------------------------

#[test]
fn mail_from_forms() {
    // ENV-01 (null sender accepted, docs/smtp.md "MAIL FROM"), ENV-02, ENV-03, ENV-04, ENV-05, ENV-06, ENV-07,
    // ENV-08, ENV-09, ENV-18, ENV-29, AUTH-28.
    let mut cfg = cfg();
    cfg.max_errors = 100;
    check(
        &cfg,
        None,
        &after_auth(&[
            (
                "MAIL FROM:\r\n",
                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n",
            ),
            ("MAIL FROM\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
            (
                "MAIL LALA: <>\r\n",
                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> SIZE=26214401\r\n",
                "552 5.3.4 Message size exceeds fixed maximum message size\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> SIZE=99999999999999999999999\r\n",
                "552 5.3.4 Message size exceeds fixed maximum message size\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> SIZE=abc\r\n",
                "501 5.5.4 Bad message size syntax\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> SIZE=-1\r\n",
                "501 5.5.4 Bad message size syntax\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> RABBIT=1\r\n",
                "555 5.5.4 Unsupported parameter: RABBIT=1\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> BODY=BINARYMIME\r\n",
                "555 5.5.4 BODY=BINARYMIME is not supported\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> BODY=RABBIT\r\n",
                "501 5.5.4 Bad BODY value: use 7BIT or 8BITMIME\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> AUTH=<hey+A>\r\n",
                "501 5.5.4 Malformed AUTH parameter value\r\n",
            ),
            (
                "MAIL FROM:<ü@x.example>\r\n",
                "553 5.6.7 Must declare SMTPUTF8 to send unicode addresses\r\n",
            ),
            (
                "MAIL FROM:<s@x.example> SIZE=26214400 BODY=8bitmime AUTH=<>\r\n",
                SENDER_OK,
            ),
            (
                "MAIL FROM:<s@x.example>\r\n",
                "503 5.5.1 Nested MAIL command\r\n",
            ),
            ("RSET\r\n", OK),
            ("MAIL FROM:<>\r\n", SENDER_OK),
            ("RSET\r\n", OK),
            ("MAIL  FROM : <s@x.example>\r\n", SENDER_OK),
            ("RSET\r\n", OK),
            ("MAIL FROM:<ü@x.example> SMTPUTF8\r\n", SENDER_OK),
            ("RCPT TO:<user@bücher.example>\r\n", RCPT_OK),
        ]),
    );
}

#[test]
fn rcpt_to_forms() {
    // ENV-10, ENV-12, ENV-13, ENV-14, ENV-15, ENV-16, ENV-17, ENV-28.
    check(
        &cfg(),
        None,
        &after_auth(&[
            (
                "RCPT TO:<r@y.example>\r\n",
                "503 5.5.1 Need MAIL command\r\n",
            ),
            ("mail from:<S@X.example>\r\n", SENDER_OK),
            (
                "RCPT TO:<a@\u{ff}.example>\r\n",
                "553 5.6.7 Must declare SMTPUTF8 to send unicode addresses\r\n",
            ),
            (
                "RCPT TO:<@a.example,@b.example:user@c.example>\r\n",
                RCPT_OK,
            ),
            ("RCPT TO:<\"john smith\"@x.example>\r\n", RCPT_OK),
            (
                "RCPT TO:<pepe>\r\n",
                "501 5.1.3 Bad recipient address syntax\r\n",
            ),
            (
                "RCPT TO:<>\r\n",
                "501 5.1.3 Bad recipient address syntax\r\n",
            ),
            (
                "RCPT TO:<postmaster>\r\n",
                "501 5.1.3 Bad recipient address syntax\r\n",
            ),
            (
                "RCPT TO:<u@[IPv6:::1]>\r\n",
                "550 5.1.2 Address literals are not accepted as recipient domain\r\n",
            ),
            (
                "RCPT TO:<r@y.example> NOTIFY=NEVER\r\n",
                "555 5.5.4 Unsupported parameter: NOTIFY=NEVER\r\n",
            ),
            ("Rcpt To:<R@y.example>\r\n", RCPT_OK),
            ("DATA\r\n", GO_AHEAD),
            ("x: y\r\n\r\n.\r\n", QUEUED),
        ]),
    );
}

#[test]
fn non_utf8_command_lines() {
    // ENV-10 with raw bytes that are not UTF-8.
    let run = run_all_cuts(
        &cfg(),
        Some("TLSv1.3"),
        &[b"RCPT TO:<a@\xff\xfe.example>\r\n"],
    );
    assert_eq!(run.replies[1], "500 5.5.2 Invalid UTF-8 in command\r\n");
}

#[test]
fn sequencing_and_other_commands() {
    // ENV-19, ENV-20, ENV-21, ENV-22, ENV-23, ENV-24, ENV-25, ENV-27.
    check(
        &cfg(),
        Some("TLSv1.3"),
        &[
            (
                "MAIL FROM:<s@x.example>\r\n",
                "503 5.5.1 Send EHLO or HELO first\r\n",
            ),
            ("EHLO c.example\r\n", EHLO_TLS),
            (AUTH_PLAIN_OK, "235 2.7.0 Authentication successful\r\n"),
            ("DATA\r\n", "503 5.5.1 Need MAIL command\r\n"),
            ("DATA foo\r\n", "501 5.5.4 Syntax: DATA\r\n"),
            ("MAIL FROM:<s@x.example>\r\n", SENDER_OK),
            ("DATA\r\n", "503 5.5.1 Need RCPT command\r\n"),
            ("RSET x\r\n", "501 5.5.4 Syntax: RSET\r\n"),
            ("RCPT TO:<r@y.example>\r\n", RCPT_OK),
            ("EHLO c.example\r\n", EHLO_TLS),
            ("DATA\r\n", "503 5.5.1 Need MAIL command\r\n"),
            ("NOOP anything\r\n", OK),
            (
                "VRFY apikey\r\n",
                "252 2.5.0 Cannot VRFY user, but will accept message\r\n",
            ),
            ("EXPN list\r\n", "502 5.5.1 Command not implemented\r\n"),
            ("SEND FROM:<a>\r\n", "502 5.5.1 Command not implemented\r\n"),
            ("MAIL FROM:<s@x.example>\r\n", SENDER_OK),
        ],
    );
}

// ---- DATA (§8) -----------------------------------------------------------------------------

#[test]
fn size_limit_is_answered_after_the_end_and_the_session_continues() {
    // DATA-02, DATA-04, SMUG-12.
    let mut cfg = cfg();
    cfg.max_message_size = 100;
    let exact = format!("{}\r\n.\r\n", "a".repeat(98));
    let over = format!("{}\r\n.\nHELP\r\nHELP\r\n.\r\n", "a".repeat(99));
    let run = check(
        &cfg,
        None,
        &after_auth(&[
            (
                "MAIL FROM:<s@x.example> SIZE=10\r\nRCPT TO:<r@y.example>\r\nDATA\r\n",
                TX_OK,
            ),
            (
                &over,
                "552 5.3.4 Message size exceeds fixed maximum message size\r\n",
            ),
            (TX, TX_OK),
            (&exact, QUEUED),
        ]),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].2.len(), 100);
}

#[test]
fn every_refused_message_of_a_pipeline_is_reported() {
    // Two messages over the limit and one bare-LF-free message in one write: the driver
    // hears of both refusals (one used to overwrite the other in a single `process` call).
    let mut cfg = cfg();
    cfg.max_message_size = 10;
    let big = "x".repeat(20);
    let turn = format!("{TX}{big}\r\n.\r\n{TX}{big}\r\n.\r\n{TX}ok\r\n.\r\n");
    let refused = "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
    let run = check(
        &cfg,
        None,
        &after_auth(&[(
            &turn,
            &format!("{TX_OK}{refused}{TX_OK}{refused}{TX_OK}{QUEUED}"),
        )]),
    );
    assert_eq!(run.refused, vec!["size", "size"]);
    assert_eq!(run.delivered.len(), 1);
}

#[test]
fn upstream_refusal_is_relayed_and_the_session_continues() {
    // DATA-17: the refusal text is one safe line.
    let mut h =
        Harness::new(cfg()).upstream(|_| Err(Reply::dynamic(554, "5.6.0", "bad\r\n250 2.0.0 Ok")));
    for (c, _) in after_auth(&[]) {
        h.turn(c.as_bytes(), Cut::Whole);
    }
    h.turn(TX.as_bytes(), Cut::Whole);
    assert_eq!(
        h.turn(b"x: y\r\n\r\n.\r\n", Cut::Whole),
        "554 5.6.0 bad 250 2.0.0 Ok\r\n"
    );
    assert_eq!(h.turn(b"NOOP\r\n", Cut::Whole), OK);
}

// ---- Cross-protocol (§11) -------------------------------------------------------------------

#[test]
fn http_on_the_smtp_port_is_refused_and_closed() {
    // XPROTO-01, XPROTO-02.
    for line in [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /x HTTP/1.1\r\n",
        "CONNECT evil:25 HTTP/1.1\r\n",
        "{\"json\":1}\r\n",
    ] {
        let run = check(
            &cfg(),
            None,
            &[(
                line,
                "502 5.7.0 This is an SMTP server, not an HTTP server\r\n",
            )],
        );
        assert!(run.closed);
    }
}

#[test]
fn a_spent_budget_holds_back_the_354_then_refuses_data_and_the_session_goes_on() {
    // No `354` while memory is spent; when `memory_wait` ends without a release, DATA gets
    // 452 and the session is still in step.
    let run = check_with(
        &cfg(),
        None,
        &after_auth(&[
            (
                TX,
                "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n452 4.3.1 Insufficient system storage\r\n",
            ),
            ("RSET\r\n", OK),
            ("QUIT\r\n", BYE),
        ]),
        &budget_spent,
    );
    assert!(run.delivered.is_empty());
    assert_eq!(run.memory_waits, 1);
}

#[test]
fn a_budget_spent_mid_data_refuses_after_the_final_dot() {
    // The message outgrows the free small pool; the large pool stays held, so the data is
    // read to its end, nothing kept, and the end of data gets 452; the session goes on. The
    // body is too long for a split at every byte: whole, bytewise and a few splits.
    let body = format!(
        "Subject: big\r\n\r\n{}\r\n.\r\nNOOP\r\n",
        "x".repeat(500_000)
    );
    let mut runs = Vec::new();
    for cut in [
        Cut::Whole,
        Cut::Bytewise,
        Cut::At(1),
        Cut::At(4096),
        Cut::At(200_000),
    ] {
        let (budget, _held) = budget_mostly_held();
        let mut h = Harness::with(cfg(), Some("TLSv1.3"), budget);
        h.turn(b"EHLO c.example\r\n", Cut::Whole);
        h.turn(AUTH_PLAIN_OK.as_bytes(), Cut::Whole);
        assert_eq!(h.turn(TX.as_bytes(), Cut::Whole), TX_OK);
        let reply = h.turn(body.as_bytes(), cut);
        assert_eq!(
            reply,
            format!("452 4.3.1 Insufficient system storage\r\n{OK}")
        );
        runs.push(h.finish());
    }
    for run in &runs {
        assert!(run.delivered.is_empty());
        assert_eq!(run.memory_waits, 1);
    }
}

#[test]
fn a_message_that_fits_the_free_pool_never_waits() {
    let run = check_with(
        &cfg(),
        None,
        &after_auth(&[(TX, TX_OK), ("Subject: hi\r\n\r\nHello\r\n.\r\n", QUEUED)]),
        &budget_mostly_held,
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.memory_waits, 0);
}

#[test]
fn a_declared_size_beyond_the_whole_budget_is_refused_at_mail() {
    check_with(
        &cfg(),
        None,
        &after_auth(&[(
            "MAIL FROM:<s@sender.example> SIZE=2000000\r\n",
            "452 4.3.1 Insufficient system storage\r\n",
        )]),
        &budget_mostly_held,
    );
}

// ---- Failing early (docs/upstream.md) ------------------------------------------------------

#[test]
fn an_early_refusal_leaves_no_transaction_for_pipelined_commands() {
    let run = check_gated(
        &cfg(),
        None,
        &after_auth(&[
            (
                "MAIL FROM:<a@blocked.example>\r\nRCPT TO:<r@rcpt.example>\r\nDATA\r\n",
                "451 4.7.1 Domain blocked.example is not verified\r\n\
                 503 5.5.1 Need MAIL command\r\n503 5.5.1 Need MAIL command\r\n",
            ),
            (TX, TX_OK),
            ("Subject: hi\r\n\r\nHello\r\n.\r\n", QUEUED),
            ("MAIL FROM:<>\r\n", SENDER_OK),
        ]),
        &plenty,
        Some(std::sync::Arc::new(BlockedDomain)),
    );
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].0, "s@sender.example");
}
