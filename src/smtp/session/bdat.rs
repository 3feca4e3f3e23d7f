//! BDAT (RFC 3030; docs/smtp.md "CHUNKING"): chunks counted in octets, no dot-stuffing and
//! no end-of-data scan.
//!
//! - A chunk of a valid transaction goes to the transaction's chunked [`DataReceiver`] (size
//!   and memory caps as DATA's; bare line endings become CRLF, never refused). Each chunk
//!   but the last gets `250 2.0.0 <n> octets received`; `LAST` hands the message over as the
//!   end of DATA does.
//! - A chunk without a transaction (no AUTH, no MAIL, no accepted RCPT) is read and
//!   discarded, then refused. The transaction has then failed: every later chunk is read,
//!   discarded and refused the same way until `LAST` (only the first refusal counts as a
//!   protocol error, so a pipeline of chunks after one failure does not close the session).
//! - A chunk that would take the message (or the discarded octets) past the size limit gets
//!   `552 5.3.4` and the session closes without reading it: its size can be anything. A
//!   size that cannot be parsed closes with `501 5.5.4`: what follows cannot be framed.

use super::{Session, State, Step};
use crate::smtp::command::{self, Bdat};
use crate::smtp::data::{DataEnd, DataReceiver};
use crate::smtp::reply::{self, Reply};
use crate::smtp::session::{RefusalReason, RefusedMessage};

/// A chunk being received into the transaction's message.
#[derive(Debug)]
pub(super) struct Chunk {
    rx: Box<DataReceiver>,
    /// Octets this chunk declared.
    size: u64,
    /// Octets still to come.
    left: u64,
    last: bool,
}

impl Chunk {
    /// Its receiver waits for memory and takes no input.
    pub(super) fn needs_memory(&self) -> bool {
        self.rx.needs_memory()
    }

    /// Octets of this chunk received so far.
    pub(super) fn received(&self) -> usize {
        usize::try_from(self.size - self.left).unwrap_or(usize::MAX)
    }

    pub(super) fn retry_memory(&mut self) -> bool {
        self.rx.retry_memory()
    }

    pub(super) fn give_up_memory(&mut self) {
        self.rx.give_up_memory();
    }
}

/// A failed BDAT transaction: its chunks are discarded and refused until `LAST`.
#[derive(Debug)]
pub(super) struct Failure {
    reply: Reply,
    /// Octets discarded so far, under the same size limit as a message.
    discarded: u64,
    /// The first refusal was counted as a protocol error.
    counted: bool,
}

impl Session {
    /// True when this session's EHLO offers CHUNKING: after TLS, and not configured off.
    pub(super) fn chunking_offered(&self) -> bool {
        self.cfg.chunking && self.tls.is_some()
    }

    pub(super) fn on_bdat(&mut self, args: &str) -> Option<Step> {
        if !self.chunking_offered() {
            // Its payload follows at once and must never run as commands (SMUG-16).
            self.reply(reply::BDAT_UNSUPPORTED);
            return Some(self.close());
        }
        let Some(bdat) = command::parse_bdat(args) else {
            self.reply(reply::BDAT_SYNTAX);
            return Some(self.close());
        };
        let max = self.cfg.max_message_size as u64;
        if let Some(failure) = &mut self.bdat_failed {
            failure.discarded = failure.discarded.saturating_add(bdat.size);
            if failure.discarded > max {
                let size = failure.discarded;
                return Some(self.too_big(size));
            }
            self.discard(bdat);
            return None;
        }
        let refusal = match &self.tx {
            _ if self.key.is_none() => Some(reply::AUTH_REQUIRED),
            None => Some(reply::NEED_MAIL),
            Some(tx) if tx.rcpt_to.is_empty() => Some(reply::NEED_RCPT),
            Some(_) => None,
        };
        if let Some(reply) = refusal {
            if bdat.size > max {
                return Some(self.too_big(bdat.size));
            }
            self.fail(reply, bdat.size, false);
            self.discard(bdat);
            return None;
        }
        let (_, hint) = self.data_grant();
        let max_size = self.cfg.max_message_size;
        let rx = self
            .tx
            .as_mut()
            .and_then(|tx| tx.chunks.take())
            .unwrap_or_else(|| {
                Box::new(DataReceiver::chunked(
                    max_size,
                    self.budget.reservation(),
                    hint,
                ))
            });
        let total = (rx.size() as u64).saturating_add(bdat.size);
        if total > max {
            return Some(self.too_big(total));
        }
        self.state = State::Chunk(Box::new(Chunk {
            rx,
            size: bdat.size,
            left: bdat.size,
            last: bdat.last,
        }));
        None
    }

    /// Feeds the current chunk: the bytes used, and `true` once all its octets are in. It
    /// takes nothing while its receiver waits for memory.
    pub(super) fn receive_chunk(&mut self, input: &[u8]) -> (usize, bool) {
        let State::Chunk(chunk) = &mut self.state else {
            return (0, false);
        };
        let take = usize::try_from(chunk.left).map_or(input.len(), |left| left.min(input.len()));
        let (used, _) = chunk.rx.receive(&input[..take]);
        chunk.left -= used as u64;
        (used, chunk.left == 0 && !chunk.rx.needs_memory())
    }

    /// The current chunk's octets are all in.
    pub(super) fn end_of_chunk(&mut self) -> Option<Step> {
        let State::Chunk(chunk) = std::mem::replace(&mut self.state, State::Command) else {
            return None;
        };
        let Chunk {
            mut rx, size, last, ..
        } = *chunk;
        match rx.is_refused() {
            Some(DataEnd::TooBig) => {
                // Bare line endings made CRLF took it past the limit.
                return Some(self.too_big(rx.size() as u64));
            }
            Some(_) if !last => {
                // Out of memory: the transaction has failed; say so now, not after LAST.
                self.note_refused(
                    rx.size(),
                    reply::INSUFFICIENT_STORAGE,
                    RefusalReason::Memory,
                );
                self.transactions += 1;
                self.fail(reply::INSUFFICIENT_STORAGE, 0, true);
                self.reply(reply::INSUFFICIENT_STORAGE);
                return None;
            }
            _ => {}
        }
        if last {
            let received = rx.size();
            let (outcome, reservation) = rx.finish_chunks();
            return self.end_of_data(outcome, reservation, received);
        }
        if let Some(tx) = &mut self.tx {
            tx.chunks = Some(rx);
        }
        self.reply(reply::chunk_received(size));
        None
    }

    /// Reads and drops a refused chunk's octets; `true` once they are all in.
    pub(super) fn discard_input(&mut self, input: &[u8]) -> (usize, bool) {
        let State::Discard { left, .. } = &mut self.state else {
            return (0, false);
        };
        let take = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
        *left -= take as u64;
        (take, *left == 0)
    }

    /// A refused chunk was read: its reply, and after `LAST` the failure is over.
    pub(super) fn end_of_discard(&mut self) -> Option<Step> {
        let State::Discard { last, .. } = std::mem::replace(&mut self.state, State::Command) else {
            return None;
        };
        let failure = self.bdat_failed.as_mut()?;
        let reply = failure.reply.clone();
        let count = !std::mem::replace(&mut failure.counted, true);
        if last {
            self.bdat_failed = None;
        }
        self.reply(reply);
        if count {
            return self.count_error();
        }
        None
    }

    /// The transaction failed with `reply` for this and every later chunk until `LAST`.
    fn fail(&mut self, reply: Reply, discarded: u64, counted: bool) {
        self.tx = None;
        self.bdat_failed = Some(Failure {
            reply,
            discarded,
            counted,
        });
    }

    fn discard(&mut self, bdat: Bdat) {
        self.state = State::Discard {
            size: bdat.size,
            left: bdat.size,
            last: bdat.last,
        };
    }

    /// `552 5.3.4` and close: the chunk's octets are not read, since its size can be anything.
    /// `size` is what the message would have been, for the log.
    fn too_big(&mut self, size: u64) -> Step {
        self.tx = None;
        self.bdat_failed = None;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        self.note_refused(size, reply::MESSAGE_TOO_BIG, RefusalReason::Size);
        self.reply(reply::MESSAGE_TOO_BIG);
        self.close()
    }

    fn note_refused(&mut self, size: usize, reply: Reply, reason: RefusalReason) {
        self.refused.push(RefusedMessage {
            size,
            reply,
            reason,
        });
    }
}
