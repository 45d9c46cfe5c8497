//! `/api/v1/tokens` (admin tokens only): the same management as `coursewire tokens …` (both
//! go through [`crate::tokens`]).
//!
//! * `GET /api/v1/tokens` — every token, live and revoked (names, roles, scopes; never a
//!   token or its hash).
//! * `POST /api/v1/tokens` — `{name, role, subscriptions?}`; answers 201 with the token
//!   (shown this once).
//! * `DELETE /api/v1/tokens/{name}` — revokes the live token of that name (204).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::auth::ApiCaller;
use super::error::ApiError;
use crate::tokens::{self, AddToken, AddedToken};

fn may_manage(caller: &ApiCaller) -> Result<(), ApiError> {
    caller.allow(caller.grant.may_manage_tokens(), "manage API tokens")
}

pub async fn list(
    caller: ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    may_manage(&caller)?;
    Ok(Json(json!({ "tokens": state.store.tokens().await? })))
}

pub async fn add(
    caller: ApiCaller,
    State(state): State<AppState>,
    body: Result<Json<AddToken>, JsonRejection>,
) -> Result<(StatusCode, Json<AddedToken>), ApiError> {
    may_manage(&caller)?;
    let Json(request) = body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let added = tokens::add(&state.store, request, state.clock.now_ms()).await?;
    tracing::info!(caller = %caller.grant.name, token = %added.stored.name, role = %added.stored.role, "API token created");
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn revoke(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    may_manage(&caller)?;
    tokens::revoke(&state.store, &name, state.clock.now_ms()).await?;
    tracing::info!(caller = %caller.grant.name, token = %name, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
