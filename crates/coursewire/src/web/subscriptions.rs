//! `/api/v1/subscriptions`: manage push subscriptions over HTTP, behind the same bearer token
//! as the rest of `/api/v1` (see [`super::api::authorize`]).
//!
//! * `GET /api/v1/subscriptions` — every subscription (secrets never shown).
//! * `POST /api/v1/subscriptions` — `{name, url, secret?, types?, retry_schedule_ms?,
//!   on_exhausted?, start?}` (`start`: `beginning`, the default, or `now`); answers 201 with
//!   the subscription and its secret (shown this once).
//! * `GET`/`DELETE /api/v1/subscriptions/{name}`.
//! * `POST /api/v1/subscriptions/{name}/{pause|resume|retry}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::api::{authorize, unauthorized};
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
    match state.store.subscription(&name).await {
        Ok(Some(subscription)) => Json(subscription).into_response(),
        Ok(None) => admin_error(AdminError::NotFound(name)),
        Err(err) => admin_error(err.into()),
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
