//! Command dispatch: the TLS gate, sequencing, and the envelope commands (MAIL, RCPT, DATA).

use super::{Session, State, Step, Transaction};
use crate::memory::budget::Grant;
use crate::memory::message_cost_bound;
use crate::smtp::address::PathError;
use crate::smtp::command::{self, ArgError, Command, ParamError};
use crate::smtp::reply::{self, Reply};

impl Session {
    pub(super) fn on_command_line(&mut self, text: &[u8]) -> Option<Step> {
        let Ok(line) = std::str::from_utf8(text) else {
            return self.error(reply::BAD_UTF8);
        };
        // SMUG-15, XPROTO-03: a CR, NUL or escape inside a line is never split or echoed.
        if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return self.error(reply::CONTROL_CHARACTERS);
        }
        if line.trim().is_empty() {
            return self.error(reply::EMPTY_COMMAND);
        }
        let cmd = command::parse(line);
        if self.close_next && cmd != Command::Quit {
            self.reply(reply::TOO_MANY_MESSAGES_CLOSE);
            return Some(self.close());
        }
        if self.starttls && self.tls.is_none() && !allowed_before_tls(&cmd) {
            return self.error(reply::MUST_STARTTLS);
        }
        match cmd {
            Command::Ehlo(arg) => self.on_greeting(arg, true),
            Command::Helo(arg) => self.on_greeting(arg, false),
            Command::StartTls(args) => self.on_starttls(args),
            Command::Auth(args) => self.on_auth(args),
            Command::Mail(args) => self.on_mail(args),
            Command::Rcpt(args) => self.on_rcpt(args),
            Command::Data(args) => self.on_data(args),
            Command::Rset(args) => {
                if !args.is_empty() {
                    return self.error(reply::RSET_SYNTAX);
                }
                self.tx = None;
                self.bdat_failed = None;
                self.reply(reply::OK);
                self.count_junk()
            }
            Command::Noop => {
                self.reply(reply::OK);
                self.count_junk()
            }
            Command::Vrfy => {
                self.reply(reply::VRFY);
                self.count_junk()
            }
            Command::Help => {
                self.reply(reply::HELP);
                self.count_junk()
            }
            Command::Quit => {
                self.reply(reply::BYE);
                Some(self.close())
            }
            Command::Bdat(args) => self.on_bdat(args),
            Command::Http => {
                self.reply(reply::HTTP_ON_SMTP);
                Some(self.close())
            }
            Command::NotImplemented => self.error(reply::NOT_IMPLEMENTED),
            Command::Unknown => self.error(reply::UNKNOWN_COMMAND),
        }
    }

    fn on_starttls(&mut self, args: &str) -> Option<Step> {
        if self.tls.is_some() {
            return self.error(reply::TLS_ALREADY_ACTIVE);
        }
        if !args.is_empty() {
            return self.error(reply::STARTTLS_SYNTAX);
        }
        self.reply(reply::STARTTLS_READY);
        self.state = State::Waiting;
        Some(Step::StartTls)
    }

    fn on_mail(&mut self, args: &str) -> Option<Step> {
        if self.helo.is_none() {
            return self.error(reply::HELO_FIRST);
        }
        if self.key.is_none() {
            return self.error(reply::AUTH_REQUIRED);
        }
        if self.tx.is_some() {
            return self.error(reply::NESTED_MAIL);
        }
        if self.transactions >= self.cfg.max_messages {
            self.close_next = true;
            self.reply(reply::TOO_MANY_MESSAGES);
            return None;
        }
        let mail = match command::parse_mail(args) {
            Ok(mail) => mail,
            Err(err) => return self.arg_error(err, Side::Sender),
        };
        if !mail.smtputf8 && !mail.address.is_ascii() {
            return self.error(reply::NEED_SMTPUTF8);
        }
        let max = self.cfg.max_message_size as u64;
        if mail.size.is_some_and(|size| size > max) {
            self.reply(reply::MESSAGE_TOO_BIG);
            return None;
        }
        // A declared size the whole budget could never hold is refused at once (RFC 1870
        // §6.1); a budget only spent for now is waited for at DATA.
        let largest = self.budget.largest_reservation() as u64;
        if mail
            .size
            .is_some_and(|size| message_cost_bound(size as usize) as u64 > largest)
        {
            self.reply(reply::INSUFFICIENT_STORAGE);
            return None;
        }
        // Failing early: no transaction starts, so pipelined RCPT and DATA get 503.
        if let (Some(gate), Some(key)) = (&self.gate, &self.key)
            && let Some(refusal) = gate.refuse(key, mail.address)
        {
            self.reply(refusal);
            return None;
        }
        self.tx = Some(Transaction {
            mail_from: mail.address.to_string(),
            rcpt_to: Vec::new(),
            rcpt_attempts: 0,
            smtputf8: mail.smtputf8,
            declared_size: mail.size.map(|size| size as usize),
            chunks: None,
        });
        self.bdat_failed = None;
        self.reply(reply::SENDER_OK);
        None
    }

    fn on_rcpt(&mut self, args: &str) -> Option<Step> {
        let Some(tx) = &mut self.tx else {
            return self.error(reply::NEED_MAIL);
        };
        tx.rcpt_attempts += 1;
        let smtputf8 = tx.smtputf8;
        let address = match command::parse_rcpt(args) {
            Ok(address) => address,
            Err(err) => return self.arg_error(err, Side::Recipient),
        };
        if !smtputf8 && !address.is_ascii() {
            return self.error(reply::NEED_SMTPUTF8);
        }
        let max = self.cfg.max_recipients;
        let Some(tx) = &mut self.tx else {
            return None;
        };
        // The same address twice is accepted once (Postfix's duplicate filter): the API
        // delivers to every entry of rcpt_to, so a duplicate would be a second copy.
        let duplicate = tx.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address));
        let reply = if duplicate {
            reply::RECIPIENT_OK
        } else if tx.rcpt_to.len() >= max {
            reply::TOO_MANY_RECIPIENTS
        } else {
            tx.rcpt_to.push(address.to_string());
            reply::RECIPIENT_OK
        };
        self.reply(reply);
        None
    }

    fn on_data(&mut self, args: &str) -> Option<Step> {
        if !args.is_empty() {
            return self.error(reply::DATA_SYNTAX);
        }
        let Some(tx) = &self.tx else {
            return self.error(reply::NEED_MAIL);
        };
        if tx.chunks.is_some() {
            return self.error(reply::DATA_AFTER_BDAT);
        }
        if tx.rcpt_to.is_empty() {
            return if tx.rcpt_attempts > 0 {
                self.reply(reply::NO_VALID_RECIPIENTS);
                None
            } else {
                self.error(reply::NEED_RCPT)
            };
        }
        let (first, hint) = self.data_grant();
        let mut reservation = self.budget.reservation();
        match reservation.request(first, hint) {
            Grant::Held => self.start_data(reservation),
            // No `354` yet: the driver stops reading until memory is released.
            Grant::Wait => self.state = State::DataGrant(reservation),
            Grant::Never => self.reply(reply::INSUFFICIENT_STORAGE),
        }
        None
    }

    /// Maps a MAIL/RCPT argument error to its reply. Syntax errors count as protocol errors;
    /// policy refusals (address literals) do not.
    fn arg_error(&mut self, err: ArgError, side: Side) -> Option<Step> {
        let sender = side == Side::Sender;
        let reply: Reply = match err {
            ArgError::Keyword if sender => reply::MAIL_SYNTAX,
            ArgError::Keyword => reply::RCPT_SYNTAX,
            ArgError::Path(PathError::Syntax) if sender => reply::BAD_SENDER,
            ArgError::Path(PathError::Syntax) => reply::BAD_RECIPIENT,
            ArgError::Path(PathError::TooLong) if sender => reply::SENDER_TOO_LONG,
            ArgError::Path(PathError::TooLong) => reply::RECIPIENT_TOO_LONG,
            ArgError::Path(PathError::Literal) => {
                self.reply(if sender {
                    reply::SENDER_LITERAL
                } else {
                    reply::RECIPIENT_LITERAL
                });
                return None;
            }
            ArgError::Param(ParamError::BadSize) => reply::BAD_SIZE,
            ArgError::Param(ParamError::BadBody) => reply::BAD_BODY,
            ArgError::Param(ParamError::BinaryMime) => reply::BINARYMIME_UNSUPPORTED,
            ArgError::Param(ParamError::BadAuth) => reply::BAD_AUTH_PARAM,
            ArgError::Param(ParamError::Duplicate) => reply::DUPLICATE_PARAM,
            ArgError::Param(ParamError::Unsupported(param)) => reply::unsupported_param(&param),
        };
        self.error(reply)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Sender,
    Recipient,
}

/// RFC 3207 §4 with mandatory TLS: before TLS only these work on a STARTTLS port. BDAT, HTTP
/// lines and unknown verbs keep their own replies.
fn allowed_before_tls(cmd: &Command<'_>) -> bool {
    matches!(
        cmd,
        Command::Ehlo(_)
            | Command::Helo(_)
            | Command::StartTls(_)
            | Command::Noop
            | Command::Rset(_)
            | Command::Quit
            | Command::Help
            | Command::Bdat(_)
            | Command::Http
            | Command::Unknown
    )
}
