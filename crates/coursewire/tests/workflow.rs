//! The recording workflow against the simulator over HTTP, in the real service on the
//! simulator's clock, after `coursewire import` of the simulator's SIS and timetable export:
//! over a teaching day (wrong-room and late-upload faults on) every recorded lecture ends
//! `audited` in its section's folder under its course folder with the templated name, its
//! effective viewers (the simulator's answer) are exactly the section's roster, there is
//! exactly one published module item linking it in the course's "Lecture recordings"
//! module, and wrong-room sessions land with the meeting they were scheduled for. People
//! move and rename sessions by hand after their audit: the drift is found and repaired, or
//! only reported in the one course whose rule says so. The name template changes at 14:00:
//! recordings posted after it carry the new name and the new rule version in their audit;
//! those posted before keep theirs. A replay makes no write; no folder, group or module
//! item is made twice (the simulator's write counters).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestApp, TestDb};
use coursewire::rules::{RuleSet, Scope, stored as rules};
use coursewire::store::WorkflowRow;
use coursewire::workflow::steps::Progress;
use sim::Simulator;
use sim::university::{EnrollmentState, EnrollmentType};

const ADMIN: &str = "workflow-test-admin-token";
const CANVAS_TOKEN: &str = "workflow-test-canvas-token";

/// The service with Panopto and Canvas pointed at the simulator.
async fn service(db: TestDb, sim: &Simulator, base: &str) -> TestApp {
    let c = sim.config().clone();
    let base = base.to_owned();
    let root_uuid = sim.ground_truth().root_account_uuid;
    TestApp::spawn_on_clock(
        db,
        &format!("{base}/jwks"),
        Arc::new(sim.clock()),
        move |cfg| {
            cfg.panopto.url = base.clone();
            cfg.panopto.client_id = c.panopto_client_id.clone();
            cfg.panopto.client_secret =
                coursewire::config::Secret::new(c.panopto_client_secret.clone());
            cfg.panopto.username = c.panopto_username.clone();
            cfg.panopto.password = coursewire::config::Secret::new(c.panopto_password.clone());
            cfg.panopto.poll.interval_seconds = 60;
            cfg.panopto.poll.lease_seconds = 5;
            cfg.canvas.api.url = base.clone();
            cfg.canvas.api.token = coursewire::config::Secret::new(CANVAS_TOKEN);
            cfg.workflow.lms_provider = "canvas-sim".into();
            // Canvas's side of the catalog (sections, enrollments, users) from one crawl,
            // kept current by Live Events.
            cfg.canvas.account_uuids = vec![root_uuid.clone()];
            cfg.reconcile.enabled = true;
            cfg.reconcile.period_seconds = 24 * 3600;
            cfg.reconcile.check_seconds = 1;
            cfg.workflow.idle_seconds = 1;
            cfg.api.token = coursewire::config::Secret::new(ADMIN);
        },
    )
    .await
}

fn progress(row: &WorkflowRow) -> Progress {
    serde_json::from_str(&row.progress).unwrap()
}

async fn a_teaching_day_is_filed_shared_posted_and_audited(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (sim, base) = common::serve_sim(common::teaching::sim_config(61, CANVAS_TOKEN)).await;
    let mut faults = sim.faults();
    faults.panopto.wrong_room_probability = 0.1;
    faults.panopto.staff_edit_probability = 0.2;
    faults.panopto.staff_edit_delay_minutes = 30.0;
    sim.set_faults(faults).unwrap();
    sim.clock().advance(Duration::from_secs(6 * 3600));
    sim.tick();
    let app = service(db, &sim, &base).await;
    sim.subscribe(&format!("{}/hooks/canvas", app.base), true);
    let store = app.db.store().await;
    let dir = tempfile::tempdir().unwrap();
    common::teaching::import(&sim, &store, dir.path()).await;

    let day_start = sim.clock().now_ms();
    // The course of the day's first session a person will edit only reports drift; the
    // others repair it.
    let report_only = sim.with_world_read(|w| {
        let (_, first) = w
            .timeline
            .staff_edits_due()
            .into_iter()
            .min()
            .expect("a person edits a session today");
        let lecture = w
            .panopto
            .lectures
            .values()
            .find(|l| l.session_id.as_ref() == Some(&first))
            .unwrap();
        w.uni
            .courses
            .get(lecture.course_id)
            .unwrap()
            .sis_course_id
            .clone()
            .unwrap()
    });
    let only_report = RuleSet {
        repair_drift: Some(false),
        ..RuleSet::default()
    };
    rules::save(
        &store,
        &Scope::Course(report_only.clone()),
        &only_report,
        "test",
        Some("drift only reported"),
        day_start,
    )
    .await
    .unwrap();

    let end = day_start + 20 * 3_600_000;
    let rule_change = day_start + 8 * 3_600_000;
    let mut changed = false;
    sim.clock().set_speed(600.0);
    sim.clock().resume();
    while sim.clock().now_ms() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !changed && sim.clock().now_ms() >= rule_change {
            let dated = RuleSet {
                session_name_template: Some("{course_code} {section} — {date:%Y-%m-%d}".into()),
                ..RuleSet::default()
            };
            rules::save(
                &store,
                &Scope::Root,
                &dated,
                "test",
                Some("ISO dates"),
                sim.clock().now_ms(),
            )
            .await
            .unwrap();
            changed = true;
        }
    }
    sim.clock().pause();
    common::teaching::settle(&sim, &store).await;
    let rows: BTreeMap<String, WorkflowRow> = store
        .workflows(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.recording_id.clone(), r))
        .collect();
    let catalog: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = store
        .catalog_rows(coursewire::catalog::EntityKind::Recording)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.entity.id.as_str().to_owned(), r.state))
        .collect();
    let now = sim.clock().now_ms();
    let (mut audited, mut wrong_room) = (0, 0);
    let (mut repaired, mut reported) = (0, 0);
    let (mut old_rules, mut new_rules) = (Vec::new(), Vec::new());
    sim.with_world_read(|w| {
        let u = &w.uni;
        let p = &w.panopto;
        for lecture in p.lectures.values() {
            let Some(session_id) = &lecture.session_id else {
                continue;
            };
            let Some(session) = p.sessions.get(session_id) else {
                continue;
            };
            // Complete early enough for a poll and the workflow's commands to follow.
            let settled_by = now - 15 * 60_000;
            if session.complete_ms.is_none_or(|t| t > settled_by)
                || session.deleted_ms.is_some()
                || session
                    .staff_edit
                    .as_ref()
                    .is_some_and(|e| e.at_ms > settled_by)
            {
                continue;
            }
            let row = rows.get(session_id).unwrap_or_else(|| {
                panic!(
                    "no workflow for session {session_id}: {} in {} at {}..{}, complete {:?}, \
                         edit {:?}, catalog {:?}",
                    session.name,
                    session.folder_id,
                    lecture.start_ms,
                    lecture.end_ms,
                    session.complete_ms,
                    session.staff_edit,
                    catalog.get(session_id)
                )
            });
            let progress = progress(row);
            assert_eq!(
                row.state,
                "audited",
                "{session_id}: {progress:?}; recorded by {:?}, scheduled on {:?}, in {} at {}..{}; \
                 catalog: {:?}",
                session.recorder_id,
                session.scheduled_recorder_id,
                lecture.room_id,
                lecture.start_ms,
                lecture.end_ms,
                catalog.get(session_id)
            );
            let l = progress.lecture.as_ref().unwrap();
            let course = u.courses.get(lecture.course_id).unwrap();
            if let Some(edit) = &session.staff_edit {
                assert!(
                    progress.drift_found >= 1,
                    "{session_id}: {edit:?} not found"
                );
                if course.sis_course_id.as_deref() == Some(report_only.as_str()) {
                    // Reported, not repaired: still as the person left it.
                    assert!(!progress.drift.is_empty(), "{session_id}: {edit:?}");
                    reported += 1;
                    audited += 1;
                    continue;
                }
                repaired += 1;
            }
            assert!(
                progress.drift.is_empty(),
                "{session_id}: {:?}",
                progress.drift
            );
            assert_eq!(l.meeting_id, lecture.meeting_id.to_string(), "{session_id}");
            assert_eq!(l.date, lecture.date.to_string(), "{session_id}");
            if session.recorder_id != session.scheduled_recorder_id {
                assert!(
                    l.recorded_in.is_some(),
                    "{session_id}: wrong room not flagged"
                );
                wrong_room += 1;
            }
            // In its section's folder, under the course's, with the templated name: the new
            // template's if it was posted under the new rules.
            let plan = progress.plan.as_ref().unwrap();
            let dated = plan.rule_version.contains("root@");
            if dated {
                new_rules.push((session_id.clone(), row.posted_at_ms.unwrap()));
            } else {
                old_rules.push((session_id.clone(), row.posted_at_ms.unwrap()));
            }
            let date = if dated { "%Y-%m-%d" } else { "%a %d %b" };
            common::teaching::assert_published(w, session_id, lecture, date);
            audited += 1;
        }
    });
    assert!(audited > 10, "the day had recordings to check ({audited})");
    assert!(repaired > 0, "a person's edit was repaired");
    assert!(reported > 0, "a person's edit was only reported");
    // The rule change applied to the recordings posted after it, not to those before.
    assert!(!old_rules.is_empty() && !new_rules.is_empty());
    for (id, posted) in &old_rules {
        assert!(
            *posted < rule_change + 5 * 60_000,
            "{id} posted under old rules"
        );
    }
    for (id, posted) in &new_rules {
        assert!(*posted >= rule_change, "{id} posted under new rules");
    }
    let (id, _) = &new_rules[0];
    let audit = store
        .audit_for_subject(&format!("recording/{id}"))
        .await
        .unwrap();
    let named: Vec<&str> = audit
        .iter()
        .filter(|a| a.action == "workflow.audited")
        .filter_map(|a| a.detail["rule_version"].as_str())
        .collect();
    assert!(
        named.iter().any(|v| v.contains("root@1")),
        "{id}'s audit names the new rules: {named:?}"
    );
    // Nothing made twice: folders, groups, modules, module items.
    let writes = sim.counters().writes;
    for op in [
        "folder.create",
        "group.create",
        "module.create",
        "module_item.create",
    ] {
        assert!(writes.total(op) > 0 || op == "module.create", "{op}: none");
        assert!(
            writes.repeated(op).is_empty(),
            "{op}: {:?}",
            writes.repeated(op)
        );
    }
    assert!(
        store.drift_found().await.unwrap() >= (repaired + reported) as i64,
        "drift counted"
    );

    // The same, through the API: the list, one recording's steps, and a replay that ends
    // where it was (every command reads first: the session keeps its folder and name and
    // its module item stays one).
    let (status, list) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/recordings?state=audited",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let listed = list["recordings"].as_array().unwrap();
    assert!(listed.len() >= audited, "{} listed", listed.len());
    // One as it was planned (not one whose drift was only reported).
    let id = listed
        .iter()
        .filter_map(|r| r["recording_id"].as_str())
        .find(|id| rows.get(*id).is_some_and(|r| progress(r).drift.is_empty()))
        .unwrap()
        .to_owned();
    let (status, shown) = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/recordings/{id}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    let actions: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    for step in [
        "workflow.detected",
        "workflow.filed",
        "workflow.posted",
        "workflow.audited",
    ] {
        assert!(actions.contains(&step), "{id}: {actions:?}");
    }
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/recordings/no-such-session",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/recordings/{id}/park"),
            ADMIN,
            Some(&serde_json::json!({})),
        )
        .await;
    assert_eq!(status, 422, "a park needs a reason: {body}");
    let before = sim.with_world_read(|w| {
        let s = &w.panopto.sessions[&id];
        (s.folder_id.clone(), s.name.clone())
    });
    let writes_before = sim.counters().writes;
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/recordings/{id}/replay"),
            ADMIN,
            Some(&serde_json::json!({"reason": "test"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let mut replayed = None;
    for _ in 0..300 {
        let row = store.workflow(&id).await.unwrap().unwrap();
        let p = progress(&row);
        if p.generation == 1 && row.state == "audited" {
            replayed = Some(p);
            break;
        }
        // The executor waits on the simulator's clock between looks.
        sim.clock().advance(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replayed = replayed.expect("the replay ran to audited");
    assert!(replayed.drift.is_empty());
    sim.with_world_read(|w| {
        let s = &w.panopto.sessions[&id];
        assert_eq!((s.folder_id.clone(), s.name.clone()), before);
        let links = w
            .uni
            .module_items
            .iter()
            .filter(|i| i.workflow_state == "active")
            .filter(|i| i.external_url.as_deref().is_some_and(|x| x.ends_with(&id)))
            .count();
        assert_eq!(links, 1, "the replay made no second item");
    });
    assert_eq!(
        sim.counters().writes,
        writes_before,
        "the replay of an audited recording wrote nothing"
    );

    // A student dropped from the section in Canvas loses access to its recording, and one
    // added gains it, within the bound the README states (two simulated minutes: the Live
    // Event, the processor, one roster sync).
    let (course_id, section_id, dropped, added) = sim.with_world_read(|w| {
        let u = &w.uni;
        let lecture = w
            .panopto
            .lectures
            .values()
            .find(|l| l.session_id.as_deref() == Some(id.as_str()))
            .unwrap();
        let dropped = u
            .enrollments
            .iter()
            .find(|e| {
                e.section_id == lecture.section_id
                    && e.kind == EnrollmentType::StudentEnrollment
                    && e.state == EnrollmentState::Active
            })
            .unwrap();
        let in_course: BTreeSet<u64> = u
            .enrollments
            .iter()
            .filter(|e| e.course_id == lecture.course_id)
            .map(|e| e.user_id)
            .collect();
        let added = u
            .enrollments
            .iter()
            .find(|e| {
                e.kind == EnrollmentType::StudentEnrollment && !in_course.contains(&e.user_id)
            })
            .unwrap()
            .user_id;
        (
            lecture.course_id,
            lecture.section_id,
            (dropped.id, dropped.user_id),
            added,
        )
    });
    let canvas = reqwest::Client::new();
    let changed_at = sim.clock().now_ms();
    let r = canvas
        .delete(format!(
            "{base}/api/v1/courses/{course_id}/enrollments/{}?task=delete",
            dropped.0
        ))
        .bearer_auth(CANVAS_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = canvas
        .post(format!("{base}/api/v1/sections/{section_id}/enrollments"))
        .bearer_auth(CANVAS_TOKEN)
        .form(&[
            ("enrollment[user_id]", added.to_string()),
            ("enrollment[type]", "StudentEnrollment".to_owned()),
            ("enrollment[enrollment_state]", "active".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let seed = sim.with_world_read(|w| w.uni.seed);
    let (gone, there) = (
        sim::panopto::people::user_guid(seed, dropped.1),
        sim::panopto::people::user_guid(seed, added),
    );
    let (mut lost_after, mut gained_after) = (None, None);
    for _ in 0..600 {
        let viewers = sim.with_world_read(|w| w.panopto.viewers(&id).unwrap().users);
        let elapsed = sim.clock().now_ms() - changed_at;
        if lost_after.is_none() && !viewers.contains(&gone) {
            lost_after = Some(elapsed);
        }
        if gained_after.is_none() && viewers.contains(&there) {
            gained_after = Some(elapsed);
        }
        if lost_after.is_some() && gained_after.is_some() {
            break;
        }
        sim.clock().advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lost_after, gained_after) = (
        lost_after.expect("the dropped student lost access"),
        gained_after.expect("the added student gained access"),
    );
    eprintln!(
        "roster: dropped student lost access after {} s, added one gained it after {} s \
         (simulated)",
        lost_after / 1000,
        gained_after / 1000
    );
    assert!(lost_after <= 120_000, "{lost_after} ms");
    assert!(gained_after <= 120_000, "{gained_after} ms");
    eprintln!(
        "{audited} recordings audited, {wrong_room} recorded in the wrong room, {repaired} \
         edits by hand repaired and {reported} reported, {} posted under the old name template \
         and {} under the new",
        old_rules.len(),
        new_rules.len()
    );
    assert_eq!(sim.counters().panopto.throttled, 0, "zero 429s");
    app.stop().await.unwrap();
}

both_backends!(by_backend: a_teaching_day_is_filed_shared_posted_and_audited);
