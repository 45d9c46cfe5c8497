//! The lecture catalog, read: `/api/v1/rooms` (each room with the recorder the timetable puts
//! there and the state Panopto last reported for it), `/api/v1/meetings?date=&section=` (the
//! lectures of one local date, cancellations included with their reason). For operators and
//! admins. (Recordings, with what Panopto last said of each, are `recordings.rs`'s.)

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::ApiCaller;
use super::{ApiError, AppState};
use crate::catalog::lectures::{TimetableRows, lectures};
use crate::catalog::{EntityKind, StoredEntity};

async fn live(state: &AppState, kind: EntityKind) -> Result<Vec<StoredEntity>, ApiError> {
    Ok(state
        .store
        .catalog_rows(kind)
        .await?
        .into_iter()
        .filter(|e| !e.deleted)
        .collect())
}

fn text<'a>(e: &'a StoredEntity, k: &str) -> Option<&'a str> {
    e.state.get(k).and_then(Value::as_str)
}

fn allow(caller: &ApiCaller) -> Result<(), ApiError> {
    caller.allow(
        caller.grant.may_see_operations(),
        "read the lecture catalog",
    )
}

pub async fn rooms(
    caller: ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    allow(&caller)?;
    let placed: BTreeMap<String, StoredEntity> = live(&state, EntityKind::RoomRecorder)
        .await?
        .into_iter()
        .filter_map(|r| text(&r, "external_id").map(|room| (room.to_owned(), r.clone())))
        .collect();
    let reported: BTreeMap<String, StoredEntity> = live(&state, EntityKind::Recorder)
        .await?
        .into_iter()
        .map(|r| (r.entity.id.as_str().to_owned(), r))
        .collect();
    let rooms: Vec<Value> = live(&state, EntityKind::Room)
        .await?
        .into_iter()
        .map(|room| {
            let id = room.entity.id.as_str().to_owned();
            let recorder = placed.get(&id).map(|r| {
                let live = reported.get(r.entity.id.as_str());
                json!({
                    "id": r.entity.id.as_str(),
                    "name": text(r, "name"),
                    "default_folder_id": text(r, "default_folder_id"),
                    "state": live.and_then(|l| text(l, "state")),
                    "state_observed_at_ms": live.map(|l| l.version.time_ms),
                })
            });
            let mut body = Value::Object(room.state);
            body["room_id"] = id.into();
            body["recorder"] = recorder.unwrap_or(Value::Null);
            body.as_object_mut().map(|o| o.remove("workflow_state"));
            body
        })
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}

#[derive(Debug, Deserialize)]
pub struct MeetingsQuery {
    /// Local date `YYYY-MM-DD` (default: today in the university's time zone).
    pub date: Option<String>,
    /// A SIS section id.
    pub section: Option<String>,
}

pub async fn meetings(
    caller: ApiCaller,
    State(state): State<AppState>,
    Query(q): Query<MeetingsQuery>,
) -> Result<Json<Value>, ApiError> {
    allow(&caller)?;
    let date = match &q.date {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::Invalid(format!("date = {d:?} is not YYYY-MM-DD")))?,
        None => chrono::DateTime::from_timestamp_millis(state.clock.now_ms())
            .unwrap_or_default()
            .with_timezone(&state.zone)
            .date_naive(),
    };
    let (meetings, cancellations, sections) = (
        live(&state, EntityKind::Meeting).await?,
        live(&state, EntityKind::Cancellation).await?,
        live(&state, EntityKind::SisSection).await?,
    );
    let rows = TimetableRows {
        meetings: &meetings,
        cancellations: &cancellations,
        sections: &sections,
    };
    let lectures = lectures(rows, q.section.as_deref(), date, date);
    Ok(Json(
        json!({ "date": date.to_string(), "meetings": lectures }),
    ))
}
