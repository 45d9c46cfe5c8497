//! The CloudEvents 1.0 (structured JSON) form of a decoded Live Event.
//!
//! Downstream systems see Canvas changes only in this form, so it is deliberately small and
//! stable: `id` derived from the dedup key (stable across retries and replays), `source`
//! naming the Canvas instance, `type` from the catalogue, `subject` the entity key with the
//! local id, `time` in one fixed format, and extension attributes flattened beside them as the
//! spec requires. Building the values is the decoder's job; this module only owns the shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// CloudEvents spec version written on every event.
pub const SPEC_VERSION: &str = "1.0";
/// `datacontenttype` of every event: `data` is always JSON.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Extension attribute: the Canvas event name as received (or `caliper:<Type>/<Action>`).
pub const EXT_EVENT_NAME: &str = "canvaseventname";
/// Extension attribute: the root account uuid, when the event names one.
pub const EXT_ROOT_ACCOUNT: &str = "canvasrootaccount";

/// A CloudEvents 1.0 event in structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Stable id: UUID v5 of the event's dedup key.
    pub id: String,
    /// `canvas://<hostname>`, else `canvas://root-account/<uuid or id>`, else `canvas://unknown`.
    pub source: String,
    /// `edu.canvas.<entity>.<action>` or `edu.canvas.unknown`.
    #[serde(rename = "type")]
    pub r#type: String,
    /// Entity key with the local id, e.g. `enrollment/46825`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Event time, RFC 3339 UTC with milliseconds, e.g. `2019-11-05T13:38:00.218Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Always `"application/json"`.
    #[serde(default = "default_content_type")]
    pub datacontenttype: String,
    /// Normalized entity plus `raw`, or `{"raw": …}`, or the raw body for unknown events.
    #[serde(default)]
    pub data: Value,
    /// Extension attributes (`canvaseventname`, `canvasrootaccount`, …).
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

fn default_content_type() -> String {
    DATA_CONTENT_TYPE.to_owned()
}

impl CloudEvent {
    /// The event name carried in the `canvaseventname` extension, if any.
    pub fn canvas_event_name(&self) -> Option<&str> {
        self.extensions.get(EXT_EVENT_NAME).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_flat_with_type_key_and_round_trips() {
        let event = CloudEvent {
            specversion: SPEC_VERSION.into(),
            id: "7d1c".into(),
            source: "canvas://oxana.instructure.com".into(),
            r#type: "edu.canvas.course.created".into(),
            subject: Some("course/565".into()),
            time: None,
            datacontenttype: DATA_CONTENT_TYPE.into(),
            data: json!({"raw": {}}),
            extensions: BTreeMap::from([(EXT_EVENT_NAME.into(), json!("course_created"))]),
        };
        let text = serde_json::to_value(&event).expect("serialize");
        assert_eq!(
            text,
            json!({
                "specversion": "1.0",
                "id": "7d1c",
                "source": "canvas://oxana.instructure.com",
                "type": "edu.canvas.course.created",
                "subject": "course/565",
                "datacontenttype": "application/json",
                "data": {"raw": {}},
                "canvaseventname": "course_created"
            })
        );
        let back: CloudEvent = serde_json::from_value(text).expect("deserialize");
        assert_eq!(back, event);
        assert_eq!(back.canvas_event_name(), Some("course_created"));
    }
}
