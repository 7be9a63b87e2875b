//! Operations over HTTP, on `--http-listen` (default 127.0.0.1:6545):
//!
//! - `GET /health`: 200 `ok` while the process serves (liveness);
//! - `GET /ready`: 200 with each source's health as JSON once the config is loaded and
//!   the engine is up, 503 while the server drains for a stop (readiness: a load
//!   balancer stops sending new clients). A department's source that is down does not
//!   make Amar unready — the other sources still answer — but shows as unhealthy;
//! - `GET /metrics`: Prometheus metrics in the OpenMetrics text format.
//!
//! It serves no data and needs no login: bind it to an address only the monitoring
//! network reaches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

/// What the handlers share.
#[derive(Clone)]
struct Ops {
    engine: Arc<Engine>,
    draining: Arc<AtomicBool>,
}

/// Serves the operations endpoints until `shutdown` is cancelled. `draining` turns
/// `/ready` to 503.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    draining: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Ops { engine, draining });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!("the HTTP operations endpoint stopped: {e}");
    }
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    let mut sources = vec![];
    for schema in ops.engine.catalog().sources() {
        let source = schema.source();
        let health = source.health().await;
        sources.push(serde_json::json!({
            "name": source.name(),
            "kind": source.kind(),
            "healthy": health.ok,
            "message": health.message,
            "latency_ms": health.latency.as_secs_f64() * 1000.0,
        }));
    }
    let draining = ops.draining.load(Ordering::Relaxed);
    let body = serde_json::json!({
        "ready": !draining,
        "draining": draining,
        "uptime_s": ops.engine.uptime().as_secs(),
        "sources": sources,
    });
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let text = ops.engine.metrics().render(&ops.engine).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
