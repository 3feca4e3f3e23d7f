//! Prometheus metrics (text exposition format on the admin endpoint's `/metrics`).
//!
//! Labels only ever carry fixed words (listener kind and port, result, class, reason): never
//! a key, an address, a subject or anything else a client chooses.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the relay exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Connections accepted, by listener.
    pub connections: IntCounterVec,
    /// Connections open now, by listener.
    pub sessions: IntGaugeVec,
    /// Connections refused, by reason.
    pub rejected: IntCounterVec,
    /// TLS handshakes by result (`ok`, `failed`).
    pub tls_handshakes: IntCounterVec,
    /// AUTH outcomes (`ok`, `failed`, `temp_failed`).
    pub auth: IntCounterVec,
    /// Messages accepted (`250` after the upstream took them).
    pub accepted: IntCounter,
    /// Messages refused after DATA, by reply class and reason.
    pub refused: IntCounterVec,
    /// Message bytes received (un-stuffed), accepted or not.
    pub received_bytes: IntCounter,
    /// Upstream requests by outcome (`2xx`, `4xx`, `5xx`, `3xx`, `error`, `timeout`, `written`).
    pub upstream_requests: IntCounterVec,
    /// Upstream latency in seconds.
    pub upstream_latency: Histogram,
    /// Size of received messages in bytes.
    pub message_size: Histogram,
    /// Message bytes held in memory now.
    pub memory_used: IntGauge,
    /// Sessions that stopped reading because the memory budget was spent, by outcome
    /// (`granted` after a wait, `timeout`: `452 4.3.1`).
    pub memory_waits: IntCounterVec,
    /// Messages handed to the upstream without an Idempotency-Key: neither a top-level
    /// `Message-ID` nor a `Date` (docs/upstream.md), so a resend is a new message.
    pub without_identity: IntCounter,
    /// `MAIL FROM` answered `451 4.7.1` at once because the API had just refused the key
    /// (`rate_limited`, a 429) or the key and sender domain (`sender_refused`, a 403).
    pub early_refusals: IntCounterVec,
    /// `auto` listeners: what the client's first move was (`tls`, `plaintext` after
    /// `auto_detect` of silence, `pregreet`: talk before the greeting, `closed`).
    pub auto_detect: IntCounterVec,
    /// TLS sessions established, by protocol version (`TLSv1.3`, `TLSv1.2`).
    pub tls_versions: IntCounterVec,
    /// The memory budget (`limits.memory_budget` or its default), for the used/limit ratio.
    pub memory_budget: IntGauge,
    /// 1 while `/readyz` answers 200 (listening, not draining), else 0.
    pub ready: IntGauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("sendpigeon_relay".into()), None).unwrap_or_default();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable(name, e));
            let _ = registry.register(Box::new(m.clone()));
            m
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable(name, e));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable(name, e));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let connections = counter_vec("connections_total", "Connections accepted.", &["listener"]);
        let rejected = counter_vec(
            "connections_rejected_total",
            "Connections refused before a session, by reason.",
            &["reason"],
        );
        let tls_handshakes = counter_vec("tls_handshakes_total", "TLS handshakes.", &["result"]);
        let auth = counter_vec("auth_total", "AUTH attempts by outcome.", &["result"]);
        let refused = counter_vec(
            "messages_refused_total",
            "Messages refused at the end of DATA, by reply class and reason.",
            &["class", "reason"],
        );
        let upstream_requests = counter_vec(
            "upstream_requests_total",
            "Upstream deliveries by outcome (HTTP status class, error, timeout, written).",
            &["outcome"],
        );
        let memory_waits = counter_vec(
            "memory_waits_total",
            "Sessions that paused for the memory budget, by outcome (granted, timeout).",
            &["outcome"],
        );
        let early_refusals = counter_vec(
            "early_refusals_total",
            "MAIL FROM answered 451 at once after the API's 429 (rate_limited) or 403 (sender_refused).",
            &["reason"],
        );
        let auto_detect = counter_vec(
            "auto_detect_total",
            "Connections on auto listeners by the client's first move (tls, plaintext, pregreet, closed).",
            &["result"],
        );
        let tls_versions = counter_vec(
            "tls_versions_total",
            "TLS sessions established, by protocol version.",
            &["version"],
        );
        let memory_budget = gauge(
            "memory_budget_bytes",
            "The memory budget for message bytes (limits.memory_budget).",
        );
        let ready = gauge("ready", "1 while ready for traffic (/readyz 200), else 0.");
        // Known label values start at 0, so rates and alerts see them before the first event.
        let known: [(&IntCounterVec, &[&str]); 8] = [
            (
                &rejected,
                &[
                    "max_connections",
                    "per_ip",
                    "auth_cooldown",
                    "draining",
                    "untrusted_proxy",
                    "proxy_header",
                ],
            ),
            (&tls_handshakes, &["ok", "failed"]),
            (&auth, &["ok", "failed", "temp_failed"]),
            (
                &upstream_requests,
                &["2xx", "4xx", "5xx", "error", "timeout"],
            ),
            (&memory_waits, &["granted", "timeout"]),
            (&early_refusals, &["rate_limited", "sender_refused"]),
            (&auto_detect, &["tls", "plaintext", "pregreet", "closed"]),
            (&tls_versions, &["TLSv1.3", "TLSv1.2"]),
        ];
        for (counter, values) in known {
            for value in values {
                counter.with_label_values(&[value]);
            }
        }
        let sessions = IntGaugeVec::new(
            Opts::new("sessions", "Sessions open now, by listener."),
            &["listener"],
        )
        .unwrap_or_else(|e| unreachable("sessions", e));
        let _ = registry.register(Box::new(sessions.clone()));
        let accepted = counter("messages_accepted_total", "Messages accepted (250).");
        let received_bytes = counter("received_bytes_total", "Message bytes received.");
        let memory_used = gauge(
            "memory_budget_used_bytes",
            "Message bytes held in memory across sessions.",
        );
        let without_identity = counter(
            "messages_without_identity_total",
            "Messages sent without an Idempotency-Key: no Message-ID and no Date.",
        );
        let upstream_latency = Histogram::with_opts(
            HistogramOpts::new("upstream_latency_seconds", "Upstream delivery latency.").buckets(
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            ),
        )
        .unwrap_or_else(|e| unreachable("upstream_latency_seconds", e));
        let _ = registry.register(Box::new(upstream_latency.clone()));
        let message_size = Histogram::with_opts(
            HistogramOpts::new("message_size_bytes", "Size of received messages.").buckets(vec![
                1024.0,
                4096.0,
                16384.0,
                65536.0,
                262_144.0,
                1_048_576.0,
                4_194_304.0,
                10_485_760.0,
                26_214_400.0,
            ]),
        )
        .unwrap_or_else(|e| unreachable("message_size_bytes", e));
        let _ = registry.register(Box::new(message_size.clone()));
        Metrics {
            registry,
            connections,
            sessions,
            rejected,
            tls_handshakes,
            auth,
            accepted,
            refused,
            received_bytes,
            upstream_requests,
            upstream_latency,
            message_size,
            memory_used,
            memory_waits,
            without_identity,
            early_refusals,
            auto_detect,
            tls_versions,
            memory_budget,
            ready,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Metric definitions are constants: a failure here is a bug caught by the first test run.
fn unreachable<T>(name: &str, e: prometheus::Error) -> T {
    panic!("metric {name} is malformed: {e}")
}
