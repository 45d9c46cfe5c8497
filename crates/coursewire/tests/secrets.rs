//! Credentials stay out of sight: `config show`, the API and the CLI mask them in every URL,
//! and subscription signing secrets are sealed at rest when `secrets.key` is set (and still
//! sign deliveries that verify).

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use common::{Backend, ServeProcess, TestApp, TestDb};
use coursewire::bus::delivery::signature::{secret_key, sign};
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "secrets-admin";

fn coursewire(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn config_show_masks_every_credential() {
    let out = coursewire(
        &["config", "show"],
        &[
            (
                "COURSEWIRE_DATABASE_URL",
                "postgres://app:db-hunter2@db.internal/cw",
            ),
            (
                "COURSEWIRE_NATS_URL",
                "nats://nats-tok3n@nats.internal:4222",
            ),
            (
                "COURSEWIRE_CANVAS_API_URL",
                "https://canvas.example.edu/?access_token=canvas-s3cret",
            ),
            (
                "COURSEWIRE_CANVAS_JWKS_URL",
                "https://keys.example.edu/jwks?key=jwks-s3cret",
            ),
            ("COURSEWIRE_API_TOKEN", "api-s3cret"),
            (
                "COURSEWIRE_SECRETS_KEY",
                &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    for secret in [
        "db-hunter2",
        "nats-tok3n",
        "canvas-s3cret",
        "jwks-s3cret",
        "api-s3cret",
        &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
    ] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    assert!(
        shown.contains("postgres://app:***@db.internal/cw"),
        "{shown}"
    );
    assert!(shown.contains("nats://***@nats.internal:4222"), "{shown}");
}

/// A receiver that keeps the webhook headers and body of what it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn sealed_at_rest(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    // One subscription made before the key was set, at the shell, with credentials in its URL.
    let (url, got) = receiver().await;
    let with_credentials =
        url.replace("http://", "http://hook-user:url-pa55@") + "?token=url-t0ken";
    let mut env = vec![("COURSEWIRE_DATABASE_URL", db.url.as_str())];
    env.extend(common::LOOPBACK_SUBSCRIBERS);
    let out = coursewire(
        &[
            "subscriptions",
            "add",
            "--name",
            "before-key",
            "--url",
            &with_credentials,
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before: Value = serde_json::from_slice(&out.stdout).unwrap();
    let before_secret = before["secret"].as_str().unwrap().to_owned();
    assert!(
        !before["url"].as_str().unwrap().contains("url-pa55"),
        "{before}"
    );
    let listed = coursewire(&["subscriptions", "list"], &env);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("before-key"), "{listed}");
    assert!(
        !listed.contains("url-pa55") && !listed.contains("url-t0ken"),
        "{listed}"
    );

    let key_for_app = key.clone();
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", move |c| {
        common::unsigned_from_anyone(c);
        c.api.token = coursewire::config::Secret::new(TOKEN);
        c.secrets.key = coursewire::config::Secret::new(key_for_app);
        c.processor.idle_poll_ms = 20;
        c.delivery.idle_poll_ms = 20;
    })
    .await;
    let after = json!({"name": "after-key", "url": url});
    let (status, made) = app
        .call(Method::POST, "/api/v1/subscriptions", TOKEN, Some(&after))
        .await;
    assert_eq!(status, 201);
    let after_secret = made["secret"].as_str().unwrap().to_owned();
    // The API shows the URL without its credentials.
    let (_, shown) = app
        .call(Method::GET, "/api/v1/subscriptions/before-key", TOKEN, None)
        .await;
    let shown_url = shown["url"].as_str().unwrap();
    assert!(
        !shown_url.contains("url-pa55") && !shown_url.contains("url-t0ken"),
        "{shown}"
    );
    assert!(shown_url.contains("hook-user:***@"), "{shown}");

    // At rest: both sealed (the older one when the service started with the key).
    let store = app.db.store().await;
    let stored = store.subscription_secrets().await.unwrap();
    assert_eq!(stored.len(), 2);
    for (_, secret) in &stored {
        assert!(secret.starts_with("enc:v1:"), "{secret}");
        assert!(!secret.contains(&before_secret) && !secret.contains(&after_secret));
    }

    // And they still sign: each delivery verifies with the secret its subscriber was given.
    let (status, _) = app
        .post_canvas(common::enrollment_event(1).to_string(), "application/json")
        .await;
    assert_eq!(status, 200);
    for _ in 0..200 {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one delivery per subscription");
    let signed_with = |headers: &HeaderMap, body: &Bytes, secret: &str| {
        let header = |name: &str| headers[name].to_str().unwrap().to_owned();
        let expected = sign(
            &secret_key(secret).unwrap(),
            &header("webhook-id"),
            header("webhook-timestamp").parse().unwrap(),
            body,
        );
        header("webhook-signature") == expected
    };
    for (headers, body) in &got {
        assert!(
            signed_with(headers, body, &before_secret) || signed_with(headers, body, &after_secret),
            "a delivery signed with neither secret"
        );
    }
    app.stop().await.unwrap();
}

both_backends!(by_backend: sealed_at_rest);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_when_secrets_are_stored_in_the_clear() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let serve = ServeProcess::start_logging(
        &db.url,
        ServeProcess::free_port(),
        &common::UNSIGNED_FROM_ANYONE,
        Some(&log),
    )
    .await;
    serve.sigterm();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("secrets.key is not set"), "{logged}");
}
