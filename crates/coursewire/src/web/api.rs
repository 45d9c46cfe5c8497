//! `/api/v1/events`: the pull side of the change-event bus for readers without a subscription
//! (`GET /api/v1/events?after=POSITION&limit=N&wait=SECONDS`): events with an outbox position
//! above `after`, in position order, and the cursor to pass next time (see [`crate::bus::pull`]).
//! Admin and operator tokens only: a consumer reads through its subscription.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::AppState;
use super::auth::ApiCaller;
use super::error::ApiError;
use crate::bus::pull::{self, Page, PageRequest};

/// The query of both pull endpoints.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
    #[serde(default)]
    wait: u64,
}

impl EventsQuery {
    /// Reads the query (400 when it cannot be read, or `after` is negative).
    pub(super) fn read(query: Result<Query<Self>, QueryRejection>) -> Result<Self, ApiError> {
        let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        if query.after < 0 {
            return Err(ApiError::BadRequest("after must not be negative".into()));
        }
        Ok(query)
    }

    pub(super) fn after(&self) -> i64 {
        self.after
    }

    /// The page this query asks for, the wait capped at `api.max_wait_seconds`.
    fn request<'a>(&self, state: &AppState, types: &'a [String]) -> PageRequest<'a> {
        PageRequest {
            after: self.after,
            limit: self.limit.unwrap_or(100),
            wait: Duration::from_secs(self.wait.min(state.api_max_wait.as_secs())),
            types,
            appended: state.appended.clone(),
        }
    }

    /// Reads the page; a long poll takes one of `api.max_long_polls` slots while it waits,
    /// and finds none free → 503 with `Retry-After`.
    pub(super) async fn page(&self, state: &AppState, types: &[String]) -> Result<Page, ApiError> {
        let request = self.request(state, types);
        let _slot = if request.wait.is_zero() {
            None
        } else {
            Some(state.long_polls.clone().try_acquire_owned().map_err(|_| {
                ApiError::Busy("too many long polls waiting; retry, or poll without wait")
            })?)
        };
        Ok(pull::page(&state.store, request).await?)
    }
}

#[tracing::instrument(name = "api.events", skip_all)]
pub async fn events(
    caller: ApiCaller,
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    caller.allow(
        caller.grant.may_read_every_event(),
        "read every event (pull through its subscription instead)",
    )?;
    let query = EventsQuery::read(query)?;
    Ok(Json(query.page(&state, &[]).await?))
}
