//! Who may call `/api/v1/*`: one extractor, [`ApiCaller`], that every API handler takes. A
//! request without the configured bearer token (`api.token`) is refused with 401 before the
//! handler runs; an empty `api.token` disables the API.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;

/// A caller that presented the API token.
#[derive(Debug, Clone, Copy)]
pub struct ApiCaller;

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.api_token.is_empty() {
            return Err(ApiError::Unauthorized("the API is disabled: set api.token"));
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            Some(token) if same_secret(token.as_bytes(), state.api_token.expose().as_bytes()) => {
                Ok(ApiCaller)
            }
            Some(_) => Err(ApiError::Unauthorized("invalid token")),
            None => Err(ApiError::Unauthorized("missing bearer token")),
        }
    }
}

/// Constant-time comparison, so response timing does not reveal how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
