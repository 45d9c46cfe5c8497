//! `coursewire import` of the simulator's SIS and timetable export, through the inbox and the
//! real service's processor: the catalog's rooms, recorders, sections, instructors and every
//! term day's lectures (start and end in New York time across the November change, holidays
//! and other cancellations kept) equal the simulator's ground truth; a second import changes
//! nothing; a file with a bad line is reported as `file:line` and none of it is applied
//! (unless `--partial`), also through the CLI.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::{Backend, TestApp, TestDb};
use coursewire::catalog::lectures::occurrences;
use coursewire::catalog::{EntityKind, StoredEntity};
use coursewire::sources::sis;
use coursewire::store::Store;
use serde_json::Value;
use sim::{SimConfig, Simulator};

const ADMIN: &str = "import-test-admin-token";

fn export(sim: &Simulator, dir: &Path) {
    for file in sim::timetable::FILES {
        std::fs::write(dir.join(file), sim.timetable_csv(file).unwrap()).unwrap();
    }
}

async fn import(store: &Store, dir: &Path, partial: bool) -> sis::ImportSummary {
    let files = sis::collect(&[dir.to_owned()]).unwrap();
    sis::import(
        store,
        &files,
        partial,
        chrono::Utc::now().timestamp_millis(),
    )
    .await
    .unwrap()
}

async fn processed(store: &Store) {
    for _ in 0..600 {
        if store.inbox_depth().await.unwrap().pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the processor did not catch up");
}

async fn live(store: &Store, kind: EntityKind) -> BTreeMap<String, StoredEntity> {
    store
        .catalog_rows(kind)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !e.deleted)
        .map(|e| (e.entity.id.as_str().to_owned(), e))
        .collect()
}

fn text<'a>(e: &'a StoredEntity, k: &str) -> &'a str {
    e.state.get(k).and_then(Value::as_str).unwrap_or("")
}

async fn the_catalog_after_an_import_is_the_simulators_ground_truth(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let sim = Simulator::new(SimConfig::small(51).paused()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    export(&sim, dir.path());
    let app = TestApp::spawn_with(db, "http://127.0.0.1:9/jwks", |c| {
        c.api.token = coursewire::config::Secret::new(ADMIN);
    })
    .await;
    let store = app.db.store().await;
    let first = import(&store, dir.path(), false).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(first.written > 0);
    processed(&store).await;
    let gt = sim.ground_truth();

    // Rooms and which recorder is in which.
    let rooms = live(&store, EntityKind::Room).await;
    assert_eq!(rooms.len(), gt.rooms.len());
    for r in &gt.rooms {
        let e = &rooms[&r.id];
        assert_eq!(
            (text(e, "name"), text(e, "building")),
            (r.name.as_str(), r.building.as_str())
        );
        assert_eq!(e.state["capacity"], r.capacity);
        assert_eq!(e.state["has_recorder"], r.has_recorder);
    }
    let recorders = live(&store, EntityKind::RoomRecorder).await;
    assert_eq!(recorders.len(), gt.recorders.len());
    for r in &gt.recorders {
        let e = &recorders[&r.id];
        assert_eq!(text(e, "external_id"), r.room_id);
        assert_eq!(text(e, "default_folder_id"), r.default_folder_id);
    }

    // Sections by SIS id, and who teaches each.
    let sections = live(&store, EntityKind::SisSection).await;
    let sis_section: BTreeMap<u64, String> = gt
        .sections
        .iter()
        .filter_map(|s| s.sis_section_id.clone().map(|sis| (s.id, sis)))
        .collect();
    let active_sections: BTreeSet<&String> = gt
        .sections
        .iter()
        .filter(|s| s.workflow_state == "active")
        .filter_map(|s| s.sis_section_id.as_ref())
        .collect();
    assert_eq!(
        sections
            .values()
            .filter(|e| text(e, "status") == "active")
            .count(),
        active_sections.len()
    );
    for s in gt.sections.iter().filter(|s| s.sis_section_id.is_some()) {
        let e = &sections[s.sis_section_id.as_ref().unwrap()];
        assert_eq!(text(e, "name"), s.name);
    }
    let sis_user: BTreeMap<u64, String> = gt
        .users
        .iter()
        .filter_map(|u| u.sis_user_id.clone().map(|sis| (u.id, sis)))
        .collect();
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in gt
        .enrollments
        .iter()
        .filter(|e| e.r#type == "TeacherEnrollment" && e.state == "active")
    {
        if let (Some(s), Some(u)) = (sis_section.get(&e.section_id), sis_user.get(&e.user_id)) {
            want.entry(s.clone()).or_default().insert(u.clone());
        }
    }
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in live(&store, EntityKind::SisEnrollment).await.values() {
        if text(e, "role") == "teacher" && text(e, "status") == "active" {
            got.entry(text(e, "section_id").to_owned())
                .or_default()
                .insert(text(e, "user_id").to_owned());
        }
    }
    assert!(!want.is_empty());
    assert_eq!(got, want, "instructors per section");

    // Every term day's lectures: local times across the DST change, cancellations kept.
    let meetings = live(&store, EntityKind::Meeting).await;
    let mut cancelled: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for c in live(&store, EntityKind::Cancellation).await.values() {
        cancelled
            .entry(c.state["meeting_id"].to_string())
            .or_default()
            .insert(
                text(c, "date").to_owned(),
                c.state
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            );
    }
    let none = BTreeMap::new();
    let (mut ours, mut theirs) = (BTreeSet::new(), BTreeSet::new());
    let (first_day, last_day) =
        sim.with_world_read(|w| (w.uni.date_of_day(0), w.uni.date_of_day(7 * 15 - 1)));
    for (id, m) in &meetings {
        if !active_sections.contains(&text(m, "section_id").to_owned()) {
            continue;
        }
        for o in occurrences(
            id,
            &m.state,
            cancelled.get(id).unwrap_or(&none),
            first_day,
            last_day,
        ) {
            ours.insert((
                o.meeting_id.parse::<u64>().unwrap(),
                o.date,
                o.starts_at_ms,
                o.ends_at_ms,
                o.cancelled,
            ));
        }
    }
    sim.with_world_read(|w| {
        for day in 0..7 * 15 {
            let date = w.uni.date_of_day(day);
            for (m, start, end) in w.uni.meetings_on(day) {
                let cancelled = w.uni.cancellation(m.id, date).is_some();
                theirs.insert((
                    m.id,
                    date.format("%Y-%m-%d").to_string(),
                    start,
                    end,
                    cancelled,
                ));
            }
        }
    });
    assert!(theirs.len() > 100);
    assert!(theirs.iter().any(|t| t.4), "the term has cancellations");
    assert_eq!(ours, theirs, "lectures per date");

    // The same catalog through the API: rooms with their recorders, one date's lectures.
    let (status, body) = app
        .call(reqwest::Method::GET, "/api/v1/rooms", ADMIN, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let api_rooms = body["rooms"].as_array().unwrap();
    assert_eq!(api_rooms.len(), gt.rooms.len());
    for r in api_rooms {
        let gt_room = gt.rooms.iter().find(|g| g.id == r["room_id"]).unwrap();
        let gt_recorder = gt.recorders.iter().find(|g| g.room_id == gt_room.id);
        assert_eq!(
            r["recorder"]["id"].as_str(),
            gt_recorder.map(|g| g.id.as_str())
        );
    }
    let labor_day = "2025-09-01";
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/meetings?date={labor_day}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let on_labor_day = body["meetings"].as_array().unwrap();
    let want = theirs.iter().filter(|t| t.1 == labor_day).count();
    assert_eq!(on_labor_day.len(), want);
    assert!(on_labor_day.iter().all(|m| {
        m["cancelled"] == true
            && m["cancelled_reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("holiday"))
    }));
    let november = "2025-11-03";
    let one = theirs.iter().find(|t| t.1 == november).unwrap();
    let section = text(&meetings[&one.0.to_string()], "section_id").to_owned();
    let (_, body) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/meetings?date={november}&section={section}"),
            ADMIN,
            None,
        )
        .await;
    let listed = body["meetings"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.iter().all(|m| m["section_id"] == section.as_str()));
    let first = listed
        .iter()
        .find(|m| m["meeting_id"].as_str().and_then(|s| s.parse().ok()) == Some(one.0))
        .unwrap();
    assert_eq!(first["starts_at_ms"], one.2);
    assert!(
        first["starts_at"].as_str().unwrap().ends_with("-05:00"),
        "EST in November"
    );
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/meetings?date=03/11/2025",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/rooms", "nobody", None)
        .await;
    assert_eq!(status, 401);
    let feed = serde_json::json!({"name": "lms-feed"});
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/subscriptions",
            ADMIN,
            Some(&feed),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            ADMIN,
            Some(&serde_json::json!({"name": "reader", "role": "consumer", "subscriptions": ["lms-feed"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let consumer = body["token"].as_str().unwrap().to_owned();
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/meetings", &consumer, None)
        .await;
    assert_eq!(status, 403, "a consumer token reads only its subscriptions");

    // A second import of the same files changes nothing.
    let again = import(&store, dir.path(), false).await;
    assert_eq!(again.written, 0, "{:?}", again.by_kind());
    assert!(again.files.iter().all(|f| f.new == 0 && f.changed == 0));

    // A changed row next to a bad line: the file is refused whole, then applied with --partial.
    let meetings_csv = dir.path().join("meetings.csv");
    let original = std::fs::read_to_string(&meetings_csv).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let moved_id = lines[1].split(',').next().unwrap().to_owned();
    let mut cols: Vec<&str> = lines[1].split(',').collect();
    cols[3] = "ZZZ-999";
    lines[1] = cols.join(",");
    lines.push(format!(
        "{moved_id}0,S?,C?,ZZZ-999,MX,09:00,08:00,50,America/New_York,2025-08-25,2025-12-05"
    ));
    std::fs::write(&meetings_csv, lines.join("\n") + "\n").unwrap();
    let refused = import(&store, dir.path(), false).await;
    let bad_line = lines.len();
    let want_prefix = format!("{}:{bad_line}: ", meetings_csv.display());
    assert_eq!(refused.errors.len(), 1, "{:?}", refused.errors);
    assert!(
        refused.errors[0].starts_with(&want_prefix),
        "{} / {want_prefix}",
        refused.errors[0]
    );
    assert!(refused.errors[0].contains("days = \"MX\""));
    assert_eq!(refused.written, 0, "nothing of a file with errors");
    processed(&store).await;
    assert_ne!(
        text(
            &live(&store, EntityKind::Meeting).await[&moved_id],
            "room_id"
        ),
        "ZZZ-999"
    );

    // The CLI says the same, with exit code 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .arg("import")
        .arg(dir.path())
        .env("COURSEWIRE_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&want_prefix), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["written"], 0);

    let partial = import(&store, dir.path(), true).await;
    assert_eq!(partial.written, 1, "{:?}", partial.by_kind());
    processed(&store).await;
    assert_eq!(
        text(
            &live(&store, EntityKind::Meeting).await[&moved_id],
            "room_id"
        ),
        "ZZZ-999"
    );
    app.stop().await.unwrap();
}

both_backends!(by_backend: the_catalog_after_an_import_is_the_simulators_ground_truth);
