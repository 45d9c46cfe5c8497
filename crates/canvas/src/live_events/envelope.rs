//! Recognising event envelopes: which format a JSON object is, and where the envelope sits
//! inside the claims of a signed (JWT) delivery.
//!
//! Instructure does not document the claim layout of signed HTTPS deliveries (reference
//! canvas.md A3, "not verified"), so [`unwrap_envelope`] accepts both plausible layouts — the
//! envelope *is* the claims object, or it sits under exactly one wrapping claim — and refuses
//! to guess when several claims could be the event.

use serde_json::{Map, Value};

use super::DecodeError;

/// The shapes [`super::decode_value`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `{ "metadata": {...}, "body": {...} }`.
    Canvas,
    /// `{ "sensor", "sendTime", "dataVersion", "data": [...] }`.
    CaliperEnvelope,
    /// A single Caliper event object (`type`, `action`, `actor`, `object`) without envelope.
    CaliperEvent,
}

/// Registered JWT claims (RFC 7519 §4.1) — never the event.
const STANDARD_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// The shape of `map`, if it is one we decode.
pub(crate) fn detect(map: &Map<String, Value>) -> Option<Kind> {
    if let Some(Value::Object(metadata)) = map.get("metadata")
        && (map.contains_key("body") || metadata.contains_key("event_name"))
    {
        return Some(Kind::Canvas);
    }
    let caliper_header = ["sensor", "sendTime", "dataVersion"]
        .iter()
        .any(|key| map.contains_key(*key));
    if caliper_header && matches!(map.get("data"), Some(Value::Array(_))) {
        return Some(Kind::CaliperEnvelope);
    }
    let caliper_event = ["type", "action", "actor", "object"]
        .iter()
        .all(|key| map.contains_key(*key));
    caliper_event.then_some(Kind::CaliperEvent)
}

/// Returns the Canvas or Caliper envelope carried by the claims of a verified Live Events JWT:
/// the claims object itself when it is an envelope, else the value of the one claim that is
/// (an object, or a string holding one as JSON text — e.g. `"data"`, `"event"`, `"payload"`).
/// Registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`) are never considered.
///
/// # Errors
///
/// [`DecodeError::NotAnObject`] if the claims are not an object,
/// [`DecodeError::NoEnvelope`] if no claim holds an envelope,
/// [`DecodeError::AmbiguousEnvelope`] if more than one does.
pub fn unwrap_envelope(claims: Value) -> Result<Value, DecodeError> {
    let Value::Object(map) = claims else {
        return Err(DecodeError::NotAnObject);
    };
    if detect(&map).is_some() {
        return Ok(Value::Object(map));
    }
    let mut found: Vec<(String, Value)> = Vec::new();
    for (key, value) in map {
        if STANDARD_CLAIMS.contains(&key.as_str()) {
            continue;
        }
        let candidate = match value {
            Value::Object(inner) => Value::Object(inner),
            Value::String(text) => match serde_json::from_str::<Value>(&text) {
                Ok(parsed @ Value::Object(_)) => parsed,
                _ => continue,
            },
            _ => continue,
        };
        if candidate.as_object().and_then(detect).is_some() {
            found.push((key, candidate));
        }
    }
    match found.len() {
        0 => Err(DecodeError::NoEnvelope),
        1 => Ok(found.swap_remove(0).1),
        _ => Err(DecodeError::AmbiguousEnvelope(
            found
                .iter()
                .map(|(key, _)| key.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// The root account each event of an envelope says it belongs to (`metadata.root_account_uuid`;
/// in Caliper the event's, else its actor's, `com.instructure.canvas` extension), in order;
/// `None` for an event that names none. Empty when `envelope` is not one we decode.
///
/// A signature from Instructure's JWKS proves only that *some* Canvas sent the body (one JWKS
/// serves every customer), so this is what binds an event to one institution.
pub fn root_accounts(envelope: &Value) -> Vec<Option<String>> {
    let Some(map) = envelope.as_object() else {
        return Vec::new();
    };
    let named = |map: &Map<String, Value>| {
        map.get("root_account_uuid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let caliper_event = |event: &Value| {
        let ext = |holder: Option<&Value>| {
            holder?
                .get("extensions")?
                .get(super::caliper::CANVAS_EXT)?
                .as_object()
                .and_then(named)
        };
        ext(Some(event)).or_else(|| ext(event.get("actor")))
    };
    match detect(map) {
        Some(Kind::Canvas) => vec![
            map.get("metadata")
                .and_then(Value::as_object)
                .and_then(named),
        ],
        Some(Kind::CaliperEnvelope) => map
            .get("data")
            .and_then(Value::as_array)
            .map(|events| events.iter().map(caliper_event).collect())
            .unwrap_or_default(),
        Some(Kind::CaliperEvent) => vec![caliper_event(envelope)],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canvas() -> Value {
        json!({"metadata": {"event_name": "logged_out", "event_time": "2019-11-01T19:11:04.195Z"}, "body": {}})
    }

    fn caliper() -> Value {
        json!({"sensor": "http://oxana.instructure.com/", "dataVersion": "v1p1", "data": []})
    }

    #[test]
    fn claims_that_are_the_envelope_are_returned_whole() {
        let mut claims = canvas();
        claims["iss"] = json!("canvas");
        claims["iat"] = json!(1_572_635_464);
        assert_eq!(unwrap_envelope(claims.clone()), Ok(claims));
        assert_eq!(unwrap_envelope(caliper()), Ok(caliper()));
    }

    #[test]
    fn one_wrapping_claim_is_unwrapped_whatever_its_name() {
        for key in ["data", "event", "payload", "body"] {
            let claims = json!({"iss": "canvas", "exp": 1, key: canvas()});
            assert_eq!(unwrap_envelope(claims), Ok(canvas()), "{key}");
        }
        let claims = json!({"aud": "x", "payload": caliper()});
        assert_eq!(unwrap_envelope(claims), Ok(caliper()));
        let claims = json!({"jti": "1", "event": canvas().to_string()});
        assert_eq!(unwrap_envelope(claims), Ok(canvas()));
    }

    #[test]
    fn no_or_several_envelopes_are_errors() {
        assert_eq!(
            unwrap_envelope(json!({"iss": "canvas", "data": {"x": 1}})),
            Err(DecodeError::NoEnvelope)
        );
        assert_eq!(
            unwrap_envelope(json!({"sub": canvas()})),
            Err(DecodeError::NoEnvelope)
        );
        assert_eq!(
            unwrap_envelope(json!([canvas()])),
            Err(DecodeError::NotAnObject)
        );
        assert_eq!(
            unwrap_envelope(json!({"a": canvas(), "b": caliper()})),
            Err(DecodeError::AmbiguousEnvelope("a, b".into()))
        );
    }

    #[test]
    fn root_accounts_are_read_from_either_format() {
        let mut event = canvas();
        assert_eq!(root_accounts(&event), vec![None]);
        event["metadata"]["root_account_uuid"] = json!("ours");
        assert_eq!(root_accounts(&event), vec![Some("ours".to_owned())]);
        let ext = |uuid: &str| json!({"com.instructure.canvas": {"root_account_uuid": uuid}});
        let on_event = json!({"type": "Event", "action": "Created", "actor": {}, "object": {}, "extensions": ext("a")});
        let on_actor = json!({"type": "Event", "action": "Created", "actor": {"extensions": ext("b")}, "object": {}});
        let neither = json!({"type": "Event", "action": "Created", "actor": {}, "object": {}});
        let mut envelope = caliper();
        envelope["data"] = json!([on_event, on_actor, neither]);
        assert_eq!(
            root_accounts(&envelope),
            vec![Some("a".to_owned()), Some("b".to_owned()), None]
        );
        assert_eq!(root_accounts(&on_actor), vec![Some("b".to_owned())]);
        assert!(root_accounts(&json!({"x": 1})).is_empty());
    }
}
