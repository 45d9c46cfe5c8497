//! Nothing lost to transient faults, live on both backends: the database busy past its
//! timeout (SQLite) or its connections killed (PostgreSQL) while events are processed never
//! quarantines a valid event, even with `processor.max_attempts = 1`; one row the store
//! refuses never fails the others of its group commit; an event from a clock far ahead does
//! not freeze its entity.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestApp, TestDb, enrollment_event};
use coursewire::store::{InboxStatus, NewInboxEntry, Store};
use serde_json::{Value, json};

/// The inbox row ingest would write for an unsigned Canvas event.
fn inbox_entry(event: &Value) -> NewInboxEntry {
    let decoded = canvas::live_events::decode_value(event).unwrap().remove(0);
    NewInboxEntry {
        source: "canvas".into(),
        dedup_key: decoded.dedup_key.clone(),
        received_at_ms: chrono::Utc::now().timestamp_millis(),
        event_name: Some(decoded.event_name.clone()),
        event_time_ms: decoded.event_time.map(|t| t.timestamp_millis()),
        subject: decoded.cloud.subject.clone(),
        body: event.to_string().into_bytes(),
        headers: "{}".into(),
        verification: "unsigned-allowed".into(),
        status: InboxStatus::Pending,
        status_reason: None,
    }
}

async fn wait_processed(store: &Store, rows: i64) {
    for _ in 0..600 {
        let depth = store.inbox_depth().await.unwrap();
        if depth.get(InboxStatus::Processed) + depth.get(InboxStatus::Quarantined) >= rows {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not processed: {:?}", store.inbox_depth().await.unwrap());
}

async fn spawn(db: TestDb) -> TestApp {
    TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        common::unsigned_from_anyone(c);
        // One counted failure would quarantine a row: only transient ones may happen here.
        c.processor.max_attempts = 1;
        // Rows written behind the service's back are found by the idle poll, not a wake.
        c.processor.idle_poll_ms = 2_000;
    })
    .await
}

async fn a_busy_or_killed_database_quarantines_no_valid_event(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = spawn(db).await;
    let store = app.db.store().await;
    let rows: Vec<NewInboxEntry> = (0..200)
        .map(|n| inbox_entry(&enrollment_event(n)))
        .collect();
    match backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut other = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            store.insert_inbox_batch(&rows).await.unwrap();
            // Held past the 10 s busy timeout: every write the processor tries fails "busy".
            sqlx::raw_sql("BEGIN EXCLUSIVE")
                .execute(&mut other)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(12)).await;
            sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut other = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            store.insert_inbox_batch(&rows).await.unwrap();
            // Every other connection to the database killed, again and again, while the
            // processor works through the rows.
            for _ in 0..60 {
                let _ = sqlx::raw_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .execute(&mut other)
                .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    wait_processed(&store, 200).await;
    let depth = store.inbox_depth().await.unwrap();
    let reasons: Vec<Option<String>> = store
        .inbox_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.status == InboxStatus::Quarantined)
        .map(|row| row.status_reason)
        .collect();
    assert_eq!(
        depth.get(InboxStatus::Quarantined),
        0,
        "{depth:?} {reasons:?}"
    );
    assert_eq!(depth.get(InboxStatus::Processed), 200, "{depth:?}");
    app.stop().await.unwrap();
}

async fn one_refused_row_does_not_fail_its_batch(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = spawn(db).await;
    let mut bodies: Vec<String> = (0..49).map(|n| enrollment_event(n).to_string()).collect();
    // A NUL byte in the event name: PostgreSQL keeps no NUL in text.
    let mut nul = enrollment_event(99);
    nul["metadata"]["event_name"] = json!("enrollment_updated\u{0}");
    bodies.insert(25, nul.to_string());
    let url = format!("{}/hooks/canvas", app.base);
    let mut posts = tokio::task::JoinSet::new();
    for body in bodies {
        let (client, url) = (app.client.clone(), url.clone());
        posts.spawn(async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = posts.join_next().await {
        answers.push(answer.unwrap());
    }
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(
            matches!(body["status"].as_str(), Some("accepted" | "quarantined")),
            "{body}"
        );
    }
    let store = app.db.store().await;
    assert_eq!(
        store.inbox_depth().await.unwrap().total(),
        50,
        "every event kept"
    );
    app.stop().await.unwrap();
}

/// One event stamped in 2099 and then real updates: the real ones still apply, and the odd
/// one's own time is in its audit row.
async fn an_event_from_the_future_cannot_freeze_its_entity(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let app = spawn(db).await;
    let mut future = enrollment_event(7);
    future["metadata"]["event_time"] = json!("2099-01-01T00:00:00.000Z");
    future["body"]["workflow_state"] = json!("invited");
    let (status, answer) = app
        .post_canvas(future.to_string(), "application/json")
        .await;
    assert_eq!(status, 200);
    let future_row = answer["inbox_id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut now = enrollment_event(7);
    now["metadata"]["event_time"] = json!(chrono::Utc::now().to_rfc3339());
    now["metadata"]["request_id"] = json!("later");
    now["body"]["workflow_state"] = json!("completed");
    let (status, _) = app.post_canvas(now.to_string(), "application/json").await;
    assert_eq!(status, 200);
    let store: Arc<Store> = app.db.store().await;
    wait_processed(&store, 2).await;
    let entity =
        coursewire::catalog::EntityRef::new(coursewire::catalog::EntityKind::Enrollment, 40007);
    let stored = store
        .catalog_entity(&entity)
        .await
        .unwrap()
        .expect("in the catalog");
    assert_eq!(
        stored.state["workflow_state"], "completed",
        "{:?}",
        stored.state
    );
    let audit = store.audit_for_inbox(future_row).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|row| row.detail.get("event_time_bounded_from").is_some()),
        "{audit:?}"
    );
    app.stop().await.unwrap();
}

both_backends!(
    by_backend: a_busy_or_killed_database_quarantines_no_valid_event,
    one_refused_row_does_not_fail_its_batch,
    an_event_from_the_future_cannot_freeze_its_entity,
);
