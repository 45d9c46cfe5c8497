//! Canvas GraphQL at `POST /api/graphql` (placeholder until the query subset lands).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn endpoint() -> Response {
    (
        StatusCode::OK,
        Json(json!({"errors": [{"message": "GraphQL is not simulated yet"}]})),
    )
        .into_response()
}
