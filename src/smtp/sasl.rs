//! SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) message decoding, and the
//! credential pre-check. Verifying the key against a key store or the API is not done here:
//! the session hands the key to the driver (`Step::Authenticate`).

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::secret::ApiKey;

/// RFC 4954 §4: the LOGIN prompts, "Username:" and "Password:" in base64. Copied Go and
/// Outlook LOGIN implementations only answer these exact challenges.
pub const LOGIN_USERNAME_PROMPT: &str = "334 VXNlcm5hbWU6\r\n";
/// See [`LOGIN_USERNAME_PROMPT`].
pub const LOGIN_PASSWORD_PROMPT: &str = "334 UGFzc3dvcmQ6\r\n";
/// RFC 4954 §4: an empty challenge keeps its trailing space.
pub const PLAIN_PROMPT: &str = "334 \r\n";

/// Standard alphabet; padding optional, as some clients drop it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The mechanisms we offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The de-facto LOGIN mechanism.
    Login,
}

impl Mechanism {
    /// Case-insensitive mechanism name.
    pub fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Why an AUTH response was refused before any credential check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// `*`: the client cancelled (RFC 4954 §4).
    Aborted,
    /// Not base64.
    BadBase64,
    /// A PLAIN message without exactly two NULs.
    MalformedPlain,
}

/// Decodes one response: `*` aborts, `=` is an empty initial response, anything else is
/// base64 (surrounding spaces ignored).
pub fn decode_response(text: &str) -> Result<Vec<u8>, SaslError> {
    let text = text.trim_matches(' ');
    match text {
        "*" => Err(SaslError::Aborted),
        "=" => Ok(Vec::new()),
        _ => BASE64.decode(text).map_err(|_| SaslError::BadBase64),
    }
}

/// The three fields of a PLAIN message.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain<'a> {
    /// The identity to act as (empty: the same as `authcid`).
    pub authzid: &'a [u8],
    /// The username.
    pub authcid: &'a [u8],
    /// The password: the API key.
    pub password: &'a [u8],
}

/// RFC 4616 §2: `[authzid] NUL authcid NUL passwd`.
pub fn split_plain(message: &[u8]) -> Result<Plain<'_>, SaslError> {
    let mut fields = message.split(|&b| b == 0);
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(authzid), Some(authcid), Some(password), None) => Ok(Plain {
            authzid,
            authcid,
            password,
        }),
        _ => Err(SaslError::MalformedPlain),
    }
}

/// The username and key policy: the username must equal the configured one, an authzid (if
/// any) must equal the username (AUTH-07), and the password must be UTF-8 with an accepted
/// key prefix. `None` means "invalid", decided without asking the key store; the caller still
/// answers with the same reply and delay as for a wrong key (AUTH-09).
pub fn precheck(
    authzid: &[u8],
    username: &[u8],
    password: &[u8],
    expected_username: &str,
    key_prefixes: &[String],
) -> Option<ApiKey> {
    let user_ok = username == expected_username.as_bytes();
    let authzid_ok = authzid.is_empty() || authzid == username;
    let key = std::str::from_utf8(password).ok()?;
    let prefix_ok = key_prefixes.iter().any(|p| key.starts_with(p.as_str()));
    (user_ok && authzid_ok && prefix_ok && key.len() <= 512).then(|| ApiKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Vec<String> {
        vec!["sk_live_".to_string()]
    }

    fn plain(b64: &str) -> Option<ApiKey> {
        let msg = decode_response(b64).unwrap();
        let p = split_plain(&msg).unwrap();
        precheck(p.authzid, p.authcid, p.password, "apikey", &prefixes())
    }

    #[test]
    fn plain_forms() {
        // AUTH-04, AUTH-08, AUTH-07, AUTH-09, AUTH-12 of the adversarial catalogue.
        assert!(plain("AGFwaWtleQBza19saXZlX1RFU1RLRVk=").is_some());
        assert!(plain("YXBpa2V5AGFwaWtleQBza19saXZlX1RFU1RLRVk=").is_some());
        assert!(plain("YWRtaW4AYXBpa2V5AHNrX2xpdmVfVEVTVEtFWQ==").is_none());
        assert!(plain("AHJvb3QAc2tfbGl2ZV9URVNUS0VZ").is_none());
        assert!(plain("AGFwaWtleQD//g==").is_none());
    }

    #[test]
    fn malformed_plain_messages() {
        // AUTH-06 (`=`), AUTH-10 (a fourth field).
        assert_eq!(split_plain(&[]), Err(SaslError::MalformedPlain));
        let four = decode_response("AGFwaWtleQBza19saXZlX1RFU1RLRVkAZXh0cmE=").unwrap();
        assert_eq!(split_plain(&four), Err(SaslError::MalformedPlain));
        assert_eq!(decode_response("!!!notbase64"), Err(SaslError::BadBase64));
        assert_eq!(decode_response("*"), Err(SaslError::Aborted));
        assert_eq!(decode_response("="), Ok(vec![]));
        assert_eq!(decode_response("YXBpa2V5"), Ok(b"apikey".to_vec()));
        assert_eq!(decode_response("YQ"), Ok(b"a".to_vec()));
    }
}
