//! `/api/v1/recordings`: the recording workflow for operators and systems, the same answers
//! as `coursewire recordings` (`workflow::operate`): `GET ?state=&section=&date=` lists,
//! `GET /{id}` shows every step, `POST /{id}/replay|park|unpark` (`{"reason": "…"}`; a park
//! or unpark needs one) queues the action, answered 202 with the inbox row that carries it.
//! Reading needs an operator or admin token, as do the actions.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::ApiCaller;
use super::error::ApiError;
use crate::workflow::operate::{self, Action, Filter, OperateError};

impl From<OperateError> for ApiError {
    fn from(e: OperateError) -> Self {
        match e {
            OperateError::NotFound(id) => ApiError::NotFound(format!("no recording {id}")),
            OperateError::Invalid(m) => ApiError::Invalid(m),
            OperateError::Store(s) => ApiError::from(s),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub state: Option<String>,
    /// A SIS section id.
    pub section: Option<String>,
    /// A local date, `YYYY-MM-DD`.
    pub date: Option<String>,
}

pub async fn list(
    caller: ApiCaller,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.allow(caller.grant.may_operate_recordings(), "read recordings")?;
    let filter = Filter {
        state: q.state,
        section: q.section,
        date: q.date,
    };
    let list = operate::list(&state.store, &filter).await?;
    Ok(Json(json!({ "recordings": list })))
}

pub async fn show(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.allow(caller.grant.may_operate_recordings(), "read recordings")?;
    Ok(Json(operate::show(&state.store, &id).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    pub reason: Option<String>,
}

pub async fn act(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: Result<Json<ActBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.allow(caller.grant.may_operate_recordings(), "act on recordings")?;
    let action = match action.as_str() {
        "replay" => Action::Replay,
        "park" => Action::Park,
        "unpark" => Action::Unpark,
        other => {
            return Err(ApiError::NotFound(format!(
                "no action {other:?} (replay, park, unpark)"
            )));
        }
    };
    let reason = match body {
        Ok(Json(b)) => b.reason,
        Err(JsonRejection::MissingJsonContentType(_)) => None,
        Err(rejection) => return Err(ApiError::BadRequest(rejection.body_text())),
    };
    let by = format!("token:{}", caller.grant.name);
    let inbox_id = operate::request(
        &state.store,
        &id,
        action,
        &by,
        reason.as_deref(),
        state.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "recording_id": id, "inbox_id": inbox_id })),
    ))
}
