//! The Canvas surface: REST under `/api/v1`, GraphQL at `/api/graphql`, OAuth2 under
//! `/login/oauth2`. Every API request passes one gate that does what Canvas's middleware
//! does, in Canvas's order: throttle by token (leaky bucket), authenticate (401 with
//! `WWW-Authenticate`), run the handler, charge the request's real cost (which it also takes
//! in real time), and set `X-Request-Cost` and `X-Rate-Limit-Remaining`. Counters per token
//! and per endpoint are kept here.

pub mod error;
pub mod graphql;
mod graphql_path;
pub mod oauth;
pub mod pagination;
pub mod params;
pub mod render;
mod rest;
pub mod throttle;

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::canvas::error::ApiError;
use crate::canvas::oauth::AuthFailure;
use crate::canvas::params::Params;
use crate::config::ThrottleStatus;
use crate::ids::token_label;
use crate::sim::AppState;

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: u64,
    /// Counter key for the credential (never the credential itself).
    pub label: String,
}

/// Response extension: how many objects a response carried (drives its cost).
#[derive(Debug, Clone, Copy)]
pub struct ItemCount(pub usize);

/// The bearer token of a request: `Authorization: Bearer …` or `?access_token=`.
pub fn bearer(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = v.splitn(2, ' ');
        if let (Some(scheme), Some(tok)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
            && !tok.trim().is_empty()
        {
            return Some(tok.trim().to_owned());
        }
    }
    query.and_then(|q| Params::parse(q).text("access_token"))
}

/// Everything a handler needs about the request besides its path and body.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `http://host:port` as the client addressed us.
    pub origin: String,
    pub path: String,
    pub path_and_query: String,
    pub params: Params,
    pub caller: Caller,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized(AuthFailure::Missing.message()))?;
        Ok(Ctx {
            origin: origin_of(&parts.headers),
            path: parts.uri.path().to_owned(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            params: Params::parse(parts.uri.query().unwrap_or("")),
            caller,
        })
    }
}

pub fn origin_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

pub fn router(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/api/v1/accounts", get(rest::list_accounts))
        .route("/api/v1/accounts/{account_id}", get(rest::get_account))
        .route(
            "/api/v1/accounts/{account_id}/sub_accounts",
            get(rest::list_sub_accounts),
        )
        .route(
            "/api/v1/accounts/{account_id}/courses",
            get(rest::list_account_courses),
        )
        .route(
            "/api/v1/accounts/{account_id}/users",
            get(rest::list_account_users),
        )
        .route(
            "/api/v1/accounts/{account_id}/enrollments/{id}",
            get(rest::get_enrollment),
        )
        .route("/api/v1/courses", get(rest::list_my_courses))
        .route(
            "/api/v1/courses/{course_id}",
            get(rest::get_course).put(rest::update_course),
        )
        .route(
            "/api/v1/courses/{course_id}/sections",
            get(rest::list_sections),
        )
        .route(
            "/api/v1/courses/{course_id}/sections/{id}",
            get(rest::get_course_section),
        )
        .route("/api/v1/sections/{id}", get(rest::get_section))
        .route(
            "/api/v1/courses/{course_id}/enrollments",
            get(rest::list_course_enrollments).post(rest::enroll_in_course),
        )
        .route(
            "/api/v1/courses/{course_id}/enrollments/{id}",
            axum::routing::delete(rest::end_enrollment),
        )
        .route(
            "/api/v1/courses/{course_id}/enrollments/{id}/reactivate",
            put(rest::reactivate_enrollment),
        )
        .route(
            "/api/v1/sections/{section_id}/enrollments",
            get(rest::list_section_enrollments).post(rest::enroll_in_section),
        )
        .route(
            "/api/v1/users/{user_id}/enrollments",
            get(rest::list_user_enrollments),
        )
        .route("/api/v1/users/{user_id}", get(rest::get_user))
        .route(
            "/api/v1/courses/{course_id}/users",
            get(rest::list_course_users),
        )
        // The same list under the route canvasapi's `Course.get_users` calls.
        .route(
            "/api/v1/courses/{course_id}/search_users",
            get(rest::list_course_users),
        )
        .route(
            "/api/v1/courses/{course_id}/modules",
            get(rest::list_modules).post(rest::create_module),
        )
        .route(
            "/api/v1/courses/{course_id}/modules/{id}",
            get(rest::get_module)
                .put(rest::update_module)
                .delete(rest::delete_module),
        )
        .route(
            "/api/v1/courses/{course_id}/modules/{module_id}/items",
            get(rest::list_module_items).post(rest::create_module_item),
        )
        .route(
            "/api/v1/courses/{course_id}/modules/{module_id}/items/{id}",
            get(rest::get_module_item)
                .put(rest::update_module_item)
                .delete(rest::delete_module_item),
        )
        .route(
            "/api/v1/courses/{course_id}/assignments",
            get(rest::list_assignments).post(rest::create_assignment),
        )
        .route(
            "/api/v1/courses/{course_id}/assignments/{id}",
            get(rest::get_assignment).put(rest::update_assignment),
        )
        .route(
            "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions",
            get(rest::list_submissions),
        )
        .route(
            "/api/v1/courses/{course_id}/assignments/{assignment_id}/submissions/{user_id}",
            get(rest::get_submission).put(rest::grade_submission),
        )
        .route(
            "/api/v1/courses/{course_id}/students/submissions",
            get(rest::list_student_submissions),
        )
        .route("/api/graphql", post(graphql::endpoint))
        .route_layer(from_fn_with_state(state, gate));
    Router::new()
        .merge(api)
        .route(
            "/login/oauth2/token",
            post(oauth::token_endpoint).delete(oauth::revoke_endpoint),
        )
        .route("/login/oauth2/auth", get(oauth::authorize_endpoint))
}

fn throttled(status: ThrottleStatus) -> Response {
    let (code, body) = match status {
        ThrottleStatus::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            "429 Too Many Requests (Rate Limit Exceeded)\n",
        ),
        ThrottleStatus::LegacyForbidden => (
            StatusCode::FORBIDDEN,
            "403 Forbidden (Rate Limit Exceeded)\n",
        ),
    };
    let mut r = (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response();
    r.headers_mut()
        .insert("x-rate-limit-remaining", HeaderValue::from_static("0.0"));
    r
}

/// Canvas's middleware order: throttle, authenticate, handle, charge.
async fn gate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let method = req.method().clone();
    let endpoint = format!("{method} {route}");
    let token = bearer(req.headers(), req.uri().query());
    let key = token
        .as_deref()
        .map_or_else(|| "anonymous".to_owned(), token_label);
    let cfg = &s.config.throttle;

    if s.api_outage() {
        s.stats()
            .canvas_request(&key, &endpoint, 0.0, StatusCode::SERVICE_UNAVAILABLE);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "503 Service Unavailable (simulated outage)\n",
        )
            .into_response();
    }
    if cfg.enabled && !s.buckets().admit(&key, s.throttle_now(), cfg) {
        s.stats().canvas_throttled(&key, &endpoint);
        return throttled(s.throttle_status());
    }

    let now = s.clock.now_ms();
    let auth = match &token {
        None => Err(AuthFailure::Missing),
        Some(t) => s.tokens().validate(t, now),
    };
    let mut resp = match auth {
        Ok(user_id) => {
            req.extensions_mut().insert(Caller {
                user_id,
                label: key.clone(),
            });
            next.run(req).await
        }
        Err(f) => ApiError::Unauthorized(f.message()).into_response(),
    };

    let items = resp.extensions().get::<ItemCount>().map_or(0, |c| c.0);
    let model = &cfg.cost;
    let base = model
        .overrides
        .get(&endpoint)
        .copied()
        .unwrap_or(if method == Method::GET {
            model.get
        } else {
            model.write
        });
    let per_item = if route == "/api/graphql" {
        model.graphql_per_node
    } else {
        model.per_item
    };
    let cost = (base + per_item * items as f64).max(0.0);
    let latency = cost * model.latency_scale;
    if latency > 0.0 && latency.is_finite() {
        tokio::time::sleep(Duration::from_secs_f64(latency.min(30.0))).await;
    }
    let remaining = if cfg.enabled {
        s.buckets().finish(&key, s.throttle_now(), cfg, cost)
    } else {
        cfg.high_water_mark
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&throttle::format_units(cost)) {
        h.insert("x-request-cost", v);
    }
    if let Ok(v) = HeaderValue::from_str(&throttle::format_units(remaining)) {
        h.insert("x-rate-limit-remaining", v);
    }
    s.stats()
        .canvas_request(&key, &endpoint, cost, resp.status());
    resp
}
