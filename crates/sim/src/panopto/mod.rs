//! The Panopto surface under `/Panopto`: REST v1 (`/Panopto/api/v1/...`, PascalCase,
//! `{"Results":[...]}`, `pageNumber` paging until an empty page), SOAP 4.6
//! `SessionManagement.svc` (`GetSessionsList`, `GetSessionsById` with session `State`),
//! `RemoteRecorderManagement.svc` (`ListRecorders`, `GetRemoteRecordersByExternalId`) and
//! OAuth2 (`/Panopto/oauth2/connect/token`). Every API request is authenticated, then counted
//! against its API client's rate limits (429 past 5/s, 100/min, 5,000/h).

mod access;
pub mod faults;
pub mod lectures;
pub mod people;
mod rest;
pub mod soap;
pub mod viewers;
pub mod world;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use access::PanoptoAccess;

use crate::sim::AppState;

/// The API client a request was authenticated as (request extension).
#[derive(Debug, Clone)]
pub struct ApiClient(pub String);

/// REST page size (Panopto's is not documented; clients page until an empty page).
pub const PAGE_SIZE: usize = 25;

pub fn router(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/Panopto/api/v1/folders", post(rest::create_folder))
        .route("/Panopto/api/v1/folders/search", get(rest::search_folders))
        .route(
            "/Panopto/api/v1/folders/{id}",
            get(rest::get_folder)
                .put(rest::update_folder)
                .delete(rest::delete_folder),
        )
        .route(
            "/Panopto/api/v1/folders/{id}/children",
            get(rest::folder_children),
        )
        .route(
            "/Panopto/api/v1/folders/{id}/sessions",
            get(rest::folder_sessions),
        )
        .route(
            "/Panopto/api/v1/sessions/search",
            get(rest::search_sessions),
        )
        .route(
            "/Panopto/api/v1/sessions/inProgress/recording",
            get(rest::sessions_recording),
        )
        .route(
            "/Panopto/api/v1/sessions/{id}",
            get(rest::get_session)
                .put(rest::update_session)
                .delete(rest::delete_session),
        )
        .route(
            "/Panopto/api/v1/sessions/{id}/captions",
            post(rest::upload_captions).delete(rest::delete_captions),
        )
        .route(
            "/Panopto/api/v1/{kind}/{id}/settings/access",
            get(rest::get_access).put(rest::put_access),
        )
        .route(
            "/Panopto/api/v1/{kind}/{id}/permissions",
            get(rest::list_permissions)
                .post(rest::add_permission)
                .delete(rest::remove_permissions),
        )
        .route(
            "/Panopto/api/v1/remoteRecorders/search",
            get(rest::search_recorders),
        )
        .route(
            "/Panopto/api/v1/scheduledRecordings",
            post(rest::create_scheduled_recording),
        )
        .route(
            "/Panopto/api/v1/scheduledRecordings/{id}",
            get(rest::get_scheduled_recording)
                .put(rest::update_scheduled_recording)
                .delete(rest::delete_scheduled_recording),
        )
        .route("/Panopto/api/v1/users/search", get(rest::search_users))
        .route("/Panopto/api/v1/groups/search", get(rest::search_groups))
        .route(
            "/Panopto/api/v1/searchIndexSync/updates",
            get(rest::index_updates),
        )
        .route(
            "/Panopto/api/v1/searchIndexSync/content",
            get(rest::index_content),
        )
        .route_layer(from_fn_with_state(state.clone(), gate));
    let soap = Router::new()
        .route(
            panopto::soap::SESSION_MANAGEMENT_PATH,
            post(soap::session_management).get(soap::wsdl),
        )
        .route(
            panopto::soap::REMOTE_RECORDER_MANAGEMENT_PATH,
            post(soap::remote_recorder_management).get(soap::wsdl),
        )
        .route(
            panopto::soap::USER_MANAGEMENT_PATH,
            post(soap::user_management).get(soap::wsdl),
        )
        .route(
            panopto::soap::ACCESS_MANAGEMENT_PATH,
            post(soap::access_management).get(soap::wsdl),
        )
        .route_layer(from_fn_with_state(state.clone(), soap_gate));
    Router::new()
        .merge(api)
        .merge(soap)
        .route("/Panopto/oauth2/connect/token", post(rest::token))
        .layer(from_fn_with_state(state, outage))
}

/// During a `panopto.outage` window every Panopto request, the token endpoint's too, gets
/// 503 (as a site behind its load balancer does while it is down).
async fn outage(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let now = s.clock.now_ms();
    if s.with_world_read(|w| w.panopto.faults.outage_at(now)) {
        let endpoint = endpoint_of(&req);
        s.stats()
            .panopto_request("unknown", &endpoint, StatusCode::SERVICE_UNAVAILABLE);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "60")],
            "Service Unavailable",
        )
            .into_response();
    }
    next.run(req).await
}

fn endpoint_of(req: &Request) -> String {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    format!("{} {route}", req.method())
}

/// 429 with `Retry-After` in whole seconds (rounded up; of the limits' clock).
pub(crate) fn throttled(wait: std::time::Duration) -> Response {
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
    )
        .into_response()
}

/// REST: authenticate (401 with an empty body, as the spec declares), then rate-limit.
async fn gate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let endpoint = endpoint_of(&req);
    let token = crate::canvas::bearer(req.headers(), None);
    let now = s.clock.now_ms();
    let Some(client) = token.as_deref().and_then(|t| s.panopto.client_of(t, now)) else {
        s.stats()
            .panopto_request("anonymous", &endpoint, StatusCode::UNAUTHORIZED);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    };
    if let Err(wait) = s.panopto.admit(&client, s.panopto_limits_now_ms()) {
        s.stats()
            .panopto_request(&client, &endpoint, StatusCode::TOO_MANY_REQUESTS);
        return throttled(wait);
    }
    req.extensions_mut().insert(ApiClient(client.clone()));
    let resp = next.run(req).await;
    s.stats().panopto_request(&client, &endpoint, resp.status());
    resp
}

/// SOAP authenticates inside the envelope; the rate limit applies per SOAP caller and, for
/// unauthenticated envelopes, per anonymous caller.
async fn soap_gate(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = endpoint_of(&req);
    let resp = next.run(req).await;
    let client = resp
        .extensions()
        .get::<ApiClient>()
        .map_or_else(|| "anonymous".to_owned(), |c| c.0.clone());
    s.stats().panopto_request(&client, &endpoint, resp.status());
    resp
}
