//! Client compatibility: every SMTP client SendPigeon's documentation names, used as the
//! documentation shows, against the relay with the REST upstream pointing at a recording
//! mock API. Each message must reach the API exactly once, its queue id in the `250` must be
//! the API's id, and the request body must be what the message means, field by field. Bad
//! input (wrong key, wrong username, over 25 MB, no STARTTLS, an untrusted CA) must surface
//! as the library's error, with nothing sent to the API.
//!
//! The programs are in `tests/clients/`; `tests/clients/install.sh` installs the clients
//! (`.ci/run` calls it). A missing client fails its test; nothing is skipped.

mod common;

use std::collections::{HashMap, HashSet};

use common::clients::{
    AUTH_FAILED, Client, NO_STARTTLS, Run, Suite, TOO_BIG, assert_body, docs_expected, header,
    queue_id, rich_expected, rich_html,
};
use common::mock_api::Recorded;
use serde_json::{Value, json};

/// The queue id in the client's `250` is the id the API answered for this request.
fn assert_queue_id(suite: &Suite, reply: &str, send: &Recorded) {
    assert_eq!(
        queue_id(reply),
        suite.answered_id(send),
        "{:?}: the 250 must carry the API's id",
        suite.client
    );
}

/// The header the message was sent with, as the API got it.
fn sent_header(body: &Value, name: &str) -> String {
    let found: Vec<&Value> = body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name))
        .collect();
    assert_eq!(found.len(), 1, "one {name} header in {}", body["headers"]);
    found[0]["value"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// swaks

/// The message swaks sent, read from its transcript: (headers, body as the API should get
/// it, with `\n` line ends).
fn swaks_message(transcript: &str) -> (Vec<(String, String)>, String) {
    let sent: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix(" ~>").or_else(|| l.strip_prefix(" ->")))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = sent.iter().position(|l| *l == "DATA").expect("DATA") + 1;
    let end = start
        + sent[start..]
            .iter()
            .position(|l| *l == ".")
            .expect("end of data");
    let blank = start + sent[start..end].iter().position(|l| l.is_empty()).unwrap();
    let headers = sent[start..blank]
        .iter()
        .map(|l| {
            let (name, value) = l.split_once(": ").unwrap();
            (name.to_string(), value.to_string())
        })
        .collect();
    let body = sent[blank + 1..end]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    (headers, body)
}

fn swaks_reply(transcript: &str) -> &str {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix("<~  "))
        .find(|l| l.starts_with("250 2.0.0 OK: queued as "))
        .unwrap_or_else(|| panic!("no 250 for the message in:\n{transcript}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_documentation_command_login_plain_and_implicit_tls() {
    let suite = Suite::start(Client::Swaks).await;
    for (case, auth) in [
        ("docs", "AUTH LOGIN"), // swaks picks LOGIN from "AUTH PLAIN LOGIN"
        ("login", "AUTH LOGIN"),
        ("plain", "AUTH PLAIN "),
        ("implicit", "AUTH LOGIN"),
    ] {
        let (run, send) = suite.deliver_one(case).await;
        let transcript = run.field("transcript");
        assert!(
            transcript.contains(&format!(" ~> {auth}")),
            "{case}: {auth}\n{transcript}"
        );
        assert_eq!(
            transcript.contains(" -> STARTTLS"),
            case != "implicit",
            "{case}: STARTTLS only on the submission port"
        );
        assert_queue_id(&suite, swaks_reply(transcript), &send);
        let (headers, text) = swaks_message(transcript);
        let forwarded = |name: &str| {
            let (name, value) = headers.iter().find(|(n, _)| n == name).unwrap();
            header(name, value)
        };
        let expected = docs_expected(
            "Test SMTP",
            json!({"text": text}),
            vec![forwarded("Message-Id"), forwarded("X-Mailer")],
        );
        assert!(text.starts_with("Hello from SMTP\n"), "{text:?}");
        assert_body(&format!("swaks {case}"), &send.json(), &expected);
    }

    // swaks tries LOGIN, then PLAIN.
    let auth_failed =
        format!("<~* {AUTH_FAILED}\n<~* {AUTH_FAILED}\n*** No authentication type succeeded");
    assert_eq!(suite.refused("wrong_key").await, auth_failed);
    assert_eq!(suite.refused("wrong_user").await, auth_failed);
    assert_eq!(suite.refused("too_big").await, format!("<~* {TOO_BIG}"));
    assert_eq!(
        suite.refused("no_starttls").await,
        format!("<** {NO_STARTTLS}")
    );
}

// ---------------------------------------------------------------------------------------
// Python smtplib

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_documentation_rich_message_and_smtp_ssl() {
    let suite = Suite::start(Client::Smtplib).await;

    let (run, send) = suite.deliver_one("docs").await;
    assert_queue_id(&suite, run.field("reply"), &send);
    // MIMEText ends a single part with a line break; no text part is made up.
    let expected = docs_expected(
        "Test",
        json!({"html": "<h1>Hello from SendPigeon</h1>\n"}),
        vec![],
    );
    assert_body("smtplib docs", &send.json(), &expected);

    for case in ["rich", "implicit"] {
        let (run, send) = suite.deliver_one(case).await;
        assert_queue_id(&suite, run.field("reply"), &send);
        let cid = run.field("cid");
        // set_content/add_alternative end each part with a line break.
        let html = format!("{}\n", rich_html(cid));
        let headers = vec![
            header("X-Entity-Ref-ID", "invoice-1234"),
            header("List-Unsubscribe", "<https://acme.example/u/abc>"),
        ];
        let expected = rich_expected(&html, cid, headers, None);
        assert_body(&format!("smtplib {case}"), &send.json(), &expected);
    }

    let auth_failed = format!(
        "SMTPAuthenticationError: (535, b'{}')",
        AUTH_FAILED.strip_prefix("535 ").unwrap()
    );
    assert_eq!(suite.refused("wrong_key").await, auth_failed);
    assert_eq!(suite.refused("wrong_user").await, auth_failed);
    // smtplib declares SIZE= at MAIL, so the relay refuses before any data is sent.
    assert_eq!(
        suite.refused("too_big").await,
        "SMTPSenderRefused: (552, b'5.3.4 Message size exceeds fixed maximum message size', \
         'hello@yourdomain.com')"
    );
    assert_eq!(
        suite.refused("no_starttls").await,
        "SMTPSenderRefused: (530, b'5.7.0 Must issue a STARTTLS command first', \
         'hello@yourdomain.com')"
    );
    // login() before starttls(): AUTH is not offered in plaintext, and smtplib says so.
    assert_eq!(
        suite.refused("login_without_starttls").await,
        "SMTPNotSupportedError: SMTP AUTH extension not supported by server."
    );
    let untrusted = suite.refused_with("docs", false).await;
    assert!(
        untrusted.contains("CERTIFICATE_VERIFY_FAILED"),
        "{untrusted}"
    );
}

// ---------------------------------------------------------------------------------------
// Nodemailer

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodemailer_documentation_transport_rich_message_implicit_tls_and_pool() {
    let suite = Suite::start(Client::Nodemailer).await;

    let (run, send) = suite.deliver_one("docs").await;
    assert_queue_id(&suite, run.field("response"), &send);
    let expected = docs_expected(
        "Test",
        json!({"text": "Hello from SMTP", "html": "<p>Hello from SMTP</p>"}),
        vec![header("Message-ID", run.field("messageId"))],
    );
    assert_body("nodemailer docs", &send.json(), &expected);

    for case in ["rich", "implicit"] {
        let (run, send) = suite.deliver_one(case).await;
        assert_queue_id(&suite, run.field("response"), &send);
        let cid = run.field("cid");
        let headers = vec![
            header("X-Entity-Ref-ID", "invoice-1234"),
            header("Message-ID", run.field("messageId")),
            // list.unsubscribe: one header for each entry, in order.
            header(
                "List-Unsubscribe",
                "<https://acme.example/u/abc> (Unsubscribe)",
            ),
            header(
                "List-Unsubscribe",
                "<mailto:unsubscribe@acme.example?subject=abc>",
            ),
        ];
        let expected = rich_expected(&rich_html(cid), cid, headers, None);
        assert_body(&format!("nodemailer {case}"), &send.json(), &expected);
    }

    // 20 messages through the pool at once.
    let before = suite.sends().len();
    let run = suite.run("pool").await;
    assert!(run.ok(), "{}\n{}", run.out, run.stderr);
    let sends = suite.sends()[before..].to_vec();
    assert_eq!(sends.len(), 20, "each pooled message exactly once");
    let by_id: HashMap<String, &Recorded> =
        sends.iter().map(|s| (suite.answered_id(s), s)).collect();
    let sent = run.out["sent"].as_array().unwrap();
    assert_eq!(sent.len(), 20);
    let mut sessions: HashMap<String, usize> = HashMap::new();
    let mut subjects = HashSet::new();
    for info in sent {
        let response = info["response"].as_str().unwrap();
        let send = by_id
            .get(queue_id(response))
            .unwrap_or_else(|| panic!("{response}: no such request"));
        let body = send.json();
        let subject = body["subject"].as_str().unwrap().to_string();
        let n = subject.strip_prefix("Pooled ").expect("a pooled message");
        let expected = docs_expected(
            &subject,
            json!({"text": format!("Message {n}"), "html": "<p>Hello from SMTP</p>"}),
            vec![header("Message-ID", info["messageId"].as_str().unwrap())],
        );
        assert_body(&format!("nodemailer pool {n}"), &body, &expected);
        *sessions
            .entry(body["source"]["session_id"].as_str().unwrap().to_string())
            .or_default() += 1;
        subjects.insert(subject);
    }
    assert_eq!(subjects.len(), 20, "20 different messages");
    assert!(
        (2..=5).contains(&sessions.len()),
        "several connections (the pool's maximum is 5): {sessions:?}"
    );
    assert!(
        sessions.values().any(|&n| n > 1),
        "several messages on one connection: {sessions:?}"
    );

    let auth_failed = format!("Invalid login: {AUTH_FAILED}");
    assert_eq!(suite.refused("wrong_key").await, auth_failed);
    assert_eq!(suite.refused("wrong_user").await, auth_failed);
    assert_eq!(
        suite.refused("too_big").await,
        format!("Message failed: {TOO_BIG}")
    );
    // ignoreTLS: Nodemailer skips AUTH (not offered in plaintext) and is refused at MAIL.
    assert_eq!(
        suite.refused("no_starttls").await,
        format!("Mail command failed: {NO_STARTTLS}")
    );
    assert_eq!(
        suite.refused_with("docs", false).await,
        "self-signed certificate in certificate chain"
    );
}

// ---------------------------------------------------------------------------------------
// Rails Action Mailer

/// The rich message from the mail gem, which gives every attachment a Content-ID.
fn action_mailer_rich(run: &Run) -> Value {
    let cids = &run.out["content_ids"];
    let cid = |name: &str| {
        let value = cids[name].as_str().unwrap();
        value
            .strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap()
            .to_string()
    };
    let (logo, pdf) = (cid("logo.png"), cid(common::clients::PDF_NAME));
    let headers = vec![
        header("Message-ID", &format!("<{}>", run.field("message_id"))),
        header("X-Entity-Ref-ID", "invoice-1234"),
        header("List-Unsubscribe", "<https://acme.example/u/abc>"),
    ];
    rich_expected(&rich_html(&logo), &logo, headers, Some(&pdf))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rails_action_mailer_documentation_settings_and_deliver_now() {
    let suite = Suite::start(Client::ActionMailer).await;

    // deliver_now gives no access to the reply; the Message-ID identifies the request.
    let (run, send) = suite.deliver_one("docs").await;
    let body = send.json();
    let message_id = format!("<{}>", run.field("message_id"));
    assert_eq!(sent_header(&body, "Message-ID"), message_id);
    let expected = docs_expected(
        "Test",
        json!({"text": "Hello from SMTP\n"}),
        vec![header("Message-ID", &message_id)],
    );
    assert_body("action mailer docs", &body, &expected);

    for case in ["rich", "implicit"] {
        let (run, send) = suite.deliver_one(case).await;
        assert_queue_id(&suite, run.field("reply"), &send);
        assert_body(
            &format!("action mailer {case}"),
            &send.json(),
            &action_mailer_rich(&run),
        );
    }

    let auth_failed = format!("Net::SMTPAuthenticationError: {AUTH_FAILED}");
    assert_eq!(suite.refused("wrong_key").await.trim_end(), auth_failed);
    assert_eq!(suite.refused("wrong_user").await.trim_end(), auth_failed);
    assert_eq!(
        suite.refused("too_big").await.trim_end(),
        format!("Net::SMTPFatalError: {TOO_BIG}")
    );
    // enable_starttls_auto: false still upgrades (net-smtp's own default), without ca_file:
    // Action Mailer cannot be made to send in plaintext.
    let no_starttls = suite.refused("no_starttls").await;
    assert!(
        no_starttls.contains("certificate verify failed"),
        "{no_starttls}"
    );
    let untrusted = suite.refused_with("docs", false).await;
    assert!(
        untrusted.starts_with("OpenSSL::SSL::SSLError: ")
            && untrusted.contains("certificate verify failed"),
        "{untrusted}"
    );
}

// ---------------------------------------------------------------------------------------
// Laravel (Symfony Mailer)

/// Debian 12's Symfony Mailer 5.4 returns the Message-ID from getMessageId(); newer versions
/// parse the queue id out of the reply, which must give the API's id.
fn assert_laravel_ids(suite: &Suite, run: &Run, send: &Recorded) {
    assert_queue_id(suite, run.field("reply"), send);
    assert_eq!(run.field("newer_message_id"), suite.answered_id(send));
    assert_eq!(
        sent_header(&send.json(), "Message-ID"),
        format!("<{}>", run.field("message_id"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn laravel_symfony_mailer_from_mail_settings() {
    let suite = Suite::start(Client::Laravel).await;

    let (run, send) = suite.deliver_one("docs").await;
    assert_laravel_ids(&suite, &run, &send);
    let expected = docs_expected(
        "Test",
        json!({"html": "<h1>Hello from SendPigeon</h1>\n"}),
        vec![header(
            "Message-ID",
            &format!("<{}>", run.field("message_id")),
        )],
    );
    assert_body("laravel docs", &send.json(), &expected);

    for case in ["rich", "implicit"] {
        let (run, send) = suite.deliver_one(case).await;
        assert_laravel_ids(&suite, &run, &send);
        let body = send.json();
        // Symfony generates the image's Content-ID and rewrites cid:logo.png to it.
        let logo = body["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["filename"] == "logo.png")
            .unwrap_or_else(|| panic!("no logo.png in {}", body["attachments"]));
        let cid = logo["content_id"].as_str().expect("a Content-ID");
        assert!(cid.len() > 8 && cid != "logo.png", "{cid}");
        let headers = vec![
            header("X-Entity-Ref-ID", "invoice-1234"),
            header("List-Unsubscribe", "<https://acme.example/u/abc>"),
            header("Message-ID", &format!("<{}>", run.field("message_id"))),
        ];
        let expected = rich_expected(&rich_html(cid), cid, headers, None);
        assert_body(&format!("laravel {case}"), &body, &expected);
    }

    // Symfony tries LOGIN, then PLAIN, and reports both.
    let auth_failed = |user: &str| {
        let each = |mechanism: &str| {
            format!(
                "Authenticator \"{mechanism}\" returned \"Expected response code \"235\" but \
                 got code \"535\", with message \"{AUTH_FAILED}\".\"."
            )
        };
        format!(
            "Failed to authenticate on SMTP server with username \"{user}\" using the \
             following authenticators: \"LOGIN\", \"PLAIN\". {} {}",
            each("LOGIN"),
            each("PLAIN")
        )
    };
    assert_eq!(suite.refused("wrong_key").await, auth_failed("apikey"));
    assert_eq!(suite.refused("wrong_user").await, auth_failed("admin"));
    assert_eq!(
        suite.refused("too_big").await,
        format!("Expected response code \"250\" but got code \"552\", with message \"{TOO_BIG}\".")
    );
    // Symfony Mailer always upgrades when STARTTLS is offered: no plaintext case exists.
    let untrusted = suite.refused_with("docs", false).await;
    assert!(
        untrusted.starts_with("Unable to connect with STARTTLS: ")
            && untrusted.contains("certificate verify failed"),
        "{untrusted}"
    );
}

// ---------------------------------------------------------------------------------------
// Go net/smtp

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_net_smtp_documentation_snippet_manual_and_implicit_tls() {
    let suite = Suite::start(Client::Go).await;
    for (case, subject, text) in [
        ("docs", "Test", "Hello from SMTP\n"),
        ("manual", "Manual", "Hello from net/smtp\n"),
        ("implicit", "Implicit", "Hello over implicit TLS\n"),
    ] {
        // net/smtp returns no reply text; the Message-ID identifies the request.
        let (run, send) = suite.deliver_one(case).await;
        let body = send.json();
        let message_id = run.field("message_id");
        assert_eq!(sent_header(&body, "Message-ID"), message_id);
        let expected = docs_expected(
            subject,
            json!({"text": text}),
            vec![header("Message-ID", message_id)],
        );
        assert_body(&format!("go {case}"), &body, &expected);
    }

    assert_eq!(suite.refused("wrong_key").await, AUTH_FAILED);
    assert_eq!(suite.refused("wrong_user").await, AUTH_FAILED);
    assert_eq!(suite.refused("too_big").await, TOO_BIG);
    // PlainAuth sends credentials without TLS to localhost; the relay refuses AUTH.
    assert_eq!(suite.refused("no_starttls").await, NO_STARTTLS);
    assert_eq!(
        suite.refused_with("docs", false).await,
        "x509: certificate signed by unknown authority"
    );
}

// ---------------------------------------------------------------------------------------
// One port for both TLS modes: every client's STARTTLS and implicit-TLS settings pointed at
// the same `auto` listener (as a user who mixed up 587 and 465 would)

/// The client's STARTTLS case (`docs`) and its implicit-TLS case, both on the `auto` port:
/// each message reaches the API once, and the listener saw one plaintext and one TLS start.
async fn both_tls_modes_on_an_auto_port(client: Client) {
    let suite = Suite::start_auto(client).await;
    for case in ["docs", "implicit"] {
        suite.deliver_one(case).await;
    }
    for result in ["plaintext", "tls"] {
        let series = format!("auto_detect_total{{result=\"{result}\"}}");
        let count = suite.relay.metric(&series).await;
        assert!(count >= 1, "{client:?}: no {result} start on the auto port");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_port_swaks() {
    both_tls_modes_on_an_auto_port(Client::Swaks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_port_python_smtplib() {
    both_tls_modes_on_an_auto_port(Client::Smtplib).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_port_nodemailer() {
    both_tls_modes_on_an_auto_port(Client::Nodemailer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_port_rails_action_mailer() {
    both_tls_modes_on_an_auto_port(Client::ActionMailer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_port_laravel_symfony_mailer() {
    both_tls_modes_on_an_auto_port(Client::Laravel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_port_go_net_smtp() {
    both_tls_modes_on_an_auto_port(Client::Go).await;
}
