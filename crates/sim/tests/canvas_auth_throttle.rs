//! OAuth2 on the simulated clock (authorization code, refresh, expiry, revocation) and the
//! leaky-bucket throttle (sequential never throttled, ~13 parallel are, remaining falls and
//! recovers at 10 units/s).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use sim::config::{ThrottleClock, ThrottleStatus};

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn unknown_missing_and_expired_tokens_get_401_and_refresh_works() {
    let t = TestSim::start(config(21)).await;
    let cfg = t.sim.config().clone();

    let none = t
        .http
        .get(t.url("/api/v1/accounts/1"))
        .send()
        .await
        .expect("req");
    assert_eq!(none.status(), 401);
    assert!(header(&none, "www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let junk = t
        .http
        .get(t.url("/api/v1/accounts/1"))
        .bearer_auth("nope")
        .send()
        .await
        .expect("req");
    assert_eq!(junk.status(), 401);
    assert!(header(&junk, "www-authenticate").is_some());
    let body: Value = junk.json().await.expect("json");
    assert_eq!(body["errors"][0]["message"], "Invalid access token.");

    // Authorization-code flow: /auth redirects with code and state.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirects
        .get(t.url("/login/oauth2/auth"))
        .query(&[
            ("client_id", cfg.oauth_client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost/cb"),
            ("state", "xyz"),
        ])
        .send()
        .await
        .expect("auth");
    assert_eq!(r.status(), 302);
    let location = header(&r, "location").expect("Location");
    assert!(
        location.starts_with("http://localhost/cb?code=") && location.ends_with("&state=xyz"),
        "{location}"
    );
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("code")
        .to_owned();

    let token = |form: Vec<(&'static str, String)>| {
        let http = t.http.clone();
        let url = t.url("/login/oauth2/token");
        async move { http.post(url).form(&form).send().await.expect("token") }
    };
    let bad_secret = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", cfg.oauth_client_id.clone()),
        ("client_secret", "wrong".into()),
        ("code", code.clone()),
    ])
    .await;
    assert_eq!(bad_secret.status(), 401);
    let issued = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", cfg.oauth_client_id.clone()),
        ("client_secret", cfg.oauth_client_secret.clone()),
        ("redirect_uri", "http://localhost/cb".into()),
        ("code", code.clone()),
    ])
    .await;
    assert_eq!(issued.status(), 200);
    let issued: Value = issued.json().await.expect("json");
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 3600);
    let access = issued["access_token"].as_str().expect("access").to_owned();
    let refresh = issued["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let reused = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", cfg.oauth_client_id.clone()),
        ("client_secret", cfg.oauth_client_secret.clone()),
        ("code", code),
    ])
    .await;
    assert_eq!(reused.status(), 400, "codes are single-use");

    let ok = t
        .http
        .get(t.url("/api/v1/accounts/1"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);

    // 3,599 simulated seconds later the token still works; at 3,600 it has expired.
    t.advance(3_599.0).await;
    assert_eq!(
        t.http
            .get(t.url("/api/v1/accounts/1"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("req")
            .status(),
        200
    );
    t.advance(1.0).await;
    let expired = t
        .http
        .get(t.url("/api/v1/accounts/1"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("req");
    assert_eq!(expired.status(), 401);
    assert!(header(&expired, "www-authenticate").is_some());
    // The static script token never expires.
    assert_eq!(t.get("/api/v1/accounts/1").await.status(), 200);

    let refreshed = token(vec![
        ("grant_type", "refresh_token".into()),
        ("client_id", cfg.oauth_client_id.clone()),
        ("client_secret", cfg.oauth_client_secret.clone()),
        ("refresh_token", refresh.clone()),
    ])
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.expect("json");
    assert!(
        refreshed.get("refresh_token").is_none(),
        "Canvas does not rotate refresh tokens"
    );
    let access2 = refreshed["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_ne!(access2, access);
    assert_eq!(
        t.http
            .get(t.url("/api/v1/accounts/1"))
            .bearer_auth(&access2)
            .send()
            .await
            .expect("req")
            .status(),
        200
    );

    // Revocation.
    let revoked = t
        .http
        .delete(t.url("/login/oauth2/token"))
        .bearer_auth(&access2)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        t.http
            .get(t.url("/api/v1/accounts/1"))
            .bearer_auth(&access2)
            .send()
            .await
            .expect("req")
            .status(),
        401
    );
    let unknown_grant = token(vec![
        ("grant_type", "refresh_token".into()),
        ("client_id", cfg.oauth_client_id.clone()),
        ("client_secret", cfg.oauth_client_secret.clone()),
        ("refresh_token", "nope".into()),
    ])
    .await;
    assert_eq!(unknown_grant.status(), 400);
    assert_eq!(t.sim.counters().canvas.unauthorized, 4);
    t.stop().await;
}

#[tokio::test]
async fn sequential_requests_are_never_throttled() {
    let t = TestSim::start(config(22)).await;
    let mut last_remaining = f64::MAX;
    for i in 0..80 {
        let path = if i % 2 == 0 {
            "/api/v1/accounts/1/courses?per_page=100"
        } else {
            "/api/v1/accounts/1"
        };
        let r = t.get(path).await;
        assert_eq!(r.status(), 200, "request {i}");
        let cost: f64 = header(&r, "x-request-cost")
            .expect("X-Request-Cost")
            .parse()
            .expect("float");
        let remaining: f64 = header(&r, "x-rate-limit-remaining")
            .expect("X-Rate-Limit-Remaining")
            .parse()
            .expect("float");
        assert!(cost > 0.0 && cost < 1.0, "{cost}");
        assert!(remaining > 590.0, "{remaining}");
        last_remaining = remaining;
    }
    assert!(last_remaining <= 600.0);
    let c = t.sim.counters().canvas_token(TOKEN);
    assert_eq!(c.requests, 80);
    assert_eq!(c.throttled, 0);
    assert!(c.cost_units > 0.0);
    t.stop().await;
}

async fn parallel(t: &TestSim, token: &str, n: usize) -> (usize, usize, Vec<String>) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let http = t.http.clone();
        let url = t.url("/api/v1/accounts/1");
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            http.get(url).bearer_auth(token).send().await.expect("req")
        }));
    }
    let (mut ok, mut throttled, mut bodies) = (0, 0, Vec::new());
    for task in tasks {
        let r = task.await.expect("join");
        match r.status().as_u16() {
            200 => ok += 1,
            429 | 403 => {
                throttled += 1;
                assert_eq!(header(&r, "x-rate-limit-remaining").as_deref(), Some("0.0"));
                assert!(header(&r, "x-request-cost").is_none());
                bodies.push(r.text().await.expect("text"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    (ok, throttled, bodies)
}

#[tokio::test]
async fn thirteen_or_more_parallel_requests_are_throttled() {
    let mut cfg = config(23)
        .with_canvas_token("second-token")
        .with_canvas_token("third-token");
    // Each request takes a second of (simulated) server time, so parallel requests overlap.
    cfg.throttle
        .cost
        .overrides
        .insert("GET /api/v1/accounts/{account_id}".into(), 1.0);
    let t = TestSim::start(cfg).await;

    let (ok, throttled, _) = parallel(&t, TOKEN, 12).await;
    assert_eq!(
        (ok, throttled),
        (12, 0),
        "12 in flight hold 600 units: all admitted"
    );

    let (ok, throttled, bodies) = parallel(&t, "second-token", 24).await;
    assert!(throttled >= 8, "24 parallel: {throttled} throttled");
    assert!(ok >= 12, "{ok} admitted");
    assert!(bodies.iter().all(|b| b.contains("Rate Limit Exceeded")));
    assert_eq!(
        t.sim.counters().canvas_token("second-token").throttled,
        throttled as u64
    );

    // Legacy mode answers 403 Forbidden (Rate Limit Exceeded).
    let mut faults = t.sim.faults();
    faults.canvas.legacy_throttle_status = true;
    t.sim.set_faults(faults).expect("faults");
    let (_, throttled, bodies) = parallel(&t, "third-token", 24).await;
    assert!(throttled > 0);
    assert!(
        bodies
            .iter()
            .all(|b| b == "403 Forbidden (Rate Limit Exceeded)\n"),
        "{bodies:?}"
    );
    t.stop().await;
}

#[tokio::test]
async fn remaining_falls_and_recovers_at_ten_units_per_second() {
    let mut cfg = config(24);
    cfg.throttle.clock = ThrottleClock::Simulated;
    cfg.throttle.cost.latency_scale = 0.0;
    cfg.throttle
        .cost
        .overrides
        .insert("GET /api/v1/accounts/{account_id}/courses".into(), 100.0);
    cfg.throttle
        .cost
        .overrides
        .insert("GET /api/v1/accounts/{account_id}".into(), 0.0);
    cfg.throttle.cost.per_item = 0.0;
    assert_eq!(cfg.throttle.status, ThrottleStatus::TooManyRequests);
    let t = TestSim::start(cfg).await;
    let remaining = |r: &reqwest::Response| {
        header(r, "x-rate-limit-remaining")
            .expect("header")
            .parse::<f64>()
            .expect("float")
    };

    let r = t.get("/api/v1/accounts/1").await;
    assert_eq!(remaining(&r), 600.0);
    let r = t.get("/api/v1/accounts/1/courses").await;
    assert_eq!(header(&r, "x-request-cost").as_deref(), Some("100.0"));
    assert_eq!(remaining(&r), 500.0);
    let r = t.get("/api/v1/accounts/1/courses").await;
    assert_eq!(remaining(&r), 400.0);
    // The clock is paused: nothing drains until it moves.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(remaining(&t.get("/api/v1/accounts/1").await), 400.0);
    t.advance(5.0).await;
    assert_eq!(remaining(&t.get("/api/v1/accounts/1").await), 450.0);
    t.advance(12.5).await;
    assert_eq!(remaining(&t.get("/api/v1/accounts/1").await), 575.0);
    t.advance(100.0).await;
    assert_eq!(
        remaining(&t.get("/api/v1/accounts/1").await),
        600.0,
        "never above the high-water mark"
    );

    // Fill past the mark: the next request is refused until enough has drained.
    for _ in 0..7 {
        let _ = t.get("/api/v1/accounts/1/courses").await;
    }
    let refused = t.get("/api/v1/accounts/1").await;
    assert_eq!(refused.status(), 429);
    t.advance(20.0).await;
    assert_eq!(t.get("/api/v1/accounts/1").await.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn an_api_outage_answers_503_and_revoked_access_tokens_are_refreshed() {
    let t = TestSim::start(config(22)).await;
    let cfg = t.sim.config().clone();
    let (access, refresh) = t.sim.issue_canvas_token(None);
    let get = |token: String| {
        let (http, url) = (t.http.clone(), t.url("/api/v1/accounts/1"));
        async move { http.get(url).bearer_auth(token).send().await.expect("req") }
    };
    assert_eq!(get(access.clone()).await.status(), 200);

    let mut faults = t.sim.faults();
    faults.canvas.api_outage = true;
    t.sim.set_faults(faults.clone()).expect("faults");
    let down = get(access.clone()).await;
    assert_eq!(down.status(), 503);
    assert!(header(&down, "x-rate-limit-remaining").is_none());
    let graphql = t
        .http
        .post(t.url("/api/graphql"))
        .bearer_auth(&access)
        .json(&serde_json::json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("graphql");
    assert_eq!(graphql.status(), 503);
    faults.canvas.api_outage = false;
    t.sim.set_faults(faults).expect("faults");
    assert_eq!(get(access.clone()).await.status(), 200);

    // Revoking every access token leaves refresh tokens (and static tokens) working.
    assert_eq!(t.sim.revoke_access_tokens(), 1);
    assert_eq!(get(access).await.status(), 401);
    assert_eq!(get(TOKEN.to_owned()).await.status(), 200);
    let renewed: Value = t
        .http
        .post(t.url("/login/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", cfg.oauth_client_id.as_str()),
            ("client_secret", cfg.oauth_client_secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let fresh = renewed["access_token"]
        .as_str()
        .expect("a new token")
        .to_owned();
    assert_eq!(get(fresh).await.status(), 200);
}

/// authlib (PyPI), as universities' scripts use it: refreshes a Canvas token and gets a
/// Panopto one with HTTP Basic client authentication (its default) and with form fields, then
/// calls each API with what it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_gets_tokens_by_http_basic_and_by_form_fields() {
    let cfg = config(5);
    let t = TestSim::start(cfg.clone()).await;
    let minted: Value = t
        .http
        .post(t.url("/_sim/canvas/tokens"))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let refresh = minted["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let out = python_check(
        "authlib",
        "authlib_tokens.py",
        &[
            t.base.as_str(),
            &cfg.oauth_client_id,
            &cfg.oauth_client_secret,
            &refresh,
            &cfg.panopto_client_id,
            &cfg.panopto_client_secret,
            &cfg.panopto_username,
            &cfg.panopto_password,
        ],
    );
    let Some(stdout) = out else { return };
    assert_eq!(stdout.trim(), "ok");
}
