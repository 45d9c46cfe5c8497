//! The processor against both backends: catalog, change events, audit, leases, poison rows,
//! several processors on one database, and a property test of ordering under random
//! interleavings, duplications and reorderings.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{Backend, TestDb};
use coursewire::catalog::{self, EntityKind, EntityRef, Observation, Version};
use coursewire::clock::Clock;
use coursewire::metrics::Metrics;
use coursewire::processor::{Processor, Settings};
use coursewire::store::{InboxStatus, Lane, NewInboxEntry, Store};
use serde_json::{Value, json};

/// A clock tests move by hand.
#[derive(Debug)]
struct TestClock(AtomicI64);

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(1_790_000_000_000)))
    }
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn settings() -> Settings {
    Settings {
        workers: 2,
        lease: Duration::from_secs(30),
        max_attempts: 3,
        idle_poll: Duration::from_millis(20),
        lanes_per_claim: 4,
        max_rows_per_lane: 3,
        batch_rows: 4,
    }
}

fn processor(store: &Arc<Store>, clock: &Arc<TestClock>) -> Processor {
    Processor::new(
        store.clone(),
        clock.clone(),
        Arc::new(Metrics::new()),
        settings(),
    )
}

/// A Canvas-format event: `kind` one of enrollment/course/section, local `id`, event time in
/// seconds after a fixed instant, `request` to make otherwise equal events distinct.
fn event(kind: EntityKind, id: i64, second: i64, request: &str, body: Value) -> Value {
    let (name, id_field) = match kind {
        EntityKind::Enrollment => ("enrollment_updated", "enrollment_id"),
        EntityKind::Course => ("course_updated", "course_id"),
        EntityKind::Section => ("course_section_updated", "course_section_id"),
        EntityKind::User => ("user_updated", "user_id"),
        other => panic!("no test events for {other}"),
    };
    let mut body = body.as_object().cloned().unwrap_or_default();
    body.insert(id_field.into(), json!(id.to_string()));
    let time = chrono::DateTime::from_timestamp(1_788_000_000 + second, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    json!({
        "metadata": {
            "event_name": name, "event_time": time, "producer": "canvas",
            "hostname": "canvas.test.edu", "request_id": request,
            "root_account_uuid": common::ROOT_ACCOUNT,
        },
        "body": body,
    })
}

/// When the test events reached the inbox: after every event time they carry.
const RECEIVED_AT_MS: i64 = 1_790_000_000_000;

/// The inbox row ingest would write for an unsigned JSON body.
fn entry(envelope: &Value) -> NewInboxEntry {
    let decoded = canvas::decode_value(envelope).expect("test events decode");
    let first = &decoded[0];
    NewInboxEntry {
        source: "canvas".into(),
        dedup_key: first.dedup_key.clone(),
        received_at_ms: RECEIVED_AT_MS,
        event_name: Some(first.event_name.clone()),
        event_time_ms: first.event_time.map(|t| t.timestamp_millis()),
        subject: first.cloud.subject.clone(),
        body: envelope.to_string().into_bytes(),
        headers: "{}".into(),
        verification: "unsigned-allowed".into(),
        status: InboxStatus::Pending,
        status_reason: None,
    }
}

fn observation(envelope: &Value) -> Observation {
    let decoded = canvas::decode_value(envelope).expect("decodes");
    catalog::observe(&decoded[0], RECEIVED_AT_MS)
        .expect("observable")
        .expect("a catalog event")
}

async fn insert(store: &Arc<Store>, events: &[Value]) -> Vec<i64> {
    let entries: Vec<NewInboxEntry> = events.iter().map(entry).collect();
    store
        .insert_inbox_batch(&entries)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| match o {
            coursewire::store::InsertOutcome::Inserted { id } => Some(id),
            coursewire::store::InsertOutcome::Duplicate => None,
        })
        .collect()
}

/// Every subject's change events: sequences 1..n, no gaps, ids unique across the outbox.
async fn check_outbox(store: &Arc<Store>) -> BTreeMap<String, Vec<Value>> {
    let all = store.change_events_after(0, 1_000_000).await.unwrap();
    let mut ids = HashSet::new();
    let mut by_subject: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut last_position = 0;
    for row in &all {
        assert!(row.position > last_position, "positions increase");
        last_position = row.position;
        assert!(
            ids.insert(row.id.clone()),
            "duplicate change-event id {}",
            row.id
        );
        assert_eq!(row.event["id"], row.id.as_str());
        assert_eq!(row.event["subject"], row.subject.as_str());
        by_subject
            .entry(row.subject.clone())
            .or_default()
            .push(row.event.clone());
    }
    for (subject, events) in &by_subject {
        for (i, event) in events.iter().enumerate() {
            let expected = format!("{:019}", i + 1);
            assert_eq!(
                event["sequence"],
                expected.as_str(),
                "{subject}: gap or reorder"
            );
        }
    }
    by_subject
}

both_backends!(
    events_fill_catalog_outbox_and_audit_in_one_step,
    no_op_and_duplicate_events_produce_no_change_event,
    deleted_workflow_state_removes_the_entity,
    older_events_never_overwrite_newer_state,
    bad_rows_are_quarantined_with_a_reason,
    a_row_of_an_unknown_source_is_quarantined_not_read_as_canvas,
    an_event_whose_name_and_body_disagree_is_applied_as_its_body_says,
    poison_row_is_quarantined_after_max_attempts,
    failing_row_is_quarantined_with_its_last_error,
    a_failing_row_does_not_hold_up_its_batch,
    live_leases_are_respected_and_expired_ones_taken_over,
    stale_owner_is_fenced_out,
    replay_changes_nothing,
    replay_command_requeues_and_processes_again,
    two_processors_share_the_work_in_order,
    background_processor_stops_cleanly,
    pull_api_long_polls_for_change_events,
);

async fn events_fill_catalog_outbox_and_audit_in_one_step(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let events = [
        event(
            EntityKind::Course,
            565,
            0,
            "r1",
            json!({"name": "Biology 101", "workflow_state": "available", "account_id": "1"}),
        ),
        event(
            EntityKind::Section,
            4811,
            1,
            "r2",
            json!({"name": "Lab A", "course_id": "565", "workflow_state": "active"}),
        ),
        event(
            EntityKind::Enrollment,
            48,
            2,
            "r3",
            json!({"course_id": "565", "course_section_id": "4811", "user_id": "21070000000000007", "type": "StudentEnrollment", "workflow_state": "active"}),
        ),
        json!({"metadata": {"event_name": "logged_in", "event_time": "2026-09-01T10:00:00Z", "user_id": "7"}, "body": {}}),
    ];
    let ids = insert(&store, &events).await;
    assert_eq!(ids.len(), 4);
    let done = processor(&store, &clock).drain().await.unwrap();
    assert_eq!(done, 4);
    assert_eq!(store.inbox_depth().await.unwrap().processed, 4);

    let enrollment = store
        .catalog_entity(&EntityRef::new(EntityKind::Enrollment, 48))
        .await
        .unwrap()
        .expect("enrollment in the catalog");
    assert_eq!(enrollment.state["user_id"], 7, "local ids");
    assert_eq!(enrollment.state["section_id"], 4811);
    assert!(!enrollment.state.contains_key("raw"));
    assert_eq!(enrollment.sequence, 1);
    let section = store
        .catalog_entity(&EntityRef::new(EntityKind::Section, 4811))
        .await
        .unwrap()
        .expect("section");
    assert_eq!(section.state["name"], "Lab A");

    let outbox = check_outbox(&store).await;
    assert_eq!(outbox.len(), 3, "the login is not a catalog change");
    let change = &outbox["enrollment/48"][0];
    assert_eq!(change["type"], "edu.canvas.enrollment.created");
    assert_eq!(change["specversion"], "1.0");
    assert_eq!(change["source"], "canvas://canvas.test.edu");
    assert_eq!(change["data"]["workflow_state"], "active");
    assert_eq!(
        outbox["section/4811"][0]["type"],
        "edu.canvas.course_section.created"
    );

    let audit = store.audit_for_inbox(ids[2]).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "catalog.created");
    assert_eq!(audit[0].subject.as_deref(), Some("enrollment/48"));
    assert_eq!(audit[0].change_event_id.as_deref(), change["id"].as_str());
    let login = store.audit_for_inbox(ids[3]).await.unwrap();
    assert_eq!(login[0].action, "event.not_cataloged");
}

async fn no_op_and_duplicate_events_produce_no_change_event(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let body = json!({"course_id": "565", "workflow_state": "active", "type": "StudentEnrollment", "updated_at": "2026-09-01T10:00:00Z"});
    let first = event(EntityKind::Enrollment, 48, 0, "r1", body.clone());
    insert(&store, std::slice::from_ref(&first)).await;
    processor(&store, &clock).drain().await.unwrap();

    // The same event again is an inbox duplicate; the same content from another request, or
    // a later event that only touches updated_at, reaches the catalog and changes nothing.
    assert!(
        insert(&store, std::slice::from_ref(&first))
            .await
            .is_empty()
    );
    let mut touched = body.clone();
    touched["updated_at"] = json!("2026-09-01T10:05:00Z");
    let ids = insert(
        &store,
        &[
            event(EntityKind::Enrollment, 48, 5, "r2", body.clone()),
            event(EntityKind::Enrollment, 48, 9, "r3", touched),
        ],
    )
    .await;
    processor(&store, &clock).drain().await.unwrap();
    let outbox = check_outbox(&store).await;
    assert_eq!(
        outbox["enrollment/48"].len(),
        1,
        "no change event for no-ops"
    );
    for id in ids {
        let audit = store.audit_for_inbox(id).await.unwrap();
        assert_eq!(audit[0].action, "catalog.no_op");
        assert!(audit[0].change_event_id.is_none());
    }
    let stored = store
        .catalog_entity(&EntityRef::new(EntityKind::Enrollment, 48))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state["updated_at"], "2026-09-01T10:05:00.000Z");
    assert_eq!(stored.sequence, 1);
}

async fn deleted_workflow_state_removes_the_entity(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let key = EntityRef::new(EntityKind::Enrollment, 48);
    insert(
        &store,
        &[event(
            EntityKind::Enrollment,
            48,
            0,
            "r1",
            json!({"workflow_state": "active"}),
        )],
    )
    .await;
    processor(&store, &clock).drain().await.unwrap();
    assert!(store.catalog_entity(&key).await.unwrap().is_some());

    insert(
        &store,
        &[event(
            EntityKind::Enrollment,
            48,
            10,
            "r2",
            json!({"workflow_state": "deleted"}),
        )],
    )
    .await;
    processor(&store, &clock).drain().await.unwrap();
    assert!(
        store.catalog_entity(&key).await.unwrap().is_none(),
        "deleted"
    );

    // A late update from before the deletion does not bring it back.
    let late = insert(
        &store,
        &[event(
            EntityKind::Enrollment,
            48,
            5,
            "r3",
            json!({"workflow_state": "inactive"}),
        )],
    )
    .await;
    processor(&store, &clock).drain().await.unwrap();
    assert!(
        store.catalog_entity(&key).await.unwrap().is_none(),
        "still deleted"
    );
    assert_eq!(
        store.audit_for_inbox(late[0]).await.unwrap()[0].action,
        "catalog.stale"
    );
    let outbox = check_outbox(&store).await;
    let types: Vec<&str> = outbox["enrollment/48"]
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "edu.canvas.enrollment.created",
            "edu.canvas.enrollment.deleted"
        ]
    );
    assert_eq!(
        outbox["enrollment/48"][1]["data"]["workflow_state"],
        "deleted"
    );

    // Canvas can restore: a newer live event brings it back as created.
    insert(
        &store,
        &[event(
            EntityKind::Enrollment,
            48,
            20,
            "r4",
            json!({"workflow_state": "active"}),
        )],
    )
    .await;
    processor(&store, &clock).drain().await.unwrap();
    assert!(store.catalog_entity(&key).await.unwrap().is_some());
    let outbox = check_outbox(&store).await;
    assert_eq!(
        outbox["enrollment/48"][2]["type"],
        "edu.canvas.enrollment.created"
    );
}

async fn older_events_never_overwrite_newer_state(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    // Newest first, in separate rounds so the older ones arrive after the newest is applied.
    for (second, name) in [(30, "third"), (10, "first"), (20, "second")] {
        insert(
            &store,
            &[event(
                EntityKind::Course,
                565,
                second,
                name,
                json!({"name": name}),
            )],
        )
        .await;
        processor(&store, &clock).drain().await.unwrap();
    }
    let course = store
        .catalog_entity(&EntityRef::new(EntityKind::Course, 565))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(course.state["name"], "third");
    assert_eq!(check_outbox(&store).await["course/565"].len(), 1);
}

async fn bad_rows_are_quarantined_with_a_reason(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let mut garbage = entry(&event(EntityKind::Course, 1, 0, "g", json!({})));
    garbage.dedup_key = "raw:garbage".into();
    garbage.body = b"not.a.jws.at.all".to_vec();
    let no_id = json!({"metadata": {"event_name": "course_updated", "event_time": "2026-09-01T10:00:00Z"},
                       "body": {"name": "nameless"}});
    let mut entries = vec![garbage, entry(&no_id)];
    entries[1].dedup_key = "no-id".into();
    let outcomes = store.insert_inbox_batch(&entries).await.unwrap();
    let ids: Vec<i64> = outcomes
        .into_iter()
        .map(|o| match o {
            coursewire::store::InsertOutcome::Inserted { id } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    processor(&store, &clock).drain().await.unwrap();
    assert_eq!(store.inbox_depth().await.unwrap().quarantined, 2);
    let rows = store.inbox_after(0, 10).await.unwrap();
    assert!(
        rows[0]
            .status_reason
            .as_deref()
            .unwrap()
            .contains("neither JSON nor a compact JWS")
    );
    assert!(
        rows[1]
            .status_reason
            .as_deref()
            .unwrap()
            .contains("names no course id")
    );
    assert_eq!(
        store.audit_for_inbox(ids[0]).await.unwrap()[0].action,
        "inbox.quarantined"
    );
    assert!(check_outbox(&store).await.is_empty());
}

/// The decoder is chosen by the row's source: a perfectly good Canvas body that arrived under
/// a source nothing decodes yet is kept, quarantined with the reason, and touches no catalog.
async fn a_row_of_an_unknown_source_is_quarantined_not_read_as_canvas(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let course = event(
        EntityKind::Course,
        565,
        0,
        "m1",
        json!({"name": "Biology 101"}),
    );
    let mut foreign = entry(&course);
    foreign.source = "moodle".into();
    store.insert_inbox_batch(&[foreign]).await.unwrap();
    processor(&store, &clock).drain().await.unwrap();
    let row = store
        .inbox_by_key("moodle", &entry(&course).dedup_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, InboxStatus::Quarantined);
    assert!(
        row.status_reason
            .as_deref()
            .unwrap()
            .contains("no decoder for source \"moodle\""),
        "{:?}",
        row.status_reason
    );
    assert!(
        store
            .catalog_rows(EntityKind::Course)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(check_outbox(&store).await.is_empty());
}

async fn an_event_whose_name_and_body_disagree_is_applied_as_its_body_says(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    // A section's body sent as `course_updated`, and a login that names no user.
    let mut slip = event(
        EntityKind::Section,
        4811,
        0,
        "slip",
        json!({"course_id": "565", "name": "Lab A", "workflow_state": "active"}),
    );
    slip["metadata"]["event_name"] = json!("course_updated");
    let anonymous = json!({
        "metadata": {"event_name": "logged_in", "event_time": "2026-09-01T10:00:00Z",
                     "request_id": "who"},
        "body": {}
    });
    let ids = insert(&store, &[slip, anonymous]).await;
    processor(&store, &clock).drain().await.unwrap();

    let section = store
        .catalog_entity(&EntityRef::new(EntityKind::Section, 4811))
        .await
        .unwrap()
        .expect("applied as the section its body describes");
    assert_eq!(section.state["name"], "Lab A");
    assert!(
        store
            .catalog_rows(EntityKind::Course)
            .await
            .unwrap()
            .is_empty(),
        "course 565 was not overwritten with a section's body"
    );
    let outbox = check_outbox(&store).await;
    assert_eq!(
        outbox["section/4811"][0]["type"],
        "edu.canvas.course_section.created"
    );
    let audit = store.audit_for_inbox(ids[0]).await.unwrap();
    assert_eq!(audit[0].subject.as_deref(), Some("section/4811"));
    assert_eq!(audit[0].detail["event_name"], "course_section_updated");
    assert_eq!(
        audit[0].detail["event_name_sent"], "course_updated",
        "the disagreement is kept for the audit"
    );
    // Every step has a subject: one naming no entity is audited under its inbox row's.
    let login = store.audit_for_inbox(ids[1]).await.unwrap();
    assert_eq!(login[0].action, "event.not_cataloged");
    assert_eq!(login[0].subject, Some(format!("inbox/{}", ids[1])));
}

async fn poison_row_is_quarantined_after_max_attempts(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let ids = insert(
        &store,
        &[event(EntityKind::User, 7, 0, "r1", json!({"name": "Ada"}))],
    )
    .await;
    let lane = Lane::Subject("user/7".into());
    // A worker that claims the lane and dies, again and again (a new process each time: a
    // process's own expired lease was left by a store failure, not a crash, and counts nothing).
    for crash in 1..=settings().max_attempts {
        let now = clock.now_ms();
        let won = store
            .claim_lanes(
                std::slice::from_ref(&lane),
                &format!("doomed-{crash}"),
                now,
                now + 1_000,
            )
            .await
            .unwrap();
        assert_eq!(won, vec![lane.clone()]);
        // The first claim was fresh; each later one took over an abandoned lease.
        assert_eq!(
            store.pending_row(ids[0]).await.unwrap().unwrap().attempts,
            crash - 1
        );
        clock.advance(Duration::from_secs(2));
    }
    processor(&store, &clock).drain().await.unwrap();
    let row = &store.inbox_after(0, 1).await.unwrap()[0];
    assert_eq!(row.status, InboxStatus::Quarantined);
    assert!(
        row.status_reason
            .as_deref()
            .unwrap()
            .contains("abandoned 3 times"),
        "{row:?}"
    );
    assert!(
        store.live_leases(clock.now_ms()).await.unwrap().is_empty(),
        "lane released"
    );
}

async fn failing_row_is_quarantined_with_its_last_error(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let ids = insert(
        &store,
        &[event(EntityKind::User, 7, 0, "r1", json!({"name": "Ada"}))],
    )
    .await;
    for n in 1..=settings().max_attempts {
        store
            .note_failure(ids[0], &format!("boom {n}"))
            .await
            .unwrap();
    }
    let pending = store.pending_row(ids[0]).await.unwrap().unwrap();
    assert_eq!(pending.attempts, settings().max_attempts);
    assert_eq!(pending.row.status_reason.as_deref(), Some("boom 3"));
    processor(&store, &clock).drain().await.unwrap();
    let row = &store.inbox_after(0, 1).await.unwrap()[0];
    assert_eq!(row.status, InboxStatus::Quarantined);
    assert!(
        row.status_reason
            .as_deref()
            .unwrap()
            .ends_with("last error: boom 3"),
        "{row:?}"
    );
}

/// Makes the database refuse to store user 13 in the catalog, as a broken row would.
async fn refuse_user_13(url: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON catalog_entities \
             WHEN NEW.kind = 'user' AND NEW.id = '13' BEGIN SELECT RAISE(ABORT, 'boom on 13'); END",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(
            "CREATE FUNCTION refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.kind = 'user' AND NEW.id = '13' THEN RAISE EXCEPTION 'boom on 13'; END IF; \
             RETURN NEW; END $$",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON catalog_entities \
             FOR EACH ROW EXECUTE FUNCTION refuse_13()",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

async fn a_failing_row_does_not_hold_up_its_batch(db: TestDb) {
    let store = db.store().await;
    refuse_user_13(&db.url).await;
    let clock = TestClock::new();
    // The refused row is second of the first batch (4 rows): rows after it must still go in.
    let events: Vec<Value> = [10, 13, 11, 12, 14, 15, 16]
        .into_iter()
        .map(|id| {
            event(
                EntityKind::User,
                id,
                0,
                &format!("r{id}"),
                json!({"name": "x"}),
            )
        })
        .collect();
    let ids = insert(&store, &events).await;
    let processor = processor(&store, &clock);
    // The first round meets the failing row in a batch with others: they go through.
    assert!(
        processor
            .run_once(&tokio_util::sync::CancellationToken::new())
            .await
            .is_err()
    );
    let users = store.catalog_rows(EntityKind::User).await.unwrap();
    let stored: Vec<Option<i64>> = users.iter().map(|u| u.entity.id.as_number()).collect();
    assert_eq!(stored, vec![Some(10), Some(11), Some(12)]);
    // Each round counts an attempt against the row; at max_attempts it is quarantined.
    let mut rounds = 1;
    while processor.drain().await.is_err() {
        rounds += 1;
        assert!(rounds <= 10, "the failing row was never quarantined");
    }
    assert_eq!(rounds, settings().max_attempts);
    let stored = store.catalog_rows(EntityKind::User).await.unwrap();
    assert_eq!(stored.len(), 6);
    let rows = store.inbox_after(0, 100).await.unwrap();
    let failing = rows.iter().find(|r| r.id == ids[1]).unwrap();
    assert_eq!(failing.status, InboxStatus::Quarantined);
    assert!(
        failing
            .status_reason
            .as_deref()
            .unwrap()
            .contains("boom on 13"),
        "{failing:?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.id != ids[1])
            .all(|r| r.status == InboxStatus::Processed)
    );
}

async fn live_leases_are_respected_and_expired_ones_taken_over(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    insert(
        &store,
        &[
            event(EntityKind::User, 7, 0, "r1", json!({"name": "Ada"})),
            event(EntityKind::User, 8, 0, "r2", json!({"name": "Grace"})),
        ],
    )
    .await;
    let lane = Lane::Subject("user/7".into());
    let now = clock.now_ms();
    store
        .claim_lanes(std::slice::from_ref(&lane), "other", now, now + 10_000)
        .await
        .unwrap();
    let p = processor(&store, &clock);
    assert_eq!(p.drain().await.unwrap(), 1, "only the unleased lane");
    assert!(
        store
            .catalog_entity(&EntityRef::new(EntityKind::User, 7))
            .await
            .unwrap()
            .is_none()
    );
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        p.drain().await.unwrap(),
        1,
        "the expired lease is taken over"
    );
    assert!(
        store
            .catalog_entity(&EntityRef::new(EntityKind::User, 7))
            .await
            .unwrap()
            .is_some()
    );
}

async fn stale_owner_is_fenced_out(db: TestDb) {
    let store = db.store().await;
    let lane = Lane::Subject("user/7".into());
    store
        .claim_lanes(std::slice::from_ref(&lane), "a", 0, 1_000)
        .await
        .unwrap();
    // b takes the lane over once a's lease has passed.
    let won = store
        .claim_lanes(std::slice::from_ref(&lane), "b", 2_000, 9_000)
        .await
        .unwrap();
    assert_eq!(won, vec![lane.clone()]);
    let mut tx = store.begin_processing().await.unwrap();
    assert!(
        !tx.renew_lease(&lane, "a", 10_000).await.unwrap(),
        "a is fenced"
    );
    assert!(tx.renew_lease(&lane, "b", 10_000).await.unwrap());
    drop(tx);
    // A live lease is not taken.
    let won = store
        .claim_lanes(std::slice::from_ref(&lane), "c", 3_000, 9_000)
        .await
        .unwrap();
    assert!(won.is_empty());
}

async fn replay_changes_nothing(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let events: Vec<Value> = (0..6)
        .map(|i| {
            event(
                EntityKind::Enrollment,
                40 + i % 2,
                i,
                &format!("r{i}"),
                json!({"workflow_state": format!("s{i}")}),
            )
        })
        .collect();
    insert(&store, &events).await;
    processor(&store, &clock).drain().await.unwrap();
    let before = check_outbox(&store).await;
    let requeued = store.requeue(0, i64::MAX, false).await.unwrap();
    assert_eq!(requeued, 6);
    assert_eq!(processor(&store, &clock).drain().await.unwrap(), 6);
    assert_eq!(
        check_outbox(&store).await,
        before,
        "a second run changes nothing"
    );
    // The newest event of an entity is now a duplicate; the older ones are stale.
    let rows = store.inbox_after(0, 10).await.unwrap();
    let newest = store.audit_for_inbox(rows[5].id).await.unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[1].action, "catalog.duplicate");
    let older = store.audit_for_inbox(rows[0].id).await.unwrap();
    assert_eq!(older[1].action, "catalog.stale");
}

async fn replay_command_requeues_and_processes_again(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    insert(
        &store,
        &[
            event(EntityKind::User, 7, 0, "r1", json!({"name": "Ada"})),
            event(EntityKind::User, 7, 5, "r2", json!({"name": "Ada L."})),
        ],
    )
    .await;
    processor(&store, &clock).drain().await.unwrap();
    let before = check_outbox(&store).await;
    let replay = |extra: &[&str]| common::replay_everything(&db.url, extra);
    let report = common::json_report;
    // A dry run counts and changes nothing; filters narrow the window.
    let dry = report(&replay(&["--reprocess", "--dry-run", "--types", "user_*"]));
    assert_eq!(
        dry,
        json!({"mode": "reprocess", "dry_run": true, "matched": 2})
    );
    assert_eq!(store.inbox_depth().await.unwrap().processed, 2);
    let none = report(&replay(&[
        "--reprocess",
        "--dry-run",
        "--types",
        "course_*",
    ]));
    assert_eq!(none["matched"], 0);
    let other_source = report(&replay(&[
        "--reprocess",
        "--dry-run",
        "--source",
        "panopto",
    ]));
    assert_eq!(other_source["matched"], 0);
    // Bad requests are refused with a reason, before anything changes.
    let bad = replay(&["--reprocess", "--source", "moodle"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--source must be one of"));
    let no_target = replay(&[]);
    assert!(
        !no_target.status.success(),
        "--reprocess or --subscription is required"
    );
    let unknown = replay(&["--subscription", "nobody"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no subscription named"));

    let done = report(&replay(&["--reprocess"]));
    assert_eq!(
        done,
        json!({"mode": "reprocess", "dry_run": false, "matched": 2, "requeued": 2, "processed": 2})
    );
    assert_eq!(check_outbox(&store).await, before);
    assert_eq!(store.inbox_depth().await.unwrap().processed, 2);
}

/// Two processors (two connection pools, two owners) drain one database concurrently.
async fn two_processors_share_the_work_in_order(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let mut events = Vec::new();
    for step in 0..8 {
        for id in 0..25 {
            events.push(event(
                EntityKind::Enrollment,
                id,
                step * 10 + (id % 3),
                &format!("r{id}-{step}"),
                json!({"workflow_state": format!("state-{step}")}),
            ));
        }
    }
    // Shuffled (seeded) so lanes receive their events out of order.
    {
        use rand08::SeedableRng;
        use rand08::seq::SliceRandom;
        events.shuffle(&mut rand08::rngs::StdRng::seed_from_u64(7));
    }
    let half = events.len() / 2;
    insert(&store, &events[..half]).await;
    let second_store = coursewire::store::open(&db.url).await.unwrap();
    let a = Arc::new(processor(&store, &clock));
    let b = Arc::new(processor(&second_store, &clock));
    let stop = tokio_util::sync::CancellationToken::new();
    let ta = tokio::spawn(a.clone().run(stop.clone()));
    let tb = tokio::spawn(b.clone().run(stop.clone()));
    insert(&store, &events[half..]).await;
    for _ in 0..600 {
        if store.inbox_depth().await.unwrap().pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    ta.await.unwrap();
    tb.await.unwrap();
    let depth = store.inbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.processed), (0, 200));
    for row in store.inbox_after(0, 1000).await.unwrap() {
        assert_eq!(
            store.audit_for_inbox(row.id).await.unwrap().len(),
            1,
            "applied once"
        );
    }
    let outbox = check_outbox(&store).await;
    let by_cause: HashMap<String, Version> = events
        .iter()
        .map(|e| {
            let o = observation(e);
            (o.cause_id, o.version)
        })
        .collect();
    for (subject, changes) in &outbox {
        let versions: Vec<&Version> = changes
            .iter()
            .map(|c| &by_cause[c["causationid"].as_str().unwrap()])
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "{subject}: out of order"
        );
    }
    for id in 0..25 {
        let e = store
            .catalog_entity(&EntityRef::new(EntityKind::Enrollment, id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.state["workflow_state"], "state-7");
    }
    assert!(
        store.live_leases(0).await.unwrap().is_empty(),
        "every lane released"
    );
}

async fn background_processor_stops_cleanly(db: TestDb) {
    let store = db.store().await;
    let clock = TestClock::new();
    let p = Arc::new(processor(&store, &clock));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(p.clone().run(stop.clone()));
    insert(
        &store,
        &[event(EntityKind::User, 7, 0, "r1", json!({"name": "Ada"}))],
    )
    .await;
    for _ in 0..200 {
        if store.inbox_depth().await.unwrap().processed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.inbox_depth().await.unwrap().processed, 1);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .unwrap();
}

mod ordering_property {
    //! Random interleavings, duplications and reorderings of events on many entities, applied
    //! in random rounds (with a replay thrown in): the catalog must end at the newest state per
    //! entity, and each subject's change events must run 1, 2, 3 … in version order with unique
    //! ids and no no-op among them. SQLite in a temp dir, 32 cases, to keep CI fast.

    use super::*;
    use proptest::prelude::*;

    const WORKFLOW: [&str; 4] = ["active", "inactive", "deleted", "completed"];

    /// (entity index, second, workflow index, name index, updated_at index)
    type Spec = (usize, i64, usize, usize, usize);

    fn spec_event(n: usize, (entity, second, wf, name, updated): Spec) -> Value {
        let (kind, id) = if entity < 4 {
            (EntityKind::Enrollment, entity as i64 + 1)
        } else {
            (EntityKind::Course, entity as i64 - 3)
        };
        let mut body = json!({
            "workflow_state": WORKFLOW[wf],
            "updated_at": format!("2026-09-0{}T00:00:00Z", updated + 1),
        });
        match kind {
            EntityKind::Course => body["name"] = json!(["Biology", "Chemistry"][name]),
            _ => body["type"] = json!(["StudentEnrollment", "TaEnrollment"][name]),
        }
        event(kind, id, second, &format!("req-{n}"), body)
    }

    async fn run_case(specs: Vec<Spec>, arrivals: Vec<(usize, bool)>, replay_at: usize) {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let store = db.store().await;
        let clock = TestClock::new();
        let p = processor(&store, &clock);
        let events: Vec<Value> = specs
            .iter()
            .enumerate()
            .map(|(n, s)| spec_event(n, *s))
            .collect();
        let mut arrived = Vec::new();
        let mut batch = Vec::new();
        for (step, (pick, drain_after)) in arrivals.iter().enumerate() {
            let e = events[pick % events.len()].clone();
            arrived.push(e.clone());
            batch.push(e);
            if *drain_after {
                insert(&store, &std::mem::take(&mut batch)).await;
                p.drain().await.unwrap();
            }
            if step == replay_at {
                store.requeue(0, i64::MAX, false).await.unwrap();
            }
        }
        insert(&store, &batch).await;
        p.drain().await.unwrap();

        let depth = store.inbox_depth().await.unwrap();
        assert_eq!((depth.pending, depth.quarantined), (0, 0));

        // The newest observation per entity, among what arrived.
        let mut newest: BTreeMap<EntityRef, Observation> = BTreeMap::new();
        let mut by_cause: HashMap<String, Observation> = HashMap::new();
        for e in &arrived {
            let o = observation(e);
            by_cause.insert(o.cause_id.clone(), o.clone());
            let slot = newest.entry(o.entity.clone()).or_insert_with(|| o.clone());
            if o.version > slot.version {
                *slot = o;
            }
        }
        let outbox = check_outbox(&store).await;
        for (entity, latest) in &newest {
            let live = store.catalog_entity(entity).await.unwrap();
            let changes = outbox.get(&entity.subject()).cloned().unwrap_or_default();
            if latest.is_deletion() {
                assert!(live.is_none(), "{entity} should be deleted");
                let rows = store.catalog_rows(entity.kind).await.unwrap();
                let tomb = rows
                    .iter()
                    .find(|r| r.entity == *entity)
                    .expect("tombstone");
                assert!(tomb.deleted);
                assert_eq!(tomb.version, latest.version);
                if let Some(last) = changes.last() {
                    assert!(
                        last["type"].as_str().unwrap().ends_with(".deleted"),
                        "{entity}"
                    );
                }
            } else {
                let live = live.unwrap_or_else(|| panic!("{entity} missing"));
                assert_eq!(live.state, latest.state, "{entity}: newest state wins");
                assert_eq!(live.version, latest.version);
                let last = changes.last().expect("a live entity was announced");
                assert!(!last["type"].as_str().unwrap().ends_with(".deleted"));
                assert!(catalog::same_state(
                    last["data"].as_object().unwrap(),
                    &live.state
                ));
                assert_eq!(live.sequence as usize, changes.len());
            }
            // Change events follow version order, and none of them is a no-op.
            let causes: Vec<&Observation> = changes
                .iter()
                .map(|c| &by_cause[c["causationid"].as_str().unwrap()])
                .collect();
            assert!(
                causes.windows(2).all(|w| w[0].version < w[1].version),
                "{entity}: order"
            );
            for pair in changes.windows(2) {
                let same_type = pair[0]["type"] == pair[1]["type"];
                let same_data = catalog::same_state(
                    pair[0]["data"].as_object().unwrap(),
                    pair[1]["data"].as_object().unwrap(),
                );
                assert!(!(same_type && same_data), "{entity}: a no-op change event");
            }
        }
        assert!(
            outbox
                .keys()
                .all(|s| newest.keys().any(|e| &e.subject() == s))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn catalog_and_change_events_survive_any_arrival_order(
            specs in prop::collection::vec((0..6usize, 0..20i64, 0..4usize, 0..2usize, 0..3usize), 1..30),
            arrivals in prop::collection::vec((0..100usize, prop::bool::weighted(0.25)), 1..60),
            replay_at in 0..80usize,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(run_case(specs, arrivals, replay_at));
        }
    }
}

mod sigkill {
    //! `coursewire serve` is SIGKILLed twice while it processes a shuffled backlog of signed
    //! events, then restarted: afterwards every event is applied exactly once (one audit row per
    //! inbox row), each subject's change events still run 1, 2, 3 … with unique ids, and the
    //! catalog holds the newest state of every entity.

    use super::*;
    use common::{JwksServer, ServeProcess, keys, sign};

    async fn start(db_url: &str, jwks_url: &str, port: u16) -> ServeProcess {
        let env = [
            ("COURSEWIRE_CANVAS_JWKS_URL", jwks_url),
            ("COURSEWIRE_PROCESSOR_LEASE_SECONDS", "1"),
            ("COURSEWIRE_PROCESSOR_WORKERS", "3"),
        ];
        ServeProcess::start(db_url, port, &env).await
    }

    async fn wait_processed(store: &Arc<Store>, at_least: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if store.inbox_depth().await.unwrap().processed >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("fewer than {at_least} events processed in {timeout:?}");
    }

    async fn killed_while_processing(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let k = keys();
        let jwks = JwksServer::start(&[&k[0]]).await;
        let port = ServeProcess::free_port();
        let store = db.store().await;

        let mut events = Vec::new();
        for step in 0..8 {
            for id in 0..60 {
                events.push(event(
                    EntityKind::Enrollment,
                    id,
                    step * 10,
                    &format!("r{id}-{step}"),
                    json!({"workflow_state": if step == 7 && id % 5 == 0 { "deleted".to_owned() } else { format!("state-{step}") }}),
                ));
            }
        }
        {
            use rand08::SeedableRng;
            use rand08::seq::SliceRandom;
            events.shuffle(&mut rand08::rngs::StdRng::seed_from_u64(11));
        }
        let serve = start(&db.url, &jwks.url, port).await;
        let client = coursewire::app::http_client().unwrap();
        let url = format!("http://127.0.0.1:{port}/hooks/canvas");
        let bodies: Vec<String> = events.iter().map(|e| sign(e, &k[0])).collect();
        let posts = futures::stream::iter(bodies.into_iter().map(|body| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .post(&url)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        }));
        use futures::StreamExt;
        let statuses: Vec<_> = posts.buffer_unordered(16).collect().await;
        assert!(
            statuses.iter().all(|s| matches!(s, Ok(200))),
            "every event accepted"
        );

        wait_processed(&store, 60, Duration::from_secs(60)).await;
        drop(serve); // SIGKILL
        let serve = start(&db.url, &jwks.url, port).await;
        wait_processed(&store, 240, Duration::from_secs(60)).await;
        drop(serve); // SIGKILL again
        let before_restart = store.inbox_depth().await.unwrap();
        let serve = start(&db.url, &jwks.url, port).await;
        wait_processed(&store, events.len() as i64, Duration::from_secs(120)).await;
        assert!(serve.sigterm().success(), "graceful exit on SIGTERM");
        eprintln!("before the last restart: {before_restart:?}");

        let depth = store.inbox_depth().await.unwrap();
        assert_eq!(
            (depth.pending, depth.processed, depth.quarantined),
            (0, events.len() as i64, 0)
        );
        for row in store.inbox_after(0, 10_000).await.unwrap() {
            let audit = store.audit_for_inbox(row.id).await.unwrap();
            assert_eq!(
                audit.len(),
                1,
                "inbox row {} applied {} times",
                row.id,
                audit.len()
            );
        }
        let outbox = check_outbox(&store).await;
        for id in 0..60 {
            let key = EntityRef::new(EntityKind::Enrollment, id);
            let stored = store.catalog_entity(&key).await.unwrap();
            if id % 5 == 0 {
                assert!(stored.is_none(), "{key} deleted");
            } else {
                assert_eq!(stored.expect("live").state["workflow_state"], "state-7");
            }
            // The last change announces the newest state (a deletion processed before anything
            // else of its entity announces nothing: the entity was never seen).
            match outbox.get(&key.subject()).and_then(|c| c.last()) {
                Some(last) if id % 5 == 0 => {
                    assert_eq!(last["type"], "edu.canvas.enrollment.deleted", "{key}")
                }
                Some(last) => assert_eq!(last["data"]["workflow_state"], "state-7", "{key}"),
                None => assert_eq!(id % 5, 0, "{key} was never announced"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_sigkill_while_processing_loses_and_repeats_nothing() {
        killed_while_processing(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_sigkill_while_processing_loses_and_repeats_nothing() {
        killed_while_processing(Backend::Postgres).await
    }
}

async fn pull_api_long_polls_for_change_events(db: TestDb) {
    let app = common::TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        common::unsigned_from_anyone(c);
        c.api.token = coursewire::config::Secret::new("pull-token");
        c.processor.idle_poll_ms = 20;
    })
    .await;
    let url = format!("{}/api/v1/events", app.base);
    let refused = app.client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    // A long poll started before anything happened returns once the change exists.
    let poll = {
        let (client, url) = (app.client.clone(), url.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let body: Value = client
                .get(&url)
                .query(&[("after", "0"), ("wait", "20")])
                .bearer_auth("pull-token")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = event(EntityKind::User, 7, 0, "r1", json!({"name": "Ada"}));
    let (status, _) = app.post_canvas(e.to_string(), "application/json").await;
    assert_eq!(status, 200);
    let (body, waited) = poll.await.unwrap();
    assert!(
        waited >= Duration::from_millis(300),
        "it waited: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(15),
        "it did not wait out the timeout"
    );
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "edu.canvas.user.created");
    assert_eq!(events[0]["subject"], "user/7");
    let next = body["next_after"].as_i64().unwrap();
    assert!(next > 0);

    // Nothing newer: a short poll comes back empty with the same cursor.
    let body: Value = app
        .client
        .get(&url)
        .query(&[("after", next.to_string()), ("wait", "1".to_owned())])
        .bearer_auth("pull-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"events": [], "next_after": next}));
    app.stop().await.unwrap();
}
