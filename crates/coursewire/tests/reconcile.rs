//! The reconciler against the simulator over real HTTP and a real `coursewire serve`: with 20 %
//! of Live Events lost, `coursewire verify` reports the damage; one reconcile period later the
//! catalog equals the simulator's ground truth and `verify` exits 0. Plus the compare and
//! synthesize rules on their own, and `coursewire reconcile --course ID` through the binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canvas::client::{Enrollment, UserStub};
use common::{Backend, TestDb};
use coursewire::catalog::{self, EntityKind, EntityRef, StoredEntity, Version};
use coursewire::clock::SystemClock;
use coursewire::config::{Config, DatabaseUrl};
use coursewire::reconcile::{CanvasCourse, Difference, ReadContext, compare, synthesize};
use coursewire::store::Store;
use serde_json::{Value, json};
use sim::{GroundTruth, SimConfig, Simulator};
use tokio::sync::oneshot;

const TOKEN: &str = "reconcile-test-token";
const PERIOD_SECONDS: u64 = 4;

/// The simulator on port 0, paused at the start of its term (August 2025): its clock stays
/// behind real time for the whole test, as Canvas's Live Events are older than a read made
/// after them (the reconciler dates its reads with the real clock).
async fn start_sim(seed: u64) -> (Simulator, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = SimConfig::small(seed).paused().with_canvas_token(TOKEN);
    assert!(config.start_time < chrono::Utc::now() - chrono::Duration::days(1));
    let sim = Simulator::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    (sim, base)
}

/// `coursewire serve` in-process on port 0 (like `common::TestApp`, but on a database URL the
/// test keeps, so the service can be restarted on the same catalog).
struct Service {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn config(db_url: &str, (sim, sim_base): (&Simulator, &str), reconcile: bool) -> Config {
    let mut config = Config::load_from(None, &[]).unwrap();
    config.database.url = DatabaseUrl::new(db_url);
    config.canvas.jwks_url = format!("{sim_base}/jwks");
    config.canvas.account_uuids = vec![sim.ground_truth().root_account_uuid];
    config.server.shutdown_grace_seconds = 2;
    config.delivery.enabled = false;
    config.canvas.api.url = sim_base.to_owned();
    config.canvas.api.token = coursewire::config::Secret::new(TOKEN);
    let r = &mut config.reconcile;
    r.enabled = reconcile;
    r.period_seconds = PERIOD_SECONDS;
    r.check_seconds = 1;
    config
}

impl Service {
    async fn start(config: Config) -> Service {
        Self::start_on(config, Arc::new(SystemClock)).await
    }

    async fn start_on(config: Config, clock: Arc<dyn coursewire::clock::Clock>) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(coursewire::app::serve(
            config,
            clock,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Service { base, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Steps the paused clock a minute at a time until the simulator has nothing left to deliver.
async fn drained(sim: &Simulator) {
    for _ in 0..900 {
        if sim.counters().live_events.pending == 0 {
            return;
        }
        sim.clock().advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "Live Events not delivered: {:?}",
        sim.counters().live_events
    );
}

async fn processed(store: &Store) {
    assert!(
        inbox_empties(store, Duration::from_secs(30)).await,
        "inbox not processed: {:?}",
        store.inbox_depth().await
    );
}

/// Whether the inbox has no pending row at some moment within `limit`.
async fn inbox_empties(store: &Store, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if store.inbox_depth().await.unwrap().pending == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn coursewire(args: &[&str], db_url: &str, sim_base: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .args(args)
        .env("COURSEWIRE_DATABASE_URL", db_url)
        .env("COURSEWIRE_RECONCILE_CANVAS_URL", sim_base)
        .env("COURSEWIRE_RECONCILE_CANVAS_TOKEN", TOKEN)
        .env("COURSEWIRE_LOG", "warn")
        .output()
        .expect("run coursewire")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

// ---------------------------------------------------------------- catalog vs ground truth

fn live(rows: &[StoredEntity]) -> BTreeMap<i64, &serde_json::Map<String, Value>> {
    // Canvas ids are numbers.
    rows.iter()
        .filter(|r| !r.deleted)
        .filter_map(|r| Some((r.entity.id.as_number()?, &r.state)))
        .collect()
}

fn text(state: &serde_json::Map<String, Value>, field: &str) -> Value {
    state.get(field).cloned().unwrap_or(Value::Null)
}

fn ms(time: &Value) -> Option<i64> {
    time.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}

/// Every difference between the catalog and the ground truth, on the fields both hold, for the
/// live courses (the reconciler reads live courses; a deleted course's rows are not compared),
/// and for the users their rosters name. Empty means equal.
async fn ground_truth_differences(store: &Store, truth: &GroundTruth) -> Vec<String> {
    let rows = |kind| store.catalog_rows(kind);
    let courses_rows = rows(EntityKind::Course).await.unwrap();
    let courses = live(&courses_rows);
    let live_courses: BTreeSet<u64> = truth
        .courses
        .iter()
        .filter(|c| c.workflow_state != "deleted")
        .map(|c| c.id)
        .collect();
    let mut diffs = Vec::new();
    let mut check = |what: String, ours: Option<Value>, theirs: Option<Value>| {
        if ours != theirs {
            diffs.push(format!("{what}: catalog {ours:?} != truth {theirs:?}"));
        }
    };
    for c in truth
        .courses
        .iter()
        .filter(|c| live_courses.contains(&c.id))
    {
        let ours = courses.get(&(c.id as i64)).map(|s| {
            let state = match text(s, "workflow_state").as_str() {
                Some("claimed" | "created") => json!("unpublished"),
                _ => text(s, "workflow_state"),
            };
            json!([text(s, "name"), text(s, "account_id"), state])
        });
        let theirs = json!([c.name, c.account_id, c.workflow_state]);
        check(format!("course/{}", c.id), ours, Some(theirs));
    }
    let section_rows = rows(EntityKind::Section).await.unwrap();
    let sections = live(&section_rows);
    let truth_sections: BTreeMap<i64, Value> = truth
        .sections
        .iter()
        .filter(|s| live_courses.contains(&s.course_id) && s.workflow_state == "active")
        .map(|s| (s.id as i64, json!([s.course_id, s.name, s.sis_section_id])))
        .collect();
    compare_sets(&mut check, "section", &sections, &truth_sections, |s| {
        json!([
            text(s, "course_id"),
            text(s, "name"),
            text(s, "sis_source_id")
        ])
    });
    let enrollment_rows = rows(EntityKind::Enrollment).await.unwrap();
    let enrollments = live(&enrollment_rows);
    let truth_enrollments: BTreeMap<i64, Value> = truth
        .enrollments
        .iter()
        .filter(|e| live_courses.contains(&e.course_id) && e.state != "deleted")
        .map(|e| {
            let v = json!([
                e.course_id,
                e.section_id,
                e.user_id,
                e.r#type,
                e.state,
                e.associated_user_id
            ]);
            (e.id as i64, v)
        })
        .collect();
    compare_sets(
        &mut check,
        "enrollment",
        &enrollments,
        &truth_enrollments,
        |s| {
            json!([
                text(s, "course_id"),
                text(s, "section_id"),
                text(s, "user_id"),
                text(s, "type"),
                text(s, "workflow_state"),
                text(s, "associated_user_id")
            ])
        },
    );
    let rostered: BTreeSet<u64> = truth
        .enrollments
        .iter()
        .filter(|e| live_courses.contains(&e.course_id))
        .map(|e| e.user_id)
        .collect();
    let user_rows = rows(EntityKind::User).await.unwrap();
    let users = live(&user_rows);
    for u in truth.users.iter().filter(|u| rostered.contains(&u.id)) {
        let ours = users
            .get(&(u.id as i64))
            .map(|s| json!([text(s, "name"), text(s, "login"), text(s, "sis_id")]));
        check(
            format!("user/{}", u.id),
            ours,
            Some(json!([u.name, u.login_id, u.sis_user_id])),
        );
    }
    let module_rows = rows(EntityKind::Module).await.unwrap();
    let modules = live(&module_rows);
    let truth_modules: BTreeMap<i64, Value> = truth
        .modules
        .iter()
        .filter(|m| live_courses.contains(&m.course_id) && m.workflow_state != "deleted")
        .map(|m| {
            (
                m.id as i64,
                json!([m.course_id, m.name, m.position, m.published]),
            )
        })
        .collect();
    compare_sets(&mut check, "module", &modules, &truth_modules, |s| {
        let published = text(s, "workflow_state") == json!("active");
        json!([
            text(s, "course_id"),
            text(s, "name"),
            text(s, "position"),
            published
        ])
    });
    let item_rows = rows(EntityKind::ModuleItem).await.unwrap();
    let items = live(&item_rows);
    let truth_items: BTreeMap<i64, Value> = truth
        .module_items
        .iter()
        .filter(|i| live_courses.contains(&i.course_id) && i.workflow_state != "deleted")
        .map(|i| (i.id as i64, json!([i.module_id, i.course_id, i.position])))
        .collect();
    compare_sets(&mut check, "module_item", &items, &truth_items, |s| {
        json!([
            text(s, "module_id"),
            text(s, "course_id"),
            text(s, "position")
        ])
    });
    let assignment_rows = rows(EntityKind::Assignment).await.unwrap();
    let assignments = live(&assignment_rows);
    let truth_assignments: BTreeMap<i64, Value> = truth
        .assignments
        .iter()
        .filter(|a| live_courses.contains(&a.course_id))
        .map(|a| {
            let due = a.due_at.as_ref().map(|d| json!(d)).and_then(|d| ms(&d));
            (
                a.id as i64,
                json!([a.course_id, a.name, due, a.points_possible, a.published]),
            )
        })
        .collect();
    compare_sets(
        &mut check,
        "assignment",
        &assignments,
        &truth_assignments,
        |s| {
            let published = text(s, "workflow_state") == json!("published");
            json!([
                text(s, "course_id"),
                text(s, "title"),
                ms(&text(s, "due_at")),
                text(s, "points_possible"),
                published
            ])
        },
    );
    diffs
}

/// Catalog entities of the live courses against the truth's, both ways.
fn compare_sets(
    check: &mut impl FnMut(String, Option<Value>, Option<Value>),
    kind: &str,
    ours: &BTreeMap<i64, &serde_json::Map<String, Value>>,
    truth: &BTreeMap<i64, Value>,
    project: impl Fn(&serde_json::Map<String, Value>) -> Value,
) {
    let ids: BTreeSet<i64> = truth.keys().copied().collect();
    for id in &ids {
        check(
            format!("{kind}/{id}"),
            ours.get(id).map(|s| project(s)),
            truth.get(id).cloned(),
        );
    }
    // A live catalog entity of a live course the truth does not have (deleted there).
    for (id, state) in ours {
        let course = state.get("course_id").and_then(Value::as_u64);
        if !ids.contains(id) && course.is_some() {
            check(format!("{kind}/{id}"), Some(project(state)), None);
        }
    }
}

// ---------------------------------------------------------------- the issue's test

async fn lost_events_are_repaired_within_one_period(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (sim, sim_base) = start_sim(23).await;
    let store = db.store().await;

    // Phase 1: Live Events only, 20 % of them lost, over a simulated morning and afternoon.
    let service = Service::start(config(&db.url, (&sim, &sim_base), false)).await;
    sim.subscribe(&format!("{}/hooks/canvas", service.base), true);
    let mut faults = sim.faults();
    faults.live_events.drop_probability = 0.2;
    sim.set_faults(faults).expect("faults");
    for _ in 0..2 {
        sim.clock().advance(Duration::from_secs(10 * 3600));
        sim.tick();
        drained(&sim).await;
    }
    let counters = sim.counters().live_events;
    assert!(
        counters.dropped_by_fault > 0,
        "events were lost: {counters:?}"
    );
    processed(store.as_ref()).await;
    let before = ground_truth_differences(store.as_ref(), &sim.ground_truth()).await;
    assert!(
        !before.is_empty(),
        "the lost events left the catalog behind"
    );

    // `verify` sees the damage before any reconciling.
    let out = coursewire(&["verify"], &db.url, &sim_base);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = report(&out);
    assert!(
        found["divergences"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{found}"
    );
    assert_eq!(found["errors"], json!([]));

    // Phase 2: the same service with the reconciler on; the simulated clock stays put.
    service.stop().await;
    let started = Instant::now();
    let service = Service::start(config(&db.url, (&sim, &sim_base), true)).await;
    tokio::time::sleep(Duration::from_secs(PERIOD_SECONDS)).await;
    let truth = sim.ground_truth();
    let mut remaining = vec!["the inbox never emptied: not compared".to_owned()];
    // One period, then the processor applies the repairs (slack for a debug build).
    // While the pass runs, repairs keep arriving: on a busy machine the inbox may not empty
    // before the next one lands, so the deadline, not one wait, bounds the test.
    let deadline = started + Duration::from_secs(PERIOD_SECONDS + 60);
    while Instant::now() < deadline {
        if !inbox_empties(
            store.as_ref(),
            deadline.saturating_duration_since(Instant::now()),
        )
        .await
        {
            break;
        }
        remaining = ground_truth_differences(store.as_ref(), &truth).await;
        if remaining.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(remaining, Vec::<String>::new(), "catalog = ground truth");
    let reconciled = store.inbox_after(0, 1_000_000).await.unwrap();
    assert!(
        reconciled.iter().any(|row| row.source == "reconcile"),
        "repairs came through the inbox"
    );
    assert_eq!(store.inbox_depth().await.unwrap().quarantined, 0);

    let out = coursewire(&["verify"], &db.url, &sim_base);
    let found = report(&out);
    assert_eq!(out.status.code(), Some(0), "{found}");
    assert_eq!(found["divergences"], json!([]));
    assert!(found["courses_read"].as_u64().unwrap() > 10, "{found}");
    eprintln!("converged {:?} after the restart", started.elapsed());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lost_live_events_are_repaired_within_one_period() {
    lost_events_are_repaired_within_one_period(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_live_events_are_repaired_within_one_period() {
    lost_events_are_repaired_within_one_period(Backend::Postgres).await;
}

// ---------------------------------------------------------------- compare and synthesize

fn stored(entity: EntityRef, time_ms: i64, state: Value) -> StoredEntity {
    StoredEntity {
        entity,
        state: state.as_object().cloned().unwrap(),
        deleted: false,
        version: Version {
            time_ms,
            tie: "live".into(),
        },
        sequence: 1,
    }
}

#[test]
fn a_repair_event_decodes_to_what_canvas_shows_and_wins_only_over_older_state() {
    let ctx = ReadContext {
        hostname: "canvas.test".into(),
        read_ms: 1_000_000,
    };
    let entity = EntityRef::new(EntityKind::Enrollment, 48);
    // The catalog heard the enrollment was created; the drop to `inactive` was lost.
    let catalog = stored(
        entity.clone(),
        900_000,
        json!({"id": 48, "course_id": 565, "section_id": 7, "user_id": 9, "type": "StudentEnrollment",
               "workflow_state": "active", "limit_privileges_to_course_section": false,
               "user_name": "Ada", "created_at": "2026-09-01T10:00:00.000Z"}),
    );
    let read = Enrollment {
        id: 48,
        user_id: Some(9),
        course_section_id: Some(7),
        kind: Some("StudentEnrollment".into()),
        enrollment_state: Some("inactive".into()),
        limit_privileges_to_course_section: Some(false),
        user: Some(UserStub {
            id: 9,
            name: Some("Ada".into()),
            ..UserStub::default()
        }),
        ..Enrollment::default()
    };
    let mut body = synthesize::enrollment_body(565, &read);
    synthesize::carry_over(EntityKind::Enrollment, &mut body, &catalog);
    let repair = synthesize::synthesize(
        &ctx,
        &entity,
        Some(565),
        body.clone(),
        Some(&catalog),
        ctx.read_ms + 5,
    )
    .expect("synthesizes");
    assert_eq!(repair.entry.source, "reconcile");
    assert_eq!(repair.entry.subject.as_deref(), Some("enrollment/48"));
    assert_eq!(
        repair.entry.event_name.as_deref(),
        Some("enrollment_updated")
    );
    assert_eq!(
        repair.observation.version.time_ms, ctx.read_ms,
        "dated by the read"
    );
    // Fields the read does not return are kept, the read's are Canvas's.
    assert_eq!(
        repair.observation.state["created_at"],
        "2026-09-01T10:00:00.000Z"
    );
    assert_eq!(repair.observation.state["workflow_state"], "inactive");

    let found = compare::compare(&entity, Some(&catalog), Some(&repair.observation.state));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].difference,
        Difference::Field {
            field: "workflow_state".into(),
            catalog: json!("active"),
            canvas: json!("inactive"),
        }
    );
    // Applied, the repair leaves nothing to compare; a newer Live Event still wins over it.
    let merged = catalog::merge(Some(&catalog), &repair.observation);
    let repaired = merged.write.expect("the repair is newer");
    assert!(compare::compare(&entity, Some(&repaired), Some(&repair.observation.state)).is_empty());
    let mut newer = repair.observation.clone();
    newer.version.time_ms = ctx.read_ms + 1;
    newer.state.insert("workflow_state".into(), json!("active"));
    assert_eq!(
        catalog::merge(Some(&repaired), &newer).outcome,
        catalog::Outcome::Changed(catalog::Change::Updated)
    );
    let mut older = repair.observation.clone();
    older.version.time_ms = ctx.read_ms - 1;
    assert_eq!(
        catalog::merge(Some(&repaired), &older).outcome,
        catalog::Outcome::Stale
    );

    // Same catalog, same content: the same dedup key (nothing new in the inbox); once the
    // catalog moved on, a new one.
    let again = synthesize::synthesize(
        &ctx,
        &entity,
        Some(565),
        body.clone(),
        Some(&catalog),
        ctx.read_ms + 9,
    )
    .expect("synthesizes");
    assert_eq!(again.entry.dedup_key, repair.entry.dedup_key);
    let moved = synthesize::synthesize(
        &ctx,
        &entity,
        Some(565),
        body,
        Some(&repaired),
        ctx.read_ms + 9,
    )
    .expect("synthesizes");
    assert_ne!(moved.entry.dedup_key, repair.entry.dedup_key);
}

#[test]
fn missing_entities_are_reported_both_ways_and_gone_ones_deleted() {
    let ctx = ReadContext {
        hostname: "canvas.test".into(),
        read_ms: 2_000_000,
    };
    // Canvas shows course 3 with one new section; the catalog has a section Canvas dropped.
    let read = canvas::client::NestedCourse {
        course: canvas::client::Course {
            id: 3,
            name: Some("Biology".into()),
            account_id: Some(1),
            workflow_state: Some("unpublished".into()),
            ..Default::default()
        },
        sections: vec![canvas::client::Section {
            id: 30,
            name: Some("Lab".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let canvas = CanvasCourse::from_read(&read);
    let course = EntityRef::new(EntityKind::Course, 3);
    let gone = EntityRef::new(EntityKind::Section, 31);
    let mut catalog = BTreeMap::new();
    catalog.insert(
        course.clone(),
        stored(course, 1, json!({"id": 3, "name": "Biology", "account_id": 1, "workflow_state": "claimed", "uuid": "u-3"})),
    );
    catalog.insert(
        gone.clone(),
        stored(
            gone.clone(),
            1,
            json!({"id": 31, "course_id": 3, "name": "Old", "workflow_state": "active"}),
        ),
    );
    let examined = coursewire::reconcile::examine(&ctx, &canvas, &catalog, 7).expect("examines");
    let mut found: Vec<(String, String)> = examined
        .divergences
        .iter()
        .map(|d| {
            (
                format!("{}/{}", d.kind, d.id),
                serde_json::to_value(&d.difference).unwrap()["divergence"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("section/30".to_owned(), "missing_in_catalog".to_owned()),
            ("section/31".to_owned(), "missing_in_canvas".to_owned()),
        ],
        "`claimed` and `unpublished` are the same course state"
    );
    let deletion = examined
        .repairs
        .iter()
        .find(|r| r.observation.entity == gone)
        .expect("a repair for the gone section");
    assert!(deletion.observation.is_deletion());
    assert_eq!(deletion.observation.state["name"], "Old");
    assert_eq!(
        deletion.entry.event_name.as_deref(),
        Some("course_section_updated")
    );
}

// ---------------------------------------------------------------- the CLI

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_one_course_from_the_command_line() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let (sim, sim_base) = start_sim(5).await;
    let store = db.store().await;
    let course = sim
        .ground_truth()
        .courses
        .iter()
        .find(|c| c.workflow_state != "deleted")
        .unwrap()
        .id;
    let (db_url, base) = (db.url.clone(), sim_base.clone());
    let run = move || {
        coursewire(
            &["reconcile", "--course", &course.to_string()],
            &db_url,
            &base,
        )
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = report(&out);
    assert_eq!(first["courses_read"], 1, "{first}");
    assert!(first["requests"].as_u64().unwrap() >= 1, "{first}");
    let written = first["events_written"].as_u64().unwrap();
    assert!(
        written > 1,
        "an empty catalog differs in everything: {first}"
    );
    assert_eq!(first["differences"]["course"], 1, "{first}");
    let rows = store.inbox_after(0, 100_000).await.unwrap();
    assert_eq!(rows.len() as u64, written);
    assert!(rows.iter().all(|r| r.source == "reconcile" && r.status == coursewire::store::InboxStatus::Pending));
    assert!(
        rows.iter()
            .any(|r| r.subject.as_deref() == Some(&format!("course/{course}")))
    );

    // Nothing was processed in between: the same repairs, already queued, nothing new.
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    let second = report(&out);
    assert_eq!(second["events_written"], 0, "{second}");
    assert_eq!(second["events_already_queued"].as_u64(), Some(written));

    // A course Canvas does not know is an error (exit 2), not a mass deletion.
    let out = coursewire(&["reconcile", "--course", "999999"], &db.url, &sim_base);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        report(&out)["errors"][0]
            .as_str()
            .unwrap()
            .contains("999999")
    );
    // Without Canvas settings: a clear error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .args(["verify"])
        .env("COURSEWIRE_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("canvas.api.url"));
}

/// The reconciler's period is the service's clock's time: on the simulator's paused clock it
/// reads one course and then nothing more, however long real time goes on, until the clock is
/// stepped past the gap between courses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcile_period_passes_on_the_service_clock() {
    let (sim, sim_base) = start_sim(12).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut config = config(&db.url, (&sim, &sim_base), true);
    config.reconcile.period_seconds = 4 * 3600;
    config.reconcile.check_seconds = 60;
    let service = Service::start_on(config, Arc::new(sim.clock())).await;
    let requests = || sim.counters().canvas.requests;
    // The first course is read at once; then the reader waits for the next one's turn.
    let mut seen = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = requests();
        if now > 0 && now == seen {
            break;
        }
        seen = now;
    }
    assert!(seen > 0, "the first course was read");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(requests(), seen, "no read while the clock stands still");

    sim.clock().advance(Duration::from_secs(4 * 3600));
    let mut read_on = false;
    for _ in 0..100 {
        if requests() > seen {
            read_on = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(read_on, "the reader went on once the clock passed the gap");
    service.stop().await;
}

/// A revoked Canvas token stops the reconciler, not ingest: the instance stays ready (Live
/// Events are still stored), and the revocation shows in `/api/v1/status` and `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_reported_without_taking_ingest_out_of_service() {
    let (sim, sim_base) = start_sim(11).await;
    let http = reqwest::Client::new();
    let minted: Value = http
        .post(format!("{sim_base}/_sim/canvas/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = minted["access_token"].as_str().unwrap().to_owned();
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut config = config(&db.url, (&sim, &sim_base), true);
    config.canvas.api.token = coursewire::config::Secret::new(access.clone());
    config.api.token = coursewire::config::Secret::new("status-reader");
    let service = Service::start(config).await;
    let get = |path: String| {
        let http = http.clone();
        async move {
            let response = http
                .get(path)
                .bearer_auth("status-reader")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let status_url = format!("{}/api/v1/status", service.base);
    let (status, body) = get(status_url.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["canvas_token"]["revoked"], false, "{body}");

    let revoked = http
        .delete(format!("{sim_base}/login/oauth2/token"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    // The reconciler's next read meets the 401 (a pass every PERIOD_SECONDS at most).
    let mut last = (0, Value::Null);
    for _ in 0..(PERIOD_SECONDS * 10 + 100) {
        last = get(status_url.clone()).await;
        if last.1["canvas_token"]["revoked"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.1["canvas_token"]["revoked"], true, "{}", last.1);
    let (ready, body) = get(format!("{}/readyz", service.base)).await;
    assert_eq!(ready, 200, "still taking events: {body}");
    assert_eq!(body["status"], "ready");
    assert!(
        body.get("canvas_token").is_none(),
        "no integration detail unauthenticated"
    );
    let metrics = http
        .get(format!("{}/metrics", service.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"coursewire_canvas_api{measure="token_revoked"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"coursewire_canvas_api{measure="throttled"} 0"#));
    assert!(
        !metrics.contains(&access),
        "the token never appears in metrics"
    );
    service.stop().await;
}

/// Two processes on one Canvas token share its budget through the store: what one holds in
/// flight comes off the other's budget within one sharing interval, and a process that stops
/// publishing stops counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_on_one_token_share_its_budget_through_the_store() {
    use canvas::client::{GovernorConfig, Priority, QuotaGovernor};
    use coursewire::canvas_api::quota_share;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else {
            continue;
        };
        db.store().await; // migrated
        let store = coursewire::store::open(&db.url).await.unwrap();
        let (a, b) = (
            QuotaGovernor::new(GovernorConfig::default()),
            QuotaGovernor::new(GovernorConfig::default()),
        );
        let alone = b.snapshot().budget_units;
        // Process A admits four requests.
        let permits: Vec<_> = futures::future::join_all(
            (0..4).map(|_| a.acquire(Priority::Bulk, "GET /api/v1/courses/{id}/enrollments")),
        )
        .await;
        let held = a.reserved_units();
        assert!(held >= 200.0, "{held}");
        let clock = sim::SimClock::new(chrono::Utc::now(), 1.0, true);
        let key = "test-token-key";
        quota_share::share_once(store.as_ref(), &a, key, "process-a", &clock)
            .await
            .unwrap();
        let peers = quota_share::share_once(store.as_ref(), &b, key, "process-b", &clock)
            .await
            .unwrap();
        assert!(
            (peers - held).abs() < 1e-6,
            "B sees A's units: {peers} vs {held}"
        );
        let shared = b.snapshot().budget_units;
        assert!(
            (alone - shared - held).abs() < 1.0,
            "B's budget shrinks by what A holds: {alone} -> {shared}"
        );
        // Another token is another budget.
        let other =
            quota_share::share_once(store.as_ref(), &b, "another-token", "process-b", &clock)
                .await
                .unwrap();
        assert_eq!(other, 0.0);
        // A stops publishing (crashed): after FRESH it no longer counts.
        clock.advance(quota_share::FRESH + std::time::Duration::from_millis(1));
        let peers = quota_share::share_once(store.as_ref(), &b, key, "process-b", &clock)
            .await
            .unwrap();
        assert_eq!(peers, 0.0);
        drop(permits);
        store.close().await;
    }
}
