//! SASL decoding (`sendpigeon_relay::smtp::sasl`): `decode_response`, `split_plain` and
//! `precheck` never panic, and:
//! - `decode_response` of what it decoded, re-encoded (padded or not, with surrounding
//!   spaces), gives the same bytes; base64 of any bytes decodes to them;
//! - `split_plain` succeeds exactly for messages with two NULs, and its fields joined with NUL
//!   are the message;
//! - `precheck` accepts exactly the configured username, an authzid that is empty or equal to
//!   it, and a UTF-8 password of at most 512 bytes with an accepted prefix, and the key it
//!   returns is that password.
//!
//! Input: byte 0 selects how the rest is read (as a response line, or as raw bytes to
//! encode / split), the rest is the payload.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use libfuzzer_sys::fuzz_target;
use sendpigeon_relay::smtp::sasl::{SaslError, decode_response, precheck, split_plain};

const USERNAME: &str = "apikey";

fn prefixes() -> Vec<String> {
    vec!["sk_live_".to_string(), "sk_test_".to_string()]
}

fn check_plain(message: &[u8]) {
    let nuls = message.iter().filter(|&&b| b == 0).count();
    match split_plain(message) {
        Ok(p) => {
            assert_eq!(nuls, 2, "split_plain accepted {nuls} NULs");
            let mut joined = p.authzid.to_vec();
            joined.push(0);
            joined.extend_from_slice(p.authcid);
            joined.push(0);
            joined.extend_from_slice(p.password);
            assert_eq!(joined, message, "fields do not rebuild the message");
            check_precheck(p.authzid, p.authcid, p.password);
        }
        Err(e) => {
            assert_eq!(e, SaslError::MalformedPlain);
            assert_ne!(nuls, 2, "split_plain refused a message with two NULs");
        }
    }
}

fn check_precheck(authzid: &[u8], authcid: &[u8], password: &[u8]) {
    let prefixes = prefixes();
    let key = precheck(authzid, authcid, password, USERNAME, &prefixes);
    let expected = authcid == USERNAME.as_bytes()
        && (authzid.is_empty() || authzid == authcid)
        && std::str::from_utf8(password)
            .is_ok_and(|p| p.len() <= 512 && prefixes.iter().any(|x| p.starts_with(x.as_str())));
    assert_eq!(key.is_some(), expected, "precheck decided wrongly");
    if let Some(key) = key {
        assert_eq!(
            key.expose().as_bytes(),
            password,
            "the key is not the password"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            // A response line as the session hands it over (UTF-8 text).
            let Ok(text) = std::str::from_utf8(payload) else {
                return;
            };
            match decode_response(text) {
                Ok(bytes) => {
                    for encoded in [STANDARD.encode(&bytes), STANDARD_NO_PAD.encode(&bytes)] {
                        if encoded.is_empty() {
                            continue;
                        }
                        assert_eq!(
                            decode_response(&format!("  {encoded} ")).as_deref(),
                            Ok(&bytes[..]),
                            "re-encoded response does not decode back"
                        );
                    }
                    check_plain(&bytes);
                }
                Err(SaslError::Aborted) => assert_eq!(text.trim_matches(' '), "*"),
                Err(SaslError::BadBase64) => {}
                Err(SaslError::MalformedPlain) => panic!("decode_response: MalformedPlain"),
            }
        }
        1 => {
            // Any bytes, base64-encoded as a client would: they decode back exactly.
            let encoded = STANDARD.encode(payload);
            let text = if encoded.is_empty() {
                "=".to_string()
            } else {
                encoded
            };
            assert_eq!(decode_response(&text).as_deref(), Ok(payload));
            check_plain(payload);
        }
        _ => {
            // LOGIN: the username and the password as separate responses, split at the first
            // NUL; PLAIN fields straight from the bytes.
            let (user, pass) = match payload.iter().position(|&b| b == 0) {
                Some(i) => (&payload[..i], &payload[i + 1..]),
                None => (payload, &b""[..]),
            };
            check_precheck(b"", user, pass);
            check_plain(payload);
        }
    }
});
