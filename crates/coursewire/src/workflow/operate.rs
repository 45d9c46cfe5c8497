//! What people do with recordings, shared by `coursewire recordings` and
//! `/api/v1/recordings`: list them by state, section and date; show one with every step (its
//! progress, its commands, its audit rows and change events); and ask for a replay, a park
//! or an unpark. An action is an inbox row of the `workflow` source, applied by the processor
//! like every other input, so it is ordered with the recording's own changes, audited with
//! who asked and why, and never lost once accepted.

use serde::Serialize;
use serde_json::{Value, json};

use super::apply::{Message, MessageInput, SOURCE};
use super::steps::Progress;
use crate::catalog::{EntityId, EntityKind, EntityRef};
use crate::store::{InboxStatus, InsertOutcome, NewInboxEntry, Store, StoreError, WorkflowRow};

/// Which recordings to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<String>,
    /// A SIS section id.
    pub section: Option<String>,
    /// A local date, `YYYY-MM-DD`.
    pub date: Option<String>,
}

/// A recording in a list.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub recording_id: String,
    pub state: String,
    pub meeting_id: Option<String>,
    pub date: Option<String>,
    pub sections: Vec<String>,
    pub room_id: Option<String>,
    pub recorded_in: Option<String>,
    pub parked: Option<String>,
    pub failure: Option<String>,
    pub updated_at_ms: i64,
}

/// Why an operation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    #[error("no recording {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn progress_of(row: &WorkflowRow) -> Result<Progress, OperateError> {
    serde_json::from_str(&row.progress).map_err(|e| {
        OperateError::Store(StoreError::Other(format!(
            "workflow of {} unreadable: {e}",
            row.recording_id
        )))
    })
}

fn summary(row: &WorkflowRow, p: &Progress) -> Summary {
    Summary {
        recording_id: row.recording_id.clone(),
        state: row.state.clone(),
        meeting_id: row.meeting_id.clone(),
        date: row.lecture_date.clone(),
        sections: p
            .lecture
            .as_ref()
            .map(|l| l.sections.clone())
            .unwrap_or_default(),
        room_id: p.lecture.as_ref().map(|l| l.room_id.clone()),
        recorded_in: p.lecture.as_ref().and_then(|l| l.recorded_in.clone()),
        parked: p.parked.map(|r| r.as_str().to_owned()),
        failure: p.failure.clone(),
        updated_at_ms: row.updated_at_ms,
    }
}

/// The recordings `filter` selects, most recently changed first.
pub async fn list(store: &Store, filter: &Filter) -> Result<Vec<Summary>, OperateError> {
    if let Some(s) = &filter.state
        && super::steps::State::parse(s).is_none()
    {
        return Err(OperateError::Invalid(format!(
            "state {s:?} is none of detected, filed, captioned, posted, audited, parked, \
             failed, withdrawn"
        )));
    }
    let mut out = Vec::new();
    for row in store.workflows(filter.state.as_deref()).await? {
        if filter
            .date
            .as_ref()
            .is_some_and(|d| row.lecture_date.as_ref() != Some(d))
        {
            continue;
        }
        let p = progress_of(&row)?;
        let s = summary(&row, &p);
        if filter
            .section
            .as_ref()
            .is_some_and(|x| !s.sections.contains(x))
        {
            continue;
        }
        out.push(s);
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.updated_at_ms));
    Ok(out)
}

/// One recording with everything that happened to it.
pub async fn show(store: &Store, id: &str) -> Result<Value, OperateError> {
    let row = store
        .workflow(id)
        .await?
        .ok_or_else(|| OperateError::NotFound(id.to_owned()))?;
    let progress = progress_of(&row)?;
    let subject = format!("recording/{id}");
    let recording = match EntityId::parse(id) {
        Ok(eid) => {
            store
                .catalog_entity(&EntityRef::new(EntityKind::Recording, eid))
                .await?
        }
        Err(_) => None,
    };
    let commands: Vec<Value> = store
        .commands_of(id)
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id,
                "key": c.idempotency_key,
                "step": c.step,
                "status": c.status,
                "attempts": c.attempts,
                "last_error": c.last_error,
                "result": c.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
                "created_at_ms": c.created_at_ms,
                "finished_at_ms": c.finished_at_ms,
            })
        })
        .collect();
    let steps: Vec<Value> = store
        .audit_for_subject(&subject)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                "at_ms": a.at_ms,
                "action": a.action,
                "inbox_id": a.inbox_id,
                "cause_id": a.cause_id,
                "change_event_id": a.change_event_id,
                "detail": a.detail,
            })
        })
        .collect();
    Ok(json!({
        "summary": summary(&row, &progress),
        "progress": progress,
        "panopto": recording.map(|r| Value::Object(r.state)),
        "commands": commands,
        "steps": steps,
    }))
}

/// An operator's action on a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Replay,
    Park,
    Unpark,
}

/// Asks for `action` on recording `id`; returns the inbox row that carries it (applied by
/// the processor in order with the recording's other inputs).
pub async fn request(
    store: &Store,
    id: &str,
    action: Action,
    by: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<i64, OperateError> {
    if store.workflow(id).await?.is_none() {
        return Err(OperateError::NotFound(id.to_owned()));
    }
    let reason_text = || {
        reason
            .map(str::to_owned)
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| OperateError::Invalid("a park or unpark needs --reason".into()))
    };
    let input = match action {
        Action::Replay => MessageInput::Replay {
            by: by.to_owned(),
            reason: reason.map(str::to_owned),
        },
        Action::Park => MessageInput::Park {
            by: by.to_owned(),
            reason: reason_text()?,
        },
        Action::Unpark => MessageInput::Unpark {
            by: by.to_owned(),
            reason: reason_text()?,
        },
    };
    let name = match action {
        Action::Replay => "replay",
        Action::Park => "park",
        Action::Unpark => "unpark",
    };
    let message = Message {
        recording_id: id.to_owned(),
        input,
    };
    let entry = NewInboxEntry {
        source: SOURCE.to_owned(),
        dedup_key: format!("operator:{name}:{id}:{now_ms}"),
        received_at_ms: now_ms,
        event_name: Some(format!("workflow.{name}")),
        event_time_ms: Some(now_ms),
        subject: Some(format!("recording/{id}")),
        body: serde_json::to_vec(&message)
            .map_err(|e| OperateError::Invalid(format!("not serializable: {e}")))?,
        headers: "{}".to_owned(),
        verification: "internal".to_owned(),
        status: InboxStatus::Pending,
        status_reason: None,
    };
    let outcome = store
        .insert_inbox_batch(std::slice::from_ref(&entry))
        .await?;
    match outcome.first() {
        Some(InsertOutcome::Inserted { id }) => Ok(*id),
        _ => Err(OperateError::Invalid(
            "the same request was just made; it is already queued".into(),
        )),
    }
}

/// Replays every recording whose lecture started in `[from_ms, to_ms)`; returns their ids.
pub async fn replay_window(
    store: &Store,
    from_ms: i64,
    to_ms: i64,
    by: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<Vec<String>, OperateError> {
    let mut ids = Vec::new();
    for row in store.workflows(None).await? {
        let p = progress_of(&row)?;
        let Some(start) = p.lecture.as_ref().map(|l| l.starts_at_ms) else {
            continue;
        };
        if (from_ms..to_ms).contains(&start) {
            request(store, &row.recording_id, Action::Replay, by, reason, now_ms).await?;
            ids.push(row.recording_id);
        }
    }
    Ok(ids)
}
