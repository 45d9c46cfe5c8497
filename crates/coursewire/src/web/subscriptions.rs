//! `/api/v1/subscriptions`: manage push subscriptions over HTTP, behind the same bearer token
//! as the rest of `/api/v1` (see [`super::api::authorize`]).
//!
//! * `GET /api/v1/subscriptions` — every subscription (secrets never shown).
//! * `POST /api/v1/subscriptions` — `{name, url, secret?, types?, retry_schedule_ms?,
//!   on_exhausted?, start?}` (`start`: `beginning`, the default, or `now`); answers 201 with
//!   the subscription and its secret (shown this once).
//! * `GET /api/v1/subscriptions/{name}` — the subscription and where its delivery stands
//!   (`cursor`, `lag_seconds`, `failing_subjects`, `dead_letters`); `DELETE` removes it.
//! * `POST /api/v1/subscriptions/{name}/{pause|resume|retry}`.
//! * `GET /api/v1/subscriptions/{name}/events?after=CURSOR&limit=N&wait=SECONDS` — the pull
//!   API: the change events after the cursor that the subscription's types select, waiting
//!   up to `wait` seconds (at most `api.max_wait_seconds`) while there are none; answers
//!   `{events, next_after}`. For a pull-only subscription (no `url`) asking for what comes
//!   after a cursor acknowledges everything up to it, which is what its lag metric counts.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::api::{EventsQuery, authorize, long_poll, unauthorized};
use crate::bus::delivery::admin::{self, AddRequest, AdminError};

fn error(status: StatusCode, detail: impl ToString) -> Response {
    (status, Json(json!({ "error": detail.to_string() }))).into_response()
}

fn admin_error(err: AdminError) -> Response {
    match err {
        AdminError::Invalid(_) => error(StatusCode::UNPROCESSABLE_ENTITY, err),
        AdminError::Exists(_) => error(StatusCode::CONFLICT, err),
        AdminError::NotFound(_) => error(StatusCode::NOT_FOUND, err),
        AdminError::Store(store) => {
            tracing::error!(error = %store, "subscriptions: store error");
            error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    match state.store.subscriptions().await {
        Ok(all) => Json(json!({ "subscriptions": all })).into_response(),
        Err(err) => admin_error(err.into()),
    }
}

pub async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AddRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let now = chrono::Utc::now().timestamp_millis();
    match admin::add(
        state.store.as_ref(),
        request,
        &state.default_retry_schedule_ms,
        now,
    )
    .await
    {
        Ok(added) => (StatusCode::CREATED, Json(added)).into_response(),
        Err(err) => admin_error(err),
    }
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    let now = chrono::Utc::now().timestamp_millis();
    match admin::status(state.store.as_ref(), &name, now).await {
        Ok(status) => Json(status).into_response(),
        Err(err) => admin_error(err),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    match state.store.remove_subscription(&name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => admin_error(AdminError::NotFound(name)),
        Err(err) => admin_error(err.into()),
    }
}

pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    let result = match action.as_str() {
        "pause" | "resume" => state
            .store
            .set_paused(&name, action == "pause")
            .await
            .map(|found| found.then(|| json!({ "name": name, "paused": action == "pause" }))),
        "retry" => state
            .store
            .retry_subscription(&name)
            .await
            .map(|counts| counts.map(|c| json!({ "name": name, "retried": c }))),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "action must be pause, resume or retry",
            );
        }
    };
    match result {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => admin_error(AdminError::NotFound(name)),
        Err(err) => admin_error(err.into()),
    }
}

pub async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    if let Err(why) = authorize(&state, &headers) {
        return unauthorized(why);
    }
    if query.after < 0 {
        return error(StatusCode::BAD_REQUEST, "after must not be negative");
    }
    let subscription = match state.store.subscription(&name).await {
        Ok(Some(subscription)) => subscription,
        Ok(None) => return admin_error(AdminError::NotFound(name)),
        Err(err) => return admin_error(err.into()),
    };
    if !subscription.pushes()
        && let Err(err) = state
            .store
            .acknowledge_pull(subscription.id, query.after)
            .await
    {
        return admin_error(err.into());
    }
    match long_poll(&state, &query, &subscription.types).await {
        Ok(page) => Json(page).into_response(),
        Err(err) => admin_error(err.into()),
    }
}
