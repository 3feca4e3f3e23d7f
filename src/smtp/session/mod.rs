//! The SMTP session state machine: bytes in, [`Step`]s out, results back in.
//!
//! The driver owns the socket and a read buffer. It calls [`Session::process`] with the
//! buffered bytes; the session consumes what it can, queues replies in its output buffer and
//! returns what it needs next. Replies are queued in order and the driver flushes them before
//! it blocks on a read (RFC 2920 §3.2), before a TLS handshake and before closing. While the
//! session waits for a result (TLS, key check, delivery) it consumes nothing, so pipelined
//! commands after AUTH or DATA are judged only once that result is in (adversarial PIPE-08).
//!
//! Memory: at DATA the session reserves the message's first share of the budget before it
//! answers `354`, and the DATA receiver reserves more as the message grows. When the budget
//! says wait, the session takes no input and returns [`Step::WaitMemory`]: the driver stops
//! reading (TCP backpressure), calls [`Session::retry_memory`] after each release, and after
//! `limits.memory_wait` calls [`Session::memory_timed_out`] (`452 4.3.1`).
//!
//! What it deliberately does not do: read clocks (the driver maps [`Session::wait`] to a
//! deadline), verify keys, parse MIME or talk to the upstream.

mod auth;
mod bdat;
mod commands;
mod ehlo;
mod gate;
mod memory;
mod step;

use std::sync::Arc;

use super::data::{BareLfPolicy, DataEnd, DataReceiver};
use super::envelope::Envelope;
use super::line::{Line, LineReader};
use super::reply::{self, Reply};
use crate::memory::budget::{MemoryBudget, Reservation};
use crate::secret::ApiKey;

pub use gate::SenderGate;
pub use step::{AuthOutcome, AuthRequest, Delivery, RefusalReason, RefusedMessage, Step, Wait};

/// Replies are handed to the driver once this many bytes are queued, so a client that
/// pipelines thousands of commands without reading cannot grow the output (PIPE-09).
const FLUSH_AT: usize = 16 * 1024;

/// The settings a session needs, from `[smtp]`, `[auth]` and `[limits]` of the configuration.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Largest message, un-stuffed (advertised as `SIZE`).
    pub max_message_size: usize,
    /// Recipients per message; the next gets `452 4.5.3`.
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub command_line_limit: usize,
    /// Longest AUTH command or response line, CRLF included.
    pub auth_line_limit: usize,
    /// Protocol errors before `421 4.7.0 Too many errors`.
    pub max_errors: u32,
    /// NOOP/RSET/VRFY/HELP/EHLO/HELO allowed between messages before each counts as an error.
    pub max_junk_commands: u32,
    /// Messages per connection.
    pub max_messages: u32,
    /// AUTH failures per session before `421 4.7.0`.
    pub max_auth_failures: u32,
    /// The one accepted username.
    pub auth_username: String,
    /// Accepted key prefixes (`sk_live_`).
    pub key_prefixes: Vec<String>,
    /// Bare CR / LF policy for DATA and command lines.
    pub bare_lf: BareLfPolicy,
    /// Offer CHUNKING (BDAT) after TLS.
    pub chunking: bool,
}

/// A mail transaction between MAIL and the end of DATA.
#[derive(Debug)]
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    rcpt_attempts: u32,
    smtputf8: bool,
    /// The `SIZE=` the client declared at MAIL.
    declared_size: Option<usize>,
    /// The message so far, once BDAT began it (DATA is then refused).
    chunks: Option<Box<DataReceiver>>,
}

#[derive(Debug)]
enum State {
    Command,
    Auth(auth::Stage),
    /// DATA was accepted; its first memory grant is awaited before `354`.
    DataGrant(Reservation),
    Data(Box<DataReceiver>),
    /// A BDAT chunk's octets are coming in.
    Chunk(Box<bdat::Chunk>),
    /// A refused BDAT chunk's octets are read and dropped.
    Discard {
        size: u64,
        left: u64,
        last: bool,
    },
    /// A TLS handshake, key check or delivery is under way.
    Waiting,
    Closed,
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session {
    cfg: Arc<SessionConfig>,
    budget: MemoryBudget,
    /// Failing early: `None` refuses nothing (the outbox, tests).
    gate: Option<Arc<dyn SenderGate>>,
    out: Vec<u8>,
    state: State,
    lines: LineReader,
    /// The negotiated TLS version once TLS is up.
    tls: Option<&'static str>,
    /// This listener offers STARTTLS (false for implicit TLS).
    starttls: bool,
    /// The sanitised EHLO/HELO argument; `None` until the client greets.
    helo: Option<String>,
    key: Option<ApiKey>,
    pending_key: Option<ApiKey>,
    tx: Option<Transaction>,
    /// A BDAT transaction failed: its chunks are refused until `LAST`.
    bdat_failed: Option<bdat::Failure>,
    auth_failures: u32,
    errors: u32,
    junk: u32,
    transactions: u32,
    /// The per-connection message limit was hit; the next command closes.
    close_next: bool,
    /// Nothing has been read yet on this (plaintext) layer.
    fresh: bool,
    /// Messages refused by the session itself, until the driver takes them.
    refused: Vec<RefusedMessage>,
}

impl Session {
    /// A session on a STARTTLS listener (`tls` = `None`) or inside implicit TLS (`tls` = the
    /// negotiated version). The greeting is queued at once.
    pub fn new(cfg: Arc<SessionConfig>, budget: MemoryBudget, tls: Option<&'static str>) -> Self {
        let mut session = Session {
            budget,
            gate: None,
            out: Vec::with_capacity(256),
            state: State::Command,
            lines: LineReader::default(),
            starttls: tls.is_none(),
            tls,
            helo: None,
            key: None,
            pending_key: None,
            tx: None,
            bdat_failed: None,
            auth_failures: 0,
            errors: 0,
            junk: 0,
            transactions: 0,
            close_next: false,
            fresh: true,
            refused: Vec::new(),
            cfg,
        };
        session.reply(reply::greeting(&session.cfg.hostname));
        session
    }

    /// Consults `gate` at every `MAIL FROM` (failing early).
    pub fn set_gate(&mut self, gate: Arc<dyn SenderGate>) {
        self.gate = Some(gate);
    }

    /// Replies queued for the client.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Called by the driver once the output was written. Gives back memory after a burst.
    pub fn clear_output(&mut self) {
        self.out.clear();
        if self.out.capacity() > 4096 {
            self.out = Vec::with_capacity(256);
        }
    }

    /// Gives back the output buffer while the session is idle between messages (it may stay
    /// so for minutes); the next reply allocates it again.
    pub fn release_idle_buffers(&mut self) {
        if self.out.is_empty() && self.is_idle() {
            self.out = Vec::new();
        }
    }

    /// What the session is waiting for, for the driver's timeouts.
    pub fn wait(&self) -> Wait {
        match &self.state {
            State::DataGrant(_) => Wait::Memory,
            State::Data(rx) if rx.needs_memory() => Wait::Memory,
            State::Chunk(chunk) if chunk.needs_memory() => Wait::Memory,
            State::Data(_) | State::Chunk(_) | State::Discard { .. } => Wait::Data,
            _ => Wait::Command {
                authenticated: self.key.is_some(),
                mid_line: self.lines.is_skipping(),
            },
        }
    }

    /// True when closed: nothing more will be processed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True between commands with no transaction open: a shutdown can close it at once.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Command) && self.tx.is_none() && !self.lines.is_skipping()
    }

    /// Bytes of message data received in the current DATA or BDAT chunk, for the
    /// minimum-rate check.
    pub fn data_received(&self) -> Option<usize> {
        match &self.state {
            State::Data(rx) => Some(rx.size()),
            State::Chunk(chunk) => Some(chunk.received()),
            State::Discard { size, left, .. } => usize::try_from(size - left).ok(),
            _ => None,
        }
    }

    /// The negotiated TLS version, if TLS is up.
    pub fn tls_version(&self) -> Option<&'static str> {
        self.tls
    }

    /// Consumes input; see the module doc. Returns the bytes consumed and the next step.
    pub fn process(&mut self, input: &[u8]) -> (usize, Step) {
        let mut used = 0;
        loop {
            if self.out.len() >= FLUSH_AT {
                return (used, Step::Flush);
            }
            let rest = &input[used..];
            match &mut self.state {
                State::Closed => return (input.len(), Step::Close),
                State::Waiting => return (used, Step::NeedInput),
                State::DataGrant(_) => return (used, Step::WaitMemory),
                State::Data(rx) => {
                    let (n, done) = rx.receive(rest);
                    used += n;
                    let size = rx.size();
                    let Some((outcome, reservation)) = done else {
                        if rx.needs_memory() {
                            return (used, Step::WaitMemory);
                        }
                        return (used, Step::NeedInput);
                    };
                    if let Some(step) = self.end_of_data(outcome, reservation, size) {
                        return (used, step);
                    }
                }
                State::Chunk(chunk) => {
                    if chunk.needs_memory() {
                        return (used, Step::WaitMemory);
                    }
                    let (n, done) = self.receive_chunk(rest);
                    used += n;
                    if !done {
                        let waits = matches!(&self.state, State::Chunk(c) if c.needs_memory());
                        return (
                            used,
                            if waits {
                                Step::WaitMemory
                            } else {
                                Step::NeedInput
                            },
                        );
                    }
                    if let Some(step) = self.end_of_chunk() {
                        return (used, step);
                    }
                }
                State::Discard { .. } => {
                    let (n, done) = self.discard_input(rest);
                    used += n;
                    if !done {
                        return (used, Step::NeedInput);
                    }
                    if let Some(step) = self.end_of_discard() {
                        return (used, step);
                    }
                }
                State::Command | State::Auth(_) => {
                    if rest.is_empty() {
                        return (used, Step::NeedInput);
                    }
                    if self.fresh && self.tls.is_none() && rest[0] == 0x16 {
                        // A TLS ClientHello on the STARTTLS port (adversarial TLS-09): the
                        // client is set to implicit TLS. Say so, and close.
                        self.reply(reply::TLS_ON_PLAINTEXT);
                        return (input.len(), self.close());
                    }
                    self.fresh = false;
                    let (n, line) = self.lines.next_line(rest, self.line_cap(rest));
                    used += n;
                    let Some(line) = line else {
                        return (used, Step::NeedInput);
                    };
                    match self.on_line(line) {
                        // RFC 3207 §4.2 / CVE-2011-0411: nothing buffered after STARTTLS
                        // survives the handshake.
                        Some(Step::StartTls) => return (input.len(), Step::StartTls),
                        Some(step) => return (used, step),
                        None => {}
                    }
                }
            }
        }
    }

    /// The TLS handshake after STARTTLS succeeded: back to "just greeted" (RFC 3207 §4.2).
    pub fn tls_established(&mut self, version: &'static str) {
        self.tls = Some(version);
        self.helo = None;
        self.tx = None;
        self.bdat_failed = None;
        self.key = None;
        self.lines = LineReader::default();
        self.state = State::Command;
    }

    /// The key check finished.
    pub fn auth_finished(&mut self, outcome: AuthOutcome) {
        self.state = State::Command;
        let key = self.pending_key.take();
        match (outcome, key) {
            (AuthOutcome::Valid, Some(key)) => {
                self.key = Some(key);
                self.reply(reply::AUTH_OK);
            }
            (AuthOutcome::Unavailable, _) => self.reply(reply::AUTH_TEMPORARY),
            _ => {
                self.auth_failures += 1;
                self.reply(reply::auth_invalid(&self.cfg.auth_username));
                if self.auth_failures >= self.cfg.max_auth_failures {
                    self.reply(reply::AUTH_TOO_MANY_FAILURES);
                    self.state = State::Closed;
                }
            }
        }
    }

    /// The upstream answered: `Ok(id)` once it has the message, else the reply to send.
    pub fn delivered(&mut self, result: Result<String, Reply>) {
        self.state = State::Command;
        match result {
            Ok(id) => {
                self.junk = 0;
                self.reply(reply::queued(&id));
            }
            Err(refusal) => self.reply(refusal),
        }
    }

    /// The client was silent past its deadline: `421 4.4.2`, then close.
    pub fn timed_out(&mut self) {
        self.reply(reply::timeout(&self.cfg.hostname));
        self.state = State::Closed;
    }

    /// The relay is shutting down: `421 4.3.2`, then close.
    pub fn shutting_down(&mut self) {
        self.reply(reply::SHUTTING_DOWN);
        self.state = State::Closed;
    }

    /// The session failed internally (a bug): `421 4.3.0`, then close.
    pub fn internal_error(&mut self) {
        self.reply(reply::INTERNAL_FAILURE);
        self.state = State::Closed;
    }

    fn line_cap(&self, input: &[u8]) -> usize {
        let is_auth = matches!(self.state, State::Auth(_))
            || input.len() >= 5 && input[..5].eq_ignore_ascii_case(b"AUTH ");
        if is_auth {
            self.cfg.auth_line_limit
        } else {
            self.cfg.command_line_limit
        }
    }

    fn on_line(&mut self, line: Line<'_>) -> Option<Step> {
        match line {
            Line::Endless => {
                self.reply(reply::LINE_TOO_LONG);
                Some(self.close())
            }
            Line::TooLong { auth } => {
                let in_auth = matches!(self.state, State::Auth(_));
                self.state = State::Command;
                self.pending_key = None;
                self.error(if auth || in_auth {
                    reply::AUTH_LINE_TOO_LONG
                } else {
                    reply::LINE_TOO_LONG
                })
            }
            Line::Complete { text, bare_lf } => {
                if bare_lf && self.cfg.bare_lf == BareLfPolicy::Reject {
                    self.reply(reply::BARE_LF_COMMAND);
                    return Some(self.close());
                }
                match std::mem::replace(&mut self.state, State::Command) {
                    State::Auth(stage) => self.on_auth_response(stage, text),
                    _ => self.on_command_line(text),
                }
            }
        }
    }

    fn end_of_data(
        &mut self,
        outcome: DataEnd,
        reservation: Reservation,
        size: usize,
    ) -> Option<Step> {
        self.state = State::Command;
        self.transactions += 1;
        let tx = self.tx.take()?;
        let (refusal, reason) = match outcome {
            DataEnd::Message(message) => {
                let Some(key) = self.key.clone() else {
                    self.reply(reply::INTERNAL_ERROR);
                    return None;
                };
                self.state = State::Waiting;
                return Some(Step::Deliver(Box::new(Delivery {
                    envelope: Envelope {
                        mail_from: tx.mail_from,
                        rcpt_to: tx.rcpt_to,
                    },
                    message,
                    reservation,
                    key,
                    transaction: self.transactions,
                    helo: self.helo.clone().unwrap_or_default(),
                })));
            }
            DataEnd::TooBig => (reply::MESSAGE_TOO_BIG, RefusalReason::Size),
            DataEnd::OutOfMemory => (reply::INSUFFICIENT_STORAGE, RefusalReason::Memory),
            DataEnd::BareLf => (reply::BARE_LF, RefusalReason::BareLineEnding),
            DataEnd::BareCr => (reply::BARE_CR, RefusalReason::BareLineEnding),
        };
        self.reply(refusal.clone());
        self.refused.push(RefusedMessage {
            size,
            reply: refusal,
            reason,
        });
        None
    }

    /// The oldest message the session refused by itself and the driver has not taken yet.
    /// Several can be waiting: one `process` call may refuse more than one pipelined message.
    pub fn take_refused(&mut self) -> Option<RefusedMessage> {
        (!self.refused.is_empty()).then(|| self.refused.remove(0))
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.out);
    }

    fn write_raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Sends a protocol-error reply and counts it; closes at the limit (Postfix: the `421`
    /// follows the last error reply at once).
    fn error(&mut self, reply: Reply) -> Option<Step> {
        self.reply(reply);
        self.count_error()
    }

    fn count_error(&mut self) -> Option<Step> {
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            self.reply(reply::TOO_MANY_ERRORS);
            return Some(self.close());
        }
        None
    }

    /// NOOP, RSET, VRFY, HELP, EHLO, HELO: past the junk limit each also counts as an error
    /// (Postfix `smtpd_junk_command_limit`; adversarial PIPE-09).
    fn count_junk(&mut self) -> Option<Step> {
        self.junk += 1;
        if self.junk > self.cfg.max_junk_commands {
            return self.count_error();
        }
        None
    }

    fn close(&mut self) -> Step {
        self.state = State::Closed;
        Step::Close
    }
}
