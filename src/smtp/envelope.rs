//! The envelope of one mail transaction, exactly as accepted at MAIL and RCPT.

use serde::Serialize;

/// What MAIL FROM and the accepted RCPT TO commands said. It is authoritative for delivery:
/// the REST API delivers to exactly `rcpt_to`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The reverse-path without angle brackets; empty for the null sender `<>`.
    pub mail_from: String,
    /// The accepted forward-paths, in the order they were accepted, without duplicates.
    pub rcpt_to: Vec<String>,
}
