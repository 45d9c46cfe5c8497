//! `/api/v1/*`: the JSON API for downstream systems, behind a bearer token (`api.token`).
//!
//! `GET /api/v1/events?after=POSITION&limit=N&wait=SECONDS` is the pull side of the change-event
//! bus: events with an outbox position above `after`, in position order, and the cursor to
//! pass next time. With `wait`, an empty answer is held back (long poll) until an event arrives
//! or the wait ends. Positions are handed out in commit order (see the PostgreSQL processing
//! store), so a cursor never skips an event that committed late.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;

/// How often a long poll looks again: cheap (one indexed query) and works across processes.
const LONG_POLL_STEP: Duration = Duration::from_millis(100);
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    pub(super) after: i64,
    pub(super) limit: Option<i64>,
    #[serde(default)]
    pub(super) wait: u64,
}

pub(super) fn unauthorized(detail: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": detail })),
    )
        .into_response()
}

/// Constant-time comparison, so response timing does not reveal how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Ok` when the request carries the configured bearer token, else why not.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), &'static str> {
    if state.api_token.is_empty() {
        return Err("the API is disabled: set api.token");
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if same_secret(token.as_bytes(), state.api_token.expose().as_bytes()) => Ok(()),
        Some(_) => Err("invalid token"),
        None => Err("missing bearer token"),
    }
}

#[tracing::instrument(name = "api.events", skip_all, fields(after = query.after))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    match long_poll(&state, &query, &[]).await {
        Ok(page) => Json(page).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "change events unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "store unavailable" })),
            )
                .into_response()
        }
    }
}

/// Change events scanned per look at most, however few of them `types` selects.
const SCAN: i64 = 1000;

/// A page of the change events after `query.after` that `types` selects (all when empty),
/// waiting up to `query.wait` seconds (at most `api.max_wait_seconds`) while there are none:
/// `{events, next_after}`. `next_after` is past events `types` does not select too, so a
/// reader never scans them again.
pub(super) async fn long_poll(
    state: &AppState,
    query: &EventsQuery,
    types: &[String],
) -> crate::store::StoreResult<serde_json::Value> {
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT) as usize;
    let wait = Duration::from_secs(query.wait.min(state.api_max_wait.as_secs()));
    let deadline = tokio::time::Instant::now() + wait;
    // Without a filter every row is wanted: read no more than the page.
    let scan = if types.is_empty() { limit as i64 } else { SCAN };
    let mut cursor = query.after;
    loop {
        let mut events = Vec::new();
        for row in state.store.change_events_after(cursor, scan).await? {
            if events.len() == limit {
                break;
            }
            cursor = row.position;
            if crate::bus::delivery::filter::wants(types, &row.r#type) {
                events.push(row.event);
            }
        }
        if !events.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(json!({ "events": events, "next_after": cursor }));
        }
        tokio::time::sleep(LONG_POLL_STEP).await;
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
