//! Accept loops: one per listener, surviving accept errors (EMFILE and friends) with a
//! backoff, refusing connections past `server.max_connections` with `421 4.4.5` and, while
//! draining, with `421 4.3.2`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::{Bound, Relay, connection};
use crate::config::ListenerKind;
use crate::smtp::reply::{self, Reply};

/// go-smtp and Stalwart back off from 5 ms to 1 s after an accept error.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves every bound listener until a drain starts, then lets sessions finish within
/// `server.shutdown_grace` (see [`super::Shutdown`]). Returns true when every session ended
/// before the grace period ran out.
pub async fn run(relay: Arc<Relay>, listeners: Vec<Bound>) -> bool {
    let mut loops = JoinSet::new();
    // Every listener is already bound: ready from here on.
    relay.shutdown.set_ready();
    for bound in listeners {
        // Whether PROXY is required is the first thing to check behind a balancer.
        let trusted: Vec<String> = bound
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        tracing::info!(
            kind = ?bound.kind,
            address = %bound.address,
            proxy_protocol = bound.proxy_protocol,
            trusted_proxies = %trusted.join(" "),
            "listening"
        );
        loops.spawn(accept_loop(Arc::clone(&relay), bound));
    }
    tokio::spawn(
        Arc::clone(&relay.reloader)
            .watch(relay.config.tls.reload_interval.0, relay.shutdown.clone()),
    );
    relay.shutdown.draining().await;
    let grace = relay.config.server.shutdown_grace.0;
    tracing::info!(grace = ?grace, "draining: refusing new sessions, finishing open ones");
    let clean = relay
        .shutdown
        .finish(grace, relay.config.timeouts.write.0)
        .await;
    loops.abort_all();
    if clean {
        tracing::info!("drained: every session ended");
    } else {
        tracing::warn!("grace period over: remaining sessions were closed with 421 4.3.2");
    }
    clean
}

async fn accept_loop(relay: Arc<Relay>, bound: Bound) {
    let info = Arc::new(bound.info());
    let mut backoff = BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            accepted = bound.socket.accept() => accepted,
            _ = relay.shutdown.forced() => return,
        };
        let (tcp, peer) = match accepted {
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
        if relay.shutdown.is_draining() {
            relay
                .metrics
                .rejected
                .with_label_values(&["draining"])
                .inc();
            tokio::spawn(refuse_connection(
                tcp,
                bound.kind,
                bound.auto_detect,
                reply::SHUTTING_DOWN,
                relay.config.timeouts.write.0,
            ));
            continue;
        }
        match Arc::clone(&relay.connections).try_acquire_owned() {
            Ok(permit) => {
                relay.shutdown.tracker().spawn(connection::handle(
                    Arc::clone(&relay),
                    tcp,
                    peer,
                    Arc::clone(&info),
                    permit,
                ));
            }
            Err(_) => {
                tracing::warn!(%peer, "connection refused: server.max_connections reached");
                relay
                    .metrics
                    .rejected
                    .with_label_values(&["max_connections"])
                    .inc();
                tokio::spawn(refuse_connection(
                    tcp,
                    bound.kind,
                    bound.auto_detect,
                    reply::TOO_BUSY,
                    relay.config.timeouts.write.0,
                ));
            }
        }
    }
}

/// A plaintext `421` where the client expects plaintext, within `timeouts.write`; implicit
/// TLS clients just see the connection close (a handshake under overload would cost more
/// than it tells). On an `auto` listener, a client silent for `auto_detect` is a plaintext one.
async fn refuse_connection(
    mut tcp: TcpStream,
    kind: ListenerKind,
    auto_detect: Duration,
    reply: Reply,
    write: Duration,
) {
    let plaintext = match kind {
        ListenerKind::Starttls => true,
        ListenerKind::Implicit => false,
        ListenerKind::Auto => matches!(
            super::detect::first_move(&tcp, auto_detect).await,
            Ok(super::detect::FirstMove::Silent)
        ),
    };
    if plaintext {
        let _ = tokio::time::timeout(write, tcp.write_all(&reply.to_line())).await;
    }
}
