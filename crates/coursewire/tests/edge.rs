//! The listener's limits, live: connections that never finish their headers cannot keep a
//! Live Event out even past the process's file-descriptor limit, slow bodies are cut off,
//! long polls are capped and wake on new events, and `/metrics` can have its own listener.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, ServeProcess, TestApp, TestDb};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than opening the whole flood takes, so the flood holds every slot when the Live
/// Event arrives.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until the server closes `stream` (EOF or reset); how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // a 408 before the close
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_past_the_file_limit_cannot_keep_canvas_out() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let port = ServeProcess::free_port();
    let mut env = vec![("COURSEWIRE_SERVER_HEADER_READ_TIMEOUT_SECONDS", "5")];
    env.extend(common::UNSIGNED_FROM_ANYONE);
    let serve = ServeProcess::start_limited(&db.url, port, &env, None, Some(512)).await;

    // 600 connections (more than the 512 descriptors the process may hold) that send half a
    // request head and then nothing.
    let started = Instant::now();
    let opened = futures::future::join_all((0..600).map(|_| async move {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"POST /hooks/canvas HTTP/1.1\r\nHost: coursewire\r\nContent-Type: app")
            .await
            .unwrap();
        stream
    }));
    let mut flood = opened.await;
    let flooded = Instant::now();
    let opening = flooded - started;
    assert!(
        opening < HEADER_TIMEOUT,
        "the flood took {opening:?} to open"
    );

    // Canvas, meanwhile: answered, within the header timeout (plus scheduling) at worst.
    let client = coursewire::app::http_client().unwrap();
    let response = client
        .post(format!("{}/hooks/canvas", serve.base))
        .header("content-type", "application/json")
        .body(common::enrollment_event(1).to_string())
        .send()
        .await
        .expect("the Live Event is answered");
    let waited = flooded.elapsed();
    eprintln!("flood opened in {opening:?}; the Live Event was answered {waited:?} after it");
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert!(
        waited < HEADER_TIMEOUT + Duration::from_secs(2),
        "answered after {waited:?}"
    );

    // Every half-open connection is closed once its header timeout has run (those that
    // waited in the accept queue get theirs when accepted).
    let mut closed = 0;
    for stream in &mut flood {
        if closed_within(stream, HEADER_TIMEOUT * 3).await.is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, 600, "half-open connections left open");

    // And the service is still itself.
    let ready = client
        .get(format!("{}/readyz", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    serve.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_cut_off() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        common::unsigned_from_anyone(c);
        c.server.body_timeout_seconds = 1;
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /hooks/canvas HTTP/1.1\r\nHost: coursewire\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"metadata\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server gave up on the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(
        app.db.store().await.inbox_depth().await.unwrap().total(),
        0,
        "nothing half-read was stored"
    );
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_are_capped_and_wake_on_new_events() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        common::unsigned_from_anyone(c);
        c.api.token = coursewire::config::Secret::new("edge-admin");
        c.api.max_long_polls = 2;
        c.api.max_wait_seconds = 20;
    })
    .await;
    let poll = |client: reqwest::Client, base: String| async move {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/api/v1/events?wait=20"))
            .bearer_auth("edge-admin")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, retry_after, body, started.elapsed())
    };
    let waiting: Vec<_> = (0..2)
        .map(|_| tokio::spawn(poll(app.client.clone(), app.base.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, retry_after, body, _) = poll(app.client.clone(), app.base.clone()).await;
    assert_eq!(status, 503, "a third long poll: {body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let quick = app
        .client
        .get(format!("{}/api/v1/events", app.base))
        .bearer_auth("edge-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        quick.status().as_u16(),
        200,
        "a poll without wait is not capped"
    );

    let (status, _) = app
        .post_canvas(common::enrollment_event(1).to_string(), "application/json")
        .await;
    assert_eq!(status, 200);
    for waiter in waiting {
        let (status, _, body, took) = waiter.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
        assert!(
            took < Duration::from_secs(10),
            "woken by the event, not the wait: {took:?}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_may_have_a_listener_of_their_own() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let metrics_port = ServeProcess::free_port();
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", move |c| {
        c.server.metrics_listen = format!("127.0.0.1:{metrics_port}");
    })
    .await;
    let (status, _) = app.get_text("/metrics").await;
    assert_eq!(status, 404, "not on the public listener");
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(response) = app
            .client
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
        {
            text = response.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        text.contains("coursewire_ingest_events_received_total"),
        "{text}"
    );
    app.stop().await.unwrap();
}
