//! Accept loops: one per listener, surviving accept errors (EMFILE and friends) with a
//! backoff, and refusing connections past `server.max_connections` with `421 4.4.5`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::{Bound, Relay, connection};
use crate::config::ListenerKind;
use crate::smtp::reply;

/// go-smtp and Stalwart back off from 5 ms to 1 s after an accept error.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves every bound listener until `shutdown` resolves, then stops accepting.
pub async fn run(relay: Arc<Relay>, listeners: Vec<Bound>, shutdown: impl Future<Output = ()>) {
    let mut loops = JoinSet::new();
    for bound in listeners {
        tracing::info!(kind = ?bound.kind, address = %bound.address, "listening");
        loops.spawn(accept_loop(Arc::clone(&relay), bound));
    }
    shutdown.await;
    loops.abort_all();
}

async fn accept_loop(relay: Arc<Relay>, bound: Bound) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let (tcp, peer) = match bound.socket.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, address = %bound.address, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        let _ = tcp.set_nodelay(true);
        match Arc::clone(&relay.connections).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(connection::handle(
                    Arc::clone(&relay),
                    tcp,
                    peer,
                    bound.kind,
                    permit,
                ));
            }
            Err(_) => {
                tracing::warn!(%peer, "connection refused: server.max_connections reached");
                tokio::spawn(refuse(tcp, bound.kind));
            }
        }
    }
}

/// A plaintext `421` where the client expects plaintext; implicit TLS clients just see the
/// connection close (a handshake under overload would cost more than it tells).
async fn refuse(mut tcp: TcpStream, kind: ListenerKind) {
    if kind == ListenerKind::Starttls {
        let mut line = Vec::new();
        reply::TOO_BUSY.write_to(&mut line);
        let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&line)).await;
    }
}
