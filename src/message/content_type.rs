//! An attachment's `content_type` (docs/mapping.md): lowercase `type/subtype`, then the parameters
//! that change what the bytes mean — `charset` on `text/*`, `method` and `component` on
//! `text/calendar`, in that order — each `; name=value`, the value as declared and quoted only
//! when it must be (RFC 2045 §5.1 `tspecials` or a blank). A calendar invite stays an invite,
//! and a text file says which charset its unchanged bytes are in. Nothing else is copied:
//! `name=` is the file name, `boundary=` and `format=` describe the transport.

use mail_parser::ContentType;

/// Lowercase `type/subtype` of a leaf: `text/plain` for none (or a multipart that never
/// split), `message/rfc822` for none in a digest (RFC 2045 §5.2, RFC 2046 §5.1.5),
/// `application/octet-stream` for a type that is not two RFC 2045 tokens.
pub(super) fn mime_type(content_type: Option<&ContentType<'_>>, in_digest: bool) -> String {
    let Some(ct) = content_type else {
        return if in_digest {
            "message/rfc822"
        } else {
            "text/plain"
        }
        .to_owned();
    };
    let kind = ct.ctype();
    if kind.eq_ignore_ascii_case("multipart") {
        return "text/plain".to_owned();
    }
    match ct.subtype() {
        Some(sub) if is_token(kind) && is_token(sub) => {
            format!("{}/{}", kind.to_ascii_lowercase(), sub.to_ascii_lowercase())
        }
        _ => "application/octet-stream".to_owned(),
    }
}

/// `mime` followed by the parameters of `content_type` that docs/mapping.md keeps.
pub(super) fn with_parameters(mime: String, content_type: Option<&ContentType<'_>>) -> String {
    let Some(ct) = content_type else {
        return mime;
    };
    let kept: &[&str] = if mime == "text/calendar" {
        &["charset", "method", "component"]
    } else if mime.starts_with("text/") {
        &["charset"]
    } else {
        &[]
    };
    let mut out = mime;
    for name in kept {
        let Some(value) = ct.attribute(name) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            continue;
        }
        out.push_str("; ");
        out.push_str(name);
        out.push('=');
        if value.contains(|c: char| c == ' ' || "()<>@,;:\\\"/[]?=".contains(c)) {
            out.push('"');
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(value);
        }
    }
    out
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
}

/// The extension of a generated file name.
pub(super) fn extension(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" | "application/ics" => "ics",
        "message/rfc822" | "message/global" => "eml",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn content_type_of(field: &str) -> String {
        let raw = format!("Content-Type: {field}\r\n\r\nbody");
        let message = MessageParser::new().parse(raw.as_bytes()).unwrap();
        let ct = message.root_part().content_type();
        with_parameters(mime_type(ct.as_ref(), false), ct.as_ref())
    }

    #[test]
    fn types_are_lowercase_tokens() {
        assert_eq!(mime_type(None, false), "text/plain");
        assert_eq!(mime_type(None, true), "message/rfc822");
        assert_eq!(content_type_of("Image/PNG; name=a.png"), "image/png");
        assert_eq!(content_type_of("multipart/mixed; boundary=x"), "text/plain");
        assert_eq!(content_type_of("text"), "application/octet-stream");
    }

    #[test]
    fn meaningful_parameters_are_kept_in_order() {
        assert_eq!(
            content_type_of("text/calendar; method=REQUEST; charset=\"utf-8\"; name=invite.ics"),
            "text/calendar; charset=utf-8; method=REQUEST"
        );
        assert_eq!(
            content_type_of("text/calendar; component=VEVENT; method=CANCEL"),
            "text/calendar; method=CANCEL; component=VEVENT"
        );
        assert_eq!(
            content_type_of("text/plain; format=flowed; charset=ISO-8859-1; name=notes.txt"),
            "text/plain; charset=ISO-8859-1"
        );
        assert_eq!(
            content_type_of("application/pdf; charset=utf-8; name=a.pdf"),
            "application/pdf"
        );
        assert_eq!(content_type_of("text/csv"), "text/csv");
    }

    #[test]
    fn values_are_quoted_only_when_they_must_be() {
        assert_eq!(
            content_type_of("text/plain; charset=\"x y\""),
            "text/plain; charset=\"x y\""
        );
        assert_eq!(
            content_type_of("text/plain; charset=\"a\\\"b\""),
            "text/plain; charset=\"a\\\"b\""
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("image/jpeg"), "jpg");
        assert_eq!(extension("message/rfc822"), "eml");
        assert_eq!(extension("application/x-unknown"), "bin");
    }
}
