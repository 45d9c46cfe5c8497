//! Where subscriptions may send (the SSRF guard), live over HTTP: internal targets are refused
//! when a subscription is made and again at every connection, redirects are never followed,
//! failures are recorded by class only, and tokens cannot make retry storms or endless
//! subscriptions.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Backend, TestApp, TestDb};
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "targets-admin";

both_backends!(
    by_backend:
    internal_targets_are_refused_when_made_unless_allowed,
    internal_targets_are_refused_at_connect_time_too,
);

/// A receiver on loopback that counts what reaches it; answers `status` (with `Location`
/// when it is a redirect).
struct Receiver {
    url: String,
    hits: Arc<AtomicUsize>,
}

async fn receiver(status: u16, location: Option<String>) -> Receiver {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let counted = counted.clone();
            let location = location.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let status = StatusCode::from_u16(status).unwrap();
                match location {
                    Some(to) => (status, [(header::LOCATION, to)]).into_response(),
                    None => status.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://127.0.0.1:{port}/hook"),
        hits,
    }
}

async fn spawn(db: TestDb, allow_loopback: bool) -> TestApp {
    TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", move |c| {
        common::unsigned_from_anyone(c);
        c.api.token = coursewire::config::Secret::new(TOKEN);
        c.api.max_subscriptions_per_token = 3;
        c.delivery.min_retry_delay_ms = 100;
        c.processor.idle_poll_ms = 20;
        c.delivery.idle_poll_ms = 20;
        if !allow_loopback {
            c.delivery.allowed_networks.clear();
        }
    })
    .await
}

async fn subscribe(app: &TestApp, body: Value) -> (u16, Value) {
    app.call(Method::POST, "/api/v1/subscriptions", TOKEN, Some(&body))
        .await
}

/// The last error of the subscription's one failing subject, once it has one.
async fn last_error(app: &TestApp, name: &str) -> String {
    for _ in 0..300 {
        let (_, status) = app
            .call(
                Method::GET,
                &format!("/api/v1/subscriptions/{name}"),
                TOKEN,
                None,
            )
            .await;
        if let Some(error) = status["failing_subjects"][0]["last_error"].as_str() {
            return error.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never failed");
}

async fn post_event(app: &TestApp) {
    let (status, _) = app
        .post_canvas(common::enrollment_event(1).to_string(), "application/json")
        .await;
    assert_eq!(status, 200);
}

async fn internal_targets_are_refused_when_made_unless_allowed(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = spawn(db, false).await;
    for (url, class) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:22/", "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("http://[::1]:8080/", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[fd00::1]/hook", "unique-local"),
        ("http://0.0.0.0:80/", "unspecified"),
    ] {
        let (status, answer) = subscribe(&app, json!({"name": "x", "url": url})).await;
        assert_eq!(status, 422, "{url}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(class) && error.contains("delivery.allowed_networks"),
            "{url}: {error}"
        );
    }
    let (status, _) = subscribe(&app, json!({"name": "pull-only"})).await;
    assert_eq!(status, 201, "a pull subscription has no target to judge");

    // Retry storms and endless subscriptions.
    let (status, answer) = subscribe(
        &app,
        json!({"name": "storm", "retry_schedule_ms": [0, 0, 0]}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("min_retry_delay_ms")
    );
    for n in 0..2 {
        let (status, _) = subscribe(&app, json!({"name": format!("more-{n}")})).await;
        assert_eq!(status, 201);
    }
    let (status, answer) = subscribe(&app, json!({"name": "one-too-many"})).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("api.max_subscriptions_per_token")
    );
    app.stop().await.unwrap();

    // Allowed explicitly (`delivery.allowed_networks`): the same loopback target is taken.
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = spawn(db, true).await;
    let target = receiver(204, None).await;
    let (status, answer) = subscribe(&app, json!({"name": "local", "url": target.url})).await;
    assert_eq!(status, 201, "{answer}");
    post_event(&app).await;
    for _ in 0..200 {
        if target.hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(target.hits.load(Ordering::SeqCst), 1, "delivered once");
    app.stop().await.unwrap();
}

/// Targets that were allowed when made (or a name that now resolves elsewhere) are judged
/// again at every connection; redirects are never followed; a failure is recorded by class.
async fn internal_targets_are_refused_at_connect_time_too(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let target = receiver(204, None).await;
    let port = target
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // Made while loopback was allowed, by an operator at the shell.
    let by_name = format!("http://localhost:{port}/hook");
    for (name, url) in [
        ("by-name", by_name.as_str()),
        ("by-address", target.url.as_str()),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
            .args(["subscriptions", "add", "--name", name, "--url", url])
            .args(["--retry-schedule", "100ms,100ms,100ms"])
            .env("COURSEWIRE_DATABASE_URL", &db.url)
            .envs(common::LOOPBACK_SUBSCRIBERS)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The service no longer allows it.
    let app = spawn(db, false).await;
    post_event(&app).await;
    for name in ["by-name", "by-address"] {
        let error = last_error(&app, name).await;
        assert!(
            error.starts_with("refused by coursewire: a loopback address"),
            "{name}: {error}"
        );
    }
    assert_eq!(
        target.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the target"
    );
    app.stop().await.unwrap();

    // Allowed: a redirect is a failure and is not followed; a refused connection is recorded
    // as just that, without the address or port.
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = spawn(db, true).await;
    let elsewhere = receiver(204, None).await;
    let redirecting = receiver(307, Some(elsewhere.url.clone())).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/hook")
    };
    for (name, url) in [("redirects", &redirecting.url), ("closed", &closed)] {
        let (status, answer) = subscribe(
            &app,
            json!({"name": name, "url": url, "retry_schedule_ms": [100, 100, 100]}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }
    post_event(&app).await;
    assert_eq!(last_error(&app, "redirects").await, "HTTP 307");
    assert!(redirecting.hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        elsewhere.hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    let error = last_error(&app, "closed").await;
    assert_eq!(error, "connection refused");
    let closed_port = closed.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(!error.contains(closed_port));
    app.stop().await.unwrap();
}
