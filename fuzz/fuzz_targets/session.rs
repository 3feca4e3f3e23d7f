//! The sans-IO SMTP session (`sendpigeon_relay::smtp::Session`), driven the way
//! `tests/common/transcript.rs` and the server's driver drive it.
//!
//! Input layout:
//! - byte 0: settings. bit 0: implicit TLS (else a STARTTLS listener); bit 1: CHUNKING off;
//!   bit 2: bare-LF policy `reject`; bits 3-4: memory budget (plenty / large pool held by
//!   another session / all held / small pool nearly full); bits 5-6: `max_message_size`
//!   (64 KiB / 4 KiB / 1 MiB / 64 KiB); bit 7: a failing-early gate that refuses senders in
//!   `blocked.example`, and an upstream that refuses messages of odd length.
//! - bytes 1-5: the seed of the read sizes ([`relay_fuzz::Cuts`]).
//! - the rest: client turns separated by `0xFF` (a byte SMTP never needs). After a STARTTLS
//!   the rest of its turn is gone: what came in the same read the session itself must
//!   discard (asserted: it consumes the whole read), and later reads of the turn the driver
//!   drops, as a TLS handshake would fail on them; the next turn is the first inside TLS.
//!
//! Each turn is fed (a) whole and (b) cut into reads. Properties:
//! - up to the first STARTTLS, the replies and the delivered messages of (a) and (b) are
//!   identical; after it too, since both runs drop the same rest of the STARTTLS turn (the
//!   project's transcript harness asserts the same); a difference panics, saying which;
//! - a delivered message has no bare CR or LF and is at most `max_message_size` bytes;
//! - bounded memory: the output never exceeds [`MAX_OUTPUT`] between two `clear_output`
//!   calls, and after `NeedInput` the unconsumed input is shorter than the longest line cap;
//! - no livelock: a session waiting for memory stops waiting once it was told to give up.
//!
//! Set `SESSION_SHOW=1` to print each input's replies.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use relay_fuzz::{CUT_SEED_LEN, Cuts, assert_deliverable};
use sendpigeon_relay::memory::budget::{MemoryBudget, Reservation};
use sendpigeon_relay::secret::ApiKey;
use sendpigeon_relay::smtp::data::BareLfPolicy;
use sendpigeon_relay::smtp::{AuthOutcome, Reply, SenderGate, Session, SessionConfig, Step};

/// The session hands its output over (`Step::Flush`) once 16 KiB are queued; one step adds at
/// most a few replies on top. 64 KiB between two `clear_output` calls is a generous bound.
const MAX_OUTPUT: usize = 64 * 1024;
/// Consecutive `WaitMemory` steps without progress before the session counts as stuck.
const MAX_IDLE_WAITS: usize = 16;

#[derive(Debug)]
struct BlockedDomain;

impl SenderGate for BlockedDomain {
    fn refuse(&self, _key: &ApiKey, mail_from: &str) -> Option<Reply> {
        mail_from
            .ends_with("@blocked.example")
            .then(|| Reply::dynamic(451, "4.7.1", "Domain blocked.example is not verified"))
    }
}

#[derive(Clone, Copy)]
struct Settings {
    implicit_tls: bool,
    chunking: bool,
    reject_bare_lf: bool,
    budget: u8,
    max_message_size: usize,
    refusals: bool,
}

impl Settings {
    fn from_byte(b: u8) -> Settings {
        Settings {
            implicit_tls: b & 1 != 0,
            chunking: b & 2 == 0,
            reject_bare_lf: b & 4 != 0,
            budget: (b >> 3) & 3,
            max_message_size: [64 * 1024, 4 * 1024, 1 << 20, 64 * 1024][usize::from((b >> 5) & 3)],
            refusals: b & 0x80 != 0,
        }
    }

    /// `tests/common/transcript.rs` `config()`, with smaller limits so they are reached.
    fn config(&self) -> SessionConfig {
        SessionConfig {
            hostname: "relay.test".into(),
            max_message_size: self.max_message_size,
            max_recipients: 5,
            command_line_limit: 512,
            auth_line_limit: 1024,
            max_errors: 10,
            max_junk_commands: 20,
            max_messages: 5,
            max_auth_failures: 3,
            auth_username: "apikey".into(),
            key_prefixes: vec!["sk_live_".into()],
            bare_lf: if self.reject_bare_lf {
                BareLfPolicy::Reject
            } else {
                BareLfPolicy::Normalize
            },
            chunking: self.chunking,
        }
    }

    /// A fresh budget and what other sessions hold in it for the whole run.
    fn budget(&self) -> (MemoryBudget, Vec<Reservation>) {
        match self.budget {
            0 => (MemoryBudget::new(1 << 30), Vec::new()),
            1 | 2 => {
                // 2 MiB whose large pool (1.5 MiB) another session holds; with 2, the small
                // pool too (the transcript harness's `budget_mostly_held` / `budget_spent`).
                let budget = MemoryBudget::new(2 << 20);
                let mut other = budget.reservation();
                other.request(3 << 19, 3 << 19);
                let mut held = vec![other];
                if self.budget == 2 {
                    let mut small = budget.reservation();
                    small.request(1 << 19, 0);
                    held.push(small);
                }
                (budget, held)
            }
            _ => {
                // The small pool (512 KiB) nearly full: first grants must queue for a piece.
                let budget = MemoryBudget::new(2 << 20);
                let mut small = budget.reservation();
                small.request(400 << 10, 0);
                (budget, vec![small])
            }
        }
    }
}

/// What one run produced.
#[derive(Debug, Default, PartialEq, Eq)]
struct Run {
    out: Vec<u8>,
    delivered: Vec<(String, Vec<String>, Vec<u8>)>,
    closed: bool,
    /// Output length and deliveries at the first STARTTLS.
    at_starttls: Option<(usize, usize)>,
}

struct Driver {
    session: Session,
    pending: Vec<u8>,
    run: Run,
    max_pending: usize,
    max_message_size: usize,
    refusals: bool,
}

impl Driver {
    fn new(settings: Settings, budget: MemoryBudget) -> Driver {
        let cfg = settings.config();
        let max_pending = cfg.command_line_limit.max(cfg.auth_line_limit);
        let tls = settings.implicit_tls.then_some("TLSv1.3");
        let mut session = Session::new(Arc::new(cfg), budget, tls);
        if settings.refusals {
            session.set_gate(Arc::new(BlockedDomain));
        }
        let mut d = Driver {
            session,
            pending: Vec::new(),
            run: Run::default(),
            max_pending,
            max_message_size: settings.max_message_size,
            refusals: settings.refusals,
        };
        d.drain_output();
        d
    }

    /// Feeds one turn in `pieces`; stops at STARTTLS (the rest of the turn is dropped).
    fn turn(&mut self, pieces: &[&[u8]]) {
        for piece in pieces {
            if self.run.closed {
                return;
            }
            self.pending.extend_from_slice(piece);
            if self.pump() {
                return;
            }
        }
    }

    /// Runs the session's steps; true after a STARTTLS handshake.
    fn pump(&mut self) -> bool {
        let mut idle_waits = 0;
        loop {
            let (n, step) = self.session.process(&self.pending);
            assert!(
                n <= self.pending.len(),
                "consumed {n} of {} bytes",
                self.pending.len()
            );
            self.pending.drain(..n);
            let produced = self.drain_output();
            // Exercise the read-only accessors the driver uses for its timers.
            let _ = (
                self.session.wait(),
                self.session.data_received(),
                self.session.is_idle(),
            );
            let _ = self.session.take_refused();
            match step {
                Step::NeedInput => {
                    assert!(
                        self.pending.len() < self.max_pending,
                        "the driver must hold {} unconsumed bytes (line caps {})",
                        self.pending.len(),
                        self.max_pending
                    );
                    self.session.release_idle_buffers();
                    return false;
                }
                Step::Flush => {
                    assert!(produced > 0, "Flush with nothing to flush");
                }
                Step::StartTls => {
                    if self.run.at_starttls.is_none() {
                        self.run.at_starttls = Some((self.run.out.len(), self.run.delivered.len()));
                    }
                    // Plaintext pipelined after STARTTLS (RFC 3207 §4.2, CVE-2011-0411) is the
                    // session's to discard: it must have consumed the whole read.
                    assert!(
                        self.pending.is_empty(),
                        "the session left {} bytes of plaintext after STARTTLS",
                        self.pending.len()
                    );
                    self.session.tls_established("TLSv1.3");
                    return true;
                }
                Step::Authenticate(req) => {
                    let outcome = match req.key.as_ref().map(|k| k.expose()) {
                        Some("sk_live_TESTKEY") => AuthOutcome::Valid,
                        Some("sk_live_DOWN") => AuthOutcome::Unavailable,
                        _ => AuthOutcome::Invalid,
                    };
                    self.session.auth_finished(outcome);
                }
                Step::Deliver(d) => {
                    let message = &d.message;
                    assert_deliverable(message, self.max_message_size);
                    let result = if self.refusals && message.len() % 2 == 1 {
                        Err(Reply::dynamic(
                            554,
                            "5.6.0",
                            "Message refused by the fuzz upstream",
                        ))
                    } else {
                        Ok("Q1".to_string())
                    };
                    self.run.delivered.push((
                        d.envelope.mail_from.clone(),
                        d.envelope.rcpt_to.clone(),
                        d.message.clone(),
                    ));
                    drop(d);
                    self.session.delivered(result);
                }
                Step::WaitMemory => {
                    // Nobody else releases memory here: one more try, then the wait is over
                    // as the driver's `limits.memory_wait` would end it.
                    if n == 0 && produced == 0 {
                        idle_waits += 1;
                        assert!(
                            idle_waits <= MAX_IDLE_WAITS,
                            "session stuck waiting for memory"
                        );
                    } else {
                        idle_waits = 0;
                    }
                    if !self.session.retry_memory() {
                        self.session.memory_timed_out();
                    }
                }
                Step::Close => {
                    self.run.closed = true;
                    return false;
                }
            }
        }
    }

    fn drain_output(&mut self) -> usize {
        let out = self.session.output();
        assert!(
            out.len() <= MAX_OUTPUT,
            "{} bytes of output queued between two flushes",
            out.len()
        );
        let n = out.len();
        self.run.out.extend_from_slice(out);
        self.session.clear_output();
        n
    }
}

fn run(settings: Settings, turns: &[&[u8]], mut cut: Option<Cuts>) -> Run {
    let (budget, _held) = settings.budget();
    let mut driver = Driver::new(settings, budget);
    for turn in turns {
        if driver.run.closed {
            break;
        }
        match &mut cut {
            None => driver.turn(&[turn]),
            Some(cuts) => driver.turn(&cuts.split(turn)),
        }
    }
    driver.run
}

/// `SESSION_SHOW=1` prints each run's replies (to check what a seed reaches).
fn show_runs() -> bool {
    static SHOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("SESSION_SHOW").is_some())
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1 + CUT_SEED_LEN {
        return;
    }
    let settings = Settings::from_byte(data[0]);
    let cuts = Cuts::new(&data[1..1 + CUT_SEED_LEN]);
    let script = &data[1 + CUT_SEED_LEN..];
    let turns: Vec<&[u8]> = script.split(|&b| b == 0xFF).collect();

    let whole = run(settings, &turns, None);
    let split = run(settings, &turns, Some(cuts));
    if show_runs() {
        eprintln!(
            "--- {} turns, {} delivered, closed {}\n{}",
            turns.len(),
            whole.delivered.len(),
            whole.closed,
            show(&whole.out)
        );
    }
    if whole == split {
        return;
    }
    // Where do they part? Before the first STARTTLS is the property the brief insists on.
    let tls_out = |r: &Run| r.at_starttls.map_or(r.out.len(), |(o, _)| o);
    let tls_del = |r: &Run| r.at_starttls.map_or(r.delivered.len(), |(_, d)| d);
    let (wo, so) = (tls_out(&whole), tls_out(&split));
    let before = whole.out[..wo] != split.out[..so]
        || whole.delivered[..tls_del(&whole)] != split.delivered[..tls_del(&split)];
    let at = whole
        .out
        .iter()
        .zip(&split.out)
        .position(|(a, b)| a != b)
        .unwrap_or(whole.out.len().min(split.out.len()));
    let from = at.saturating_sub(200);
    panic!(
        "whole and split runs differ {} STARTTLS\n\
         output differs at byte {at}:\n  whole: {:?}\n  split: {:?}\n\
         deliveries: whole {} / split {}; closed: whole {} / split {}; equal deliveries: {}",
        if before { "before" } else { "after" },
        show(&whole.out[from.min(whole.out.len())..(at + 200).min(whole.out.len())]),
        show(&split.out[from.min(split.out.len())..(at + 200).min(split.out.len())]),
        whole.delivered.len(),
        split.delivered.len(),
        whole.closed,
        split.closed,
        whole.delivered == split.delivered,
    );
});
