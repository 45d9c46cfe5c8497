//! Liveness, readiness and metrics for the on-call engineer and the orchestrator.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::time::Duration;

use super::AppState;
use super::auth::ApiCaller;
use super::error::ApiError;

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// How long the readiness probe waits for the write lock before it calls the inbox stuck.
const WRITABLE_WITHIN: Duration = Duration::from_secs(2);

/// What readiness found: whether this instance can take events.
struct Readiness {
    /// The store would take a write now, and the last inbox commit succeeded.
    inbox_writable: bool,
    /// Background tasks that ended before shutdown.
    dead_tasks: Vec<String>,
}

impl Readiness {
    async fn check(state: &AppState) -> Self {
        let probe = tokio::time::timeout(WRITABLE_WITHIN, state.store.check_writable()).await;
        let writable = match probe {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: the store cannot take a write");
                false
            }
            Err(_) => {
                tracing::warn!("readiness: no write lock within {WRITABLE_WITHIN:?}");
                false
            }
        };
        Readiness {
            inbox_writable: writable && state.canvas.writer().committing(),
            dead_tasks: state.tasks.dead(),
        }
    }

    fn ready(&self) -> bool {
        self.inbox_writable && self.dead_tasks.is_empty()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "status": if self.ready() { "ready" } else { "not_ready" },
            "inbox": if self.inbox_writable { "writable" } else { "cannot write" },
            "dead_tasks": self.dead_tasks,
        })
    }
}

/// Ready to take events: the inbox can be written and every background task is running.
/// Nothing else takes an instance out of the load balancer: a revoked Canvas token or an
/// unreachable subscriber does not stop Live Events from being stored, and is reported by
/// `/metrics` and `GET /api/v1/status`. Unauthenticated, so it never shows error text.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = Readiness::check(&state).await;
    let status = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness.summary())).into_response()
}

/// `GET /api/v1/status` (admin and operator tokens): readiness with its detail, and the
/// health of each integration.
pub async fn status(
    caller: ApiCaller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    caller.allow(
        caller.grant.may_see_operations(),
        "read the instance's status",
    )?;
    let readiness = Readiness::check(&state).await;
    let mut body = readiness.summary();
    body["store"] = state.store.backend().into();
    body["canvas_token"] = match state.canvas_api.as_ref().map(|c| c.tokens().health()) {
        Some(token) => serde_json::json!({
            "revoked": token.revoked,
            "seconds_to_expiry": token.seconds_to_expiry,
            "refresh_failures": token.refresh_failures,
        }),
        None => serde_json::Value::Null,
    };
    body["panopto"] = match &state.panopto_api {
        Some(client) => {
            let token = client.tokens().health();
            let poller = state
                .store
                .panopto_poller(crate::sources::panopto::POLLER)
                .await?;
            let now = state.clock.now_ms();
            serde_json::json!({
                "token": {
                    "revoked": token.revoked,
                    "seconds_to_expiry": token.seconds_to_expiry,
                    "revocations": token.revocations,
                    "failures": token.failures,
                },
                "throttled": client.counts().throttled,
                "poller": poller.map(|p| serde_json::json!({
                    "cursor": p.cursor,
                    "polls": p.polls,
                    "last_error": p.last_error,
                    // How long since a poll succeeded: a stale poller is visible here.
                    "seconds_since_success": p.last_success_at_ms.map(|t| (now - t) / 1000),
                })),
            })
        }
        None => serde_json::Value::Null,
    };
    body["subscriptions_disabled"] = state
        .store
        .subscriptions()
        .await?
        .iter()
        .filter(|s| s.disabled_at_ms.is_some())
        .map(|s| s.name.clone())
        .collect::<Vec<_>>()
        .into();
    Ok(Json(body).into_response())
}

/// The store is read for the scrape-time gauges (inbox depth, delivery lag) at most this
/// often, however often Prometheus scrapes: a scrape every second costs no more than one
/// every five.
const STORE_GAUGES_EVERY: Duration = Duration::from_secs(5);

pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(client) = &state.canvas_api {
        state.metrics.set_canvas_api(client);
    }
    if let Some(client) = &state.panopto_api {
        state.metrics.set_panopto_api(client);
    }
    if take_turn(&state) {
        read_store_gauges(&state).await;
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

/// Whether this scrape reads the store (the last read is older than [`STORE_GAUGES_EVERY`]).
fn take_turn(state: &AppState) -> bool {
    let mut last = match state.metrics_read.lock() {
        Ok(last) => last,
        Err(poisoned) => poisoned.into_inner(),
    };
    let now = std::time::Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < STORE_GAUGES_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

async fn read_store_gauges(state: &AppState) {
    match (
        state.store.workflow_state_counts().await,
        state.store.command_counts().await,
    ) {
        (Ok(states), Ok(commands)) => state.metrics.set_workflow(&states, &commands),
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(error = %err, "workflow counts unavailable for /metrics")
        }
    }
    let day_ago = state.clock.now_ms() - 24 * 3_600_000;
    match (
        state.store.post_latencies(day_ago).await,
        state.store.drift_found().await,
    ) {
        (Ok(latencies), Ok(drift)) => state.metrics.set_workflow_timings(&latencies, drift),
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(error = %err, "workflow timings unavailable for /metrics")
        }
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
    if let Some(client) = &state.panopto_api {
        match client.pacer().headroom().await {
            Ok(h) => state.metrics.set_panopto_budget(&h),
            Err(err) => tracing::warn!(error = %err, "Panopto budget unavailable for /metrics"),
        }
    }
}
