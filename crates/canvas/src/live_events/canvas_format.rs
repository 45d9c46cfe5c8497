//! Decoding of Canvas-format events, `{ "metadata": {...}, "body": {...} }`.
//!
//! Only `metadata.event_name` is required: it decides everything else. A missing or odd
//! `event_time`, a missing body, an id of the wrong type or an event name outside the
//! catalogue all decode with warnings, because Canvas will not resend what we refuse. The
//! subject and source rules here are shared with the Caliper decoder, which maps Caliper events
//! onto the same Canvas names.

use serde_json::{Map, Value};

use super::catalogue::{EventSpec, IdSource, UNKNOWN_TYPE, as_the_body_says, lookup};
use super::entities::{self, preview};
use super::time::{TimeParse, parse_time_value};
use super::{DecodeError, DecodedEvent, EntityKey, Format, Parts, dedup, ids};

/// Decodes one Canvas-format event.
pub(crate) fn decode(envelope: &Map<String, Value>) -> Result<DecodedEvent, DecodeError> {
    let metadata = match envelope.get("metadata") {
        Some(Value::Object(metadata)) => metadata,
        Some(_) => return Err(DecodeError::wrong_type("metadata", "an object")),
        None => return Err(DecodeError::MissingField("metadata")),
    };
    let event_name = match metadata.get("event_name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.as_str(),
        None | Some(Value::Null | Value::String(_)) => {
            return Err(DecodeError::MissingField("metadata.event_name"));
        }
        Some(_) => return Err(DecodeError::wrong_type("metadata.event_name", "a string")),
    };
    let mut warnings = Vec::new();

    let raw_time = metadata.get("event_time").filter(|v| !v.is_null());
    let event_time = event_time(raw_time, "metadata.event_time", &mut warnings);
    let raw_time_text = match raw_time {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };

    let empty = Map::new();
    let (body, body_map) = match envelope.get("body") {
        Some(value @ Value::Object(map)) => (value.clone(), map),
        None | Some(Value::Null) => {
            warnings.push("body missing; treated as {}".to_owned());
            (Value::Object(Map::new()), &empty)
        }
        Some(other) => {
            warnings.push(format!(
                "body is not an object ({}); kept raw only",
                preview(other)
            ));
            (other.clone(), &empty)
        }
    };

    let request_or_job = meta_text(metadata, "request_id")
        .or_else(|| meta_text(metadata, "job_id"))
        .unwrap_or_default();
    let dedup_key = dedup::canvas_dedup_key(event_name, &raw_time_text, &request_or_job, &body);

    let named = lookup(event_name);
    let body_says = named.and_then(|spec| as_the_body_says(spec, body_map));
    if let Some(body_spec) = body_says {
        warnings.push(format!(
            "event_name {event_name} disagrees with its body, which is a {}'s: decoded as {}",
            body_spec.subject_kind.unwrap_or("?"),
            body_spec.name
        ));
    }
    let spec = body_says.or(named);
    let (entity, data) = match spec {
        Some(spec) => {
            let entity = entity_for(spec, body_map, metadata, "body", &mut warnings);
            let typed = entities::normalize(spec.shape, body_map, "body", &mut warnings);
            (entity, with_raw(typed, body))
        }
        None => {
            warnings.push(format!(
                "event name {} is not in the Live Events catalogue; passed through as {UNKNOWN_TYPE}",
                preview(&Value::String(event_name.to_owned()))
            ));
            (None, body)
        }
    };

    Ok(Parts {
        format: Format::Canvas,
        event_name: body_says.map_or(event_name, |spec| spec.name).to_owned(),
        sent_as: body_says.map(|_| event_name.to_owned()),
        spec,
        event_time,
        dedup_key,
        entity,
        source: canvas_source(metadata),
        root_account_uuid: meta_text(metadata, "root_account_uuid"),
        data,
        warnings,
    }
    .assemble())
}

/// Parses an event timestamp, recording how in `warnings`.
pub(crate) fn event_time(
    raw: Option<&Value>,
    field: &str,
    warnings: &mut Vec<String>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let Some(raw) = raw else {
        warnings.push(format!("{field} missing; event has no time"));
        return None;
    };
    match parse_time_value(raw) {
        TimeParse::Iso(t) => Some(t),
        TimeParse::Lenient(t) => {
            warnings.push(format!(
                "{field} not ISO-8601 ({}), parsed leniently",
                preview(raw)
            ));
            Some(t)
        }
        TimeParse::Invalid => {
            warnings.push(format!(
                "{field} unparseable ({}); event has no time",
                preview(raw)
            ));
            None
        }
    }
}

/// The entity `spec` says the event is about, found in `body` (or `metadata`), with its local
/// id. A catalogued subject that cannot be found is a warning.
pub(crate) fn entity_for(
    spec: &EventSpec,
    body: &Map<String, Value>,
    metadata: &Map<String, Value>,
    prefix: &str,
    warnings: &mut Vec<String>,
) -> Option<EntityKey> {
    let (kind, id, looked_at) = match spec.id_source {
        IdSource::Nothing => return None,
        IdSource::Body(fields) => {
            let id = fields
                .iter()
                .find_map(|field| body.get(*field).and_then(ids::parse_local_id));
            (
                spec.subject_kind,
                id,
                format!("{prefix}.{}", fields.join("|")),
            )
        }
        IdSource::Nested(object, field) => {
            let id = body
                .get(object)
                .and_then(|inner| inner.get(field))
                .and_then(ids::parse_local_id);
            (spec.subject_kind, id, format!("{prefix}.{object}.{field}"))
        }
        IdSource::MetadataUser => {
            let id = metadata.get("user_id").and_then(ids::parse_local_id);
            (spec.subject_kind, id, "metadata.user_id".to_owned())
        }
        IdSource::Asset => {
            let kind = body
                .get("asset_type")
                .and_then(Value::as_str)
                .and_then(asset_kind);
            let id = body.get("asset_id").and_then(ids::parse_local_id);
            return match (kind, id) {
                (Some(kind), Some(id)) => Some(EntityKey::new(kind, id)),
                _ => {
                    warnings.push(format!(
                        "no subject: {prefix}.asset_type/{prefix}.asset_id missing or invalid"
                    ));
                    None
                }
            };
        }
    };
    match (kind, id) {
        (Some(kind), Some(id)) => Some(EntityKey::new(kind, id)),
        _ => {
            warnings.push(format!("no subject: {looked_at} missing or invalid"));
            None
        }
    }
}

/// Subject kind of an `asset_accessed` asset type: lower-case `[a-z0-9_]`, sections named as
/// everywhere else (`section`).
fn asset_kind(asset_type: &str) -> Option<String> {
    let kind: String = asset_type
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let kind = kind.trim_matches('_');
    match kind {
        "" => None,
        "course_section" => Some("section".to_owned()),
        other => Some(other.chars().take(64).collect()),
    }
}

/// `data` for a catalogued event: the typed struct with `raw` added, or `{"raw": body}`.
pub(crate) fn with_raw(typed: Option<Value>, raw: Value) -> Value {
    let mut data = match typed {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    data.insert("raw".to_owned(), raw);
    Value::Object(data)
}

/// A metadata field as text: strings as they are, numbers as their JSON text; empty or other
/// types are `None`.
pub(crate) fn meta_text(metadata: &Map<String, Value>, key: &str) -> Option<String> {
    match metadata.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// CloudEvents `source` of a Canvas-format event.
fn canvas_source(metadata: &Map<String, Value>) -> String {
    if let Some(host) = meta_text(metadata, "hostname") {
        return format!("canvas://{}", host.to_ascii_lowercase());
    }
    root_account_source(
        meta_text(metadata, "root_account_uuid"),
        meta_text(metadata, "root_account_id"),
    )
}

/// `canvas://root-account/<uuid or id>`, else `canvas://unknown`.
pub(crate) fn root_account_source(uuid: Option<String>, id: Option<String>) -> String {
    match uuid.or(id) {
        Some(root) => format!("canvas://root-account/{root}"),
        None => "canvas://unknown".to_owned(),
    }
}
