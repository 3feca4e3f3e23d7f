//! Reverse- and forward-path syntax (RFC 5321 §4.1.2, with RFC 6531 UTF-8 extensions).
//!
//! Decisions where servers differ (written down in docs/smtp.md "MAIL FROM"):
//! - `<addr>` is the normal form; `FROM: <addr>` (space after the colon) and a bracketless
//!   `FROM:addr` are accepted, as Postfix does by default.
//! - Source routes `<@a,@b:user@c>` are accepted and dropped (RFC 5321 Appendix C).
//! - Address literals (`user@[192.0.2.1]`) are refused: the relay only submits to the REST
//!   API, and a literal there would aim later hops at internal addresses.
//! - An unqualified address (`<postmaster>`) is a syntax error: there is no local delivery.
//! - Lengths are octets: local part 64, domain 255, address 254 (path 256, §4.5.3.1).

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not an address, or garbage around it.
    Syntax,
    /// Over a length limit.
    TooLong,
    /// An address literal as the domain.
    Literal,
}

/// RFC 5321 §4.5.3.1.1.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
pub const MAX_ADDRESS: usize = 254;

/// Splits `MAIL FROM:` / `RCPT TO:` arguments after the keyword and colon into the address
/// (without brackets and source route) and the parameter string. `<>` gives an empty address.
pub fn split_path(args: &str) -> Result<(&str, &str), PathError> {
    let args = args.trim_start_matches(' ');
    let (path, rest) = if let Some(inner) = args.strip_prefix('<') {
        let end = closing_bracket(inner).ok_or(PathError::Syntax)?;
        let rest = &inner[end + 1..];
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return Err(PathError::Syntax);
        }
        (&inner[..end], rest)
    } else {
        let end = args.find(' ').unwrap_or(args.len());
        if end == 0 || args[..end].contains(['<', '>']) {
            return Err(PathError::Syntax);
        }
        (&args[..end], &args[end..])
    };
    Ok((strip_source_route(path)?, rest))
}

/// Index of the `>` that closes the path, skipping quoted strings (`"a>b"@x`).
fn closing_bracket(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'>' if !in_quote => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn strip_source_route(path: &str) -> Result<&str, PathError> {
    if !path.starts_with('@') {
        return Ok(path);
    }
    let colon = path.find(':').ok_or(PathError::Syntax)?;
    for hop in path[..colon].split(',') {
        let domain = hop.strip_prefix('@').ok_or(PathError::Syntax)?;
        if !is_domain(domain) {
            return Err(PathError::Syntax);
        }
    }
    Ok(&path[colon + 1..])
}

/// Checks a mailbox `local@domain`. Non-ASCII is allowed here; whether it needs SMTPUTF8 is
/// the caller's question.
pub fn check_mailbox(address: &str) -> Result<(), PathError> {
    let at = address.rfind('@').ok_or(PathError::Syntax)?;
    let (local, domain) = (&address[..at], &address[at + 1..]);
    if domain.starts_with('[') {
        return if domain.ends_with(']') {
            Err(PathError::Literal)
        } else {
            Err(PathError::Syntax)
        };
    }
    if !(is_dot_string(local) || is_quoted_string(local)) || !is_domain(domain) {
        return Err(PathError::Syntax);
    }
    if local.len() > MAX_LOCAL_PART || domain.len() > MAX_DOMAIN || address.len() > MAX_ADDRESS {
        return Err(PathError::TooLong);
    }
    Ok(())
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_quoted_string(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            // quoted-pairSMTP: backslash followed by any printable ASCII character.
            '\\' => match chars.next() {
                Some(' '..='~') => {}
                _ => return false,
            },
            '"' => return false,
            // qtextSMTP, plus UTF-8 (RFC 6531).
            ' '..='~' => {}
            c if !c.is_ascii() => {}
            _ => return false,
        }
    }
    true
}

/// A domain name: dot-separated labels of letters, digits, hyphens (not at either end of a
/// label) and, leniently, underscores; U-labels (non-ASCII) are allowed.
pub fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(args: &str) -> Result<(String, String), PathError> {
        let (addr, rest) = split_path(args)?;
        if !addr.is_empty() {
            check_mailbox(addr)?;
        }
        Ok((addr.to_string(), rest.to_string()))
    }

    #[test]
    fn accepted_forms() {
        let ok = |args: &str, addr: &str, rest: &str| {
            assert_eq!(
                mailbox(args),
                Ok((addr.to_string(), rest.to_string())),
                "{args}"
            );
        };
        ok("<s@x.example>", "s@x.example", "");
        ok(" <s@x.example> SIZE=10", "s@x.example", " SIZE=10");
        ok("s@x.example SIZE=10", "s@x.example", " SIZE=10");
        ok("<>", "", "");
        ok("<S@X.Example>", "S@X.Example", "");
        ok(
            "<@a.example,@b.example:user@c.example>",
            "user@c.example",
            "",
        );
        ok("<\"john smith\"@x.example>", "\"john smith\"@x.example", "");
        ok("<\"a\\\"b\"@x.example>", "\"a\\\"b\"@x.example", "");
        ok(
            "<\"@a,@b:<user>\"@d.example>",
            "\"@a,@b:<user>\"@d.example",
            "",
        );
        ok("<ü@bücher.example>", "ü@bücher.example", "");
        ok("<a+tag@sub_domain.example>", "a+tag@sub_domain.example", "");
    }

    #[test]
    fn refused_forms() {
        // ENV-14.
        for bad in [
            "<pepe>",
            "<@>",
            "<hi..there@x>",
            "<.hi@x>",
            "<hi@.x>",
            "<a@@b>",
            "<a@b.com>>>",
            "<a@b",
            "<a@xn--->",
            "",
            " ",
            "<a b@x>",
            "<a@-x.example>",
            "a@b>",
            "<a@>",
            "<@x>",
        ] {
            assert_eq!(mailbox(bad), Err(PathError::Syntax), "{bad}");
        }
        assert_eq!(mailbox("<u@[127.0.0.1]>"), Err(PathError::Literal));
        assert_eq!(mailbox("<u@[IPv6:::1]>"), Err(PathError::Literal));
    }

    #[test]
    fn length_limits_are_octets() {
        // LIM-05.
        let local65 = format!("<{}@x.example>", "a".repeat(65));
        assert_eq!(mailbox(&local65), Err(PathError::TooLong));
        let local64 = format!("<{}@x.example>", "a".repeat(64));
        assert!(mailbox(&local64).is_ok());
        // 32 two-byte characters: 32 characters but 64 octets is fine; 33 is not.
        let utf = format!("<{}@x.example>", "é".repeat(33));
        assert_eq!(mailbox(&utf), Err(PathError::TooLong));
        let long_domain = format!("<a@{}.example>", vec!["b".repeat(60); 5].join("."));
        assert_eq!(mailbox(&long_domain), Err(PathError::TooLong));
    }
}
