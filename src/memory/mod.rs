//! Message memory: how much of it the relay may hold at once, and who holds what.
//!
//! [`budget`] is the global budget of bytes that messages really cost while held (received
//! bytes, the parse, the request body), shared by every session. [`limit`] works out the
//! budget's default from the container's memory limit (cgroup v1 or v2).
//!
//! The cost model lives here, in one place, so that configuration checks, the session's
//! reservations and the mapping agree on what a message may cost.

pub mod budget;
pub mod limit;

/// Largest reservation one message can need while it is received: its bytes, plus an eighth
/// for what parsing and rendering add on top (part tables, decoded text in a legacy charset,
/// a non-canonical base64 part decoded before it is encoded again), plus a fixed allowance
/// for the request's own buffers.
pub fn message_cost_bound(message_size: usize) -> usize {
    message_size
        .saturating_add(message_size / 8)
        .saturating_add(FIXED_MESSAGE_COST)
}

/// What every message costs on top of its bytes: the request's chunk buffer (64 KiB and a
/// little), the transcoder's scratch and the parse tables of a small message.
pub const FIXED_MESSAGE_COST: usize = 128 * 1024;

/// The message bytes DATA's first grant covers: most transactional mail is smaller, so it
/// is received without asking the budget again.
pub const FIRST_GRANT_BYTES: usize = 128 * 1024;

/// The smallest budget that still accepts a message of `message_size` bytes: a quarter of
/// the budget is kept for the first grant of every message (so many small messages never
/// wait behind one large one), and the rest must hold the largest message whole.
pub fn minimum_budget(message_size: usize) -> usize {
    message_cost_bound(message_size)
        .saturating_mul(4)
        .div_ceil(3)
}
