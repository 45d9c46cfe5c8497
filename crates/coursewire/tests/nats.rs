//! The NATS JetStream sink against a real NATS server (COURSEWIRE_TEST_NATS_URL; under
//! `CI=true` a missing server fails the test, otherwise it is skipped): every change event
//! reaches the stream once, in order per subject, and a re-publish is de-duplicated by id.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use common::{Backend, TestApp, TestDb};
use coursewire::bus::nats::NatsSink;
use coursewire::config::NatsConfig;
use coursewire::metrics::Metrics;
use serde_json::{Value, json};

/// The NATS server for tests, or None when not configured outside CI.
fn nats_server_url() -> Option<String> {
    match std::env::var("COURSEWIRE_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but COURSEWIRE_TEST_NATS_URL is not set")
        }
        _ => {
            eprintln!("COURSEWIRE_TEST_NATS_URL not set: NATS test not run");
            None
        }
    }
}

fn user_event(id: i64, second: i64) -> Value {
    let time = chrono::DateTime::from_timestamp(1_788_000_000 + second, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    json!({
        "metadata": {
            "event_name": "user_updated", "event_time": time, "producer": "canvas",
            "hostname": "canvas.test.edu", "request_id": format!("u{id}-{second}"),
        },
        "body": {"user_id": id.to_string(), "name": format!("User {id} v{second}")},
    })
}

async fn stream_messages(js: &jetstream::Context, stream: &str) -> u64 {
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

async fn wait_messages(js: &jetstream::Context, stream: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stream_messages(js, stream).await < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream has {} of {n} messages",
            stream_messages(js, stream).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_reach_jetstream_in_order_once(db: TestDb) {
    let Some(url) = nats_server_url() else {
        return;
    };
    let client = async_nats::connect(url.as_str())
        .await
        .expect("connect to COURSEWIRE_TEST_NATS_URL");
    let js = jetstream::new(client);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let nats = NatsConfig {
        url: url.clone(),
        stream: format!("CWTEST_{tag}"),
        subject_prefix: format!("cwtest.{tag}"),
    };
    let config = nats.clone();
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", move |c| {
        common::unsigned_from_anyone(c);
        c.processor.idle_poll_ms = 20;
        c.delivery.enabled = false;
        c.nats = config;
    })
    .await;
    for second in 1..=3 {
        for id in [1, 2, 3] {
            let (status, _) = app
                .post_canvas(user_event(id, second).to_string(), "application/json")
                .await;
            assert_eq!(status, 200);
        }
    }
    wait_messages(&js, &nats.stream, 9).await;

    let stream = js.get_stream(&nats.stream).await.unwrap();
    let mut by_subject: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut first_id = String::new();
    for seq in 1..=9 {
        let message = stream.get_raw_message(seq).await.unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        let msg_id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert_eq!(
            event["id"].as_str(),
            Some(msg_id.as_str()),
            "Nats-Msg-Id is the event id"
        );
        assert_eq!(
            message.subject.as_str(),
            format!(
                "{}.edu.canvas.user.{}",
                nats.subject_prefix,
                if event["sequence"] == "0000000000000000001" {
                    "created"
                } else {
                    "updated"
                }
            )
        );
        if seq == 1 {
            first_id = msg_id;
        }
        by_subject
            .entry(event["subject"].as_str().unwrap().to_owned())
            .or_default()
            .push(event["sequence"].as_str().unwrap().parse().unwrap());
    }
    for (subject, sequences) in &by_subject {
        assert_eq!(sequences, &vec![1, 2, 3], "{subject}: stream order");
    }

    // A re-publish of the same id is dropped by JetStream.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, first_id.as_str());
    let ack = js
        .publish_with_headers(format!("{}.x", nats.subject_prefix), headers, "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate);

    // A sink that starts over (cursor lost) publishes everything again: all duplicates.
    let store = app.db.store().await;
    store
        .set_sink_cursor(&format!("nats:{}", nats.stream), 0)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let again =
        tokio::spawn(NatsSink::new(store.clone(), metrics.clone(), nats.clone()).run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let duplicates = format!(
        "coursewire_delivery_deliveries_total{{subscription=\"nats:{}\",outcome=\"nats_duplicate\"}} 9",
        nats.stream
    );
    while !metrics.render().contains(&duplicates) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    again.await.unwrap();
    assert_eq!(
        stream_messages(&js, &nats.stream).await,
        9,
        "no duplicates stored"
    );
    let _ = js.delete_stream(&nats.stream).await;
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_reach_jetstream_in_order_once() {
    if let Some(db) = TestDb::new(Backend::Sqlite).await {
        events_reach_jetstream_in_order_once(db).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_reach_jetstream_in_order_once() {
    if let Some(db) = TestDb::new(Backend::Postgres).await {
        events_reach_jetstream_in_order_once(db).await
    }
}
