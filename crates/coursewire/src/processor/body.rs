//! Re-reading an inbox row's raw body into decoded events. The body is kept exactly as it
//! arrived: JSON (unsigned, when allowed) or a compact JWS whose signature ingest already
//! verified (the row's `verification` column says with which key), so only the payload segment
//! is read here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use canvas::DecodedEvent;
use canvas::live_events;

/// The events of a stored body, or why there are none (the row is then quarantined).
pub fn decode_inbox_body(body: &[u8]) -> Result<Vec<DecodedEvent>, String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("body is not UTF-8: {e}"))?
        .trim();
    let events = if text.starts_with('{') || text.starts_with('[') {
        live_events::decode_bytes(text.as_bytes()).map_err(|e| e.to_string())?
    } else {
        let claims = jws_payload(text)?;
        let envelope = live_events::unwrap_envelope(claims).map_err(|e| e.to_string())?;
        live_events::decode_value(&envelope).map_err(|e| e.to_string())?
    };
    if events.is_empty() {
        return Err("envelope holds no event".to_owned());
    }
    Ok(events)
}

fn jws_payload(token: &str) -> Result<serde_json::Value, String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("body is neither JSON nor a compact JWS".to_owned());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("JWS payload is not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("JWS payload is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> serde_json::Value {
        json!({
            "metadata": {"event_name": "course_updated", "event_time": "2026-09-01T10:00:00Z"},
            "body": {"course_id": "565", "name": "Biology"}
        })
    }

    #[test]
    fn json_and_jws_bodies_decode_alike() {
        let json_body = envelope().to_string();
        let from_json = decode_inbox_body(json_body.as_bytes()).expect("json");
        let payload =
            URL_SAFE_NO_PAD.encode(json!({"iss": "canvas", "data": envelope()}).to_string());
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
        let from_jws = decode_inbox_body(token.as_bytes()).expect("jws");
        assert_eq!(from_json, from_jws);
        assert_eq!(from_json[0].cloud.subject.as_deref(), Some("course/565"));
    }

    #[test]
    fn garbage_is_a_reason_not_a_panic() {
        for body in [
            &b"\xff\xfe"[..],
            b"a.b",
            b"a.!!!.c",
            b"{",
            b"x.eyJ9.y",
            b"[]",
        ] {
            assert!(decode_inbox_body(body).is_err(), "{body:?}");
        }
    }
}
