//! Liveness, readiness and metrics for the on-call engineer and the orchestrator.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to take traffic: the store answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "store": state.store.backend()}))
            .into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not_ready", "store": err.to_string()})),
        )
            .into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.store.inbox_depth().await {
        Ok(depth) => state.metrics.set_inbox_depth(&depth),
        Err(err) => tracing::warn!(error = %err, "inbox depth unavailable for /metrics"),
    }
    match state.store.delivery_backlog().await {
        Ok(backlog) => state
            .metrics
            .set_delivery_lag(&backlog, chrono::Utc::now().timestamp_millis()),
        Err(err) => tracing::warn!(error = %err, "delivery backlog unavailable for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
