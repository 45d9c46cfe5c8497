//! The HTTP surface: one axum router on one listener. Handlers are thin: they translate HTTP
//! to the domain call and back, and own no behaviour of their own.

mod api;
mod auth;
pub mod edge;
mod error;
mod health;
mod hooks;
mod lectures;
mod recordings;
mod subscriptions;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::clock::Clock;
use crate::config::Secret;
use crate::ingest::CanvasIngest;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tasks::TaskHealth;
pub use error::ApiError;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// The service's clock (for lag figures and timestamps).
    pub clock: Arc<dyn Clock>,
    /// Background tasks that ended before shutdown make `/readyz` fail.
    pub tasks: Arc<TaskHealth>,
    pub canvas: Arc<CanvasIngest>,
    pub max_body_bytes: usize,
    /// The bootstrap admin token for `/api/v1/*` (`api.token`); empty: only tokens made with
    /// `coursewire tokens add` are taken.
    pub api_token: Secret,
    /// Longest long poll on `/api/v1/events`.
    pub api_max_wait: Duration,
    /// One slot per long poll allowed to wait at once (`api.max_long_polls`).
    pub long_polls: Arc<tokio::sync::Semaphore>,
    /// Signalled when this process appends to the outbox (long polls wake on it).
    pub appended: Option<crate::wake::Waiter>,
    /// When the scrape-time gauges were last read from the store (`/metrics`).
    pub metrics_read: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// What subscriptions made through the API are held to (schedules, targets, per-token cap).
    pub subscription_limits: Arc<crate::bus::delivery::admin::Limits>,
    /// The Canvas API client of this process (the reconciler's), for token health.
    pub canvas_api: Option<canvas::client::CanvasClient>,
    /// The Panopto API client of this process (the poller's), for token and budget health.
    pub panopto_api: Option<panopto::client::PanoptoClient>,
    /// The university's time zone (what "today" means for lectures).
    pub zone: chrono_tz::Tz,
}

/// Every route; `/metrics` too unless it has a listener of its own ([`metrics_router`]).
pub fn router(state: AppState, with_metrics: bool) -> Router {
    let hooks = Router::new()
        .route("/hooks/canvas", post(hooks::canvas))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));
    let mut router = Router::new()
        .merge(hooks)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if with_metrics {
        router = router.route("/metrics", get(health::metrics));
    }
    router
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/status", get(health::status))
        .route(
            "/api/v1/subscriptions",
            get(subscriptions::list).post(subscriptions::add),
        )
        .route(
            "/api/v1/subscriptions/{name}",
            get(subscriptions::show).delete(subscriptions::remove),
        )
        .route(
            "/api/v1/subscriptions/{name}/events",
            get(subscriptions::events),
        )
        .route(
            "/api/v1/subscriptions/{name}/{action}",
            post(subscriptions::act),
        )
        .route("/api/v1/rooms", get(lectures::rooms))
        .route("/api/v1/meetings", get(lectures::meetings))
        .route("/api/v1/recordings", get(recordings::list))
        .route("/api/v1/recordings/{id}", get(recordings::show))
        .route("/api/v1/recordings/{id}/{action}", post(recordings::act))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::add))
        .route("/api/v1/tokens/{name}", delete(tokens::revoke))
        .with_state(state)
}

/// `/metrics` (and `/healthz`) alone, for `server.metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}
