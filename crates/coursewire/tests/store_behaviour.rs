//! One behaviour suite for the store, run against SQLite and PostgreSQL alike.

mod common;

use common::{Backend, TestDb};
use coursewire::store::{InboxStatus, InsertOutcome, NewInboxEntry, RejectedRequest};

fn entry(key: &str) -> NewInboxEntry {
    NewInboxEntry {
        source: "canvas".into(),
        dedup_key: key.into(),
        received_at_ms: 1_700_000_000_000,
        event_name: Some("enrollment_updated".into()),
        event_time_ms: Some(1_699_999_999_000),
        subject: Some("enrollment/1".into()),
        body: format!("body of {key}").into_bytes(),
        headers: r#"{"content-type":"application/jwt"}"#.into(),
        verification: "kid:k1".into(),
        status: InboxStatus::Pending,
        status_reason: None,
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() {
                if let Some(db) = super::TestDb::new(super::Backend::Sqlite).await { super::$name(db).await }
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                if let Some(db) = super::TestDb::new(super::Backend::Postgres).await { super::$name(db).await }
            })*
        }
    };
}

both_backends!(
    batch_insert_reports_new_and_duplicate,
    duplicate_within_one_batch_is_stored_once,
    rows_round_trip_every_field,
    depth_counts_by_status,
    migrate_twice_is_harmless,
    rejected_log_is_capped_newest_first,
    inbox_after_pages_in_id_order,
);

async fn batch_insert_reports_new_and_duplicate(db: TestDb) {
    let store = db.store().await;
    let first = store
        .insert_inbox_batch(&[entry("a"), entry("b")])
        .await
        .unwrap();
    assert!(matches!(first[0], InsertOutcome::Inserted { .. }));
    assert!(matches!(first[1], InsertOutcome::Inserted { .. }));
    let second = store
        .insert_inbox_batch(&[entry("b"), entry("c")])
        .await
        .unwrap();
    assert_eq!(second[0], InsertOutcome::Duplicate);
    assert!(matches!(second[1], InsertOutcome::Inserted { .. }));
    assert_eq!(store.inbox_depth().await.unwrap().total(), 3);
}

async fn duplicate_within_one_batch_is_stored_once(db: TestDb) {
    let store = db.store().await;
    let outcomes = store
        .insert_inbox_batch(&[entry("x"), entry("x"), entry("x")])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], InsertOutcome::Inserted { .. }));
    assert_eq!(
        &outcomes[1..],
        &[InsertOutcome::Duplicate, InsertOutcome::Duplicate]
    );
    assert_eq!(store.inbox_depth().await.unwrap().pending, 1);
}

async fn rows_round_trip_every_field(db: TestDb) {
    let store = db.store().await;
    let mut quarantined = entry("q");
    quarantined.status = InboxStatus::Quarantined;
    quarantined.status_reason = Some("not JSON".into());
    quarantined.event_name = None;
    quarantined.event_time_ms = None;
    quarantined.body = vec![0, 159, 146, 150, 255];
    store
        .insert_inbox_batch(&[quarantined.clone()])
        .await
        .unwrap();
    let row = store
        .inbox_by_key("canvas", "q")
        .await
        .unwrap()
        .expect("row");
    assert_eq!(
        row.body, quarantined.body,
        "binary bodies survive byte for byte"
    );
    assert_eq!(row.status, InboxStatus::Quarantined);
    assert_eq!(row.status_reason.as_deref(), Some("not JSON"));
    assert_eq!(row.event_name, None);
    assert_eq!(row.received_at_ms, 1_700_000_000_000);
    assert_eq!(row.verification, "kid:k1");
    assert_eq!(row.headers, r#"{"content-type":"application/jwt"}"#);
    assert!(
        store
            .inbox_by_key("canvas", "missing")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.inbox_by_key("panopto", "q").await.unwrap().is_none(),
        "keys are per source"
    );
}

async fn depth_counts_by_status(db: TestDb) {
    let store = db.store().await;
    let mut q = entry("q1");
    q.status = InboxStatus::Quarantined;
    store
        .insert_inbox_batch(&[entry("p1"), entry("p2"), q])
        .await
        .unwrap();
    let depth = store.inbox_depth().await.unwrap();
    assert_eq!(
        (depth.pending, depth.processed, depth.quarantined),
        (2, 0, 1)
    );
}

async fn migrate_twice_is_harmless(db: TestDb) {
    let store = db.store().await;
    store.insert_inbox_batch(&[entry("kept")]).await.unwrap();
    store.migrate().await.unwrap();
    assert!(
        store
            .inbox_by_key("canvas", "kept")
            .await
            .unwrap()
            .is_some()
    );
}

async fn rejected_log_is_capped_newest_first(db: TestDb) {
    let store = db.store().await;
    let rejected: Vec<RejectedRequest> = (0..25)
        .map(|i| RejectedRequest {
            received_at_ms: i,
            source: "canvas".into(),
            reason: "bad_signature".into(),
            detail: format!("#{i}"),
            remote_addr: Some("192.0.2.1".into()),
            body_prefix: "eyJ".into(),
        })
        .collect();
    store.record_rejections(&rejected[..20], 10).await.unwrap();
    store.record_rejections(&rejected[20..], 10).await.unwrap();
    let kept = store.recent_rejections(100).await.unwrap();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0].detail, "#24");
    assert_eq!(kept[9].detail, "#15");
}

async fn inbox_after_pages_in_id_order(db: TestDb) {
    let store = db.store().await;
    let entries: Vec<_> = (0..7).map(|i| entry(&format!("k{i}"))).collect();
    store.insert_inbox_batch(&entries).await.unwrap();
    let page1 = store.inbox_after(0, 4).await.unwrap();
    let page2 = store.inbox_after(page1[3].id, 4).await.unwrap();
    let keys: Vec<_> = page1
        .iter()
        .chain(&page2)
        .map(|r| r.dedup_key.clone())
        .collect();
    assert_eq!(keys, (0..7).map(|i| format!("k{i}")).collect::<Vec<_>>());
}
