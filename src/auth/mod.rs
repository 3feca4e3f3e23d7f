//! Checking an API key at AUTH time, behind one trait so the driver does not care where keys
//! live: a local keys file of digests, or the REST API.

mod api;
mod keys_file;

use std::future::Future;
use std::pin::Pin;

pub use api::{ApiKeys, CachePolicy};
pub use keys_file::KeysFile;

use crate::secret::ApiKey;
use crate::smtp::AuthOutcome;

/// A boxed, sendable future (the trait is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers whether a key may send.
pub trait Authenticator: Send + Sync {
    /// `Valid`, `Invalid`, or `Unavailable` when the store cannot say.
    fn verify<'a>(&'a self, key: &'a ApiKey) -> BoxFuture<'a, AuthOutcome>;
}
