//! The outbox upstream: each accepted message becomes `<id>.json` in a directory, written
//! durably before the `250` (docs/upstream.md "The outbox").
//!
//! The file holds the exact REST request body plus a `relay` object. It is written to a
//! hidden temporary name, fsynced, renamed, and the directory fsynced, so a crash at any
//! moment leaves either no file or a whole one, and a reader that lists `*.json` never sees a
//! half-written message. Mapping and writing run on the blocking pool: parsing a 25 MiB
//! message or waiting for fsync must not stall the async workers; a panic there becomes
//! `451 4.3.0` for that message only. The rename is the commit point ([`CommitGate`]): a
//! delivery abandoned before it (deadline, forced stop) leaves no file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::render::{Prepared, Renderer};
use super::{Accepted, CommitGate, DeliveryError, Submission, Upstream};
use crate::BoxFuture;
use crate::smtp::{RefusalReason, reply};

/// Writes messages into a directory.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: Arc<PathBuf>,
    renderer: Renderer,
}

impl Outbox {
    /// Creates the directory if needed and checks that it is writable.
    pub fn open(dir: &Path, renderer: Renderer) -> Result<Outbox, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let probe = dir.join(".write-test");
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
        Ok(Outbox {
            dir: Arc::new(dir.to_path_buf()),
            renderer,
        })
    }
}

impl Upstream for Outbox {
    fn deliver(&self, sub: Submission) -> BoxFuture<'_, Result<Accepted, DeliveryError>> {
        let dir = Arc::clone(&self.dir);
        let renderer = self.renderer.clone();
        Box::pin(async move {
            let gate = sub.commit.clone();
            let write = move || write_record(&dir, renderer.prepare(sub)?, &gate);
            match tokio::task::spawn_blocking(write).await {
                Ok(result) => result,
                Err(join) => Err(DeliveryError::new(
                    reply::INTERNAL_ERROR,
                    RefusalReason::Internal,
                    if join.is_panic() {
                        "mapping or writing panicked"
                    } else {
                        "the outbox task was cancelled"
                    },
                )),
            }
        })
    }

    fn describe(&self) -> String {
        format!("outbox:{}", self.dir.display())
    }
}

/// The `relay` object of an outbox record: what the REST API would not get.
#[derive(Serialize)]
struct RelayInfo<'a> {
    id: &'a str,
    received_at: String,
    key_fingerprint: String,
    /// `null` when the message has no identity of its own and no explicit key.
    idempotency_key: Option<&'a str>,
    request_id: &'a str,
}

fn write_record(
    dir: &Path,
    prepared: Prepared,
    gate: &CommitGate,
) -> Result<Accepted, DeliveryError> {
    let Prepared {
        mut body,
        idempotency_key,
        key,
        request_id,
        received_at,
        reservation,
        from_domain: _,
    } = prepared;
    let id = ulid::Ulid::new().to_string();
    let tmp = TempFile(dir.join(format!(".{id}.json.tmp")));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp.0)
        .map_err(|e| storage_error(&tmp.0, e))?;
    let received_at = OffsetDateTime::from(received_at)
        .format(&Rfc3339)
        .unwrap_or_default();
    let relay = RelayInfo {
        id: &id,
        received_at,
        key_fingerprint: key.fingerprint(),
        idempotency_key: idempotency_key.as_deref(),
        request_id: &request_id,
    };
    body.append_field("relay", &relay)
        .map_err(|e| storage_error(&tmp.0, std::io::Error::other(e)))?;
    let mut out = BufWriter::with_capacity(256 * 1024, &file);
    body.write_to(&mut out)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| storage_error(&tmp.0, e))?;
    drop(out);
    file.sync_all().map_err(|e| storage_error(&tmp.0, e))?;
    let target = dir.join(format!("{id}.json"));
    // The commit point: past the deadline or a forced stop the client hears 451/421, so the
    // file must never appear (the temporary one goes with `tmp`).
    if !gate.commit() {
        return Err(DeliveryError::upstream(
            reply::UPSTREAM_TIMEOUT,
            "abandoned before the rename: nothing written",
            "abandoned",
        ));
    }
    fs::rename(&tmp.0, &target).map_err(|e| storage_error(&target, e))?;
    tmp.keep();
    drop(reservation);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage_error(dir, e))?;
    Ok(Accepted {
        id,
        outcome: "written",
    })
}

fn storage_error(path: &Path, e: std::io::Error) -> DeliveryError {
    DeliveryError::upstream(
        reply::STORAGE_FAILURE,
        format!("outbox write failed at {}: {e}", path.display()),
        "error",
    )
}

/// Removes the temporary file unless it was renamed into place.
struct TempFile(PathBuf);

impl TempFile {
    fn keep(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}
