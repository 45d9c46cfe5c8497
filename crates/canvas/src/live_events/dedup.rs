//! Content-derived deduplication keys and the stable CloudEvent ids built from them.
//!
//! Canvas Live Events carry **no event id**, and a redelivered event is not byte-identical:
//! signed deliveries are re-signed JWTs on every attempt, and SQS/HTTPS retries may re-serialize
//! the JSON. So the key is derived from what the event *says*, not from the bytes it came in:
//!
//! ```text
//! "canvas:" + hex(sha256( frame("coursewire.live-event.v1")
//!                       ‖ frame(metadata.event_name)
//!                       ‖ frame(metadata.event_time exactly as sent)
//!                       ‖ frame(metadata.request_id, else metadata.job_id, else "")
//!                       ‖ frame(canonical JSON of body) ))
//! ```
//!
//! where `frame(x)` is the 8-byte big-endian length of `x` followed by `x` (so no two
//! different tuples can concatenate to the same bytes). `request_id`/`job_id` alone would
//! collide: one HTTP request or job emits several events (an enrollment and its
//! enrollment_state, or grade changes for a whole class) that share it and often the
//! millisecond too; the body hash separates them, and the request id separates two identical
//! bodies produced by distinct requests in the same millisecond. Canonical JSON sorts object
//! keys at every level (done here explicitly, so the key does not depend on whether some crate
//! in the build enabled `serde_json/preserve_order`) and prints numbers and strings the way
//! `serde_json` does.
//!
//! Caliper events do carry an id (`urn:uuid:…`), so their key is `"caliper:" + id`.
//!
//! The CloudEvent `id` is the UUID v5 of the key (in a fixed coursewire namespace): the same
//! event always gets the same id, across retries, replays and processes.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Domain separator hashed first, so keys can be versioned if the rule ever changes.
const KEY_DOMAIN: &str = "coursewire.live-event.v1";

/// The namespace of CloudEvent ids derived from dedup keys: UUID v5 of this name in the URL
/// namespace.
const ID_NAMESPACE_NAME: &str = "https://coursewire.invalid/ns/canvas-live-events";

/// Dedup key of a Canvas-format event; see the module documentation for the rule.
/// `event_time` is the raw `metadata.event_time` text (a number's JSON text; `""` if absent).
pub fn canvas_dedup_key(
    event_name: &str,
    event_time: &str,
    request_or_job_id: &str,
    body: &Value,
) -> String {
    let mut hasher = Sha256::new();
    for part in [KEY_DOMAIN, event_name, event_time, request_or_job_id] {
        frame(&mut hasher, part.as_bytes());
    }
    frame(&mut hasher, canonical_json(body).as_bytes());
    format!("canvas:{}", hex::encode(hasher.finalize()))
}

/// Dedup key of a Caliper event: its own id.
pub fn caliper_dedup_key(event_id: &str) -> String {
    format!("caliper:{event_id}")
}

/// Dedup key of a Caliper event that lacks an id: a hash of the whole event.
pub(crate) fn caliper_content_key(event: &Value) -> String {
    let mut hasher = Sha256::new();
    frame(&mut hasher, KEY_DOMAIN.as_bytes());
    frame(&mut hasher, canonical_json(event).as_bytes());
    format!("caliper:sha256:{}", hex::encode(hasher.finalize()))
}

/// The stable CloudEvent id of a dedup key (UUID v5, hyphenated lowercase).
pub fn cloud_event_id(dedup_key: &str) -> String {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, ID_NAMESPACE_NAME.as_bytes());
    Uuid::new_v5(&namespace, dedup_key.as_bytes()).to_string()
}

fn frame(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// Canonical JSON text: object keys sorted (by UTF-8 bytes) at every level, no whitespace,
/// strings and numbers as `serde_json` prints them. The caller guarantees bounded depth (see
/// [`super::error::MAX_DEPTH`]).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[2,{"q":1,"p":2}],"x":"é\n"}}"#).expect("json");
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":"é\n","y":[2,{"p":2,"q":1}]},"b":1}"#).expect("json");
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":"é\n","y":[2,{"p":2,"q":1}]},"b":1}"#
        );
    }

    #[test]
    fn dedup_key_depends_on_every_part() {
        let body = json!({"enrollment_id": "1"});
        let base = canvas_dedup_key("enrollment_created", "2019-11-01T00:00:00Z", "r1", &body);
        assert!(base.starts_with("canvas:"));
        assert_eq!(base.len(), "canvas:".len() + 64);
        assert_eq!(
            base,
            canvas_dedup_key("enrollment_created", "2019-11-01T00:00:00Z", "r1", &body)
        );
        for other in [
            canvas_dedup_key("enrollment_updated", "2019-11-01T00:00:00Z", "r1", &body),
            canvas_dedup_key(
                "enrollment_created",
                "2019-11-01T00:00:00.000Z",
                "r1",
                &body,
            ),
            canvas_dedup_key("enrollment_created", "2019-11-01T00:00:00Z", "r2", &body),
            canvas_dedup_key(
                "enrollment_created",
                "2019-11-01T00:00:00Z",
                "r1",
                &json!({"enrollment_id": "2"}),
            ),
            // Framing: moving a boundary between parts changes the key.
            canvas_dedup_key("enrollment_create", "d2019-11-01T00:00:00Z", "r1", &body),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn cloud_event_ids_are_stable_uuids() {
        let id = cloud_event_id("caliper:urn:uuid:1");
        assert_eq!(id, cloud_event_id("caliper:urn:uuid:1"));
        assert_ne!(id, cloud_event_id("caliper:urn:uuid:2"));
        let parsed = Uuid::parse_str(&id).expect("uuid");
        assert_eq!(parsed.get_version_num(), 5);
    }
}
