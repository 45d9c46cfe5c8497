//! The Canvas-style error edge: every failure of a Canvas handler becomes one of these, with
//! Canvas's JSON body `{"errors":[{"message":...}]}` and status. Nothing request-derived can
//! panic a handler; it becomes a 4xx here instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::changes::ChangeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    NotFound,
    BadRequest(String),
    /// 401 with `WWW-Authenticate` (unknown, expired or revoked token).
    Unauthorized(&'static str),
    Forbidden(String),
    Internal,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::NotFound(_) => ApiError::NotFound,
            ChangeError::Invalid(m) => ApiError::BadRequest(m),
        }
    }
}

pub fn errors_body(message: &str) -> serde_json::Value {
    json!({ "errors": [ { "message": message } ] })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "The specified resource does not exist.".to_owned(),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, (*m).to_owned()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "An error occurred.".to_owned(),
            ),
        };
        let mut resp = (status, axum::Json(errors_body(&message))).into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"canvas-lms\""),
            );
        }
        resp
    }
}
