//! The control API under `/_sim/` (no authentication: it is a test fixture) and the Live
//! Events JWKS at `/jwks`. Tests and the demo use it to move the clock, switch faults, read
//! counters, export the ground truth and the timetable, watch emitted Live Events, manage
//! subscriptions, rotate signing keys and mint Canvas credentials without a browser.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sim::{AppState, Faults};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_sim", get(info))
        .route("/_sim/clock", get(get_clock).post(set_clock))
        .route("/_sim/counters", get(counters))
        .route(
            "/_sim/faults",
            get(get_faults).put(put_faults).post(put_faults),
        )
        .route("/_sim/ground_truth", get(ground_truth))
        .route("/_sim/timetable/{file}", get(timetable))
        .route("/_sim/live_events", get(live_events))
        .route(
            "/_sim/live_events/subscriptions",
            get(list_subscriptions).post(add_subscription),
        )
        .route("/_sim/live_events/rotate_keys", post(rotate_keys))
        .route("/_sim/timetable/cancellations", post(cancel_class))
        .route("/_sim/canvas/revoke_tokens", post(revoke_canvas_tokens))
        .route("/_sim/panopto/revoke_tokens", post(revoke_panopto_tokens))
        .route("/_sim/panopto/sessions/{id}/viewers", get(session_viewers))
        .route(
            "/_sim/panopto/folders/{id}/captioning",
            get(get_captioning).put(put_captioning),
        )
        .route("/_sim/canvas/tokens", post(mint_token))
        .route("/_sim/canvas/codes", post(mint_code))
        .route("/jwks", get(jwks))
}

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "errors": [ { "message": msg.into() } ] })),
    )
        .into_response()
}

pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "errors": [ { "message": "The specified resource does not exist." } ] })),
    )
        .into_response()
}

async fn info(State(s): State<AppState>) -> Json<Value> {
    let (courses, users, enrollments) = s.with_world_read(|w| {
        (
            w.uni.courses.len(),
            w.uni.users.len(),
            w.uni.enrollments.len(),
        )
    });
    Json(json!({
        "seed": s.config.seed,
        "scale": s.config.scale,
        "canvas": { "rest": "/api/v1", "graphql": "/api/graphql", "oauth2": "/login/oauth2/token", "hostname": s.config.canvas_hostname },
        "panopto": { "rest": "/Panopto/api/v1", "soap": panopto::soap::SESSION_MANAGEMENT_PATH, "oauth2": "/Panopto/oauth2/connect/token" },
        "live_events_jwks": "/jwks",
        "oauth_client_id": s.config.oauth_client_id,
        "counts": { "courses": courses, "users": users, "enrollments": enrollments },
    }))
}

fn clock_json(s: &AppState) -> Value {
    json!({
        "now": crate::clock::iso_ms(s.clock.now_ms()),
        "now_ms": s.clock.now_ms(),
        "paused": s.clock.is_paused(),
        "speed": s.clock.speed(),
    })
}

async fn get_clock(State(s): State<AppState>) -> Json<Value> {
    Json(clock_json(&s))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    advance_seconds: Option<f64>,
    set: Option<String>,
    pause: Option<bool>,
    speed: Option<f64>,
}

/// `{"advance_seconds":N}`, `{"set":"ISO"}`, `{"pause":true|false}`, `{"speed":X}`; the
/// timeline is applied up to the new time before the response.
async fn set_clock(
    State(s): State<AppState>,
    body: Result<Json<ClockChange>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(c)) = body else {
        return bad("expected a JSON object with advance_seconds, set, pause or speed");
    };
    if let Some(speed) = c.speed {
        if !(speed.is_finite() && speed > 0.0) {
            return bad("speed must be a positive number");
        }
        s.clock.set_speed(speed);
    }
    match c.pause {
        Some(true) => s.clock.pause(),
        Some(false) => s.clock.resume(),
        None => {}
    }
    if let Some(secs) = c.advance_seconds {
        if !(secs.is_finite() && secs >= 0.0) {
            return bad("advance_seconds must be a non-negative number");
        }
        s.clock.advance(std::time::Duration::from_secs_f64(secs));
    }
    if let Some(at) = c.set {
        let Some(ms) = crate::clock::parse_iso(&at) else {
            return bad("set must be an ISO-8601 time");
        };
        if let Err(e) = s.clock.set(crate::clock::from_ms(ms)) {
            return bad(e.to_string());
        }
    }
    let s2 = s.clone();
    let _ = tokio::task::spawn_blocking(move || s2.with_world(|_| ())).await;
    Json(clock_json(&s)).into_response()
}

async fn counters(State(s): State<AppState>) -> Json<Value> {
    Json(serde_json::to_value(s.counters()).unwrap_or(Value::Null))
}

async fn get_faults(State(s): State<AppState>) -> Json<Faults> {
    Json(s.faults())
}

/// Replace the fault set; members left out return to their defaults (off).
async fn put_faults(
    State(s): State<AppState>,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(f)) => match s.set_faults(f) {
            Ok(()) => Json(s.faults()).into_response(),
            Err(e) => bad(format!("invalid faults: {e}")),
        },
        Err(e) => bad(format!("invalid faults: {e}")),
    }
}

async fn ground_truth(State(s): State<AppState>) -> Response {
    let now = s.clock.now_ms();
    let s2 = s.clone();
    let gt = tokio::task::spawn_blocking(move || {
        s2.with_world_read(|w| crate::ground_truth::capture(w, now))
    })
    .await;
    match gt {
        Ok(gt) => Json(gt).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ground truth failed").into_response(),
    }
}

async fn timetable(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    match s.with_world_read(|w| crate::timetable::export(w, &file)) {
        Some(csv) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response(),
        None => not_found().await,
    }
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn live_events(State(s): State<AppState>, Query(q): Query<LogQuery>) -> Response {
    let page = s
        .hub
        .log_page(q.after.unwrap_or(0), q.limit.unwrap_or(1000).min(10_000));
    Json(page).into_response()
}

async fn list_subscriptions(State(s): State<AppState>) -> Response {
    Json(s.hub.subscriptions()).into_response()
}

#[derive(Debug, Deserialize)]
struct NewSubscription {
    url: String,
    #[serde(default = "yes")]
    signed: bool,
}

fn yes() -> bool {
    true
}

async fn add_subscription(
    State(s): State<AppState>,
    body: Result<Json<NewSubscription>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(n)) = body else {
        return bad("expected {\"url\": \"https://...\", \"signed\": true}");
    };
    if !(n.url.starts_with("https://") || n.url.starts_with("http://")) {
        return bad("url must be http(s)");
    }
    let id = s.hub.subscribe(&n.url, n.signed);
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "url": n.url, "signed": n.signed })),
    )
        .into_response()
}

async fn rotate_keys(State(s): State<AppState>) -> Response {
    s.keys.rotate();
    Json(json!({ "current_kid": s.keys.current_kid() })).into_response()
}

async fn jwks(State(s): State<AppState>) -> Response {
    let keys = s.keys.clone();
    match tokio::task::spawn_blocking(move || keys.jwks()).await {
        Ok(Ok(v)) => Json(v).into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "key generation failed").into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct MintRequest {
    user_id: Option<u64>,
    redirect_uri: Option<String>,
}

async fn mint_token(State(s): State<AppState>, body: Option<Json<MintRequest>>) -> Response {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let user = req
        .user_id
        .unwrap_or_else(|| s.with_world_read(|w| w.uni.admin_user_id));
    if s.with_world_read(|w| w.uni.users.get(user).is_none()) {
        return bad("unknown user");
    }
    let now = s.clock.now_ms();
    let client = s.config.oauth_client_id.clone();
    let mut store = s.tokens();
    let (access, refresh) = store.issue_pair(user, &client, now);
    let ttl = store.ttl_seconds();
    Json(json!({ "access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": ttl, "user": { "id": user } })).into_response()
}

async fn mint_code(State(s): State<AppState>, body: Option<Json<MintRequest>>) -> Response {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let user = req
        .user_id
        .unwrap_or_else(|| s.with_world_read(|w| w.uni.admin_user_id));
    if s.with_world_read(|w| w.uni.users.get(user).is_none()) {
        return bad("unknown user");
    }
    let now = s.clock.now_ms();
    let client = s.config.oauth_client_id.clone();
    let code = s.tokens().issue_code(user, &client, req.redirect_uri, now);
    Json(json!({ "code": code, "client_id": client })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancellation {
    meeting_id: u64,
    /// Local date, `YYYY-MM-DD`.
    date: String,
    reason: Option<String>,
}

/// Call off one class (as the registrar's feed would show it). A lecture already scheduled
/// on its recorder and not yet started loses its scheduled session.
async fn cancel_class(
    State(s): State<AppState>,
    body: Result<Json<Cancellation>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(c)) = body else {
        return bad("expected {\"meeting_id\": N, \"date\": \"YYYY-MM-DD\", \"reason\": \"…\"}");
    };
    let Ok(date) = chrono::NaiveDate::parse_from_str(&c.date, "%Y-%m-%d") else {
        return bad("date must be YYYY-MM-DD");
    };
    let reason = c.reason.unwrap_or_else(|| "cancelled".to_owned());
    let now = s.clock.now_ms();
    let done = s.with_world(|w| {
        if !w.uni.meetings.iter().any(|m| m.id == c.meeting_id) {
            return Err("unknown meeting_id");
        }
        w.uni
            .cancellations
            .insert((c.meeting_id, date), reason.clone());
        w.panopto
            .cancel_lecture(date, c.meeting_id, reason.clone(), now);
        Ok(())
    });
    match done {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({ "meeting_id": c.meeting_id, "date": c.date, "reason": reason })),
        )
            .into_response(),
        Err(e) => bad(e),
    }
}

async fn revoke_canvas_tokens(State(s): State<AppState>) -> Response {
    Json(json!({ "revoked": s.tokens().revoke_all_access() })).into_response()
}

async fn revoke_panopto_tokens(State(s): State<AppState>) -> Response {
    Json(json!({ "revoked": s.panopto.revoke_all() })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Captioning {
    /// Minutes the folder's caption provider takes; `null` turns automatic captioning off.
    turnaround_minutes: Option<u32>,
}

async fn get_captioning(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.with_world_read(|w| {
        w.panopto
            .folders
            .get(&id)
            .map(|f| f.caption_turnaround_minutes)
    }) {
        Some(t) => Json(json!({ "folder_id": id, "turnaround_minutes": t })).into_response(),
        None => not_found().await,
    }
}

/// A folder's automatic captioning, as an administrator sets it in Panopto's folder settings
/// (the API has no call for it); it applies to sessions that reach the folder from now on.
async fn put_captioning(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<Captioning>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(c)) = body else {
        return bad("expected {\"turnaround_minutes\": N or null}");
    };
    let found = s.with_world(|w| match w.panopto.folders.get_mut(&id) {
        Some(f) => {
            f.caption_turnaround_minutes = c.turnaround_minutes;
            true
        }
        None => false,
    });
    if found {
        Json(json!({ "folder_id": id, "turnaround_minutes": c.turnaround_minutes })).into_response()
    } else {
        not_found().await
    }
}

/// Who can view a session, as Panopto evaluates folders, groups and grants: the effective
/// level, the audience and the users by Panopto GUID and Canvas id.
async fn session_viewers(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let answer = s.with_world_read(|w| {
        let v = w.panopto.viewers(&id)?;
        let users = crate::panopto::people::users_by_guid(&w.uni);
        let mut canvas: Vec<u64> = v
            .users
            .iter()
            .filter_map(|g| users.get(g).map(|u| u.canvas_id))
            .collect();
        canvas.sort_unstable();
        Some(json!({
            "session_id": v.session_id,
            "level": v.level,
            "audience": v.audience,
            "users": v.users,
            "canvas_user_ids": canvas,
        }))
    });
    match answer {
        Some(v) => Json(v).into_response(),
        None => not_found().await,
    }
}
