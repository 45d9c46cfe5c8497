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

/// Ready to take traffic: the store answers, every background task is running, and the
/// Canvas token (if any) is not revoked.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await;
    // A refused token or grant cannot heal by itself: an operator must re-authorise, so the
    // instance reports not ready (the reconciler and workflow writes are stopped).
    let token = state.canvas_api.as_ref().map(|c| c.tokens().health());
    let revoked = token.as_ref().is_some_and(|t| t.revoked);
    // A task that died leaves its work undone until the process is restarted.
    let dead = state.tasks.dead();
    let ready = store.is_ok() && !revoked && dead.is_empty();
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": match &store {
            Ok(()) => state.store.backend().to_owned(),
            Err(err) => err.to_string(),
        },
    });
    if !dead.is_empty() {
        body["dead_tasks"] = serde_json::json!(dead);
    }
    if let Some(token) = token {
        body["canvas_token"] = serde_json::json!({
            "revoked": token.revoked,
            "seconds_to_expiry": token.seconds_to_expiry,
            "refresh_failures": token.refresh_failures,
        });
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(client) = &state.canvas_api {
        state.metrics.set_canvas_api(client);
    }
    match state.store.inbox_depth().await {
        Ok(depth) => state.metrics.set_inbox_depth(&depth),
        Err(err) => tracing::warn!(error = %err, "inbox depth unavailable for /metrics"),
    }
    match state.store.delivery_backlog().await {
        Ok(backlog) => state
            .metrics
            .set_delivery_lag(&backlog, state.clock.now_ms()),
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
