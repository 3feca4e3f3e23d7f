//! EHLO and HELO: the capability list before and after TLS (docs/smtp.md "Greeting and EHLO").

use super::{Session, Step};
use crate::smtp::reply;

/// Longest EHLO/HELO argument accepted (a domain name).
const MAX_HELO: usize = 255;

impl Session {
    pub(super) fn on_greeting(&mut self, arg: &str, extended: bool) -> Option<Step> {
        // `EHLO a b` uses the first word, as Postfix does.
        let name = arg.split(' ').next().unwrap_or("");
        if name.is_empty() || name.len() > MAX_HELO {
            return self.error(if extended {
                reply::EHLO_SYNTAX
            } else {
                reply::HELO_SYNTAX
            });
        }
        self.helo = Some(sanitize_helo(name));
        // RFC 5321 §4.1.4: a new EHLO resets the transaction (AUTH stays).
        self.tx = None;
        self.bdat_failed = None;
        if extended {
            self.write_capabilities();
        } else {
            let line = format!("250 {}\r\n", self.cfg.hostname);
            self.write_raw(&line);
        }
        self.count_junk()
    }

    fn write_capabilities(&mut self) {
        let mut lines = vec![
            self.cfg.hostname.clone(),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls.is_none() {
            lines.push("STARTTLS".to_string());
        } else {
            // AUTH is never advertised in plaintext (RFC 4954 §4, adversarial AUTH-01).
            lines.push("AUTH PLAIN LOGIN".to_string());
            if self.chunking_offered() {
                lines.push("CHUNKING".to_string());
            }
            // RFC 9422.
            lines.push(format!(
                "LIMITS RCPTMAX={} MAILMAX={}",
                self.cfg.max_recipients, self.cfg.max_messages
            ));
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }
}

/// The EHLO name as it may appear in logs and in `source.helo`: letters, digits and
/// `.-_:[]` kept, anything else shown as `?` (adversarial XPROTO-03).
pub fn sanitize_helo(name: &str) -> String {
    name.chars()
        .take(MAX_HELO)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_:[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}
