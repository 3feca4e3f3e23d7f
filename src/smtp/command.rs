//! Command lines: the verb, and the arguments of MAIL and RCPT (RFC 5321 §4.1.1, RFC 1870,
//! RFC 6152, RFC 6531, RFC 4954 §5).
//!
//! Verbs are case-insensitive; addresses keep their case (RFC 5321 §2.4). Parsing returns
//! errors that name the reply, so the session maps each to exactly one catalogue entry.

use super::address::{self, PathError};

/// One command line, by verb. Arguments are borrowed from the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain`.
    Ehlo(&'a str),
    /// `HELO domain`.
    Helo(&'a str),
    /// `STARTTLS` (arguments are an error).
    StartTls(&'a str),
    /// `AUTH mechanism [initial-response]`.
    Auth(&'a str),
    /// `MAIL FROM:<path> [params]`.
    Mail(&'a str),
    /// `RCPT TO:<path> [params]`.
    Rcpt(&'a str),
    /// `DATA` (arguments are an error).
    Data(&'a str),
    /// `RSET` (arguments are an error).
    Rset(&'a str),
    /// `NOOP [anything]` (RFC 5321 §4.1.1.9: arguments ignored).
    Noop,
    /// `VRFY`.
    Vrfy,
    /// `HELP`.
    Help,
    /// `QUIT`.
    Quit,
    /// `BDAT <size> [LAST]` (RFC 3030): its payload follows the line at once.
    Bdat(&'a str),
    /// An HTTP request line on the SMTP port.
    Http,
    /// EXPN, TURN, ETRN, SEND, SOML, SAML.
    NotImplemented,
    /// Anything else.
    Unknown,
}

/// Splits a line (already checked to be UTF-8 without control characters) into a command.
pub fn parse(line: &str) -> Command<'_> {
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, args) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim_start_matches(' ')),
        None => (line, ""),
    };
    let is = |name: &str| verb.eq_ignore_ascii_case(name);
    if is("EHLO") {
        Command::Ehlo(args)
    } else if is("HELO") {
        Command::Helo(args)
    } else if is("STARTTLS") {
        Command::StartTls(args)
    } else if is("AUTH") {
        Command::Auth(args)
    } else if is("MAIL") {
        Command::Mail(args)
    } else if is("RCPT") {
        Command::Rcpt(args)
    } else if is("DATA") {
        Command::Data(args)
    } else if is("RSET") {
        Command::Rset(args)
    } else if is("NOOP") {
        Command::Noop
    } else if is("VRFY") {
        Command::Vrfy
    } else if is("HELP") {
        Command::Help
    } else if is("QUIT") {
        Command::Quit
    } else if is("BDAT") {
        Command::Bdat(args)
    } else if [
        "GET", "POST", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "TRACE",
    ]
    .iter()
    .any(|m| verb.eq_ignore_ascii_case(m))
        || !verb.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        // Postfix refuses `CONNECT GET POST` and any line not starting with a letter
        // (`smtpd_forbidden_commands`): HTTP, JSON and other protocols aimed at this port.
        Command::Http
    } else if ["EXPN", "TURN", "ETRN", "SEND", "SOML", "SAML"]
        .iter()
        .any(|m| verb.eq_ignore_ascii_case(m))
    {
        Command::NotImplemented
    } else {
        Command::Unknown
    }
}

/// A BDAT command's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bdat {
    /// The octets that follow the line.
    pub size: u64,
    /// `LAST`: this chunk ends the message.
    pub last: bool,
}

/// Longest chunk size accepted in the syntax (RFC 3030 allows any; 20 digits covers `u64`'s
/// range, and anything longer cannot be a size any limit would let through).
const BDAT_SIZE_DIGITS: usize = 20;

/// Parses `<size> [LAST]`: a decimal size of 1 to 20 digits and an optional, case-insensitive
/// `LAST`, separated by blanks. `None` is a framing error: the octets that follow
/// cannot be counted.
pub fn parse_bdat(args: &str) -> Option<Bdat> {
    let mut words = args.split_ascii_whitespace();
    let size = words.next()?;
    if size.is_empty() || size.len() > BDAT_SIZE_DIGITS || !size.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Twenty nines overflow u64: such a chunk is over every size limit anyway.
    let size = size.parse::<u64>().unwrap_or(u64::MAX);
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return None,
    };
    if words.next().is_some() {
        return None;
    }
    Some(Bdat { size, last })
}

/// Why MAIL or RCPT arguments were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    /// No `FROM:` / `TO:` keyword and colon.
    Keyword,
    /// The path itself.
    Path(PathError),
    /// A parameter.
    Param(ParamError),
}

/// Why a parameter was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ParamError {
    /// `SIZE=` not a decimal number.
    BadSize,
    /// `BODY=` neither 7BIT, 8BITMIME nor BINARYMIME.
    BadBody,
    /// `BODY=BINARYMIME` (needs CHUNKING).
    BinaryMime,
    /// `AUTH=` not xtext.
    BadAuth,
    /// A parameter given twice.
    Duplicate,
    /// A parameter we do not implement (RFC 5321 §4.1.1.11: 555).
    Unsupported(String),
}

/// `BODY=` values (RFC 6152). Recorded but not acted on: the message is parsed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
}

/// MAIL FROM, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MailFrom<'a> {
    /// The reverse-path without brackets; empty for `<>`.
    pub address: &'a str,
    /// `SIZE=`, saturated at `u64::MAX` when it does not fit.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
}

/// Parses the arguments of MAIL (after the verb).
pub fn parse_mail(args: &str) -> Result<MailFrom<'_>, ArgError> {
    let rest = keyword(args, "FROM")?;
    let (address, params) = address::split_path(rest).map_err(ArgError::Path)?;
    if !address.is_empty() {
        address::check_mailbox(address).map_err(ArgError::Path)?;
    }
    let mut mail = MailFrom {
        address,
        ..MailFrom::default()
    };
    let mut seen_auth = false;
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (param, None),
        };
        let duplicate = if name.eq_ignore_ascii_case("SIZE") {
            let size = value.and_then(parse_size).ok_or(ParamError::BadSize);
            mail.size.replace(size.map_err(ArgError::Param)?).is_some()
        } else if name.eq_ignore_ascii_case("BODY") {
            let body = match value {
                Some(v) if v.eq_ignore_ascii_case("7BIT") => Body::SevenBit,
                Some(v) if v.eq_ignore_ascii_case("8BITMIME") => Body::EightBitMime,
                Some(v) if v.eq_ignore_ascii_case("BINARYMIME") => {
                    return Err(ArgError::Param(ParamError::BinaryMime));
                }
                _ => return Err(ArgError::Param(ParamError::BadBody)),
            };
            mail.body.replace(body).is_some()
        } else if name.eq_ignore_ascii_case("SMTPUTF8") && value.is_none() {
            std::mem::replace(&mut mail.smtputf8, true)
        } else if name.eq_ignore_ascii_case("AUTH") {
            // RFC 4954 §5: accepted and ignored; the identity comes from our own AUTH.
            if !value.is_some_and(is_xtext) {
                return Err(ArgError::Param(ParamError::BadAuth));
            }
            std::mem::replace(&mut seen_auth, true)
        } else {
            return Err(ArgError::Param(ParamError::Unsupported(param.to_string())));
        };
        if duplicate {
            return Err(ArgError::Param(ParamError::Duplicate));
        }
    }
    Ok(mail)
}

/// Parses the arguments of RCPT (after the verb): the forward-path, never empty. We offer no
/// RCPT parameters (no DSN), so any is unsupported.
pub fn parse_rcpt(args: &str) -> Result<&str, ArgError> {
    let rest = keyword(args, "TO")?;
    let (address, params) = address::split_path(rest).map_err(ArgError::Path)?;
    if address.is_empty() {
        return Err(ArgError::Path(PathError::Syntax));
    }
    address::check_mailbox(address).map_err(ArgError::Path)?;
    if let Some(param) = params.split(' ').find(|p| !p.is_empty()) {
        return Err(ArgError::Param(ParamError::Unsupported(param.to_string())));
    }
    Ok(address)
}

/// `FROM:` / `TO:` with optional spaces around the colon (`MAIL  FROM : <>` is accepted, as
/// smtp-proto and Postfix do).
fn keyword<'a>(args: &'a str, word: &str) -> Result<&'a str, ArgError> {
    let head = args.get(..word.len()).ok_or(ArgError::Keyword)?;
    if !head.eq_ignore_ascii_case(word) {
        return Err(ArgError::Keyword);
    }
    let rest = args[word.len()..].trim_start_matches(' ');
    let rest = rest.strip_prefix(':').ok_or(ArgError::Keyword)?;
    if rest.trim().is_empty() {
        return Err(ArgError::Keyword);
    }
    Ok(rest)
}

/// Digits only (RFC 1870 §3: `size-value ::= 1*20DIGIT`); too big to count saturates, which
/// the size check then refuses with 552 (adversarial ENV-05).
fn parse_size(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(u64::MAX))
}

/// RFC 3461 §4: `xtext = *( xchar / "+" 2HEXDIG )`, xchar being `!`..`~` except `+` and `=`.
fn is_xtext(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))) {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            b'!'..=b'~' => i += 1,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_arguments() {
        let bdat = |size, last| Some(Bdat { size, last });
        assert_eq!(parse("bdat 10 last"), Command::Bdat("10 last"));
        assert_eq!(parse_bdat("10"), bdat(10, false));
        assert_eq!(parse_bdat("0 LAST"), bdat(0, true));
        assert_eq!(parse_bdat("007 Last"), bdat(7, true));
        assert_eq!(parse_bdat("18446744073709551615"), bdat(u64::MAX, false));
        assert_eq!(
            parse_bdat("99999999999999999999 LAST"),
            bdat(u64::MAX, true)
        );
        for bad in [
            "",
            "LAST",
            "-1",
            "+1",
            "1.0",
            "0x10",
            "1e3",
            "100000000000000000000",
            "10 LAST x",
            "10 FIRST",
            "１０",
        ] {
            assert_eq!(parse_bdat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse("ehlo c.example"), Command::Ehlo("c.example"));
        assert_eq!(
            parse("mail from:<S@X.example>"),
            Command::Mail("from:<S@X.example>")
        );
        assert_eq!(parse("Rcpt To:<R@y>"), Command::Rcpt("To:<R@y>"));
        assert_eq!(parse("NOOP anything"), Command::Noop);
        assert_eq!(parse("DATA "), Command::Data(""));
        assert_eq!(parse("XXXX"), Command::Unknown);
        assert_eq!(parse("ETRN x"), Command::NotImplemented);
        assert_eq!(parse("GET / HTTP/1.1"), Command::Http);
        assert_eq!(parse("{\"json\":1}"), Command::Http);
        assert_eq!(parse("Host: x"), Command::Unknown);
    }

    #[test]
    fn mail_parameters() {
        let m = parse_mail("FROM:<s@x> SIZE=26214400 BODY=8bitMIME SMTPUTF8 AUTH=<>").unwrap();
        assert_eq!(m.address, "s@x");
        assert_eq!(m.size, Some(26_214_400));
        assert_eq!(m.body, Some(Body::EightBitMime));
        assert!(m.smtputf8);
        assert_eq!(parse_mail("FROM: <>").unwrap().address, "");
        assert_eq!(parse_mail("FROM : <>").unwrap().address, "");
        assert_eq!(
            parse_mail("FROM:<s@x> SIZE=99999999999999999999999")
                .unwrap()
                .size,
            Some(u64::MAX)
        );
    }

    #[test]
    fn mail_errors() {
        use ParamError::*;
        let err = |args: &str| parse_mail(args).unwrap_err();
        for bad in ["", "FROM", "FROM:", "LALA: <>", "FROMAGE:<a@b>"] {
            assert_eq!(err(bad), ArgError::Keyword, "{bad}");
        }
        for bad in ["SIZE=abc", "SIZE=", "SIZE=-1", "SIZE=+5", "SIZE"] {
            assert_eq!(
                err(&format!("FROM:<s@x> {bad}")),
                ArgError::Param(BadSize),
                "{bad}"
            );
        }
        assert_eq!(err("FROM:<s@x> BODY=RABBIT"), ArgError::Param(BadBody));
        assert_eq!(
            err("FROM:<s@x> BODY=BINARYMIME"),
            ArgError::Param(BinaryMime)
        );
        assert_eq!(err("FROM:<s@x> AUTH=<hey+A>"), ArgError::Param(BadAuth));
        assert_eq!(err("FROM:<s@x> SIZE=1 SIZE=2"), ArgError::Param(Duplicate));
        assert_eq!(
            err("FROM:<s@x> RABBIT=1"),
            ArgError::Param(Unsupported("RABBIT=1".into()))
        );
        assert_eq!(
            err("FROM:<s@x> XFOO"),
            ArgError::Param(Unsupported("XFOO".into()))
        );
        assert_eq!(err("FROM:<bad@@x>"), ArgError::Path(PathError::Syntax));
    }

    #[test]
    fn rcpt_arguments() {
        assert_eq!(parse_rcpt("TO:<r@y.example>"), Ok("r@y.example"));
        assert_eq!(parse_rcpt("TO:<>"), Err(ArgError::Path(PathError::Syntax)));
        assert_eq!(
            parse_rcpt("TO:<r@y> NOTIFY=NEVER"),
            Err(ArgError::Param(ParamError::Unsupported(
                "NOTIFY=NEVER".into()
            )))
        );
        assert_eq!(parse_rcpt("<r@y>"), Err(ArgError::Keyword));
    }
}
