//! One connection: the driver loop that feeds the sans-IO session, performs its steps
//! (TLS handshake, key check, delivery) and enforces every deadline.
//!
//! Deadlines (docs/limits-and-timeouts.md "Timeouts"): a whole command line must arrive within the command
//! timeout, which is not reset by each byte (slowloris, TMO-02); during DATA each read has its
//! own timeout and the average rate must stay above a minimum after a grace period (TMO-03);
//! writes have a deadline (TMO-05); the session as a whole has one. A failed TLS handshake
//! closes without a plaintext reply (TLS-INJ-07).
//!
//! Shutdown: while draining, a session waiting for a command with no transaction open gets
//! `421 4.3.2` at once; one in a transaction finishes it first. Once forced, every wait ends
//! with `421 4.3.2`, including an upstream call in flight, whose message is never answered
//! `250`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::Instrument;

use super::detect::{self, FirstMove};
use super::stream::Stream;
use super::tls::version_name;
use super::{Denial, ListenerInfo, Relay};
use super::{authenticate, deliver, memory, proxy};
use crate::config::ListenerKind;
use crate::message::Source;
use crate::smtp::reply::{self, Reply};
use crate::smtp::{Session, Step, Wait};

/// Read buffer capacity while a transaction's commands come in.
const COMMAND_BUFFER: usize = 4 * 1024;
/// Read buffer capacity during DATA.
const DATA_BUFFER: usize = 64 * 1024;

/// Serves one accepted connection to its end. The permit is held until then.
pub(super) async fn handle(
    relay: Arc<Relay>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerInfo>,
    _permit: OwnedSemaphorePermit,
) {
    let label = listener.label.as_str();
    relay.metrics.connections.with_label_values(&[label]).inc();
    let open = relay.metrics.sessions.with_label_values(&[label]);
    open.inc();
    let _open = scopeguard(move || open.dec());
    let id = ulid::Ulid::new().to_string();
    let span = tracing::info_span!(
        "session",
        id = %id,
        client = tracing::field::Empty,
        peer = %peer,
        listener = %label,
        tls = tracing::field::Empty,
        key = tracing::field::Empty,
    );
    async move {
        let client_ip = if listener.proxy_protocol {
            match proxy::client_address(&relay, &mut tcp, peer, &listener).await {
                Some(ip) => ip,
                None => return,
            }
        } else {
            peer.ip().to_canonical()
        };
        tracing::Span::current().record("client", tracing::field::display(client_ip));
        tracing::debug!("connected");
        let admission = relay.abuse.admit(client_ip);
        let refusal = match &admission {
            Ok(_) => None,
            Err(Denial::TooManyConnections) => {
                relay.metrics.rejected.with_label_values(&["per_ip"]).inc();
                tracing::info!("refused: limits.connections_per_ip reached");
                Some(reply::TOO_MANY_FROM_ADDRESS)
            }
            Err(Denial::CoolingDown) => {
                relay
                    .metrics
                    .rejected
                    .with_label_values(&["auth_cooldown"])
                    .inc();
                tracing::info!("refused: address cooling down after AUTH failures");
                Some(reply::AUTH_COOLDOWN)
            }
        };
        let session_deadline = Instant::now() + relay.config.timeouts.session.0;
        let mut conn = Connection {
            relay,
            id,
            client_ip,
            session_deadline,
            buf: BytesMut::new(),
            line_deadline: None,
            data_started: None,
        };
        match conn.serve(tcp, &listener, refusal).await {
            Ok(()) => tracing::debug!("closed"),
            Err(e) => tracing::debug!(error = %e, "connection ended"),
        }
    }
    .instrument(span)
    .await;
}

struct Connection {
    relay: Arc<Relay>,
    id: String,
    client_ip: IpAddr,
    session_deadline: Instant,
    buf: BytesMut,
    /// When the command line being received must be complete.
    line_deadline: Option<Instant>,
    /// When the current DATA began, for the minimum-rate check.
    data_started: Option<Instant>,
}

enum Read {
    Data,
    TimedOut,
    Eof,
    ShuttingDown,
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

impl Connection {
    async fn serve(
        &mut self,
        mut tcp: TcpStream,
        listener: &ListenerInfo,
        refusal: Option<Reply>,
    ) -> io::Result<()> {
        let kind = match listener.kind {
            ListenerKind::Auto => match self.detect(&mut tcp, listener.auto_detect).await? {
                Some(kind) => kind,
                None => return Ok(()),
            },
            kind => kind,
        };
        if refusal.is_some() && kind == ListenerKind::Implicit {
            // A TLS client cannot read a plaintext reply, and a refused address must not cost
            // a handshake: close at once (operations.md, Abuse limits).
            let _ = timeout(self.relay.config.timeouts.write.0, tcp.shutdown()).await;
            return Ok(());
        }
        let mut stream = match kind {
            ListenerKind::Implicit => Stream::Tls(Box::new(Box::pin(self.handshake(tcp)).await?)),
            _ => Stream::Plain(tcp),
        };
        if let Some(refusal) = refusal {
            let write = self.relay.config.timeouts.write.0;
            let _ = timeout(write, stream.write_all(&refusal.to_line())).await;
            let _ = timeout(write, stream.shutdown()).await;
            return Ok(());
        }
        let tls = match &stream {
            Stream::Tls(s) => Some(self.tls_version(s)),
            Stream::Plain(_) => None,
        };
        let mut session = Session::new(
            Arc::clone(&self.relay.session),
            self.relay.budget.clone(),
            tls,
        );
        if let Some(gate) = &self.relay.gate {
            session.set_gate(Arc::clone(gate));
        }
        loop {
            let (used, step) = match catch_unwind(AssertUnwindSafe(|| session.process(&self.buf))) {
                Ok(progress) => progress,
                Err(_) => return self.fail(&mut stream).await,
            };
            self.buf.advance(used);
            if used > 0 && !matches!(session.wait(), Wait::Command { mid_line: true, .. }) {
                self.line_deadline = None;
            }
            while let Some(refused) = session.take_refused() {
                deliver::count_refused(&self.relay, refused.size, &refused.reply, refused.reason);
                // One line per message outcome, also when the session refused it itself.
                tracing::info!(
                    size = refused.size,
                    code = refused.reply.code(),
                    status = refused.reply.status().unwrap_or(""),
                    "message refused"
                );
            }
            match step {
                Step::NeedInput => {
                    self.flush(&mut stream, &mut session).await?;
                    match self.read(&mut stream, &mut session).await? {
                        Read::Data => {}
                        Read::TimedOut => {
                            tracing::info!(wait = ?session.wait(), "client timed out");
                            session.timed_out();
                        }
                        Read::Eof => {
                            if session.data_received().is_some() {
                                tracing::info!(
                                    "client disconnected during DATA; nothing was forwarded"
                                );
                            }
                            return Ok(());
                        }
                        Read::ShuttingDown => {
                            if session.data_received().is_some() {
                                tracing::info!("shutting down during DATA; nothing was forwarded");
                            }
                            session.shutting_down();
                        }
                    }
                }
                Step::Flush => self.flush(&mut stream, &mut session).await?,
                Step::WaitMemory => {
                    self.flush(&mut stream, &mut session).await?;
                    let waited = Box::pin(memory::wait(
                        &self.relay,
                        &mut session,
                        self.session_deadline,
                    ))
                    .await;
                    // The client was not allowed to send: not counted against its rate.
                    if let Some(data_started) = &mut self.data_started {
                        *data_started += waited;
                    }
                }
                Step::StartTls => {
                    self.flush(&mut stream, &mut session).await?;
                    // RFC 3207 §4.2, CVE-2011-0411: plaintext sent after STARTTLS is dropped.
                    self.buf.clear();
                    let Stream::Plain(tcp) = stream else {
                        return Err(io::Error::other("STARTTLS on a TLS stream"));
                    };
                    let tls = Box::pin(self.handshake(tcp)).await?;
                    let version = self.tls_version(&tls);
                    stream = Stream::Tls(Box::new(tls));
                    session.tls_established(version);
                }
                Step::Authenticate(request) => {
                    match Box::pin(authenticate::check(&self.relay, self.client_ip, request)).await
                    {
                        Some(outcome) => session.auth_finished(outcome),
                        None => session.shutting_down(),
                    }
                }
                Step::Deliver(delivery) => {
                    // Boxed, like every step that is not a read: the task of an idle session
                    // stays the size of its read loop (idle memory, not per-message CPU).
                    let source = Source {
                        kind: "smtp",
                        client_ip: self.client_ip,
                        tls: session.tls_version(),
                        helo: String::new(),
                        session_id: self.id.clone(),
                    };
                    match Box::pin(deliver::deliver(&self.relay, *delivery, source)).await {
                        Some(result) => session.delivered(result),
                        None => session.shutting_down(),
                    }
                }
                Step::Close => {
                    self.flush(&mut stream, &mut session).await?;
                    let _ = timeout(self.relay.config.timeouts.write.0, stream.shutdown()).await;
                    return Ok(());
                }
            }
        }
    }

    /// Waits for more input under the deadline that applies now.
    async fn read(&mut self, stream: &mut Stream, session: &mut Session) -> io::Result<Read> {
        let t = &self.relay.config.timeouts;
        let now = Instant::now();
        let wait = session.wait();
        let deadline = match wait {
            // The session asked for memory, not input; it never reads in this state.
            Wait::Memory => return Ok(Read::Data),
            Wait::Command { authenticated, .. } => {
                self.data_started = None;
                let idle = if authenticated {
                    t.command_authenticated.0
                } else {
                    t.command.0
                };
                *self.line_deadline.get_or_insert(now + idle)
            }
            Wait::Data => {
                self.line_deadline = None;
                let started = *self.data_started.get_or_insert(now);
                let elapsed = now - started;
                if elapsed > t.data_rate_grace.0 {
                    let received = session.data_received().unwrap_or(0) as f64;
                    if received < t.data_min_rate.0 as f64 * elapsed.as_secs_f64() {
                        return Ok(Read::TimedOut);
                    }
                }
                now + t.data_read.0
            }
        };
        let deadline = deadline.min(self.session_deadline);
        // Between messages (the session may stay idle for minutes) nothing of ours is held
        // while the client thinks: the read waits on rustls's buffer or the socket and only
        // then copies (see `read_into`). Inside a transaction the next command follows at
        // once, so a buffer is kept and read into directly.
        let idle_wait = session.is_idle() && self.buf.is_empty();
        let want = if wait == Wait::Data {
            DATA_BUFFER
        } else {
            COMMAND_BUFFER
        };
        if self.buf.is_empty() && (idle_wait || self.buf.capacity() > want) {
            self.buf = BytesMut::new();
        }
        if idle_wait {
            session.release_idle_buffers();
        }
        if !idle_wait && self.buf.capacity() - self.buf.len() < want / 2 {
            self.buf.reserve(want);
        }
        let shutdown = &self.relay.shutdown;
        // Draining closes a session between transactions; forcing closes any.
        let idle = session.is_idle() && self.buf.is_empty();
        // Biased: once draining, an idle session closes even if its next command is already
        // readable (otherwise a random pick could still answer it).
        let read = tokio::select! {
            biased;
            _ = shutdown.forced() => return Ok(Read::ShuttingDown),
            _ = shutdown.draining(), if idle => return Ok(Read::ShuttingDown),
            read = timeout_at(deadline, stream.read_into(&mut self.buf, !idle_wait)) => read,
        };
        match read {
            Err(_) => Ok(Read::TimedOut),
            Ok(Ok(0)) => Ok(Read::Eof),
            Ok(Ok(_)) => Ok(Read::Data),
            Ok(Err(e)) => Err(e),
        }
    }

    async fn flush(&self, stream: &mut Stream, session: &mut Session) -> io::Result<()> {
        if session.output().is_empty() {
            return Ok(());
        }
        let write = async {
            stream.write_all(session.output()).await?;
            stream.flush().await
        };
        timeout(self.relay.config.timeouts.write.0, write)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))??;
        session.clear_output();
        Ok(())
    }

    /// An `auto` listener: implicit TLS or STARTTLS from the client's first move; `None` after
    /// pre-greeting talk (answered `554 5.5.0` here) or a close.
    async fn detect(
        &self,
        tcp: &mut TcpStream,
        wait: Duration,
    ) -> io::Result<Option<ListenerKind>> {
        let first = detect::first_move(tcp, wait).await?;
        let (result, kind) = match first {
            FirstMove::Tls => ("tls", Some(ListenerKind::Implicit)),
            FirstMove::Silent => ("plaintext", Some(ListenerKind::Starttls)),
            FirstMove::Closed => ("closed", None),
            FirstMove::Talk => ("pregreet", None),
        };
        let metrics = &self.relay.metrics;
        metrics.auto_detect.with_label_values(&[result]).inc();
        if first == FirstMove::Talk {
            tracing::info!("refused: the client talked before the greeting");
            let write = self.relay.config.timeouts.write.0;
            let _ = timeout(write, tcp.write_all(&reply::PREGREET.to_line())).await;
            let _ = timeout(write, tcp.shutdown()).await;
        }
        Ok(kind)
    }

    async fn handshake(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.relay.tls.config));
        let handshake = timeout(
            self.relay.config.timeouts.tls_handshake.0,
            acceptor.accept(tcp),
        );
        let result = tokio::select! {
            result = handshake => result,
            _ = self.relay.shutdown.forced() => {
                return Err(io::Error::other("shutting down during the TLS handshake"));
            }
        };
        let handshakes = &self.relay.metrics.tls_handshakes;
        match result {
            Ok(Ok(tls)) => {
                handshakes.with_label_values(&["ok"]).inc();
                Ok(tls)
            }
            Ok(Err(e)) => {
                handshakes.with_label_values(&["failed"]).inc();
                tracing::info!(error = %e, "TLS handshake failed");
                Err(e)
            }
            Err(_) => {
                handshakes.with_label_values(&["failed"]).inc();
                tracing::info!("TLS handshake timed out");
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            }
        }
    }

    fn tls_version(&self, tls: &TlsStream<TcpStream>) -> &'static str {
        let version = version_name(tls.get_ref().1.protocol_version());
        tracing::Span::current().record("tls", version);
        self.relay
            .metrics
            .tls_versions
            .with_label_values(&[version])
            .inc();
        version
    }

    /// A bug in the session: this client gets `421 4.3.0`, everyone else carries on (RES-09).
    async fn fail(&self, stream: &mut Stream) -> io::Result<()> {
        tracing::error!("session panicked; closing this connection");
        let line = reply::INTERNAL_FAILURE.to_line();
        let _ = timeout(self.relay.config.timeouts.write.0, stream.write_all(&line)).await;
        Ok(())
    }
}
