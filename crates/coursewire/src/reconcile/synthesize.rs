//! Turning what a Canvas read shows into the Live Events Canvas would have sent: a Canvas-format
//! envelope (`<entity>_updated`, the body fields Canvas's own event carries) that the existing
//! decoder and `catalog::observe` read like any pushed event, so the processor applies a repair
//! exactly as it applies Canvas's events (same merge rule, change events, audit rows).
//!
//! * **Event time = read time**, taken *before* the read started: the repair wins over anything
//!   older in the catalog and loses to a Live Event about a change made during or after the
//!   read.
//! * **Whole state**: the catalog replaces an entity's state with the newest event's, so fields
//!   a read does not return (a course's `uuid`, a user's `workflow_state`) are carried over
//!   from the catalog's current state instead of being dropped.
//! * **Gone from Canvas** becomes `workflow_state: "deleted"`, Canvas's own way of saying it.
//! * **Dedup key from content**: entity, the catalog version the difference was found against,
//!   and the body. Re-running against an unchanged catalog yields the same key, so the inbox
//!   takes nothing new; once the catalog moves on, a difference that reappears is a new row.

use canvas::client::{Assignment, Course, Enrollment, Module, ModuleItem, Section, UserStub};
use canvas::live_events::time::format_rfc3339_ms;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::catalog::{self, DELETED_STATE, EntityKind, EntityRef, Observation, StoredEntity};
use crate::store::{InboxStatus, NewInboxEntry};

/// The inbox `source` of synthesized events.
pub const SOURCE: &str = "reconcile";

/// Why a synthesized event could not be built (a bug, never Canvas's data): reported, not
/// written.
#[derive(Debug, thiserror::Error)]
pub enum SynthesizeError {
    #[error("synthesized {entity} event does not decode: {reason}")]
    Undecodable { entity: EntityRef, reason: String },
}

/// Who is synthesizing: the Canvas host (the events' `source`) and the read time.
#[derive(Debug, Clone)]
pub struct ReadContext {
    pub hostname: String,
    pub read_ms: i64,
}

/// A synthesized event: the envelope, what it decodes to, and its inbox row.
#[derive(Debug, Clone)]
pub struct Synthesized {
    pub observation: Observation,
    pub entry: NewInboxEntry,
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_rfc3339_ms(&t)))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Fields that are absent (not `null`) are not vouched for by the read: the catalog's value
/// is carried over for them.
fn insert_some<T: Into<Value>>(body: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        body.insert(key.to_owned(), value.into());
    }
}

pub fn course_body(c: &Course) -> Map<String, Value> {
    let mut body = object(json!({ "course_id": c.id.to_string(), "name": c.name }));
    insert_some(&mut body, "account_id", c.account_id.map(|a| a.to_string()));
    // Live Events call an unpublished course `claimed`; the API says `unpublished`.
    let state = c.workflow_state.as_deref().map(|s| match s {
        "unpublished" => "claimed",
        other => other,
    });
    insert_some(&mut body, "workflow_state", state);
    body
}

/// A section the course lists is active: Canvas lists no deleted sections.
pub fn section_body(course_id: u64, s: &Section) -> Map<String, Value> {
    object(json!({
        "course_section_id": s.id.to_string(),
        "course_id": course_id.to_string(),
        "name": s.name,
        "sis_source_id": s.sis_section_id,
        "workflow_state": "active",
    }))
}

pub fn enrollment_body(course_id: u64, e: &Enrollment) -> Map<String, Value> {
    let mut body = object(json!({
        "enrollment_id": e.id.to_string(),
        "course_id": course_id.to_string(),
        "course_section_id": e.course_section_id.map(|s| s.to_string()),
        "user_id": e.user_id.map(|u| u.to_string()),
        "associated_user_id": e.associated_user_id.map(|u| u.to_string()),
        "type": e.kind,
        "limit_privileges_to_course_section": e.limit_privileges_to_course_section,
    }));
    insert_some(&mut body, "workflow_state", e.enrollment_state.clone());
    insert_some(
        &mut body,
        "user_name",
        e.user.as_ref().and_then(|u| u.name.clone()),
    );
    if e.updated_at.is_some() {
        body.insert("updated_at".to_owned(), time(e.updated_at));
    }
    body
}

pub fn user_body(u: &UserStub) -> Map<String, Value> {
    object(json!({
        "user_id": u.id.to_string(),
        "name": u.name,
        "short_name": u.short_name,
        "user_login": u.login_id,
        "user_sis_id": u.sis_user_id,
    }))
}

fn published_state(published: Option<bool>) -> Option<&'static str> {
    published.map(|p| if p { "active" } else { "unpublished" })
}

pub fn module_body(course_id: u64, m: &Module) -> Map<String, Value> {
    let mut body = object(json!({
        "module_id": m.id.to_string(),
        "context_id": course_id.to_string(),
        "context_type": "Course",
        "name": m.name,
        "position": m.position,
    }));
    insert_some(&mut body, "workflow_state", published_state(m.published));
    body
}

pub fn module_item_body(course_id: u64, module_id: u64, i: &ModuleItem) -> Map<String, Value> {
    let mut body = object(json!({
        "module_item_id": i.id.to_string(),
        "module_id": module_id.to_string(),
        "context_id": course_id.to_string(),
        "context_type": "Course",
        "position": i.position,
    }));
    insert_some(&mut body, "workflow_state", published_state(i.published));
    body
}

pub fn assignment_body(course_id: u64, a: &Assignment) -> Map<String, Value> {
    let mut body = object(json!({
        "assignment_id": a.id.to_string(),
        "context_id": course_id.to_string(),
        "context_type": "Course",
        "title": a.name,
        "points_possible": a.points_possible,
        "due_at": time(a.due_at),
        "unlock_at": time(a.unlock_at),
        "lock_at": time(a.lock_at),
        "submission_types": a.submission_types,
    }));
    let state = a.workflow_state.clone().or_else(|| {
        a.published
            .map(|p| if p { "published" } else { "unpublished" }.to_owned())
    });
    insert_some(&mut body, "workflow_state", state);
    body
}

/// The Live Event body field that carries a normalized catalog field (`None`: derived by the
/// decoder from other fields, not to be sent).
fn body_field(kind: EntityKind, field: &str) -> Option<&str> {
    Some(match (kind, field) {
        (EntityKind::Account, "id") => "account_id",
        (EntityKind::Course, "id") => "course_id",
        (EntityKind::Section, "id") => "course_section_id",
        (EntityKind::User, "id") => "user_id",
        (EntityKind::User, "login") => "user_login",
        (EntityKind::User, "sis_id") => "user_sis_id",
        (EntityKind::Enrollment, "id") => "enrollment_id",
        (EntityKind::Enrollment, "section_id") => "course_section_id",
        (EntityKind::Module, "id") => "module_id",
        (EntityKind::ModuleItem, "id") => "module_item_id",
        (EntityKind::Assignment, "id") => "assignment_id",
        (EntityKind::Module | EntityKind::ModuleItem | EntityKind::Assignment, "course_id") => {
            return None;
        }
        (_, other) => other,
    })
}

/// Fills the fields `body` does not mention from the catalog's state of the entity.
pub fn carry_over(kind: EntityKind, body: &mut Map<String, Value>, stored: &StoredEntity) {
    for (field, value) in &stored.state {
        if let Some(key) = body_field(kind, field)
            && !body.contains_key(key)
            && !value.is_null()
        {
            body.insert(key.to_owned(), value.clone());
        }
    }
}

/// The body that deletes a catalog entity Canvas no longer shows: its last state, deleted.
pub fn deletion_body(stored: &StoredEntity) -> Map<String, Value> {
    let mut body = Map::new();
    carry_over(stored.entity.kind, &mut body, stored);
    body.insert(
        "workflow_state".to_owned(),
        Value::String(DELETED_STATE.to_owned()),
    );
    body
}

/// `course_section_updated`, `enrollment_updated` …: what Canvas sends when one changes.
pub fn event_name(kind: EntityKind) -> String {
    format!("{}_updated", kind.type_name())
}

fn content_key(
    entity: &EntityRef,
    against: Option<&StoredEntity>,
    body: &Map<String, Value>,
) -> String {
    let mut hash = Sha256::new();
    hash.update(entity.subject().as_bytes());
    hash.update([0]);
    match against {
        Some(stored) => {
            hash.update(stored.version.time_ms.to_be_bytes());
            hash.update(stored.version.tie.as_bytes());
        }
        None => hash.update(b"absent"),
    }
    hash.update([0]);
    hash.update(Value::Object(body.clone()).to_string().as_bytes());
    format!(
        "reconcile:{}:{}",
        entity.subject(),
        hex::encode(&hash.finalize()[..16])
    )
}

/// The event saying `entity` looks like `body` at the read time, and the inbox row carrying it.
/// `against` is the catalog row the difference was found against (for the dedup key).
pub fn synthesize(
    ctx: &ReadContext,
    entity: &EntityRef,
    context_course: Option<u64>,
    body: Map<String, Value>,
    against: Option<&StoredEntity>,
    received_at_ms: i64,
) -> Result<Synthesized, SynthesizeError> {
    let undecodable = |reason: String| SynthesizeError::Undecodable {
        entity: entity.clone(),
        reason,
    };
    let dedup_key = content_key(entity, against, &body);
    let event_time = DateTime::<Utc>::from_timestamp_millis(ctx.read_ms)
        .ok_or_else(|| undecodable(format!("read time {} is out of range", ctx.read_ms)))?;
    let mut metadata = json!({
        "event_name": event_name(entity.kind),
        "event_time": format_rfc3339_ms(&event_time),
        "producer": "coursewire-reconcile",
        "hostname": ctx.hostname,
        // A system event in Canvas's terms: its job id ties the event to its content.
        "job_id": dedup_key,
        "job_tag": "coursewire#reconcile",
    });
    if let (Some(course), Some(meta)) = (context_course, metadata.as_object_mut()) {
        meta.insert("context_type".to_owned(), json!("Course"));
        meta.insert("context_id".to_owned(), json!(course.to_string()));
    }
    let envelope = json!({ "metadata": metadata, "body": Value::Object(body) });
    let decoded = canvas::live_events::decode_value(&envelope)
        .map_err(|e| undecodable(e.to_string()))?
        .pop()
        .ok_or_else(|| undecodable("no event".to_owned()))?;
    let observation = catalog::observe(&decoded, received_at_ms)
        .map_err(|e| undecodable(e.to_string()))?
        .filter(|o| &o.entity == entity)
        .ok_or_else(|| undecodable(format!("decodes as {:?}", decoded.entity)))?;
    let entry = NewInboxEntry {
        source: SOURCE.to_owned(),
        dedup_key,
        received_at_ms,
        event_name: Some(decoded.event_name.clone()),
        event_time_ms: Some(ctx.read_ms),
        subject: decoded.cloud.subject.clone(),
        body: envelope.to_string().into_bytes(),
        headers: "{}".to_owned(),
        verification: "synthesized".to_owned(),
        status: InboxStatus::Pending,
        status_reason: None,
    };
    Ok(Synthesized { observation, entry })
}
