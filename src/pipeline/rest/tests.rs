//! One case per row of the error table in docs/upstream.md, plus the retryable override and hostile
//! bodies.

use super::*;

fn reply(status: u16, body: &str, retry_after: Option<u64>) -> String {
    error_reply(
        status,
        &ApiError::parse(body.as_bytes()),
        retry_after,
        "S1.1",
    )
    .reply
    .to_string()
}

fn err(code: &str, message: &str) -> String {
    format!(r#"{{"error": {{"code": "{code}", "message": "{message}"}}}}"#)
}

#[test]
fn every_row_of_the_table() {
    let cases = [
        (
            400,
            err("invalid_request", "No body"),
            "554 5.6.0 No body (ref S1.1)",
        ),
        (
            401,
            err("revoked_api_key", "Revoked"),
            "554 5.7.8 API key is no longer valid (ref S1.1)",
        ),
        (
            403,
            err("domain_not_verified", "Verify acme.com first"),
            "550 5.7.1 Verify acme.com first (ref S1.1)",
        ),
        (
            404,
            String::new(),
            "451 4.3.5 Temporary configuration error (ref S1.1)",
        ),
        (
            405,
            String::new(),
            "451 4.3.5 Temporary configuration error (ref S1.1)",
        ),
        (
            415,
            String::new(),
            "451 4.3.5 Temporary configuration error (ref S1.1)",
        ),
        (
            409,
            err("idempotency_in_progress", "Still processing"),
            "451 4.3.0 Still processing (ref S1.1)",
        ),
        (
            409,
            err("idempotency_key_reused", "Different payload"),
            "554 5.6.0 Different payload (ref S1.1)",
        ),
        (
            413,
            err("payload_too_large", "Too big"),
            "552 5.3.4 Too big (ref S1.1)",
        ),
        (
            422,
            err("too_many_recipients", "Max 50"),
            "554 5.5.3 Max 50 (ref S1.1)",
        ),
        (
            422,
            err("invalid_from_address", "Bad from"),
            "554 5.1.7 Bad from (ref S1.1)",
        ),
        (
            422,
            err("invalid_recipient", "Bad to"),
            "554 5.1.3 Bad to (ref S1.1)",
        ),
        (
            422,
            err("invalid_attachment", "Bad file"),
            "554 5.6.0 Bad file (ref S1.1)",
        ),
        (
            429,
            err("rate_limit_exceeded", "Slow down"),
            "451 4.7.1 Slow down (ref S1.1)",
        ),
        (
            500,
            err("internal_error", "x"),
            "451 4.3.0 Temporary server error, try again later (ref S1.1)",
        ),
        (
            502,
            String::new(),
            "451 4.4.2 Upstream error, try again later (ref S1.1)",
        ),
        (
            503,
            String::new(),
            "451 4.3.2 Service temporarily unavailable, try again later (ref S1.1)",
        ),
        (
            504,
            String::new(),
            "451 4.4.1 Upstream timeout, try again later (ref S1.1)",
        ),
        (
            418,
            String::new(),
            "451 4.3.0 Temporary error (HTTP 418) (ref S1.1)",
        ),
    ];
    for (status, body, expected) in cases {
        assert_eq!(reply(status, &body, None), expected, "HTTP {status} {body}");
    }
    for status in [404, 405, 415, 418, 302] {
        assert!(error_reply(status, &ApiError::default(), None, "x").relay_fault);
    }
    assert!(!error_reply(500, &ApiError::default(), None, "x").relay_fault);
}

#[test]
fn retry_after_goes_into_the_429_text() {
    assert_eq!(
        reply(429, &err("rate_limit_exceeded", "Slow down"), Some(7)),
        "451 4.7.1 Slow down; retry after 7 s (ref S1.1)"
    );
    let body = r#"{"error": {"message": "Slow down", "retry_after": 3}}"#;
    assert_eq!(
        reply(429, body, Some(7)),
        "451 4.7.1 Slow down; retry after 3 s (ref S1.1)"
    );
    assert_eq!(
        reply(429, "", Some(2)),
        "451 4.7.1 Rate limit exceeded; retry after 2 s (ref S1.1)"
    );
}

#[test]
fn retryable_decides_the_class() {
    let quota = r#"{"error": {"code": "monthly_quota_exceeded", "message": "Quota spent", "retryable": false}}"#;
    assert_eq!(reply(429, quota, None), "550 5.7.1 Quota spent (ref S1.1)");
    let busy =
        r#"{"error": {"code": "invalid_request", "message": "Try later", "retryable": true}}"#;
    assert_eq!(reply(400, busy, None), "451 4.6.0 Try later (ref S1.1)");
    let hard = r#"{"error": {"message": "Broken for good", "retryable": false}}"#;
    assert_eq!(
        reply(500, hard, None),
        "554 5.3.0 Temporary server error, try again later (ref S1.1)"
    );
    let soft403 = r#"{"error": {"message": "Domain check pending", "retryable": true}}"#;
    assert_eq!(
        reply(403, soft403, None),
        "451 4.7.1 Domain check pending (ref S1.1)"
    );
}

#[test]
fn hostile_and_missing_bodies() {
    // Not JSON, empty, another shape, a number as message: the row's default text.
    for body in [
        "",
        "<html>oops</html>",
        "{\"errors\": []}",
        "[1,2]",
        "{\"error\": 5}",
        "\u{0}\u{1}",
    ] {
        assert_eq!(
            reply(400, body, None),
            "554 5.6.0 Message rejected by the API (ref S1.1)",
            "{body:?}"
        );
    }
    // CR/LF and control characters in the API message never reach the wire (DATA-17).
    let injected =
        r#"{"error": {"message": "bad\r\n250 2.0.0 Ok\u001b[2J", "request_id": "req_1\r\nX"}}"#;
    assert_eq!(
        reply(400, injected, None),
        "554 5.6.0 bad 250 2.0.0 Ok [2J (ref req_1 X)"
    );
    // A huge message is cut.
    let long = format!(r#"{{"error": {{"message": "{}"}}}}"#, "m".repeat(10_000));
    let text = reply(403, &long, None);
    assert!(text.len() < 320, "{}", text.len());
    assert!(text.starts_with("550 5.7.1 mmm") && text.contains("..."));
}
