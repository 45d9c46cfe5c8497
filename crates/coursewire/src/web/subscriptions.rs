//! `/api/v1/subscriptions`: manage push subscriptions over HTTP, behind the same bearer tokens
//! as the rest of `/api/v1` (see [`super::auth`]). Admin and operator tokens may do
//! everything here; a consumer token sees only the subscriptions it was given, and may read
//! their status and events but change nothing (403).
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
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::api::EventsQuery;
use super::auth::ApiCaller;
use super::error::ApiError;
use crate::bus::delivery::admin::{self, AddRequest, Added};
use crate::bus::pull::Page;
use crate::store::Subscription;

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no subscription named {name:?}"))
}

pub async fn list(
    caller: ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let mut all: Vec<Subscription> = state.store.subscriptions().await?;
    all.retain(|s| caller.grant.may_read_subscription(&s.name));
    Ok(Json(json!({ "subscriptions": all })))
}

fn may_change(caller: &ApiCaller) -> Result<(), ApiError> {
    caller.allow(
        caller.grant.may_manage_subscriptions(),
        "create, change or remove subscriptions",
    )
}

fn may_read(caller: &ApiCaller, name: &str) -> Result<(), ApiError> {
    caller.allow(
        caller.grant.may_read_subscription(name),
        "read a subscription it was not given",
    )
}

pub async fn add(
    caller: ApiCaller,
    State(state): State<AppState>,
    body: Result<Json<AddRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Added>), ApiError> {
    may_change(&caller)?;
    let Json(mut request) =
        body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    request.created_by = caller.grant.name.clone();
    let added = admin::add(
        state.store.as_ref(),
        request,
        &state.subscription_limits,
        state.clock.now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn show(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    may_read(&caller, &name)?;
    let status = admin::status(state.store.as_ref(), &name, state.clock.now_ms()).await?;
    Ok(Json(status))
}

pub async fn remove(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_change(&caller)?;
    if state.store.remove_subscription(&name).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(&name))
    }
}

pub async fn act(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    may_change(&caller)?;
    let body = match action.as_str() {
        "pause" | "resume" => {
            let paused = action == "pause";
            state
                .store
                .set_paused(&name, paused)
                .await?
                .then(|| json!({ "name": name, "paused": paused }))
        }
        "retry" => state
            .store
            .retry_subscription(&name)
            .await?
            .map(|counts| json!({ "name": name, "retried": counts })),
        _ => {
            return Err(ApiError::NotFound(
                "action must be pause, resume or retry".into(),
            ));
        }
    };
    body.map(Json).ok_or_else(|| not_found(&name))
}

pub async fn events(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    may_read(&caller, &name)?;
    let query = EventsQuery::read(query)?;
    let subscription = state
        .store
        .subscription(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    if !subscription.pushes() {
        state
            .store
            .acknowledge_pull(subscription.id, query.after())
            .await?;
    }
    Ok(Json(query.page(&state, &subscription.types).await?))
}
