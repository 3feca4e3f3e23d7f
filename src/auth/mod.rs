//! Checking an API key at AUTH time, behind one trait so the driver does not care where keys
//! live: a local keys file of digests, or the REST API.

mod api;
mod cache;
mod keys_file;

pub use api::{ApiKeys, CachePolicy};
pub use keys_file::KeysFile;

use crate::BoxFuture;
use crate::secret::ApiKey;
use crate::smtp::AuthOutcome;

/// Answers whether a key may send.
pub trait Authenticator: Send + Sync {
    /// `Valid`, `Invalid`, or `Unavailable` when the store cannot say.
    fn verify<'a>(&'a self, key: &'a ApiKey) -> BoxFuture<'a, AuthOutcome>;
}
