//! The DATA receiver (`sendpigeon_relay::smtp::data::DataReceiver`): dot-stuffing, the end of
//! data, the bare-LF policy and the size limit (`DataReceiver::new`), and the BDAT form
//! (`DataReceiver::chunked`).
//!
//! Input layout:
//! - byte 0: bit 0: chunked (BDAT); bit 1: policy `reject` (else `normalize`); bits 2-4:
//!   `max_size` (16 B, 64 B, 256 B, 1 KiB, 4 KiB, 16 KiB, 64 KiB, 1 MiB); bit 5: a tight
//!   memory budget (256 KiB: large messages wait, then are given up).
//! - bytes 1-5: the seed of the read sizes ([`relay_fuzz::Cuts`]); in chunked mode the reads
//!   are the BDAT chunks.
//! - the rest: the data as the client sends it (after `354`, or the chunks' octets).
//!
//! Properties: the input whole and cut into reads give the same outcome, the same message
//! bytes, the same size and (DATA) the same end position (with a plenty budget; a tight
//! budget reserves for what each read offers, so there only the invariants are checked); a
//! message never has a bare CR or LF, is at most `max_size` bytes and its length is the size
//! counted; past the size limit the outcome is `TooBig`. Oracles: BDAT content is the octets
//! with every bare CR/LF made CRLF; DATA whose lines all end in CRLF is the classic
//! un-stuffing up to the first `.` line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relay_fuzz::{CUT_SEED_LEN, Cuts, assert_deliverable, normalize_line_endings};
use sendpigeon_relay::memory::budget::MemoryBudget;
use sendpigeon_relay::smtp::data::{BareLfPolicy, DataEnd, DataReceiver};

const MAX_SIZES: [usize; 8] = [16, 64, 256, 1024, 4096, 16 * 1024, 64 * 1024, 1 << 20];

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Message(Vec<u8>),
    TooBig,
    OutOfMemory,
    BareLf,
    BareCr,
}

impl From<DataEnd> for Outcome {
    fn from(end: DataEnd) -> Outcome {
        match end {
            DataEnd::Message(m) => Outcome::Message(m),
            DataEnd::TooBig => Outcome::TooBig,
            DataEnd::OutOfMemory => Outcome::OutOfMemory,
            DataEnd::BareLf => Outcome::BareLf,
            DataEnd::BareCr => Outcome::BareCr,
        }
    }
}

/// The outcome (if the data ended), the bytes consumed and the size counted.
#[derive(Debug, PartialEq, Eq)]
struct Result {
    outcome: Option<Outcome>,
    consumed: usize,
    size: usize,
}

struct Setup {
    chunked: bool,
    policy: BareLfPolicy,
    max_size: usize,
    tight: bool,
}

impl Setup {
    fn receiver(&self, budget: &MemoryBudget) -> DataReceiver {
        let hint = sendpigeon_relay::memory::message_cost_bound(self.max_size);
        if self.chunked {
            DataReceiver::chunked(self.max_size, budget.reservation(), hint)
        } else {
            let mut first = budget.reservation();
            // DATA's first grant, as the session asks before `354`.
            let want = sendpigeon_relay::memory::message_cost_bound(
                sendpigeon_relay::memory::FIRST_GRANT_BYTES.min(self.max_size),
            );
            let _ = first.request(want, hint);
            DataReceiver::new(self.max_size, self.policy, first, hint)
        }
    }

    fn budget(&self) -> MemoryBudget {
        MemoryBudget::new(if self.tight { 256 << 10 } else { 1 << 30 })
    }
}

/// Feeds `pieces` in order; the memory waits end as the driver would end them.
fn run(setup: &Setup, pieces: &[&[u8]]) -> Result {
    let budget = setup.budget();
    let mut rx = setup.receiver(&budget);
    let mut consumed = 0;
    for piece in pieces {
        let mut rest: &[u8] = piece;
        let mut stuck = 0;
        loop {
            let (n, done) = rx.receive(rest);
            assert!(n <= rest.len());
            consumed += n;
            rest = &rest[n..];
            if let Some((end, _reservation)) = done {
                assert!(!setup.chunked, "a chunked receiver ended by itself");
                return Result {
                    outcome: Some(end.into()),
                    consumed,
                    size: rx.size(),
                };
            }
            if rest.is_empty() {
                break;
            }
            assert!(rx.needs_memory(), "input left over without a memory wait");
            if !rx.retry_memory() {
                rx.give_up_memory();
            }
            stuck += 1;
            assert!(stuck < 4, "the receiver keeps waiting after giving up");
        }
    }
    let outcome = setup.chunked.then(|| rx.finish_chunks().0.into());
    Result {
        outcome,
        consumed,
        size: rx.size(),
    }
}

/// DATA without bare line endings: lines up to the first `.` line, one leading dot removed.
/// `None` when a bare CR or LF comes before the end (the oracle does not cover those).
fn classic_unstuff(data: &[u8]) -> Option<(Option<Vec<u8>>, usize)> {
    let mut message = Vec::new();
    let mut pos = 0;
    while let Some(lf) = data[pos..].iter().position(|&b| b == b'\n') {
        let line = &data[pos..pos + lf + 1];
        if line.len() < 2 || line[line.len() - 2] != b'\r' {
            return None;
        }
        let text = &line[..line.len() - 2];
        if text.contains(&b'\r') {
            return None;
        }
        pos += line.len();
        if text == b"." {
            return Some((Some(message), pos));
        }
        message.extend_from_slice(text.strip_prefix(b".").unwrap_or(text));
        message.extend_from_slice(b"\r\n");
    }
    // No end of data. A CR inside the unfinished last line is bare (one at its very end is
    // still waiting for its LF).
    let tail = &data[pos..];
    if tail[..tail.len().saturating_sub(1)].contains(&b'\r') {
        return None;
    }
    Some((None, data.len()))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1 + CUT_SEED_LEN {
        return;
    }
    let flags = data[0];
    let setup = Setup {
        chunked: flags & 1 != 0,
        policy: if flags & 2 != 0 {
            BareLfPolicy::Reject
        } else {
            BareLfPolicy::Normalize
        },
        max_size: MAX_SIZES[usize::from((flags >> 2) & 7)],
        tight: flags & 0x20 != 0,
    };
    let mut cuts = Cuts::new(&data[1..1 + CUT_SEED_LEN]);
    let input = &data[1 + CUT_SEED_LEN..];

    let whole = run(&setup, &[input]);
    let split = run(&setup, &cuts.split(input));

    for r in [&whole, &split] {
        match &r.outcome {
            Some(Outcome::Message(m)) => {
                assert_deliverable(m, setup.max_size);
                assert_eq!(m.len(), r.size, "size counted differs from the message");
            }
            Some(Outcome::TooBig) => assert!(r.size > setup.max_size, "TooBig at {}", r.size),
            Some(Outcome::BareLf | Outcome::BareCr) => {
                assert_eq!(setup.policy, BareLfPolicy::Reject, "bare ending refused");
                assert!(!setup.chunked, "BDAT refused a bare ending");
            }
            Some(Outcome::OutOfMemory) => {
                assert!(setup.tight, "out of memory with a plenty budget")
            }
            None => assert_eq!(r.consumed, input.len(), "unfinished but input left"),
        }
    }

    if setup.tight {
        return;
    }
    assert_eq!(whole, split, "whole and split differ");

    if setup.chunked {
        let expected = normalize_line_endings(input);
        let outcome = if expected.len() > setup.max_size {
            Outcome::TooBig
        } else {
            Outcome::Message(expected)
        };
        assert_eq!(
            whole.outcome,
            Some(outcome),
            "BDAT content is not the normalised octets"
        );
    } else if let Some((message, end)) = classic_unstuff(input) {
        assert_eq!(whole.consumed, end, "end of data at the wrong place");
        let expected = message.map(|m| {
            if m.len() > setup.max_size {
                Outcome::TooBig
            } else {
                Outcome::Message(m)
            }
        });
        assert_eq!(
            whole.outcome, expected,
            "un-stuffing differs from the classic rule"
        );
    }
});
