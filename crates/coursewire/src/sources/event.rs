//! The inbox row of an observed entity, for the sources whose upstream has no event format of
//! its own: the Panopto poller (a session as `recording/<id>`, a recorder as
//! `recorder/<id>`) and the SIS import (rooms, meetings, SIS courses…). The writer and the
//! processor's decoders read the same type, so both sides agree by construction. A row is one
//! entity in full, as seen at one time. Its dedup key chains the subject's previous key (or
//! catalog version) with the new content, so the same observation twice (a poll retried after
//! a crash, a file imported twice) is one row, and a change back to an earlier state is still
//! a new one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::catalog::{EntityId, EntityKind, EntityRef, Observation, Version};

/// What happened, as far as the poller can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// First seen by this poller.
    Observed,
    Updated,
    Deleted,
}

/// The body of a `panopto` or `sis` inbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEvent {
    /// The dedup key (also the change's cause id).
    pub id: String,
    /// `panopto://<host>`, `sis://import`.
    pub source: String,
    /// The entity kind (`recording`, `meeting`, …).
    pub kind: String,
    pub entity_id: String,
    pub change: Change,
    /// When the poller saw it (unix ms of the service clock).
    pub observed_at_ms: i64,
    /// When the poll that read it started: Panopto's state at that time or later. A change
    /// made after it is the next poll's to see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_started_at_ms: Option<i64>,
    /// The entity in full (for a deletion, the last state seen with `workflow_state:
    /// "deleted"`).
    pub state: Map<String, Value>,
}

/// The dedup key of `state` for `subject` after `previous` (the subject's last key, if any).
pub fn chain_key(subject: &str, previous: Option<&str>, state: &Map<String, Value>) -> String {
    let mut hash = Sha256::new();
    hash.update(subject.as_bytes());
    hash.update(b"\n");
    hash.update(previous.unwrap_or("").as_bytes());
    hash.update(b"\n");
    // serde_json maps are sorted by key: the text is canonical.
    hash.update(Value::Object(state.clone()).to_string().as_bytes());
    hex::encode(&hash.finalize()[..16])
}

impl SourceEvent {
    /// The entity, if its kind is one `allowed` (each source writes its own kinds only).
    pub fn entity(&self, allowed: fn(EntityKind) -> bool) -> Result<EntityRef, String> {
        let kind = match EntityKind::parse(&self.kind) {
            Some(k) if allowed(k) => k,
            _ => return Err(format!("{:?} is not a kind this source writes", self.kind)),
        };
        let id = EntityId::parse(&self.entity_id).map_err(|e| e.to_string())?;
        Ok(EntityRef::new(kind, id))
    }

    /// The event name of the change (`panopto.session.updated`, `coursewire.meeting.observed`);
    /// the change event's type is the bus's (`edu.panopto.session.updated`).
    pub fn event_name(&self, kind: EntityKind) -> String {
        let change = match self.change {
            Change::Observed => "observed",
            Change::Updated => "updated",
            Change::Deleted => "deleted",
        };
        format!("{}.{}.{change}", kind.system(), kind.type_name())
    }

    /// The catalog observation this row is.
    pub fn observation(&self, allowed: fn(EntityKind) -> bool) -> Result<Observation, String> {
        let entity = self.entity(allowed)?;
        Ok(Observation {
            event_name: self.event_name(entity.kind),
            entity,
            version: Version {
                time_ms: self.observed_at_ms,
                tie: self.id.clone(),
            },
            state: self.state.clone(),
            cause_id: self.id.clone(),
            source: self.source.clone(),
            time_inferred: false,
            time_bounded_from: None,
            sent_as: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> Map<String, Value> {
        let Value::Object(m) = serde_json::json!({"name": name, "state": "Complete"}) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn the_same_content_after_the_same_key_is_the_same_row_and_a_return_is_a_new_one() {
        let a = chain_key("recording/x", None, &state("A"));
        assert_eq!(a, chain_key("recording/x", None, &state("A")));
        let b = chain_key("recording/x", Some(&a), &state("B"));
        let back = chain_key("recording/x", Some(&b), &state("A"));
        assert_ne!(back, a, "A → B → A is three rows");
        assert_ne!(a, chain_key("recording/y", None, &state("A")));
    }

    #[test]
    fn a_row_reads_back_as_an_observation_of_its_entity() {
        let e = SourceEvent {
            id: "k1".into(),
            source: "panopto://panopto.example.edu".into(),
            kind: "recording".into(),
            entity_id: "4f1c7a3e-0000-4000-8000-000000000001".into(),
            change: Change::Updated,
            observed_at_ms: 1_790_000_000_000,
            poll_started_at_ms: None,
            state: state("A"),
        };
        let panopto = |k| matches!(k, EntityKind::Recording | EntityKind::Recorder);
        let o = e.observation(panopto).expect("observation");
        assert_eq!(
            o.entity.subject(),
            "recording/4f1c7a3e-0000-4000-8000-000000000001"
        );
        assert_eq!(o.event_name, "panopto.session.updated");
        assert_eq!(o.version.tie, "k1");
        let mut bad = e.clone();
        bad.kind = "course".into();
        assert!(
            bad.observation(panopto).is_err(),
            "a Panopto row names Panopto kinds only"
        );
    }
}
