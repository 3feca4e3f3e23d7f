//! The AUTH exchange (RFC 4954): PLAIN and LOGIN, with and without an initial response.

use super::{AuthRequest, Session, State, Step};
use crate::smtp::reply;
use crate::smtp::sasl::{self, Mechanism, SaslError};

/// Where an AUTH exchange waits for the client's next `334` response.
#[derive(Debug)]
pub(super) enum Stage {
    /// After `334 ` for PLAIN.
    Plain,
    /// After the LOGIN username prompt.
    LoginUsername,
    /// After the LOGIN password prompt.
    LoginPassword { username: Vec<u8> },
}

impl Session {
    pub(super) fn on_auth(&mut self, args: &str) -> Option<Step> {
        if self.helo.is_none() {
            return self.error(reply::HELO_FIRST);
        }
        if self.key.is_some() {
            return self.error(reply::AUTH_ALREADY);
        }
        if self.tx.is_some() {
            return self.error(reply::AUTH_IN_TRANSACTION);
        }
        let mut words = args.split(' ').filter(|w| !w.is_empty());
        let (Some(mechanism), initial, None) = (words.next(), words.next(), words.next()) else {
            return self.error(reply::AUTH_SYNTAX);
        };
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return self.error(reply::AUTH_UNKNOWN_MECHANISM);
        };
        match (mechanism, initial) {
            (Mechanism::Plain, None) => self.prompt(sasl::PLAIN_PROMPT, Stage::Plain),
            (Mechanism::Plain, Some(response)) => {
                self.on_auth_response(Stage::Plain, response.as_bytes())
            }
            (Mechanism::Login, None) => {
                self.prompt(sasl::LOGIN_USERNAME_PROMPT, Stage::LoginUsername)
            }
            (Mechanism::Login, Some(response)) => {
                self.on_auth_response(Stage::LoginUsername, response.as_bytes())
            }
        }
    }

    /// One response line at a `334` prompt (or an initial response).
    pub(super) fn on_auth_response(&mut self, stage: Stage, line: &[u8]) -> Option<Step> {
        let decoded = std::str::from_utf8(line)
            .map_err(|_| SaslError::BadBase64)
            .and_then(sasl::decode_response);
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(SaslError::Aborted) => {
                self.reply(reply::AUTH_ABORTED);
                return None;
            }
            Err(_) => return self.error(reply::AUTH_BAD_BASE64),
        };
        let key = match stage {
            Stage::Plain => match sasl::split_plain(&decoded) {
                Ok(plain) => self.precheck(plain.authzid, plain.authcid, plain.password),
                Err(_) => return self.error(reply::AUTH_MALFORMED_PLAIN),
            },
            Stage::LoginUsername => {
                return self.prompt(
                    sasl::LOGIN_PASSWORD_PROMPT,
                    Stage::LoginPassword { username: decoded },
                );
            }
            Stage::LoginPassword { username } => self.precheck(b"", &username, &decoded),
        };
        self.pending_key = key.clone();
        self.state = State::Waiting;
        Some(Step::Authenticate(AuthRequest { key }))
    }

    fn precheck(
        &self,
        authzid: &[u8],
        username: &[u8],
        password: &[u8],
    ) -> Option<crate::secret::ApiKey> {
        sasl::precheck(
            authzid,
            username,
            password,
            &self.cfg.auth_username,
            &self.cfg.key_prefixes,
        )
    }

    fn prompt(&mut self, prompt: &str, stage: Stage) -> Option<Step> {
        self.write_raw(prompt);
        self.state = State::Auth(stage);
        None
    }
}
