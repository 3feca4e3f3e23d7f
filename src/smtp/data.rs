//! The DATA receiver: end-of-data detection, dot un-stuffing, line-ending policy and the
//! size and memory caps, across any split of the input into reads. BDAT chunks (RFC 3030)
//! go through the same receiver in its [chunked](DataReceiver::chunked) form: no dots, no
//! end scan (the session counts the octets), bare line endings normalised and never refused.
//!
//! Rules (docs/smtp.md "DATA"; RFC 5321 §4.1.1.4, §4.5.2; Postfix `smtpd_forbid_bare_newline`):
//! - Only `<CRLF>.<CRLF>` ends the data: a `.` line counts only when the line before it ended
//!   with CRLF (or it is the first line) and it ends with CRLF itself. `<LF>.<LF>`,
//!   `<LF>.<CRLF>`, `<CRLF>.<LF>`, `<CR>.<CR>` and friends never do (SMTP smuggling,
//!   CVE-2023-51764).
//! - A bare LF or bare CR ends a line for un-stuffing purposes and is written out as CRLF, so
//!   the upstream never sees a bare line ending (`normalize`, as Postfix 3.9). A lone `.` line
//!   next to a bare line ending is dropped, as Postfix does. The `reject` policy receives the
//!   same way and reports the bare ending at the end of data.
//! - The size counts the un-stuffed, normalised content (RFC 1870 §4). Past the limit the
//!   receiver keeps reading to the real end of data holding nothing more, so the reply comes
//!   only after the final dot and the session stays in step (adversarial DATA-02, SMUG-12).
//! - Memory: before it takes input the receiver reserves what the message will cost once that
//!   input is in (`crate::memory::message_cost_bound`). When the budget says wait, it takes
//!   nothing ([`DataReceiver::needs_memory`]) until the driver, after a release, asks again
//!   ([`DataReceiver::retry_memory`]) or gives up ([`DataReceiver::give_up_memory`]); then,
//!   as past the size limit, it reads to the end of data holding nothing and the message is
//!   refused with `452 4.3.1`.

use memchr::memchr2;

use crate::memory::budget::{Grant, Reservation};
use crate::memory::message_cost_bound;

/// Memory is reserved from the global budget in steps of this many bytes.
const RESERVE_STEP: usize = 256 * 1024;

/// How bare CR and bare LF inside DATA are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BareLfPolicy {
    /// Convert to CRLF and accept (default).
    #[default]
    Normalize,
    /// Refuse the message with `550 5.5.2` after the end of data.
    Reject,
}

/// Where the receiver is relative to line boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line; `proper` when the previous line ended with CRLF (or this is the
    /// first line).
    LineStart { proper: bool },
    /// Saw `.` at a line start.
    Dot { proper: bool },
    /// Saw `.` CR at a line start.
    DotCr { proper: bool },
    /// Inside a line.
    Text,
    /// Saw CR inside a line.
    TextCr,
}

/// How the data ended.
#[derive(Debug)]
pub enum DataEnd {
    /// The message, un-stuffed and with CRLF line endings only.
    Message(Vec<u8>),
    /// Over the size limit.
    TooBig,
    /// The memory budget could not hold it.
    OutOfMemory,
    /// A bare LF under the `reject` policy.
    BareLf,
    /// A bare CR under the `reject` policy.
    BareCr,
}

/// Receives one message's data.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    body: Vec<u8>,
    size: usize,
    max_size: usize,
    too_big: bool,
    out_of_memory: bool,
    bare_lf: bool,
    bare_cr: bool,
    policy: BareLfPolicy,
    reservation: Reservation,
    /// What a large reservation asks for: the cost bound of the declared `SIZE=`, else of the
    /// size limit.
    large_hint: usize,
    /// The reservation this receiver waits for before it takes more input, if any.
    waiting_for: Option<usize>,
    /// BDAT content: a `.` is text and nothing ends the data but the session's count.
    chunked: bool,
}

impl DataReceiver {
    /// A receiver for at most `max_size` bytes, holding memory from `reservation`; a large
    /// reservation asks for `large_hint` bytes.
    pub fn new(
        max_size: usize,
        policy: BareLfPolicy,
        reservation: Reservation,
        large_hint: usize,
    ) -> DataReceiver {
        DataReceiver {
            state: State::LineStart { proper: true },
            body: Vec::new(),
            size: 0,
            max_size,
            too_big: false,
            out_of_memory: false,
            bare_lf: false,
            bare_cr: false,
            policy,
            reservation,
            large_hint,
            waiting_for: None,
            chunked: false,
        }
    }

    /// A receiver for the chunks of one BDAT transaction: fed exactly the octets each chunk
    /// declares and ended by [`Self::finish_chunks`]. Bare CR and LF become CRLF (the
    /// upstream never sees them) but are not refused: RFC 3030 content is not line-framed.
    pub fn chunked(max_size: usize, reservation: Reservation, large_hint: usize) -> DataReceiver {
        DataReceiver {
            chunked: true,
            ..DataReceiver::new(max_size, BareLfPolicy::Normalize, reservation, large_hint)
        }
    }

    /// True once the message is refused whatever follows (over the size limit, or out of
    /// memory): BDAT says so at the end of the chunk rather than after `LAST`.
    pub fn is_refused(&self) -> Option<DataEnd> {
        if self.too_big {
            Some(DataEnd::TooBig)
        } else if self.out_of_memory {
            Some(DataEnd::OutOfMemory)
        } else {
            None
        }
    }

    /// Ends a chunked message after its `LAST` chunk: the outcome and the memory that covers
    /// it. A CR left at the very end is a bare CR and becomes CRLF.
    pub fn finish_chunks(&mut self) -> (DataEnd, Reservation) {
        if self.state == State::TextCr {
            self.end_line_bare_cr();
        }
        self.finish()
    }

    /// True while the receiver waits for memory and takes no input.
    pub fn needs_memory(&self) -> bool {
        self.waiting_for.is_some()
    }

    /// Asks again for the memory it waits for; true when it no longer waits (granted, or
    /// found impossible, in which case the message will be refused).
    pub fn retry_memory(&mut self) -> bool {
        match self.waiting_for {
            Some(want) => self.reserve(want),
            None => true,
        }
    }

    /// Stops waiting: the rest of the data is read and dropped, and the message refused.
    pub fn give_up_memory(&mut self) {
        self.waiting_for = None;
        self.out_of_memory = true;
        self.drop_body();
    }

    /// Makes sure the reservation covers the message once `input` is in (a bare CR or LF in
    /// it becomes two bytes; un-stuffing only removes); false when it must wait. A large
    /// piece was sized for the whole message and never waits: its size is checked as the
    /// message grows ([`Self::emit`]), so an estimate cannot refuse what would have fit.
    fn room_for(&mut self, input: &[u8]) -> bool {
        if self.too_big || self.out_of_memory || self.reservation.is_large() {
            return true;
        }
        let held = self.reservation.bytes();
        let at_most =
            |extra: usize| message_cost_bound(self.size.saturating_add(extra).min(self.max_size));
        // Usually the reservation covers even every byte doubled; count only when it may not.
        if at_most(input.len().saturating_mul(2)) <= held {
            return true;
        }
        let want = at_most(input.len() + bare_line_ends(input));
        if want <= held {
            return true;
        }
        self.reserve(want.next_multiple_of(RESERVE_STEP))
    }

    fn reserve(&mut self, want: usize) -> bool {
        match self.reservation.request(want, self.large_hint) {
            Grant::Held => {
                self.waiting_for = None;
                true
            }
            Grant::Wait => {
                self.waiting_for = Some(want);
                false
            }
            Grant::Never => {
                self.give_up_memory();
                true
            }
        }
    }

    /// Un-stuffed bytes received so far (for rate checks and logs).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Consumes input up to and including the end of data. Returns the bytes consumed and,
    /// once the end of data was seen, the outcome with the memory reservation that covers it.
    /// Takes nothing while it [needs memory](Self::needs_memory).
    pub fn receive(&mut self, input: &[u8]) -> (usize, Option<(DataEnd, Reservation)>) {
        if self.waiting_for.is_some() || !self.room_for(input) {
            return (0, None);
        }
        if !self.too_big && !self.out_of_memory {
            // One allocation for a message that arrives in one read, amortised growth for a
            // longer one (the reservation covers it).
            self.body.reserve(
                input
                    .len()
                    .min(self.max_size - self.body.len().min(self.max_size)),
            );
        }
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            match self.state {
                State::Text => {
                    // Fast path: copy the run up to the next CR or LF in one go.
                    let run = memchr2(b'\r', b'\n', &input[i..]).unwrap_or(input.len() - i);
                    if run > 0 {
                        self.emit(&input[i..i + run]);
                        i += run;
                        continue;
                    }
                    if byte == b'\r' {
                        self.state = State::TextCr;
                    } else {
                        self.end_line_bare_lf();
                    }
                }
                State::TextCr => {
                    if byte == b'\n' {
                        self.emit(b"\r\n");
                        self.state = State::LineStart { proper: true };
                    } else {
                        self.end_line_bare_cr();
                        continue; // this byte starts the next line
                    }
                }
                State::LineStart { proper } => match byte {
                    b'.' if !self.chunked => self.state = State::Dot { proper },
                    b'\r' => self.state = State::TextCr,
                    b'\n' => self.end_line_bare_lf(),
                    _ => {
                        self.state = State::Text;
                        continue; // this byte is text
                    }
                },
                State::Dot { proper } => match byte {
                    b'\r' => self.state = State::DotCr { proper },
                    b'\n' => {
                        // A lone dot ended by a bare LF: dropped, never the end.
                        self.bare_lf = true;
                        self.state = State::LineStart { proper: false };
                    }
                    // Dot-stuffing: the first dot is removed, the rest of the line kept.
                    _ => {
                        self.state = State::Text;
                        continue;
                    }
                },
                State::DotCr { proper } => {
                    if byte == b'\n' {
                        if proper {
                            return (i + 1, Some(self.finish()));
                        }
                        // `.` CRLF after a bare line ending: dropped, not the end.
                        self.state = State::LineStart { proper: true };
                    } else {
                        // `.` followed by a bare CR: dropped; this byte starts a new line.
                        self.bare_cr = true;
                        self.state = State::LineStart { proper: false };
                        continue;
                    }
                }
            }
            i += 1;
        }
        (input.len(), None)
    }

    fn end_line_bare_lf(&mut self) {
        self.bare_lf = true;
        self.emit(b"\r\n");
        self.state = State::LineStart { proper: false };
    }

    fn end_line_bare_cr(&mut self) {
        self.bare_cr = true;
        self.emit(b"\r\n");
        self.state = State::LineStart { proper: false };
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len());
        if self.too_big || self.out_of_memory {
            return;
        }
        if self.size > self.max_size {
            self.too_big = true;
            self.drop_body();
            return;
        }
        if self.reservation.is_large() {
            // A large piece grows from free memory or not at all (a `SIZE=` that said less
            // than was sent, beyond the piece's slack).
            let cost = message_cost_bound(self.size);
            if cost > self.reservation.bytes() && self.reservation.request(cost, 0) != Grant::Held {
                self.give_up_memory();
                return;
            }
        }
        // Otherwise `room_for` reserved for this input before the loop began.
        debug_assert!(self.size <= self.reservation.bytes());
        self.body.extend_from_slice(bytes);
    }

    fn drop_body(&mut self) {
        self.body = Vec::new();
        self.reservation.release();
    }

    fn finish(&mut self) -> (DataEnd, Reservation) {
        let outcome = if self.too_big {
            DataEnd::TooBig
        } else if self.out_of_memory {
            DataEnd::OutOfMemory
        } else if self.policy == BareLfPolicy::Reject && self.bare_lf {
            DataEnd::BareLf
        } else if self.policy == BareLfPolicy::Reject && self.bare_cr {
            DataEnd::BareCr
        } else {
            DataEnd::Message(std::mem::take(&mut self.body))
        };
        (outcome, self.reservation.take())
    }
}

/// Line ends in `input` that are not half of a CRLF: each becomes CRLF, one byte more. A CR
/// at the end or an LF at the start may pair with the next or previous read; they count.
fn bare_line_ends(input: &[u8]) -> usize {
    let bare_lf = memchr::memchr_iter(b'\n', input)
        .filter(|&i| i == 0 || input[i - 1] != b'\r')
        .count();
    let bare_cr = memchr::memchr_iter(b'\r', input)
        .filter(|&i| input.get(i + 1) != Some(&b'\n'))
        .count();
    bare_lf + bare_cr
}

#[cfg(test)]
mod tests;
