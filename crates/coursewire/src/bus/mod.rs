//! The change-event bus: the CloudEvents 1.0 that downstream systems receive instead of
//! calling Canvas, and (later) their delivery.
//!
//! This module owns the *shape* of a change event — its stable id, type, subject, `sequence`
//! extension and data — as pure functions, so a replay builds byte-for-byte the same event.
//! It does not decide whether something changed (that is [`crate::catalog`]) and does not
//! choose sequence numbers (the processor takes the next one from the stored entity, in the
//! same transaction that appends the event to the outbox, which is what makes them gap-free).
//!
//! # The change event
//!
//! * `id`: UUID v5 of `(upstream dedup key, subject)` in a coursewire namespace: the same
//!   upstream event always yields the same change-event id, across retries, replays and
//!   processes, and one upstream event that changed two entities yields two ids.
//! * `source`: the upstream's (`canvas://<host>`).
//! * `type`: `edu.<system>.<entity>.<created|updated|deleted>`: the system whose entity it is
//!   ([`crate::catalog::EntityKind::system`]) and the entity as that system names it
//!   (`course_section`), e.g. `edu.canvas.enrollment.updated`.
//! * `subject`: the entity key with the local id, `enrollment/48`.
//! * `time`: the upstream event time (the version that produced the change).
//! * `data`: the normalized entity after the change (for `deleted`, its last state).
//! * extensions: `sequence` — the per-subject position, 1, 2, 3 … with no gaps, written as a
//!   zero-padded decimal string as the CloudEvents sequence extension asks (so it also sorts as
//!   text); `causationid` — the upstream CloudEvent id, for tracing a change to its cause.

pub mod delivery;
pub mod nats;
pub mod pull;

use canvas::CloudEvent;
use canvas::live_events::cloud_event::{DATA_CONTENT_TYPE, SPEC_VERSION};
use canvas::live_events::time::format_rfc3339_ms;
use chrono::{TimeZone, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::catalog::{Change, Observation, StoredEntity};

/// Extension attribute: the per-subject sequence, zero-padded.
pub const EXT_SEQUENCE: &str = "sequence";
/// Extension attribute: the id of the upstream event that caused the change.
pub const EXT_CAUSATION: &str = "causationid";
/// Digits of the zero-padded sequence: enough for any `i64`.
pub const SEQUENCE_DIGITS: usize = 19;

const ID_NAMESPACE_NAME: &str = "https://coursewire.invalid/ns/change-events";

/// The stable id of the change an upstream event (by its dedup key) made to `subject`.
pub fn change_event_id(cause_dedup_key: &str, subject: &str) -> String {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, ID_NAMESPACE_NAME.as_bytes());
    // Length-prefixed, so no two (key, subject) pairs can run together into the same name.
    let mut name = Vec::with_capacity(8 + cause_dedup_key.len() + subject.len());
    name.extend_from_slice(&(cause_dedup_key.len() as u64).to_be_bytes());
    name.extend_from_slice(cause_dedup_key.as_bytes());
    name.extend_from_slice(subject.as_bytes());
    Uuid::new_v5(&namespace, &name).to_string()
}

/// `sequence` as the extension carries it.
pub fn format_sequence(sequence: i64) -> String {
    format!("{sequence:0width$}", width = SEQUENCE_DIGITS)
}

/// `sequence` read back from the extension.
pub fn parse_sequence(event: &CloudEvent) -> Option<i64> {
    event.extensions.get(EXT_SEQUENCE)?.as_str()?.parse().ok()
}

/// A change event ready for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChangeEvent {
    pub id: String,
    pub subject: String,
    pub sequence: i64,
    pub r#type: String,
    pub time_ms: i64,
    pub inbox_id: i64,
    pub created_at_ms: i64,
    /// The CloudEvent, serialized (structured JSON mode).
    pub event: String,
}

/// Builds the change event for `change`, which moved `entity` (the state after the change)
/// to `sequence`, caused by `observed`.
pub fn change_event(
    observed: &Observation,
    change: Change,
    entity: &StoredEntity,
    sequence: i64,
) -> CloudEvent {
    let subject = entity.entity.subject();
    event(EventParts {
        id: change_event_id(&observed.version.tie, &subject),
        source: observed.source.clone(),
        r#type: format!(
            "edu.{}.{}.{}",
            entity.entity.kind.system(),
            entity.entity.kind.type_name(),
            change.as_str()
        ),
        subject,
        time_ms: observed.version.time_ms,
        data: Value::Object(entity.state.clone()),
        sequence,
        cause_id: observed.cause_id.clone(),
    })
}

/// What a change event is made of; every event on the bus (catalog changes, the recording
/// workflow's states) is built from these by [`event`].
#[derive(Debug, Clone)]
pub struct EventParts {
    pub id: String,
    pub source: String,
    pub r#type: String,
    pub subject: String,
    pub time_ms: i64,
    pub data: Value,
    pub sequence: i64,
    pub cause_id: String,
}

/// The CloudEvent of `parts`, with the `sequence` and `causationid` extensions.
pub fn event(parts: EventParts) -> CloudEvent {
    let mut extensions = std::collections::BTreeMap::new();
    extensions.insert(
        EXT_SEQUENCE.to_owned(),
        Value::String(format_sequence(parts.sequence)),
    );
    extensions.insert(EXT_CAUSATION.to_owned(), Value::String(parts.cause_id));
    CloudEvent {
        specversion: SPEC_VERSION.to_owned(),
        id: parts.id,
        source: parts.source,
        r#type: parts.r#type,
        subject: Some(parts.subject),
        time: Utc
            .timestamp_millis_opt(parts.time_ms)
            .single()
            .map(|t| format_rfc3339_ms(&t)),
        datacontenttype: DATA_CONTENT_TYPE.to_owned(),
        data: parts.data,
        extensions,
    }
}

/// The outbox row for a built event.
pub fn outbox_row(
    event: &CloudEvent,
    sequence: i64,
    time_ms: i64,
    inbox_id: i64,
    created_at_ms: i64,
) -> Result<NewChangeEvent, serde_json::Error> {
    Ok(NewChangeEvent {
        id: event.id.clone(),
        subject: event.subject.clone().unwrap_or_default(),
        sequence,
        r#type: event.r#type.clone(),
        time_ms,
        inbox_id,
        created_at_ms,
        event: serde_json::to_string(event)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EntityKind, EntityRef, Version};
    use serde_json::json;

    fn observed() -> Observation {
        Observation {
            entity: EntityRef::new(EntityKind::Section, 4811),
            version: Version {
                time_ms: 1_788_256_800_123,
                tie: "canvas:abc".into(),
            },
            state: json!({"id": 4811, "name": "Lab A"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            cause_id: "upstream-id".into(),
            source: "canvas://canvas.test.edu".into(),
            event_name: "course_section_updated".into(),
            time_inferred: false,
            time_bounded_from: None,
            sent_as: None,
        }
    }

    fn entity(o: &Observation) -> StoredEntity {
        StoredEntity {
            entity: o.entity.clone(),
            state: o.state.clone(),
            deleted: false,
            version: o.version.clone(),
            sequence: 3,
        }
    }

    #[test]
    fn change_event_has_the_documented_shape() {
        let o = observed();
        let event = change_event(&o, Change::Updated, &entity(&o), 3);
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "edu.canvas.course_section.updated");
        assert_eq!(json["subject"], "section/4811");
        assert_eq!(json["source"], "canvas://canvas.test.edu");
        assert_eq!(json["time"], "2026-09-01T10:00:00.123Z");
        assert_eq!(json["sequence"], "0000000000000000003");
        assert_eq!(json["causationid"], "upstream-id");
        assert_eq!(json["data"], json!({"id": 4811, "name": "Lab A"}));
        assert_eq!(parse_sequence(&event), Some(3));
    }

    #[test]
    fn ids_are_stable_per_cause_and_subject() {
        let a = change_event_id("canvas:abc", "section/4811");
        assert_eq!(a, change_event_id("canvas:abc", "section/4811"));
        assert_ne!(a, change_event_id("canvas:abc", "section/4812"));
        assert_ne!(a, change_event_id("canvas:abd", "section/4811"));
        // The length prefix keeps (key, subject) pairs from running together.
        assert_ne!(
            change_event_id("a\nb", "c"),
            change_event_id("a", "b\nc"),
            "framing"
        );
    }

    #[test]
    fn sequences_sort_as_text() {
        let mut texts: Vec<String> = [10, 9, 100, 1].into_iter().map(format_sequence).collect();
        texts.sort();
        assert_eq!(
            texts,
            [1, 9, 10, 100].map(format_sequence).to_vec(),
            "zero padding keeps text order numeric"
        );
    }
}
