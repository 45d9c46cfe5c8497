//! Scoped API tokens over HTTP: made with `coursewire tokens add` or `/api/v1/tokens`, a
//! consumer reads only its own subscriptions, an operator runs subscriptions but not tokens,
//! a revoked token is refused, and neither the store nor the log ever holds a token.

mod common;

use std::process::Command;

use common::{Backend, ServeProcess, TestApp, TestDb};
use reqwest::Method;
use serde_json::{Value, json};

const BOOTSTRAP: &str = "bootstrap-admin-token";

both_backends!(by_backend: each_role_may_do_what_it_is_for_and_nothing_else);

/// `coursewire tokens …` against the test's database.
fn tokens_cli(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .arg("tokens")
        .args(args)
        .env("COURSEWIRE_DATABASE_URL", db_url)
        .output()
        .unwrap()
}

fn added_token(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let added: Value = serde_json::from_slice(&output.stdout).unwrap();
    added["token"].as_str().unwrap().to_owned()
}

async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> u16 {
    app.call(method, path, token, body.as_ref()).await.0
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    app.call(Method::GET, path, token, None).await
}

async fn each_role_may_do_what_it_is_for_and_nothing_else(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        common::unsigned_from_anyone(c);
        c.api.token = coursewire::config::Secret::new(BOOTSTRAP);
    })
    .await;
    let db_url = app.db.url.clone();
    let (status, _) = app
        .post_canvas(common::enrollment_event(1).to_string(), "application/json")
        .await;
    assert_eq!(status, 200);
    for name in ["lms-sync", "library"] {
        let status = call(
            &app,
            BOOTSTRAP,
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(status, 201, "the bootstrap token is an admin");
    }

    // A consumer made at the shell; an operator through the API.
    let consumer = added_token(&tokens_cli(
        &db_url,
        &[
            "add",
            "--name",
            "lms-reader",
            "--role",
            "consumer",
            "--subscription",
            "lms-sync",
        ],
    ));
    let (status, made) = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            BOOTSTRAP,
            Some(&json!({"name": "ops", "role": "operator"})),
        )
        .await;
    assert_eq!(status, 201);
    let operator = made["token"].as_str().unwrap().to_owned();
    assert!(consumer.starts_with("cwt_") && operator.starts_with("cwt_"));

    // The consumer: its own subscription's events and status, nothing else.
    let (status, page) = get_json(&app, &consumer, "/api/v1/subscriptions/lms-sync/events").await;
    assert_eq!(status, 200, "{page}");
    let (status, _) = get_json(&app, &consumer, "/api/v1/subscriptions/lms-sync").await;
    assert_eq!(status, 200);
    let (_, listed) = get_json(&app, &consumer, "/api/v1/subscriptions").await;
    let names: Vec<&str> = listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lms-sync"], "a consumer lists only its own");
    for (method, path, body) in [
        (Method::GET, "/api/v1/subscriptions/library/events", None),
        (Method::GET, "/api/v1/subscriptions/library", None),
        (Method::GET, "/api/v1/events", None),
        (Method::DELETE, "/api/v1/subscriptions/library", None),
        (Method::DELETE, "/api/v1/subscriptions/lms-sync", None),
        (Method::POST, "/api/v1/subscriptions/lms-sync/pause", None),
        (
            Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"name": "everything"})),
        ),
        (Method::GET, "/api/v1/tokens", None),
    ] {
        let status = call(&app, &consumer, method.clone(), path, body).await;
        assert_eq!(status, 403, "consumer {method} {path}");
    }

    // The operator: subscriptions yes (and they say who made them), tokens no.
    let status = call(
        &app,
        &operator,
        Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"name": "ops-made"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, made) = get_json(&app, &operator, "/api/v1/subscriptions/ops-made").await;
    assert_eq!(made["created_by"], "ops");
    let (status, _) = get_json(&app, &operator, "/api/v1/events").await;
    assert_eq!(status, 200);
    let status = call(
        &app,
        &operator,
        Method::DELETE,
        "/api/v1/subscriptions/ops-made",
        None,
    )
    .await;
    assert_eq!(status, 204);
    for (method, path, body) in [
        (Method::GET, "/api/v1/tokens", None),
        (
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (Method::DELETE, "/api/v1/tokens/lms-reader", None),
    ] {
        let status = call(&app, &operator, method.clone(), path, body).await;
        assert_eq!(status, 403, "operator {method} {path}");
    }

    // What is listed and stored: names and roles, never a token.
    let listed = tokens_cli(&db_url, &["list"]);
    assert!(listed.status.success());
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("lms-reader") && listed.contains("\"operator\""),
        "{listed}"
    );
    let (_, by_api) = get_json(&app, BOOTSTRAP, "/api/v1/tokens").await;
    for shown in [listed.as_str(), &by_api.to_string()] {
        for secret in [&consumer, &operator] {
            assert!(!shown.contains(secret.as_str()), "{shown}");
            assert!(
                !shown.contains(&coursewire::tokens::hash(secret)),
                "{shown}"
            );
        }
    }
    let store = app.db.store().await;
    let stored = store.tokens().await.unwrap();
    assert_eq!(stored.len(), 2);

    // Revoked, at the shell or through the API: 401 from the next request on.
    let status = call(
        &app,
        BOOTSTRAP,
        Method::DELETE,
        "/api/v1/tokens/lms-reader",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = get_json(&app, &consumer, "/api/v1/subscriptions/lms-sync/events").await;
    assert_eq!(status, 401, "revoked through the API");
    let revoked = tokens_cli(&db_url, &["revoke", "ops"]);
    assert!(revoked.status.success());
    let (status, _) = get_json(&app, &operator, "/api/v1/subscriptions").await;
    assert_eq!(status, 401, "revoked at the shell");
    let (status, _) = get_json(&app, "cwt_not-a-token", "/api/v1/subscriptions").await;
    assert_eq!(status, 401);
    let again = tokens_cli(&db_url, &["revoke", "ops"]);
    assert!(!again.status.success(), "revoking twice is an error");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_get_clear_errors() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        c.api.token = coursewire::config::Secret::new(BOOTSTRAP);
    })
    .await;
    let db_url = app.db.url.clone();
    for (args, says) in [
        (
            vec!["add", "--name", "x", "--role", "consumer"],
            "at least one subscription",
        ),
        (
            vec![
                "add",
                "--name",
                "x",
                "--role",
                "consumer",
                "--subscription",
                "nope",
            ],
            "no subscription named",
        ),
        (vec!["add", "--name", "x", "--role", "root"], "role must be"),
        (
            vec!["add", "--name", "api.token", "--role", "admin"],
            "name must be",
        ),
        (
            vec![
                "add",
                "--name",
                "ops",
                "--role",
                "operator",
                "--subscription",
                "a",
            ],
            "scope a consumer token",
        ),
        (vec!["revoke", "nobody"], "no live token"),
    ] {
        let out = tokens_cli(&db_url, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    added_token(&tokens_cli(
        &db_url,
        &["add", "--name", "ops", "--role", "operator"],
    ));
    let twice = tokens_cli(&db_url, &["add", "--name", "ops", "--role", "operator"]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));
    let ops = json!({"name": "ops", "role": "operator"});
    let (status, _) = app
        .call(Method::POST, "/api/v1/tokens", BOOTSTRAP, Some(&ops))
        .await;
    assert_eq!(status, 409);
    let bad_role = json!({"name": "y", "role": "superuser"});
    let (status, _) = app
        .call(Method::POST, "/api/v1/tokens", BOOTSTRAP, Some(&bad_role))
        .await;
    assert_eq!(status, 400);
    app.stop().await.unwrap();
}

/// Every API call is logged with the token's name; the token itself never reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_are_logged_by_token_name_never_by_token() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let port = ServeProcess::free_port();
    let mut env = vec![("COURSEWIRE_LOG", "info")];
    env.extend(common::UNSIGNED_FROM_ANYONE);
    let serve = ServeProcess::start_logging(&db.url, port, &env, Some(&log)).await;
    let token = added_token(&tokens_cli(
        &db.url,
        &["add", "--name", "warehouse-etl", "--role", "operator"],
    ));
    let client = coursewire::app::http_client().unwrap();
    let response = client
        .get(format!("{}/api/v1/subscriptions", serve.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    serve.sigterm();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged
            .lines()
            .any(|line| line.contains("API call") && line.contains("warehouse-etl")),
        "{logged}"
    );
    assert!(!logged.contains(&token), "{logged}");
}
