//! The catalog's rules: which upstream events describe which catalog entity, and how an
//! observation of an entity merges with what the catalog already holds.
//!
//! This module owns the merge rule and nothing else: it is pure (no I/O, no clock, no SQL), so
//! the same decision is made on SQLite and PostgreSQL, on first processing and on replay. The
//! processor loads the stored entity, asks [`merge`] what to do, and writes the answer in its
//! transaction; building change events is the bus's job.
//!
//! # Rules
//!
//! * **Keys** (`key.rs`) are one row per `(kind, id)`; an id is a number (Canvas's LOCAL ids:
//!   the decoder already reduced global ids) or text (Panopto GUIDs, room codes); the subject of
//!   an entity is `<kind>/<id>` (`enrollment/48`, `room/KNE-120`).
//! * **What an event is about** is what its body shows: when Canvas's `event_name` and the
//!   body disagree, the decoder reads the body's entity and keeps the name sent
//!   ([`Observation::sent_as`]) for the audit.
//! * **Version**: every observation carries `(event time in ms, dedup key)`; events without a
//!   readable time use the time the inbox received them. Versions are totally ordered, the
//!   dedup key breaking ties, so "newest" is well defined whatever order events arrive in.
//! * **Newest wins, whole state**: Canvas sends the entity's full body on every event, so the
//!   state of an entity is the normalized body of its newest event (`raw` dropped). An older
//!   event never overwrites newer state ([`Outcome::Stale`]); the same version again changes
//!   nothing ([`Unchanged::Duplicate`]).
//! * **No-op**: a newer event whose state equals the stored one, ignoring the bookkeeping
//!   fields in [`VOLATILE_FIELDS`], updates the stored version and state silently and yields no
//!   change ([`Unchanged::NoOp`]): downstream systems do not care that `updated_at` ticked.
//! * **Deletion**: Canvas has no delete events for most entities; `workflow_state: "deleted"`
//!   deletes. The catalog keeps a **tombstone** (the last state, `deleted = true`, with its
//!   version) instead of removing the row, so a late, older update cannot resurrect the entity.
//!   Readers never see tombstones as entities. A newer live event after a tombstone restores
//!   the entity (reported as [`Change::Created`]).

mod key;
pub mod lectures;

use canvas::DecodedEvent;
use serde::Serialize;
use serde_json::{Map, Value};

pub use key::{EntityId, EntityKind, EntityRef, InvalidId};

/// Fields that change on every upstream save and carry no meaning for subscribers; they do
/// not make an event a change.
pub const VOLATILE_FIELDS: &[&str] = &["updated_at"];

/// The `workflow_state` that means the entity is gone.
pub const DELETED_STATE: &str = "deleted";

/// The position of an observation in its entity's history: event time, then dedup key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version {
    pub time_ms: i64,
    pub tie: String,
}

/// What one upstream event says an entity looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub entity: EntityRef,
    pub version: Version,
    /// The normalized entity (typed decoder data without `raw`).
    pub state: Map<String, Value>,
    /// The upstream CloudEvent id and source, for causation and the change event's source.
    pub cause_id: String,
    pub source: String,
    pub event_name: String,
    /// True when the event had no readable time and the receive time stood in.
    pub time_inferred: bool,
    /// The event's own time when it lay further ahead of its receipt than
    /// [`MAX_AHEAD_MS`]: the receive time orders it instead, so one event from a wrong clock
    /// cannot freeze its entity against every real update until that time comes.
    pub time_bounded_from: Option<i64>,
    /// The event name upstream sent, when the body showed the event to be another (the body
    /// decides: `event_name` is then the name of what the body is).
    pub sent_as: Option<String>,
}

impl Observation {
    pub fn is_deletion(&self) -> bool {
        is_deleted_state(&self.state)
    }
}

fn is_deleted_state(state: &Map<String, Value>) -> bool {
    state.get("workflow_state").and_then(Value::as_str) == Some(DELETED_STATE)
}

/// Why an event cannot be applied to the catalog: it is quarantined with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    #[error("{event_name} names no {kind} id")]
    NoEntity {
        event_name: String,
        kind: EntityKind,
    },
    #[error("{event_name} is about {found}, expected a {kind}")]
    WrongEntity {
        event_name: String,
        kind: EntityKind,
        found: String,
    },
    #[error("{event_name} has no typed data (data is not an object)")]
    NoData { event_name: String },
}

/// How far ahead of its receipt an event's time may lie and still order it (clock skew).
pub const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;

/// Reads the catalog observation out of a decoded event: `Ok(None)` when the event is not a
/// catalog event, an error when it is one but cannot be applied.
pub fn observe(
    event: &DecodedEvent,
    received_at_ms: i64,
) -> Result<Option<Observation>, ObserveError> {
    let Some(kind) = EntityKind::for_event(&event.event_name) else {
        return Ok(None);
    };
    let event_name = event.event_name.clone();
    let entity = match &event.entity {
        None => return Err(ObserveError::NoEntity { event_name, kind }),
        Some(key) if key.kind != kind.as_str() => {
            return Err(ObserveError::WrongEntity {
                event_name,
                kind,
                found: key.to_string(),
            });
        }
        Some(key) => EntityRef::new(kind, key.id),
    };
    let Value::Object(data) = &event.cloud.data else {
        return Err(ObserveError::NoData { event_name });
    };
    let mut state = data.clone();
    state.remove("raw");
    let (time_ms, time_inferred) = match event.event_time {
        Some(t) => (t.timestamp_millis(), false),
        None => (received_at_ms, true),
    };
    let (time_ms, time_bounded_from) = if time_ms > received_at_ms.saturating_add(MAX_AHEAD_MS) {
        (received_at_ms, Some(time_ms))
    } else {
        (time_ms, None)
    };
    Ok(Some(Observation {
        entity,
        version: Version {
            time_ms,
            tie: event.dedup_key.clone(),
        },
        state,
        cause_id: event.cloud.id.clone(),
        source: event.cloud.source.clone(),
        event_name,
        time_inferred,
        time_bounded_from,
        sent_as: event.sent_as.clone(),
    }))
}

/// An entity as the catalog stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEntity {
    pub entity: EntityRef,
    /// The normalized state (a JSON object); for a tombstone, the state that deleted it.
    pub state: Map<String, Value>,
    pub deleted: bool,
    pub version: Version,
    /// The last change-event sequence of this entity's subject (0: none yet).
    pub sequence: i64,
}

impl StoredEntity {
    /// A text parent worth an index, for kinds whose parent is no Canvas integer: a
    /// meeting's room, a SIS enrollment's section.
    pub fn parent_key(&self) -> Option<&str> {
        let key = match self.entity.kind {
            EntityKind::Meeting => "room_id",
            EntityKind::SisEnrollment => "section_id",
            _ => return None,
        };
        self.state.get(key).and_then(Value::as_str)
    }

    /// Parent ids worth an index (rosters by section, everything by course).
    pub fn course_id(&self) -> Option<i64> {
        match self.entity.kind {
            EntityKind::Course => self.entity.id.as_number(),
            _ => self.state.get("course_id").and_then(Value::as_i64),
        }
    }

    pub fn section_id(&self) -> Option<i64> {
        match self.entity.kind {
            EntityKind::Section => self.entity.id.as_number(),
            _ => self.state.get("section_id").and_then(Value::as_i64),
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self.entity.kind {
            EntityKind::User => self.entity.id.as_number(),
            _ => self.state.get("user_id").and_then(Value::as_i64),
        }
    }
}

/// A change subscribers hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// New to the catalog, or restored after a deletion.
    Created,
    Updated,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

/// Why an applied event changed nothing subscribers can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unchanged {
    /// This exact version was already applied (a replay or a redelivery).
    Duplicate,
    /// Newer, but the same state apart from volatile fields.
    NoOp,
    /// A deletion of an entity that is already deleted.
    AlreadyDeleted,
    /// A deletion of an entity the catalog never had: a tombstone is kept, nothing announced.
    UnseenDeleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    Changed(Change),
    Unchanged(Unchanged),
    /// Older than the stored version: ignored.
    Stale,
}

impl Outcome {
    /// For the audit log and metrics: `created`, `no_op`, `stale` …
    pub fn label(self) -> &'static str {
        match self {
            Self::Changed(change) => change.as_str(),
            Self::Unchanged(Unchanged::Duplicate) => "duplicate",
            Self::Unchanged(Unchanged::NoOp) => "no_op",
            Self::Unchanged(Unchanged::AlreadyDeleted) => "already_deleted",
            Self::Unchanged(Unchanged::UnseenDeleted) => "unseen_deleted",
            Self::Stale => "stale",
        }
    }
}

/// What to do with one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub outcome: Outcome,
    /// The entity to store, when anything is stored (its `sequence` is still the old one: the
    /// caller bumps it when it appends a change event).
    pub write: Option<StoredEntity>,
}

/// The merge rule (see the module documentation).
pub fn merge(current: Option<&StoredEntity>, observed: &Observation) -> Merge {
    let deleting = observed.is_deletion();
    let written = |sequence: i64| StoredEntity {
        entity: observed.entity.clone(),
        state: observed.state.clone(),
        deleted: deleting,
        version: observed.version.clone(),
        sequence,
    };
    let Some(current) = current else {
        let outcome = if deleting {
            Outcome::Unchanged(Unchanged::UnseenDeleted)
        } else {
            Outcome::Changed(Change::Created)
        };
        return Merge {
            outcome,
            write: Some(written(0)),
        };
    };
    match observed.version.cmp(&current.version) {
        std::cmp::Ordering::Less => {
            return Merge {
                outcome: Outcome::Stale,
                write: None,
            };
        }
        std::cmp::Ordering::Equal => {
            return Merge {
                outcome: Outcome::Unchanged(Unchanged::Duplicate),
                write: None,
            };
        }
        std::cmp::Ordering::Greater => {}
    }
    let outcome = match (current.deleted, deleting) {
        (true, true) => Outcome::Unchanged(Unchanged::AlreadyDeleted),
        (true, false) => Outcome::Changed(Change::Created),
        (false, true) => Outcome::Changed(Change::Deleted),
        (false, false) if same_state(&current.state, &observed.state) => {
            Outcome::Unchanged(Unchanged::NoOp)
        }
        (false, false) => Outcome::Changed(Change::Updated),
    };
    Merge {
        outcome,
        write: Some(written(current.sequence)),
    }
}

/// Equal apart from [`VOLATILE_FIELDS`].
pub fn same_state(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let meaningful = |m: &Map<String, Value>| -> Vec<(String, Value)> {
        let mut fields: Vec<(String, Value)> = m
            .iter()
            .filter(|(k, v)| !VOLATILE_FIELDS.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.sort_by(|x, y| x.0.cmp(&y.0));
        fields
    };
    meaningful(a) == meaningful(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(id: i64, time_ms: i64, tie: &str, state: Value) -> Observation {
        Observation {
            entity: EntityRef::new(EntityKind::Enrollment, id),
            version: Version {
                time_ms,
                tie: tie.into(),
            },
            state: state.as_object().cloned().unwrap_or_default(),
            cause_id: format!("cause-{tie}"),
            source: "canvas://canvas.test".into(),
            event_name: "enrollment_updated".into(),
            time_inferred: false,
            time_bounded_from: None,
            sent_as: None,
        }
    }

    fn stored(merge: &Merge) -> StoredEntity {
        merge.write.clone().expect("a write")
    }

    #[test]
    fn first_sight_creates_and_later_changes_update() {
        let created = merge(None, &obs(1, 10, "a", json!({"workflow_state": "active"})));
        assert_eq!(created.outcome, Outcome::Changed(Change::Created));
        let current = stored(&created);
        let updated = merge(
            Some(&current),
            &obs(1, 20, "b", json!({"workflow_state": "inactive"})),
        );
        assert_eq!(updated.outcome, Outcome::Changed(Change::Updated));
        assert_eq!(stored(&updated).version.time_ms, 20);
    }

    #[test]
    fn older_events_never_overwrite_and_ties_break_on_the_key() {
        let current = stored(&merge(None, &obs(1, 20, "m", json!({"name": "new"}))));
        let older = merge(Some(&current), &obs(1, 10, "z", json!({"name": "old"})));
        assert_eq!(older.outcome, Outcome::Stale);
        assert!(older.write.is_none());
        let same_ms_lower_key = merge(Some(&current), &obs(1, 20, "a", json!({"name": "x"})));
        assert_eq!(same_ms_lower_key.outcome, Outcome::Stale);
        let same_ms_higher_key = merge(Some(&current), &obs(1, 20, "z", json!({"name": "x"})));
        assert_eq!(
            same_ms_higher_key.outcome,
            Outcome::Changed(Change::Updated)
        );
    }

    #[test]
    fn duplicates_and_no_ops_change_nothing_visible() {
        let first = obs(1, 10, "a", json!({"name": "n", "updated_at": "t1"}));
        let current = stored(&merge(None, &first));
        let again = merge(Some(&current), &first);
        assert_eq!(again.outcome, Outcome::Unchanged(Unchanged::Duplicate));
        assert!(again.write.is_none());
        let touched = merge(
            Some(&current),
            &obs(1, 11, "b", json!({"name": "n", "updated_at": "t2"})),
        );
        assert_eq!(touched.outcome, Outcome::Unchanged(Unchanged::NoOp));
        let written = stored(&touched);
        assert_eq!(written.version.time_ms, 11, "the version still advances");
        assert_eq!(written.state["updated_at"], "t2");
    }

    #[test]
    fn deletion_keeps_a_tombstone_that_older_events_cannot_resurrect() {
        let live = stored(&merge(
            None,
            &obs(1, 10, "a", json!({"workflow_state": "active"})),
        ));
        let deleted = merge(
            Some(&live),
            &obs(1, 30, "c", json!({"workflow_state": "deleted"})),
        );
        assert_eq!(deleted.outcome, Outcome::Changed(Change::Deleted));
        let tomb = stored(&deleted);
        assert!(tomb.deleted);
        let late = merge(
            Some(&tomb),
            &obs(1, 20, "b", json!({"workflow_state": "active"})),
        );
        assert_eq!(late.outcome, Outcome::Stale);
        let again = merge(
            Some(&tomb),
            &obs(1, 40, "d", json!({"workflow_state": "deleted"})),
        );
        assert_eq!(again.outcome, Outcome::Unchanged(Unchanged::AlreadyDeleted));
        let restored = merge(
            Some(&tomb),
            &obs(1, 50, "e", json!({"workflow_state": "active"})),
        );
        assert_eq!(restored.outcome, Outcome::Changed(Change::Created));
        assert!(!stored(&restored).deleted);
    }

    #[test]
    fn deleting_an_unseen_entity_keeps_a_silent_tombstone() {
        let tomb = merge(None, &obs(1, 30, "c", json!({"workflow_state": "deleted"})));
        assert_eq!(tomb.outcome, Outcome::Unchanged(Unchanged::UnseenDeleted));
        assert!(stored(&tomb).deleted);
    }

    #[test]
    fn the_stored_sequence_is_carried_over() {
        let mut current = stored(&merge(None, &obs(1, 10, "a", json!({"name": "a"}))));
        current.sequence = 7;
        let next = merge(Some(&current), &obs(1, 20, "b", json!({"name": "b"})));
        assert_eq!(stored(&next).sequence, 7);
    }

    #[test]
    fn null_fields_and_volatile_fields_do_not_make_a_change() {
        let a = json!({"name": "n", "sis_id": null, "updated_at": "1"});
        let b = json!({"name": "n", "updated_at": "2"});
        assert!(same_state(
            a.as_object().expect("object"),
            b.as_object().expect("object")
        ));
        let c = json!({"name": "m"});
        assert!(!same_state(
            a.as_object().expect("object"),
            c.as_object().expect("object")
        ));
    }

    /// An event from a clock far ahead is ordered by its receipt, so it cannot freeze the
    /// entity against every real update until its time comes; its own time is kept.
    #[test]
    fn an_event_time_far_ahead_is_bounded_by_the_receive_time() {
        let event = enrollment_at("2099-01-01T00:00:00.000Z");
        let received = 1_788_256_800_000;
        let observed = observe(&event, received)
            .expect("ok")
            .expect("catalog event");
        assert_eq!(observed.version.time_ms, received);
        assert_eq!(observed.time_bounded_from, Some(4_070_908_800_000));
        let slightly_ahead = observe(&event, 4_070_908_800_000 - MAX_AHEAD_MS)
            .expect("ok")
            .expect("catalog event");
        assert_eq!(
            slightly_ahead.time_bounded_from, None,
            "clock skew is tolerated"
        );
    }

    /// Enrollment 48 (sent as a global id) updated at `time`.
    fn enrollment_at(time: &str) -> DecodedEvent {
        canvas::decode_value(&json!({
            "metadata": {"event_name": "enrollment_updated", "event_time": time,
                         "hostname": "canvas.test.edu", "request_id": "r1"},
            "body": {"enrollment_id": "21070000000000048", "course_id": "565", "workflow_state": "active"}
        }))
        .expect("decodes")
        .remove(0)
    }

    #[test]
    fn observe_reads_catalog_events_and_skips_others() {
        let event = enrollment_at("2026-09-01T10:00:00.000Z");
        // Received a second after it happened.
        let received = 1_788_256_801_000;
        let observed = observe(&event, received)
            .expect("ok")
            .expect("catalog event");
        assert_eq!(observed.version.time_ms, 1_788_256_800_000);
        assert_eq!(observed.time_bounded_from, None);
        assert_eq!(observed.entity, EntityRef::new(EntityKind::Enrollment, 48));
        assert_eq!(observed.entity.subject(), "enrollment/48");
        assert!(!observed.state.contains_key("raw"));
        assert_eq!(observed.state["course_id"], 565);
        assert_eq!(observed.source, "canvas://canvas.test.edu");
        assert!(!observed.time_inferred);

        let login = canvas::decode_value(&json!({
            "metadata": {"event_name": "logged_in", "event_time": "2026-09-01T10:00:00.000Z", "user_id": "5"},
            "body": {}
        }))
        .expect("decodes")
        .remove(0);
        assert_eq!(observe(&login, 0), Ok(None));

        let no_id = canvas::decode_value(&json!({
            "metadata": {"event_name": "course_updated"},
            "body": {"name": "x"}
        }))
        .expect("decodes")
        .remove(0);
        let err = observe(&no_id, 99).expect_err("no id");
        assert!(err.to_string().contains("names no course id"), "{err}");
    }
}
