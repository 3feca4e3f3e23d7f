//! One connection: the driver loop that feeds the sans-IO session, performs its steps
//! (TLS handshake, key check, delivery) and enforces every deadline.
//!
//! Deadlines (spec smtp.md "Timeouts"): a whole command line must arrive within the command
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
use std::time::SystemTime;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Duration, Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::Instrument;

use super::stream::Stream;
use super::tls::version_name;
use super::{ListenerInfo, Refusal, Relay};
use super::{memory, proxy};
use crate::config::ListenerKind;
use crate::message::Source;
use crate::pipeline::Submission;
use crate::smtp::reply::{self, Reply};
use crate::smtp::{AuthOutcome, Delivery, Session, Step, Wait};

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
            Err(Refusal::TooManyConnections) => {
                relay.metrics.rejected.with_label_values(&["per_ip"]).inc();
                tracing::info!("refused: limits.connections_per_ip reached");
                Some(reply::TOO_MANY_FROM_ADDRESS)
            }
            Err(Refusal::CoolingDown) => {
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
        match conn.serve(tcp, listener.kind, refusal).await {
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
        tcp: TcpStream,
        kind: ListenerKind,
        refusal: Option<Reply>,
    ) -> io::Result<()> {
        let mut stream = match kind {
            ListenerKind::Starttls => Stream::Plain(tcp),
            ListenerKind::Implicit => Stream::Tls(Box::new(Box::pin(self.handshake(tcp)).await?)),
        };
        if let Some(refusal) = refusal {
            let _ = timeout(Duration::from_secs(5), stream.write_all(&refusal.to_line())).await;
            let _ = timeout(Duration::from_secs(1), stream.shutdown()).await;
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
        loop {
            let (used, step) = match catch_unwind(AssertUnwindSafe(|| session.process(&self.buf))) {
                Ok(progress) => progress,
                Err(_) => return self.fail(&mut stream).await,
            };
            self.buf.advance(used);
            if used > 0 && !matches!(session.wait(), Wait::Command { mid_line: true, .. }) {
                self.line_deadline = None;
            }
            if let Some(refused) = session.take_refused() {
                self.count_refused(refused.size, &refused.reply);
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
                    let verify = async {
                        match &request.key {
                            Some(key) => self.relay.authenticator.verify(key).await,
                            None => AuthOutcome::Invalid,
                        }
                    };
                    let outcome = tokio::select! {
                        outcome = Box::pin(verify) => outcome,
                        _ = self.relay.shutdown.forced() => {
                            session.shutting_down();
                            continue;
                        }
                    };
                    let result = match outcome {
                        AuthOutcome::Valid => "ok",
                        AuthOutcome::Invalid => "failed",
                        AuthOutcome::Unavailable => "temp_failed",
                    };
                    self.relay.metrics.auth.with_label_values(&[result]).inc();
                    match (&outcome, &request.key) {
                        (AuthOutcome::Valid, Some(key)) => {
                            tracing::Span::current().record("key", key.fingerprint());
                            tracing::info!("authenticated");
                        }
                        (AuthOutcome::Unavailable, _) => tracing::warn!("key check unavailable"),
                        _ => {
                            tracing::info!("authentication failed");
                            if self.relay.abuse.auth_failed(self.client_ip) {
                                tracing::warn!(
                                    "too many AUTH failures from this address: cool-down starts"
                                );
                            }
                            // Same delay whichever part was wrong (AUTH-09), slows guessing.
                            tokio::time::sleep(self.relay.config.auth.failure_delay.0).await;
                        }
                    }
                    session.auth_finished(outcome);
                }
                Step::Deliver(delivery) => {
                    // Boxed, like every step that is not a read: the task of an idle session
                    // stays the size of its read loop (idle memory, not per-message CPU).
                    match Box::pin(self.deliver(*delivery, session.tls_version())).await {
                        Some(result) => session.delivered(result),
                        None => session.shutting_down(),
                    }
                }
                Step::Close => {
                    self.flush(&mut stream, &mut session).await?;
                    let _ = timeout(Duration::from_secs(1), stream.shutdown()).await;
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
        version
    }

    /// Hands the message to the upstream. `None` when the relay was forced to stop first:
    /// the message is then never answered `250`.
    async fn deliver(
        &self,
        d: Delivery,
        tls: Option<&'static str>,
    ) -> Option<Result<String, Reply>> {
        let started = Instant::now();
        let (size, recipients) = (d.message.len(), d.envelope.rcpt_to.len());
        let submission = Submission {
            envelope: d.envelope,
            message: d.message,
            reservation: d.reservation,
            key: d.key,
            source: Source {
                kind: "smtp",
                client_ip: self.client_ip,
                tls,
                helo: d.helo,
                session_id: self.id.clone(),
            },
            request_id: format!("{}.{}", self.id, d.transaction),
            received_at: SystemTime::now(),
        };
        let metrics = &self.relay.metrics;
        let upstream = timeout(
            self.relay.config.timeouts.upstream.0,
            self.relay.upstream.deliver(submission),
        );
        let outcome = tokio::select! {
            outcome = upstream => outcome,
            _ = self.relay.shutdown.forced() => {
                tracing::warn!(size, recipients, "shutting down during the upstream call: 421, not 250");
                metrics.refused.with_label_values(&["4xx", "shutdown"]).inc();
                return None;
            }
        };
        let elapsed = started.elapsed();
        let result = match outcome {
            Ok(Ok(accepted)) => {
                metrics
                    .upstream_requests
                    .with_label_values(&[accepted.outcome])
                    .inc();
                metrics.upstream_latency.observe(elapsed.as_secs_f64());
                Ok(accepted.id)
            }
            Ok(Err(e)) => {
                if let Some(outcome) = e.outcome {
                    metrics
                        .upstream_requests
                        .with_label_values(&[outcome])
                        .inc();
                    metrics.upstream_latency.observe(elapsed.as_secs_f64());
                }
                tracing::warn!(detail = %e.detail, "message not accepted");
                Err(e.reply)
            }
            Err(_) => {
                metrics
                    .upstream_requests
                    .with_label_values(&["timeout"])
                    .inc();
                Err(reply::UPSTREAM_TIMEOUT)
            }
        };
        let duration_ms = elapsed.as_millis() as u64;
        match &result {
            Ok(id) => {
                metrics.accepted.inc();
                metrics.received_bytes.inc_by(size as u64);
                metrics.message_size.observe(size as f64);
                tracing::info!(%id, size, recipients, code = 250, duration_ms, "message accepted");
            }
            Err(r) => {
                self.count_refused(size, r);
                tracing::info!(
                    size,
                    recipients,
                    code = r.code(),
                    status = r.status().unwrap_or(""),
                    duration_ms,
                    "message refused"
                );
            }
        }
        Some(result)
    }

    /// Counts a message refused at the end of DATA, by reply class and a coarse reason.
    fn count_refused(&self, size: usize, reply: &Reply) {
        let m = &self.relay.metrics;
        m.received_bytes.inc_by(size as u64);
        m.message_size.observe(size as f64);
        let class = if reply.is_transient() { "4xx" } else { "5xx" };
        let reason = match (reply.code(), reply.status().unwrap_or("")) {
            (552, _) => "size",
            (550, "5.5.2") => "bare_line_ending",
            (452, "4.3.1") => "memory",
            (_, "5.6.0") | (_, "5.4.6") => "content",
            (451, "4.3.0") => "internal",
            _ => "upstream",
        };
        m.refused.with_label_values(&[class, reason]).inc();
    }

    /// A bug in the session: this client gets `421 4.3.0`, everyone else carries on (RES-09).
    async fn fail(&self, stream: &mut Stream) -> io::Result<()> {
        tracing::error!("session panicked; closing this connection");
        let line = reply::INTERNAL_FAILURE.to_line();
        let _ = timeout(Duration::from_secs(5), stream.write_all(&line)).await;
        Ok(())
    }
}
