//! `POST /hooks/canvas`: Canvas Live Events (signed JWS or, when allowed, unsigned JSON).

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::ingest::HookRequest;

#[tracing::instrument(name = "hook.canvas", skip_all)]
pub async fn canvas(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let remote_addr = Some(peer.ip().to_string());
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            state
                .canvas
                .refuse_oversized(remote_addr, state.max_body_bytes);
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(serde_json::json!({
                    "error": format!("body larger than {} bytes", state.max_body_bytes)
                })),
            )
                .into_response();
        }
        Err(rejection) if body_timed_out(&rejection) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                Json(serde_json::json!({
                    "error": "body not received within server.body_timeout_seconds"
                })),
            )
                .into_response();
        }
        Err(rejection) => return rejection.into_response(),
    };
    let headers = headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let outcome = state
        .canvas
        .receive(HookRequest {
            body: &body,
            headers,
            remote_addr,
        })
        .await;
    let status =
        StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(outcome)).into_response()
}

/// Whether the body stopped arriving (`server.body_timeout_seconds`, see `web::edge`).
fn body_timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
