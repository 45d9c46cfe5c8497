//! Canvas OAuth2 (canvas.md B4) on the simulated clock: `GET /login/oauth2/auth` approves at
//! once and redirects with a code, `POST /login/oauth2/token` handles the
//! `authorization_code` and `refresh_token` grants (access tokens live 3,600 simulated
//! seconds by default; refresh does not rotate the refresh token), `DELETE` revokes. Tokens
//! given on the command line never expire and belong to the root-account admin.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use rand_chacha::ChaCha20Rng;
use serde::Deserialize;
use serde_json::json;

use crate::canvas::error::ApiError;
use crate::sim::AppState;

#[derive(Debug, Clone)]
struct AccessToken {
    user_id: u64,
    expires_ms: i64,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Code {
    user_id: u64,
    client_id: String,
    redirect_uri: Option<String>,
    expires_ms: i64,
}

#[derive(Debug)]
pub struct TokenStore {
    static_tokens: BTreeSet<String>,
    static_user: u64,
    access: BTreeMap<String, AccessToken>,
    refresh: BTreeMap<String, (u64, String)>,
    codes: BTreeMap<String, Code>,
    rng: ChaCha20Rng,
    ttl_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
}

impl AuthFailure {
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "user authorization required",
            AuthFailure::Invalid | AuthFailure::Expired => "Invalid access token.",
        }
    }
}

fn token(rng: &mut ChaCha20Rng) -> String {
    format!("2107~{}", crate::ids::canvas_uuid(rng)) + &crate::ids::canvas_uuid(rng)[..24]
}

impl TokenStore {
    pub fn new(seed: u64, static_tokens: &[String], admin: u64, ttl_ms: i64) -> TokenStore {
        TokenStore {
            static_tokens: static_tokens.iter().cloned().collect(),
            static_user: admin,
            access: BTreeMap::new(),
            refresh: BTreeMap::new(),
            codes: BTreeMap::new(),
            rng: crate::ids::rng(seed, "canvas-oauth"),
            ttl_ms,
        }
    }

    pub fn validate(&self, tok: &str, now: i64) -> Result<u64, AuthFailure> {
        if self.static_tokens.contains(tok) {
            return Ok(self.static_user);
        }
        let t = self.access.get(tok).ok_or(AuthFailure::Invalid)?;
        if t.revoked {
            return Err(AuthFailure::Invalid);
        }
        if now >= t.expires_ms {
            return Err(AuthFailure::Expired);
        }
        Ok(t.user_id)
    }

    pub fn issue_code(
        &mut self,
        user_id: u64,
        client_id: &str,
        redirect_uri: Option<String>,
        now: i64,
    ) -> String {
        let code = crate::ids::hex_token(&mut self.rng, 20);
        self.codes.insert(
            code.clone(),
            Code {
                user_id,
                client_id: client_id.to_owned(),
                redirect_uri,
                expires_ms: now + 10 * 60_000,
            },
        );
        code
    }

    fn mint(&mut self, user_id: u64, now: i64) -> String {
        let t = token(&mut self.rng);
        self.access.insert(
            t.clone(),
            AccessToken {
                user_id,
                expires_ms: now + self.ttl_ms,
                revoked: false,
            },
        );
        t
    }

    /// Mint an access + refresh token pair directly (control API and tests).
    pub fn issue_pair(&mut self, user_id: u64, client_id: &str, now: i64) -> (String, String) {
        let access = self.mint(user_id, now);
        let refresh = token(&mut self.rng);
        self.refresh
            .insert(refresh.clone(), (user_id, client_id.to_owned()));
        (access, refresh)
    }

    pub fn revoke(&mut self, tok: &str) -> bool {
        match self.access.get_mut(tok) {
            Some(t) => {
                t.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Revoke every live access token; returns how many.
    pub fn revoke_all_access(&mut self) -> usize {
        let mut n = 0;
        for t in self.access.values_mut().filter(|t| !t.revoked) {
            t.revoked = true;
            n += 1;
        }
        n
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_ms / 1000
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    refresh_token: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

pub async fn token_endpoint(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let cfg = &s.config;
    let (client_id, client_secret) = crate::client_auth::client_credentials(
        &headers,
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
    );
    if client_id.as_deref() != Some(cfg.oauth_client_id.as_str())
        || client_secret.as_deref() != Some(cfg.oauth_client_secret.as_str())
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let now = s.clock.now_ms();
    let mut store = s.tokens();
    let user_name = |id: u64| {
        s.with_world_read(|w| {
            w.uni
                .users
                .get(id)
                .map(|u| u.name.clone())
                .unwrap_or_default()
        })
    };
    match f.grant_type.as_deref() {
        Some("authorization_code") => {
            let Some(code) = f.code.as_deref().and_then(|c| store.codes.remove(c)) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "authorization_code not found",
                );
            };
            if code.expires_ms < now || code.client_id != cfg.oauth_client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "authorization_code expired",
                );
            }
            if code.redirect_uri.is_some() && code.redirect_uri != f.redirect_uri {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri does not match",
                );
            }
            let (access, refresh) = store.issue_pair(code.user_id, &code.client_id, now);
            let ttl = store.ttl_seconds();
            drop(store);
            Json(json!({
                "access_token": access,
                "token_type": "Bearer",
                "user": { "id": code.user_id, "name": user_name(code.user_id), "global_id": crate::ids::global_id(code.user_id), "effective_locale": "en" },
                "canvas_region": "us-east-1",
                "refresh_token": refresh,
                "expires_in": ttl,
            }))
            .into_response()
        }
        Some("refresh_token") => {
            let Some((user_id, _)) = f
                .refresh_token
                .as_deref()
                .and_then(|r| store.refresh.get(r))
                .cloned()
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh_token not found",
                );
            };
            let access = store.mint(user_id, now);
            let ttl = store.ttl_seconds();
            drop(store);
            // Canvas does not rotate refresh tokens: the response carries none.
            Json(json!({
                "access_token": access,
                "token_type": "Bearer",
                "user": { "id": user_id, "name": user_name(user_id), "global_id": crate::ids::global_id(user_id), "effective_locale": "en" },
                "canvas_region": "us-east-1",
                "expires_in": ttl,
            }))
            .into_response()
        }
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("unsupported grant_type {other}"),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        ),
    }
}

pub async fn revoke_endpoint(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(tok) = crate::canvas::bearer(&headers, None) else {
        return ApiError::Unauthorized(AuthFailure::Missing.message()).into_response();
    };
    let now = s.clock.now_ms();
    let mut store = s.tokens();
    if store.validate(&tok, now).is_err() {
        return ApiError::Unauthorized(AuthFailure::Invalid.message()).into_response();
    }
    store.revoke(&tok);
    Json(json!({})).into_response()
}

#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    /// Log in as this login id (default: the admin).
    unique_id: Option<String>,
}

/// Approves at once (no login page) and redirects with a code.
pub async fn authorize_endpoint(
    State(s): State<AppState>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    if q.client_id.as_deref() != Some(s.config.oauth_client_id.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": "unknown client"})),
        )
            .into_response();
    }
    if q.response_type.as_deref() != Some("code") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_response_type"})),
        )
            .into_response();
    }
    let Some(redirect) = q.redirect_uri.clone().filter(|r| {
        r.starts_with("http://") || r.starts_with("https://") || r == "urn:ietf:wg:oauth:2.0:oob"
    }) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": "redirect_uri is required"}))).into_response();
    };
    let user_id = s.with_world_read(|w| match &q.unique_id {
        Some(login) => w.uni.logins.get(login).copied(),
        None => Some(w.uni.admin_user_id),
    });
    let Some(user_id) = user_id else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "access_denied"})),
        )
            .into_response();
    };
    let now = s.clock.now_ms();
    let code = s.tokens().issue_code(
        user_id,
        &s.config.oauth_client_id,
        Some(redirect.clone()),
        now,
    );
    let mut ser = form_urlencoded::Serializer::new(String::new());
    ser.append_pair("code", &code);
    if let Some(st) = &q.state {
        ser.append_pair("state", st);
    }
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let location = format!("{redirect}{sep}{}", ser.finish());
    let Ok(location) = header::HeaderValue::from_str(&location) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "bad redirect_uri"})),
        )
            .into_response();
    };
    // Canvas answers the approval with 302 Found.
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            ),
        ],
    )
        .into_response()
}
