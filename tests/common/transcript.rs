//! A scripted client for the sans-IO session: feeds client turns (whole, one byte at a time,
//! or split at a given point), performs the session's steps the way the driver does, and
//! records every byte the session sent and every message it delivered.

#![allow(dead_code)]

use std::sync::Arc;

use sendpigeon_relay::memory::budget::{MemoryBudget, Reservation};
use sendpigeon_relay::smtp::data::BareLfPolicy;
use sendpigeon_relay::smtp::{AuthOutcome, Reply, SenderGate, Session, SessionConfig, Step};

/// `AUTH PLAIN` for `\0apikey\0sk_live_TESTKEY`, the key the fake key store accepts.
pub const AUTH_PLAIN_OK: &str = "AUTH PLAIN AGFwaWtleQBza19saXZlX1RFU1RLRVk=\r\n";
/// `\0apikey\0sk_live_WRONG`.
pub const AUTH_PLAIN_WRONG: &str = "AUTH PLAIN AGFwaWtleQBza19saXZlX1dST05H\r\n";

pub fn config() -> SessionConfig {
    SessionConfig {
        hostname: "relay.test".into(),
        max_message_size: 26_214_400,
        max_recipients: 50,
        command_line_limit: 2048,
        auth_line_limit: 12_288,
        max_errors: 10,
        max_junk_commands: 100,
        max_messages: 1000,
        max_auth_failures: 3,
        auth_username: "apikey".into(),
        key_prefixes: vec!["sk_live_".into()],
        bare_lf: BareLfPolicy::Normalize,
        chunking: true,
    }
}

pub const GREETING: &str = "220 relay.test ESMTP SendPigeon relay\r\n";
/// Stands for the EHLO reply before TLS in expected output; [`check`] fills in the limits.
pub const EHLO_PLAIN: &str = "{EHLO_PLAIN}";
/// Stands for the EHLO reply after TLS in expected output.
pub const EHLO_TLS: &str = "{EHLO_TLS}";

fn ehlo_plain(cfg: &SessionConfig) -> String {
    format!(
        "250-relay.test\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n",
        cfg.max_message_size
    )
}

fn ehlo_tls(cfg: &SessionConfig) -> String {
    format!(
        "250-relay.test\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n{}250 LIMITS RCPTMAX={} MAILMAX={}\r\n",
        cfg.max_message_size,
        if cfg.chunking { "250-CHUNKING\r\n" } else { "" },
        cfg.max_recipients,
        cfg.max_messages
    )
}

/// What one run of a transcript produced.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Run {
    /// Server output per turn (the greeting is turn 0's prefix).
    pub replies: Vec<String>,
    /// Delivered (mail_from, rcpt_to, message bytes).
    pub delivered: Vec<(String, Vec<String>, Vec<u8>)>,
    /// The session closed the connection.
    pub closed: bool,
    /// Keys sent for checking (the harness only records whether one was sent).
    pub auth_checks: usize,
    /// Times the session paused for memory.
    pub memory_waits: usize,
    /// The reasons of messages the session refused by itself, as the driver takes them.
    pub refused: Vec<&'static str>,
}

/// How each turn's bytes are cut into reads.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    Whole,
    Bytewise,
    At(usize),
}

/// The fake upstream: message bytes in, queue id or refusal out.
type FakeUpstream = Box<dyn FnMut(&[u8]) -> Result<String, Reply>>;

pub struct Harness {
    session: Session,
    pending: Vec<u8>,
    run: Run,
    upstream: FakeUpstream,
}

impl Harness {
    /// A session on a STARTTLS listener.
    pub fn new(cfg: SessionConfig) -> Harness {
        Harness::with(cfg, None, MemoryBudget::new(1 << 30))
    }

    pub fn with(cfg: SessionConfig, tls: Option<&'static str>, budget: MemoryBudget) -> Harness {
        let mut h = Harness {
            session: Session::new(Arc::new(cfg), budget, tls),
            pending: Vec::new(),
            run: Run {
                replies: vec![String::new()],
                delivered: Vec::new(),
                closed: false,
                auth_checks: 0,
                memory_waits: 0,
                refused: Vec::new(),
            },
            upstream: Box::new(|_| Ok("Q1".to_string())),
        };
        h.drain_output(0);
        h
    }

    /// Consults `gate` at MAIL FROM (failing early).
    pub fn gate(mut self, gate: Arc<dyn SenderGate>) -> Self {
        self.session.set_gate(gate);
        self
    }

    /// Replaces the fake upstream's answer.
    pub fn upstream(mut self, f: impl FnMut(&[u8]) -> Result<String, Reply> + 'static) -> Self {
        self.upstream = Box::new(f);
        self
    }

    /// Feeds one client turn cut as asked; returns what the server sent during the turn.
    pub fn turn(&mut self, bytes: &[u8], cut: Cut) -> String {
        let turn = self.run.replies.len();
        self.run.replies.push(String::new());
        let pieces: Vec<&[u8]> = match cut {
            Cut::Whole => vec![bytes],
            Cut::Bytewise => bytes.chunks(1).collect(),
            Cut::At(i) => {
                let i = i.min(bytes.len());
                vec![&bytes[..i], &bytes[i..]]
            }
        };
        for piece in pieces {
            if self.run.closed {
                break;
            }
            self.pending.extend_from_slice(piece);
            if self.pump(turn) {
                // STARTTLS: later reads of this turn were sent in plaintext before the
                // handshake; on a real socket they are fed to the TLS handshake, which fails on
                // them, so they never reach the session. (What came in the same read as
                // STARTTLS did reach it: see `pump`.)
                break;
            }
        }
        self.run.replies[turn].clone()
    }

    /// Runs the session's steps; true after a STARTTLS handshake.
    fn pump(&mut self, turn: usize) -> bool {
        let mut tls_started = false;
        loop {
            let (n, step) = self.session.process(&self.pending);
            self.pending.drain(..n);
            self.drain_output(turn);
            while let Some(refused) = self.session.take_refused() {
                self.run.refused.push(refused.reason.label());
            }
            match step {
                Step::NeedInput => return tls_started,
                Step::Flush => {}
                Step::StartTls => {
                    // The harness does not drop what the session left unconsumed in this read:
                    // discarding plaintext pipelined after STARTTLS (RFC 3207 §4.2,
                    // CVE-2011-0411) is the session's job, and this is where its transcripts
                    // test it. Whatever it left is fed to it again once TLS is up, so a session
                    // that kept the plaintext would answer it over TLS and the transcript
                    // would show it. (The server's driver clears its buffer here as well, as a
                    // second guard; mirroring that would hide a session that stopped
                    // discarding.)
                    self.session.tls_established("TLSv1.3");
                    tls_started = true;
                }
                Step::Authenticate(req) => {
                    self.run.auth_checks += 1;
                    let outcome = match req.key.as_ref().map(|k| k.expose()) {
                        Some("sk_live_TESTKEY") => AuthOutcome::Valid,
                        Some("sk_live_DOWN") => AuthOutcome::Unavailable,
                        _ => AuthOutcome::Invalid,
                    };
                    self.session.auth_finished(outcome);
                }
                Step::Deliver(d) => {
                    let result = (self.upstream)(&d.message);
                    self.run.delivered.push((
                        d.envelope.mail_from.clone(),
                        d.envelope.rcpt_to.clone(),
                        d.message.clone(),
                    ));
                    self.session.delivered(result);
                }
                Step::WaitMemory => {
                    // Nobody else runs here to release memory: one more try, and then the
                    // wait is over as the driver's `limits.memory_wait` would end it.
                    self.run.memory_waits += 1;
                    if !self.session.retry_memory() {
                        self.session.memory_timed_out();
                    }
                }
                Step::Close => {
                    self.run.closed = true;
                    return tls_started;
                }
            }
        }
    }

    fn drain_output(&mut self, turn: usize) {
        let out = String::from_utf8_lossy(self.session.output()).into_owned();
        self.run.replies[turn].push_str(&out);
        self.session.clear_output();
    }

    pub fn finish(self) -> Run {
        self.run
    }

    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// A budget no test can spend.
pub fn plenty() -> (MemoryBudget, Vec<Reservation>) {
    (MemoryBudget::new(1 << 30), Vec::new())
}

/// A budget of 2 MiB whose large pool (1.5 MiB) another session holds: the small pool
/// (512 KiB) is free.
pub fn budget_mostly_held() -> (MemoryBudget, Vec<Reservation>) {
    let budget = MemoryBudget::new(2 << 20);
    let mut other = budget.reservation();
    other.request(3 << 19, 3 << 19);
    (budget, vec![other])
}

/// A budget entirely held by others: even DATA's first grant must wait.
pub fn budget_spent() -> (MemoryBudget, Vec<Reservation>) {
    let (budget, mut held) = budget_mostly_held();
    let mut small = budget.reservation();
    small.request(1 << 19, 0);
    held.push(small);
    (budget, held)
}

/// Refuses senders in `blocked.example`, as the relay's memory of a 403 does.
#[derive(Debug)]
pub struct BlockedDomain;

impl SenderGate for BlockedDomain {
    fn refuse(&self, _key: &sendpigeon_relay::secret::ApiKey, mail_from: &str) -> Option<Reply> {
        mail_from
            .ends_with("@blocked.example")
            .then(|| Reply::dynamic(451, "4.7.1", "Domain blocked.example is not verified"))
    }
}

/// Runs client turns against a fresh session with every cut: whole, bytewise, and each
/// two-piece split of each turn (all turns cut at the same offset). Asserts every run equals
/// the whole run, and returns the whole run.
pub fn run_all_cuts(cfg: &SessionConfig, tls: Option<&'static str>, turns: &[&[u8]]) -> Run {
    run_all_cuts_with(cfg, tls, turns, &|| {
        (MemoryBudget::new(1 << 30), Vec::new())
    })
}

/// A fresh budget for each run, and reservations that others hold in it for the whole run.
pub type BudgetSetup = dyn Fn() -> (MemoryBudget, Vec<Reservation>);

/// [`run_all_cuts`] with each run's memory budget made by `budget`.
pub fn run_all_cuts_with(
    cfg: &SessionConfig,
    tls: Option<&'static str>,
    turns: &[&[u8]],
    budget: &BudgetSetup,
) -> Run {
    run_all_cuts_gated(cfg, tls, turns, budget, None)
}

/// [`run_all_cuts_with`] with a failing-early gate on every run's session.
pub fn run_all_cuts_gated(
    cfg: &SessionConfig,
    tls: Option<&'static str>,
    turns: &[&[u8]],
    budget: &BudgetSetup,
    gate: Option<Arc<dyn SenderGate>>,
) -> Run {
    let once = |cut: &dyn Fn(usize) -> Cut| {
        let (budget, _held) = budget();
        let mut h = Harness::with(cfg.clone(), tls, budget);
        if let Some(gate) = &gate {
            h = h.gate(Arc::clone(gate));
        }
        for (i, t) in turns.iter().enumerate() {
            h.turn(t, cut(i));
        }
        h.finish()
    };
    let whole = once(&|_| Cut::Whole);
    assert_eq!(once(&|_| Cut::Bytewise), whole, "bytewise run differs");
    let longest = turns.iter().map(|t| t.len()).max().unwrap_or(0);
    for at in 1..longest {
        assert_eq!(once(&|_| Cut::At(at)), whole, "split at {at} differs");
    }
    whole
}

/// A transcript: client turns with the exact server output expected after each. The
/// greeting is checked first. Runs with every cut.
pub fn check(cfg: &SessionConfig, tls: Option<&'static str>, script: &[(&str, &str)]) -> Run {
    check_with(cfg, tls, script, &|| {
        (MemoryBudget::new(1 << 30), Vec::new())
    })
}

/// [`check`] with each run's memory budget made by `budget`.
pub fn check_with(
    cfg: &SessionConfig,
    tls: Option<&'static str>,
    script: &[(&str, &str)],
    budget: &BudgetSetup,
) -> Run {
    check_gated(cfg, tls, script, budget, None)
}

/// [`check_with`] with a failing-early gate.
pub fn check_gated(
    cfg: &SessionConfig,
    tls: Option<&'static str>,
    script: &[(&str, &str)],
    budget: &BudgetSetup,
    gate: Option<Arc<dyn SenderGate>>,
) -> Run {
    let turns: Vec<&[u8]> = script.iter().map(|(c, _)| c.as_bytes()).collect();
    let run = run_all_cuts_gated(cfg, tls, &turns, budget, gate);
    assert_eq!(run.replies[0], GREETING);
    for (i, (client, expected)) in script.iter().enumerate() {
        let expected = expected
            .replace(EHLO_PLAIN, &ehlo_plain(cfg))
            .replace(EHLO_TLS, &ehlo_tls(cfg));
        assert_eq!(
            run.replies[i + 1],
            expected,
            "turn {i}: client sent {client:?}"
        );
    }
    run
}

/// The usual opening: EHLO, STARTTLS, EHLO, AUTH PLAIN, as (client, server) pairs.
pub fn authenticated<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("EHLO c.example\r\n", EHLO_PLAIN),
        ("STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n"),
        ("EHLO c.example\r\n", EHLO_TLS),
        (AUTH_PLAIN_OK, "235 2.7.0 Authentication successful\r\n"),
    ]
}

/// `authenticated()` followed by `rest`.
pub fn after_auth<'a>(rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut script = authenticated();
    script.extend_from_slice(rest);
    script
}
