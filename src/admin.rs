//! The admin HTTP endpoint, on its own listener (default loopback): `/healthz` (200 while the
//! process runs), `/readyz` (200 when every listener is bound and the relay is not draining,
//! else 503), `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::memory::budget::MemoryBudget;
use crate::metrics::Metrics;
use crate::server::Shutdown;

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    budget: MemoryBudget,
}

/// Binds the admin listener; the error names the setting.
pub async fn bind(
    address: SocketAddr,
) -> Result<tokio::net::TcpListener, crate::config::ConfigError> {
    tokio::net::TcpListener::bind(address).await.map_err(|e| {
        crate::config::ConfigError::new("admin.address", format!("cannot listen on {address}: {e}"))
    })
}

/// Serves the endpoint until the relay is forced to stop.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    budget: MemoryBudget,
) {
    let state = AdminState {
        metrics,
        shutdown: shutdown.clone(),
        budget,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let stop = async move { shutdown.forced().await };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "admin endpoint stopped");
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.shutdown.is_ready() {
        (StatusCode::OK, "ready\n")
    } else if state.shutdown.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    state.metrics.memory_used.set(state.budget.used() as i64);
    state.metrics.memory_budget.set(state.budget.limit() as i64);
    state
        .metrics
        .ready
        .set(i64::from(state.shutdown.is_ready()));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
