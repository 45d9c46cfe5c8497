//! One behaviour suite for the store, run against SQLite and PostgreSQL alike.

mod common;

use common::TestDb;
use coursewire::store::{
    CommandRow, CursorAdvance, DeliveryOp, DeliveryOpResult, Handoff, InboxStatus, InsertOutcome,
    Lane, NewCommand, NewInboxEntry, NewSubscription, OnExhausted, RejectedRequest, Store,
    WorkflowRow,
};

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

both_backends!(
    batch_insert_reports_new_and_duplicate,
    duplicate_within_one_batch_is_stored_once,
    rows_round_trip_every_field,
    depth_counts_by_status,
    migrate_twice_is_harmless,
    rejected_log_is_capped_newest_first,
    inbox_after_pages_in_id_order,
    processor_lane_lease_is_taken_over_once_expired,
    cursor_lease_is_taken_over_once_expired,
    delivery_lane_lease_is_taken_over_once_expired,
    catalog_keys_may_be_numbers_or_text,
    workflow_commands_are_one_row_per_key_shared_by_lease_and_fenced,
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

// Leases (store/lease.rs): two claimants of one row; the second wins only once the first's
// lease has expired, and from then on the first's renewals fail (the fence). Times are plain
// numbers: a lease reads the caller's clock, never the wall clock.

async fn processor_lane_lease_is_taken_over_once_expired(db: TestDb) {
    let store = db.store().await;
    store.insert_inbox_batch(&[entry("head")]).await.unwrap();
    let lane = Lane::Subject("enrollment/1".into());
    let lanes = [lane.clone()];
    assert_eq!(
        store.claim_lanes(&lanes, "a", 1_000, 2_000).await.unwrap(),
        lanes
    );
    assert!(
        store
            .claim_lanes(&lanes, "b", 1_999, 3_000)
            .await
            .unwrap()
            .is_empty(),
        "a live lease is not taken"
    );
    let mut tx = store.begin_processing().await.unwrap();
    assert!(
        tx.renew_lease(&lane, "a", 2_500).await.unwrap(),
        "the holder renews"
    );
    tx.commit().await.unwrap();
    assert!(
        store
            .claim_lanes(&lanes, "b", 2_400, 4_000)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.claim_lanes(&lanes, "b", 2_501, 4_000).await.unwrap(),
        lanes,
        "an expired lease is taken over"
    );
    let head = store.lane_rows(&lane, 1).await.unwrap();
    assert_eq!(
        head[0].attempts, 1,
        "a take-over counts against the lane's head row"
    );
    let mut tx = store.begin_processing().await.unwrap();
    assert!(
        !tx.renew_lease(&lane, "a", 5_000).await.unwrap(),
        "the old holder's renewal fails after the take-over"
    );
    assert!(tx.renew_lease(&lane, "b", 5_000).await.unwrap());
    drop(tx);
    let leases = store.live_leases(4_000).await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        (leases[0].owner.as_str(), leases[0].lease_until_ms),
        ("b", 4_000)
    );

    store.release_lane(&lane, "a").await.unwrap();
    assert_eq!(
        store.live_leases(0).await.unwrap().len(),
        1,
        "only the holder releases"
    );
    store.release_lane(&lane, "b").await.unwrap();
    assert!(store.live_leases(0).await.unwrap().is_empty());
    assert_eq!(
        store.claim_lanes(&lanes, "a", 4_001, 6_000).await.unwrap(),
        lanes,
        "a released lane is claimed anew"
    );
    let head = store.lane_rows(&lane, 1).await.unwrap();
    assert_eq!(
        head[0].attempts, 1,
        "claiming a released lane counts nothing"
    );
}

async fn subscription(store: &Store) -> i64 {
    store
        .create_subscription(&NewSubscription {
            name: "lms-analytics".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: "whsec_dGVzdA==".into(),
            types: vec![],
            retry_schedule_ms: vec![1_000],
            on_exhausted: OnExhausted::Block,
            from_now: false,
            created_at_ms: 0,
            created_by: "test".into(),
        })
        .await
        .unwrap()
        .expect("created")
        .id
}

fn advance(subscription_id: i64, owner: &str, position: i64, handoffs: Vec<Handoff>) -> DeliveryOp {
    DeliveryOp::Advance(CursorAdvance {
        subscription_id,
        owner: owner.into(),
        position,
        lease_until_ms: 10_000,
        handoffs,
        clear_failing: false,
    })
}

async fn cursor_lease_is_taken_over_once_expired(db: TestDb) {
    let store = db.store().await;
    let id = subscription(&store).await;
    assert_eq!(
        store.take_cursor(id, "a", 1_000, 2_000).await.unwrap(),
        Some(0)
    );
    assert_eq!(
        store.take_cursor(id, "b", 1_500, 3_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_cursor(id, "a", 1_500, 2_500).await.unwrap(),
        Some(0),
        "the holder renews"
    );
    assert_eq!(
        store.take_cursor(id, "b", 2_501, 4_000).await.unwrap(),
        Some(0),
        "an expired cursor is taken over"
    );
    let moved = store
        .record_delivery(&[advance(id, "a", 7, vec![])])
        .await
        .unwrap();
    assert_eq!(
        moved,
        vec![DeliveryOpResult::Advanced {
            held: false,
            disabled: false
        }],
        "the old holder cannot move the cursor"
    );
    let moved = store
        .record_delivery(&[advance(id, "b", 7, vec![])])
        .await
        .unwrap();
    assert_eq!(
        moved,
        vec![DeliveryOpResult::Advanced {
            held: true,
            disabled: false
        }]
    );
    assert_eq!(
        store
            .subscription("lms-analytics")
            .await
            .unwrap()
            .unwrap()
            .cursor,
        7
    );
    store.release_cursor(id, "b").await.unwrap();
    assert_eq!(
        store.take_cursor(id, "a", 3_000, 4_000).await.unwrap(),
        Some(7),
        "a released cursor is free at once"
    );
}

async fn delivery_lane_lease_is_taken_over_once_expired(db: TestDb) {
    let store = db.store().await;
    let id = subscription(&store).await;
    store.take_cursor(id, "pump", 0, 10_000).await.unwrap();
    let handoff = Handoff {
        subject: "enrollment/1".into(),
        first_sequence: 1,
        last_sequence: 2,
        failure: None,
    };
    store
        .record_delivery(&[advance(id, "pump", 2, vec![handoff])])
        .await
        .unwrap();
    let subject = "enrollment/1";
    assert!(
        store
            .lease_lane(id, subject, "a", 1_000, 2_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_lane(id, subject, "b", 1_999, 3_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_lane(id, subject, "a", 1_999, 2_500)
            .await
            .unwrap(),
        "the holder renews"
    );
    assert!(
        store
            .lease_lane(id, subject, "b", 2_501, 4_000)
            .await
            .unwrap(),
        "an expired lane is taken over"
    );
    assert!(
        !store
            .lease_lane(id, subject, "a", 2_600, 5_000)
            .await
            .unwrap(),
        "the old holder's renewal fails after the take-over"
    );
    store.release_delivery_lane(id, subject, "a").await.unwrap();
    assert!(
        !store
            .lease_lane(id, subject, "a", 2_700, 5_000)
            .await
            .unwrap(),
        "only the holder releases"
    );
    store.release_delivery_lane(id, subject, "b").await.unwrap();
    assert!(
        store
            .lease_lane(id, subject, "a", 2_800, 5_000)
            .await
            .unwrap()
    );
    let lane = store.lane(id, subject).await.unwrap().expect("lane");
    assert_eq!((lane.acked_sequence, lane.latest_sequence), (0, 2));
}

async fn catalog_keys_may_be_numbers_or_text(db: TestDb) {
    use coursewire::catalog::{EntityId, EntityKind, EntityRef, StoredEntity, Version};
    let store = db.store().await;
    let room = EntityId::parse("KNE-120").unwrap();
    let guid = EntityId::parse("3f1e1a52-2d55-4c6e-9a3e-b1c2d3e4f5a6").unwrap();
    let ids = [
        room.clone(),
        EntityId::number(100),
        guid.clone(),
        EntityId::number(9),
    ];
    let mut tx = store.begin_processing().await.unwrap();
    for id in &ids {
        let entity = StoredEntity {
            entity: EntityRef::new(EntityKind::Course, id.clone()),
            state: serde_json::json!({"name": id.to_string()})
                .as_object()
                .cloned()
                .unwrap(),
            deleted: false,
            version: Version {
                time_ms: 1,
                tie: "t".into(),
            },
            sequence: 0,
        };
        tx.save_entity(&entity, 1).await.unwrap();
    }
    tx.commit().await.unwrap();

    let stored: Vec<EntityId> = store
        .catalog_rows(EntityKind::Course)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.entity.id)
        .collect();
    // By length, then text: numbers in numeric order (9 before 100), as EntityId sorts.
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(stored, expected);
    assert_eq!(expected[..2], [EntityId::number(9), EntityId::number(100)]);

    let found = store
        .catalog_entity(&EntityRef::new(EntityKind::Course, room.clone()))
        .await
        .unwrap()
        .expect("the room-coded entity");
    assert_eq!(found.state["name"], "KNE-120");
    assert_eq!(found.entity.subject(), "course/KNE-120");
    // A number is its canonical text: "48" and 48 are one key, "048" another.
    assert!(
        store
            .catalog_entity(&EntityRef::new(
                EntityKind::Course,
                EntityId::parse("09").unwrap()
            ))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.catalog_course_ids().await.unwrap(),
        vec![9, 100],
        "only numeric ids are Canvas courses"
    );
}

fn command(key: &str, rerun: bool) -> NewCommand {
    NewCommand {
        idempotency_key: key.into(),
        recording_id: "sess-1".into(),
        section_id: None,
        step: "file".into(),
        command: r#"{"command":"file"}"#.into(),
        rerun,
    }
}

async fn workflow_commands_are_one_row_per_key_shared_by_lease_and_fenced(db: TestDb) {
    let store = db.store().await;
    let mut tx = store.begin_processing().await.unwrap();
    let row = WorkflowRow {
        recording_id: "sess-1".into(),
        state: "detected".into(),
        progress: "{}".into(),
        meeting_id: Some("12".into()),
        lecture_date: Some("2025-11-03".into()),
        updated_at_ms: 1_000,
        ready_at_ms: Some(400),
        posted_at_ms: Some(1_000),
        drift_found: 2,
    };
    tx.save_workflow(&row).await.unwrap();
    assert_eq!(
        tx.add_commands(
            &[
                command("k1", false),
                command("k1", false),
                command("k2", false)
            ],
            1_000
        )
        .await
        .unwrap(),
        2,
        "a key asked for twice is one row"
    );
    assert_eq!(tx.load_workflow("sess-1").await.unwrap(), Some(row.clone()));
    tx.commit().await.unwrap();
    assert_eq!(store.post_latencies(1_000).await.unwrap(), vec![600]);
    assert!(store.post_latencies(1_001).await.unwrap().is_empty());
    assert_eq!(store.drift_found().await.unwrap(), 2);

    // Two executors share the queue: each command is claimed by one of them.
    let a = store
        .claim_due_commands("a", 1_000, 2_000, 1)
        .await
        .unwrap();
    let b = store
        .claim_due_commands("b", 1_000, 4_000, 10)
        .await
        .unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a[0].id, b[0].id);
    assert!(
        store
            .claim_due_commands("c", 1_500, 2_500, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A's lease expires; C takes the command over, and A's late result is refused.
    let taken: Vec<CommandRow> = store
        .claim_due_commands("c", 2_001, 3_000, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, a[0].id);
    assert_eq!(taken[0].attempts, 2, "the take-over counts as an attempt");
    assert!(
        !store.renew_command(a[0].id, "a", 9_000).await.unwrap(),
        "A, still running, learns it lost the command"
    );
    assert!(store.renew_command(a[0].id, "c", 3_500).await.unwrap());
    let mut report = entry("result-a");
    report.source = "workflow".into();
    assert!(
        !store
            .finish_command(a[0].id, "a", "done", "{}", &report, 2_100)
            .await
            .unwrap(),
        "a lost lease writes nothing"
    );
    assert!(
        store
            .finish_command(a[0].id, "c", "done", r#"{"step":"filed"}"#, &report, 2_100)
            .await
            .unwrap()
    );
    assert!(
        store
            .retry_command(b[0].id, "b", "Panopto 503", 5_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_due_commands("d", 4_999, 6_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let d = store
        .claim_due_commands("d", 5_000, 6_000, 10)
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    let mut report_b = entry("result-b");
    report_b.source = "workflow".into();
    assert!(
        store
            .finish_command(
                d[0].id,
                "d",
                "failed",
                r#"{"gave_up":true}"#,
                &report_b,
                5_100
            )
            .await
            .unwrap()
    );

    let rows = store.commands_of("sess-1").await.unwrap();
    let done = rows.iter().find(|r| r.id == a[0].id).unwrap();
    assert_eq!(
        (
            done.status.as_str(),
            done.result.as_deref(),
            done.finished_at_ms
        ),
        ("done", Some(r#"{"step":"filed"}"#), Some(2_100))
    );
    let retried = rows.iter().find(|r| r.id == b[0].id).unwrap();
    assert_eq!(
        (
            retried.status.as_str(),
            retried.last_error.as_deref(),
            retried.attempts
        ),
        ("failed", Some("Panopto 503"), 2)
    );
    let inbox = store.inbox_after(0, 10).await.unwrap();
    assert_eq!(inbox.len(), 2, "each result went into the inbox once");
    assert!(inbox.iter().all(|r| r.source == "workflow"));

    // A finished command asked for again stays done, unless it is a re-run (a replay).
    let mut tx = store.begin_processing().await.unwrap();
    assert_eq!(
        tx.add_commands(&[command("k1", false)], 7_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        tx.add_commands(&[command("k1", true)], 7_000)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let again = store
        .claim_due_commands("e", 7_000, 8_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (a[0].id, 1));
    assert_eq!(store.workflows(Some("detected")).await.unwrap(), vec![row]);
}
