//! The session's side of the memory budget: DATA's first grant before `354`, and what the
//! driver calls while a session waits for memory (`retry_memory` after each release,
//! `memory_timed_out` after `limits.memory_wait`). The budget's rules are in
//! `crate::memory::budget`; the waiting itself (no reads, the deadline) is the driver's.

use super::{Session, State};
use crate::memory::budget::{Grant, Reservation};
use crate::memory::{FIRST_GRANT_BYTES, message_cost_bound};
use crate::smtp::data::DataReceiver;
use crate::smtp::reply;

impl Session {
    /// Memory was released: asks again for what the session waits for. True when it no
    /// longer waits (call `process` again); false to keep waiting.
    pub fn retry_memory(&mut self) -> bool {
        let (first, hint) = self.data_grant();
        match &mut self.state {
            State::DataGrant(reservation) => {
                let grant = reservation.request(first, hint);
                match grant {
                    Grant::Wait => false,
                    Grant::Held => {
                        let State::DataGrant(reservation) =
                            std::mem::replace(&mut self.state, State::Command)
                        else {
                            return true;
                        };
                        self.start_data(reservation);
                        true
                    }
                    Grant::Never => {
                        self.state = State::Command;
                        self.reply(reply::INSUFFICIENT_STORAGE);
                        true
                    }
                }
            }
            State::Data(rx) => rx.retry_memory(),
            State::Chunk(chunk) => chunk.retry_memory(),
            _ => true,
        }
    }

    /// `limits.memory_wait` passed and the budget is still spent: before `354`, DATA gets
    /// `452 4.3.1`; inside DATA, the rest is read and dropped and the end of data gets it.
    pub fn memory_timed_out(&mut self) {
        match &mut self.state {
            State::DataGrant(_) => {
                self.state = State::Command;
                self.reply(reply::INSUFFICIENT_STORAGE);
            }
            State::Data(rx) => rx.give_up_memory(),
            State::Chunk(chunk) => chunk.give_up_memory(),
            _ => {}
        }
    }

    /// The first grant at DATA and the large reservation hint: the cost bound of the declared
    /// `SIZE=`, else a first step now and the cost bound of the size limit later.
    pub(super) fn data_grant(&self) -> (usize, usize) {
        let declared = self.tx.as_ref().and_then(|tx| tx.declared_size);
        match declared {
            Some(size) => {
                let cost = message_cost_bound(size.min(self.cfg.max_message_size));
                (cost, cost)
            }
            None => (
                message_cost_bound(FIRST_GRANT_BYTES.min(self.cfg.max_message_size)),
                message_cost_bound(self.cfg.max_message_size),
            ),
        }
    }

    /// Accepts the data with `reservation` holding its first grant: `354`, then the receiver.
    pub(super) fn start_data(&mut self, reservation: Reservation) {
        let (_, hint) = self.data_grant();
        self.write_raw("354 End data with <CR><LF>.<CR><LF>\r\n");
        self.state = State::Data(Box::new(DataReceiver::new(
            self.cfg.max_message_size,
            self.cfg.bare_lf,
            reservation,
            hint,
        )));
    }
}
