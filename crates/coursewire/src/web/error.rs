//! The one error type of the HTTP edge. Every handler answers failures with an [`ApiError`],
//! and this is the only place that maps a failure to a status code and a body: validation 422,
//! a malformed request 400, a missing or wrong token 401, a token whose role may not 403, not found 404, a unique violation
//! 409, the database unreachable 503, anything else 500 with an opaque body (the detail goes
//! to the log, never to the client).

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::bus::delivery::admin::AdminError;
use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read (bad JSON, a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or not the right one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The token is valid but its role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// It collides with what is stored (a name taken).
    #[error("{0}")]
    Conflict(String),
    /// It is well-formed but not acceptable (a value out of range, a bad name).
    #[error("{0}")]
    Invalid(String),
    /// The store cannot be reached now; the client may retry.
    #[error("store unavailable")]
    Unavailable,
    /// A capacity limit is reached; answered 503 with `Retry-After`.
    #[error("{0}")]
    Busy(&'static str),
    /// A bug or an unexpected failure; logged where it is made.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.to_string() }));
        match self {
            Self::Unauthorized(_) => {
                (self.status(), [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
            }
            Self::Busy(_) => (self.status(), [(header::RETRY_AFTER, "1")], body).into_response(),
            _ => (self.status(), body).into_response(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                Self::Unavailable
            }
            StoreError::Conflict(detail) => Self::Conflict(detail),
            other => {
                tracing::error!(error = %other, "store error");
                Self::Internal
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Invalid(_) => Self::Invalid(err.to_string()),
            TokenError::Exists(_) => Self::Conflict(err.to_string()),
            TokenError::NotFound(_) => Self::NotFound(err.to_string()),
            TokenError::Store(store) => store.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(_) => Self::Invalid(err.to_string()),
            AdminError::Exists(_) => Self::Conflict(err.to_string()),
            AdminError::NotFound(_) => Self::NotFound(err.to_string()),
            AdminError::Store(store) => store.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status_and_5xx_bodies_stay_opaque() {
        let cases = [
            (ApiError::from(StoreError::Conflict("dup".into())), 409),
            (StoreError::Unavailable("pool timed out".into()).into(), 503),
            (
                StoreError::Other("syntax error near SELECT".into()).into(),
                500,
            ),
            (AdminError::NotFound("x".into()).into(), 404),
            (AdminError::Invalid("bad".into()).into(), 422),
            (AdminError::Exists("x".into()).into(), 409),
            (ApiError::Unauthorized("invalid token"), 401),
            (
                ApiError::BadRequest("after must not be negative".into()),
                400,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
        }
        let opaque = ApiError::from(StoreError::Other("syntax error near SELECT".into()));
        assert_eq!(opaque.to_string(), "internal error");
    }
}
