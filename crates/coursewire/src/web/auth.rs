//! Who may call `/api/v1/*`: one extractor, [`ApiCaller`], that every API handler takes. A
//! request is taken when its bearer token is `api.token` from the config (a bootstrap admin)
//! or a live token made with `coursewire tokens add` (looked up by its SHA-256); anything else
//! is refused with 401 before the handler runs. What the caller may then do is its
//! [`Grant`]'s to say: handlers ask, and answer 403 with [`ApiCaller::allow`]. Every call is
//! logged with the token's name, never the token.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::tokens::{self, Grant};

/// A caller that presented a valid token.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub grant: Grant,
}

impl ApiCaller {
    /// `Ok` when `allowed`, else 403 naming what the token may not do.
    pub fn allow(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            tracing::warn!(caller = %self.grant.name, role = %self.grant.role, what, "API call refused (403)");
            Err(ApiError::Forbidden(format!(
                "a {} token may not {what}",
                self.grant.role
            )))
        }
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let bootstrap = state.api_token.expose();
        let grant =
            if !bootstrap.is_empty() && same_secret(presented.as_bytes(), bootstrap.as_bytes()) {
                Grant::bootstrap()
            } else {
                let stored = state.store.live_token(&tokens::hash(presented)).await?;
                let Some(stored) = stored else {
                    return Err(ApiError::Unauthorized("invalid or revoked token"));
                };
                Grant::try_from(stored).map_err(|err| {
                    tracing::error!(error = %err, "stored token unreadable");
                    ApiError::Internal
                })?
            };
        tracing::info!(
            caller = %grant.name,
            role = %grant.role,
            method = %parts.method,
            path = parts.uri.path(),
            "API call"
        );
        Ok(ApiCaller { grant })
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
