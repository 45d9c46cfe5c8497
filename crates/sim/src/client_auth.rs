//! OAuth2 client authentication at the simulated token endpoints (Canvas and Panopto), both
//! ways RFC 6749 §2.3.1 allows: `client_id`/`client_secret` form fields, or HTTP Basic with the
//! form-urlencoded id and secret (authlib's default, `client_secret_basic`). The form wins when
//! both are sent.

use axum::http::{HeaderMap, header};
use base64::Engine;

/// The client id and secret a token request presents.
pub fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> (Option<String>, Option<String>) {
    let basic = basic(headers);
    (
        form_id
            .map(str::to_owned)
            .or_else(|| basic.as_ref().map(|b| b.0.clone())),
        form_secret
            .map(str::to_owned)
            .or_else(|| basic.as_ref().map(|b| b.1.clone())),
    )
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |part: &str| -> String {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_basic(user_pass: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_the_form_wins() {
        let headers = with_basic("my%20client:s%3Acret");
        assert_eq!(
            client_credentials(&headers, None, None),
            (Some("my client".into()), Some("s:cret".into()))
        );
        assert_eq!(
            client_credentials(&headers, Some("form"), None),
            (Some("form".into()), Some("s:cret".into()))
        );
        assert_eq!(
            client_credentials(&HeaderMap::new(), None, None),
            (None, None)
        );
    }
}
