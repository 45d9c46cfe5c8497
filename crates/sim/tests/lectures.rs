//! Lecture occurrences and the ways lectures go wrong, over real HTTP: each section meeting
//! on each date with its expected and actual outcome in the ground truth; holidays and
//! cancellations; an offline recorder that uploads after reconnecting (its session keeps its
//! real start time); a faulted recorder repaired at a time; faults switched on after a lecture
//! was scheduled; folder-level automatic captioning, late and never per folder; staff edits;
//! a Panopto outage window and revoked tokens.

mod common;

use chrono::NaiveDate;
use common::*;
use serde_json::{Value, json};
use sim::SimConfig;
use sim::ground_truth::{GroundTruth, LectureRow};
use sim::panopto::faults::{RecorderFault, RecorderProblem, Window};

fn unlimited(seed: u64) -> SimConfig {
    let mut c = config(seed);
    c.panopto_limits.enabled = false;
    c
}

fn ms(iso: &str) -> i64 {
    sim::clock::parse_iso(iso).expect("ISO time")
}

fn iso(ms: i64) -> String {
    sim::clock::iso_ms(ms)
}

const FIRST_DAY: &str = "2025-08-25";

fn first_day() -> NaiveDate {
    NaiveDate::parse_from_str(FIRST_DAY, "%Y-%m-%d").expect("date")
}

/// Local `HH:MM` on the first day of term, as an ISO time.
fn local(hour: u32, minute: u32) -> String {
    iso(sim::university::local_ms(first_day(), hour * 60 + minute))
}

async fn advance_to(t: &TestSim, at_ms: i64) {
    let now = t.sim.clock().now_ms();
    assert!(at_ms >= now, "the clock only moves forward");
    t.advance((at_ms - now) as f64 / 1000.0).await;
}

fn lectures_on<'a>(gt: &'a GroundTruth, date: &str) -> Vec<&'a LectureRow> {
    gt.lectures.iter().filter(|l| l.date == date).collect()
}

fn session<'a>(gt: &'a GroundTruth, id: &str) -> &'a sim::ground_truth::SessionRow {
    gt.sessions.iter().find(|s| s.id == id).expect("session")
}

/// The REST state of a lecture's room recorder.
fn recorder_state<'a>(gt: &'a GroundTruth, l: &LectureRow) -> &'a str {
    gt.recorders
        .iter()
        .find(|r| Some(&r.id) == l.recorder_id.as_ref())
        .map(|r| r.state.as_str())
        .expect("recorder")
}

/// Two lectures of the first day in one room with a recorder, the first ending before the
/// second starts.
fn same_room_pair(gt: &GroundTruth) -> (LectureRow, LectureRow) {
    let day = lectures_on(gt, FIRST_DAY);
    for a in &day {
        if a.recorder_id.is_none() || a.expected != "recorded" {
            continue;
        }
        if let Some(b) = day.iter().find(|b| {
            b.room_id == a.room_id
                && b.expected == "recorded"
                && ms(&b.start_time) > ms(&a.end_time)
        }) {
            return ((*a).clone(), (*b).clone());
        }
    }
    panic!("no room with two recorded lectures on the first day");
}

#[tokio::test]
async fn every_meeting_on_every_date_has_its_expected_and_actual_outcome() {
    let t = TestSim::start(unlimited(61)).await;
    t.advance(2.0 * 3600.0).await; // the day's lectures are scheduled at 01:00
    let gt = t.sim.ground_truth();
    let active: Vec<u64> = gt
        .sections
        .iter()
        .filter(|s| s.workflow_state == "active")
        .map(|s| s.id)
        .collect();
    let monday: Vec<u64> = gt
        .meetings
        .iter()
        .filter(|m| m.days.contains('M') && active.contains(&m.section_id))
        .map(|m| m.id)
        .collect();
    let day = lectures_on(&gt, FIRST_DAY);
    assert_eq!(
        day.iter().map(|l| l.meeting_id).collect::<Vec<_>>(),
        monday,
        "one occurrence per Monday meeting"
    );
    let with_recorder: Vec<&str> = gt
        .rooms
        .iter()
        .filter(|r| r.has_recorder)
        .map(|r| r.id.as_str())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for l in &day {
        let meeting = gt.meetings.iter().find(|m| m.id == l.meeting_id).unwrap();
        assert_eq!(l.room_id, meeting.room_id);
        assert_eq!(
            l.recorder_id.is_some(),
            with_recorder.contains(&l.room_id.as_str())
        );
        seen.insert(l.expected.clone());
        match l.expected.as_str() {
            "recorded" => {
                assert_eq!(l.outcome, "recorded", "no faults");
                let s = session(&gt, l.session_id.as_deref().expect("a session"));
                assert_eq!(s.start_time, l.start_time);
                assert_eq!(s.scheduled_recorder_id, l.recorder_id);
                assert_eq!(s.meeting_id, Some(l.meeting_id));
            }
            "no_recorder" | "cancelled" => {
                assert_eq!(l.outcome, l.expected);
                assert!(l.session_id.is_none());
            }
            other => panic!("unexpected expected outcome {other}"),
        }
    }
    assert!(seen.contains("recorded") && seen.contains("no_recorder"));

    // Labor Day (Monday 1 September): every class is off, nothing is scheduled.
    let r = t
        .http
        .post(t.url("/_sim/clock"))
        .json(&json!({ "set": iso(sim::university::local_ms(
            NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(), 6 * 60)) }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let gt = t.sim.ground_truth();
    let holiday = lectures_on(&gt, "2025-09-01");
    assert_eq!(holiday.len(), monday.len());
    for l in &holiday {
        assert_eq!(
            (l.expected.as_str(), l.outcome.as_str()),
            ("cancelled", "cancelled")
        );
        assert_eq!(l.cancelled_reason.as_deref(), Some("holiday: Labor Day"));
        assert!(l.session_id.is_none());
    }
    let csv = t.sim.timetable_csv("cancellations.csv").expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("date,meeting_id,section_id,course_id,reason")
    );
    let labor_day = csv
        .lines()
        .filter(|l| l.starts_with("2025-09-01,") && l.ends_with(",holiday: Labor Day"))
        .count();
    assert_eq!(labor_day, monday.len());
    assert!(
        csv.lines()
            .any(|l| l.contains(",holiday: Thanksgiving recess")),
        "{csv:.300}"
    );
    t.stop().await;
}

#[tokio::test]
async fn an_offline_recorder_uploads_when_it_reconnects_and_the_session_keeps_its_start() {
    let t = TestSim::start(unlimited(62)).await;
    t.advance(2.0 * 3600.0).await; // scheduled at 01:00, none started
    let gt = t.sim.ground_truth();
    let (first, _) = same_room_pair(&gt);
    // Offline from now until three hours after the first lecture ends.
    let reconnect = ms(&first.end_time) + 3 * 3_600_000;
    let mut faults = t.sim.faults();
    faults.panopto.recorders = vec![RecorderFault {
        room_id: first.room_id.clone(),
        problem: RecorderProblem::Offline,
        window: Window {
            from: Some(local(0, 0)),
            until: Some(iso(reconnect)),
        },
    }];
    t.sim.set_faults(faults).expect("faults");

    advance_to(&t, ms(&first.end_time) + 5 * 60_000).await;
    let gt = t.sim.ground_truth();
    let l = gt
        .lectures
        .iter()
        .find(|l| l.meeting_id == first.meeting_id && l.date == FIRST_DAY)
        .unwrap();
    assert_eq!(l.outcome, "recorded_late");
    assert_eq!(l.upload_time.as_deref(), Some(iso(reconnect).as_str()));
    let id = l.session_id.clone().expect("session");
    assert_eq!(session(&gt, &id).state, "Scheduled", "nothing has arrived");
    assert_eq!(recorder_state(&gt, &first), "Disconnected");
    let rest = t
        .panopto_json(&format!("/Panopto/api/v1/sessions/{id}"))
        .await;
    assert_eq!(rest["Duration"], Value::Null);

    advance_to(&t, reconnect + 60_000).await;
    let gt = t.sim.ground_truth();
    assert_eq!(session(&gt, &id).state, "Processing", "uploaded");
    advance_to(&t, reconnect + 2 * 3_600_000).await;
    let gt = t.sim.ground_truth();
    let s = session(&gt, &id);
    assert_eq!(s.state, "Complete");
    assert_eq!(s.start_time, first.start_time, "the real start time");
    let rest = t
        .panopto_json(&format!("/Panopto/api/v1/sessions/{id}"))
        .await;
    let length = (ms(&first.end_time) - ms(&first.start_time)) as f64 / 1000.0;
    assert_eq!(rest["Duration"].as_f64(), Some(length));
    assert_ne!(recorder_state(&gt, &first), "Disconnected", "reconnected");
    t.stop().await;
}

#[tokio::test]
async fn a_faulted_recorder_misses_lectures_until_it_is_repaired() {
    let t = TestSim::start(unlimited(63)).await;
    t.advance(2.0 * 3600.0).await;
    let gt = t.sim.ground_truth();
    let (first, second) = same_room_pair(&gt);
    let repaired = ms(&first.end_time) + 60_000;
    let mut faults = t.sim.faults();
    faults.panopto.recorders = vec![RecorderFault {
        room_id: first.room_id.clone(),
        problem: RecorderProblem::Faulted,
        window: Window {
            from: None,
            until: Some(iso(repaired)),
        },
    }];
    t.sim.set_faults(faults).expect("faults");
    advance_to(&t, ms(&first.start_time) + 60_000).await;
    let search = format!(
        "/Panopto/api/v1/remoteRecorders/search?searchQuery={}",
        first.room_id
    );
    assert_eq!(
        t.panopto_json(&search).await["Results"][0]["State"],
        "Faulted"
    );
    advance_to(&t, ms(&second.start_time) + 60_000).await;
    assert_eq!(
        t.panopto_json(&search).await["Results"][0]["State"],
        "Recording"
    );
    advance_to(&t, ms(&second.end_time) + 2 * 3_600_000).await;
    let gt = t.sim.ground_truth();
    let outcome = |m: &LectureRow| {
        gt.lectures
            .iter()
            .find(|l| l.meeting_id == m.meeting_id && l.date == FIRST_DAY)
            .map(|l| (l.outcome.clone(), l.session_id.clone().unwrap()))
            .unwrap()
    };
    let (o1, s1) = outcome(&first);
    let (o2, s2) = outcome(&second);
    assert_eq!(o1, "broken_recorder");
    assert_eq!(session(&gt, &s1).state, "Scheduled", "never recorded");
    assert_eq!(
        o2, "recorded",
        "the repaired recorder records the next lecture"
    );
    assert_eq!(session(&gt, &s2).state, "Complete");
    assert!(t.sim.counters().lectures.missed_lectures >= 1);
    t.stop().await;
}

#[tokio::test]
async fn faults_switched_on_later_reach_lectures_not_yet_started_only() {
    let t = TestSim::start(unlimited(64)).await;
    t.advance(2.0 * 3600.0).await;
    let gt = t.sim.ground_truth();
    let (first, second) = same_room_pair(&gt);
    advance_to(&t, ms(&first.end_time) + 60_000).await;
    let mut faults = t.sim.faults();
    faults
        .panopto
        .broken_recorder_rooms
        .insert(first.room_id.clone());
    t.sim.set_faults(faults).expect("faults");
    let gt = t.sim.ground_truth();
    let outcome_of = |m: &LectureRow| {
        gt.lectures
            .iter()
            .find(|l| l.meeting_id == m.meeting_id && l.date == FIRST_DAY)
            .map(|l| l.outcome.clone())
            .unwrap()
    };
    assert_eq!(outcome_of(&first), "recorded", "what happened stays");
    assert_eq!(outcome_of(&second), "broken_recorder");

    // A bad knob is refused whole, over HTTP as in Rust.
    let r = t
        .http
        .put(t.url("/_sim/faults"))
        .json(&json!({ "panopto": { "recorders": [
            { "room_id": first.room_id, "problem": "offline", "from": "soon" } ] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("panopto.recorders[0].from"),
        "{body}"
    );
    assert!(
        t.sim
            .faults()
            .panopto
            .broken_recorder_rooms
            .contains(&first.room_id),
        "nothing changed"
    );
    t.stop().await;
}

async fn course_folders(t: &TestSim) -> Vec<String> {
    let found = t
        .panopto_json("/Panopto/api/v1/folders/search?searchQuery=Fall%202025%20-")
        .await;
    found["Results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|f| f["Id"].as_str().expect("id").to_owned())
        .collect()
}

async fn move_to(t: &TestSim, session: &str, folder: &str) {
    let r = t
        .http
        .put(t.url(&format!("/Panopto/api/v1/sessions/{session}")))
        .bearer_auth(PANOPTO_TOKEN)
        .json(&json!({ "FolderId": folder }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "move: {}", r.status());
}

#[tokio::test]
async fn captions_come_from_the_folder_they_are_filed_in_late_or_never_per_folder() {
    let t = TestSim::start(unlimited(65)).await;
    t.advance(2.0 * 3600.0).await;
    let gt = t.sim.ground_truth();
    let mut recorded: Vec<&LectureRow> = lectures_on(&gt, FIRST_DAY)
        .into_iter()
        .filter(|l| l.expected == "recorded")
        .collect();
    recorded.sort_by_key(|l| ms(&l.end_time));
    assert!(recorded.len() >= 3);
    let lectures: Vec<LectureRow> = recorded[..3].iter().map(|l| (*l).clone()).collect();
    let folders = course_folders(&t).await;
    assert!(folders.len() >= 3);
    let mut faults = t.sim.faults();
    faults
        .panopto
        .captions_late_folders
        .insert(folders[1].clone(), 600.0);
    faults
        .panopto
        .captions_never_folders
        .insert(folders[2].clone());
    t.sim.set_faults(faults).expect("faults");

    // Finished processing in the recorder's default folder: no captions are requested.
    let last_end = lectures.iter().map(|l| ms(&l.end_time)).max().unwrap();
    advance_to(&t, last_end + 2 * 3_600_000).await;
    let gt = t.sim.ground_truth();
    let ids: Vec<String> = lectures
        .iter()
        .map(|l| l.session_id.clone().unwrap())
        .collect();
    for id in &ids {
        let s = session(&gt, id);
        assert_eq!(s.state, "Complete");
        assert_eq!(s.captions_time, None, "the default folder does not caption");
    }
    let filed = t.sim.clock().now_ms();
    for (id, folder) in ids.iter().zip(&folders) {
        move_to(&t, id, folder).await;
    }
    let gt = t.sim.ground_truth();
    let on_time = ms(session(&gt, &ids[0])
        .captions_time
        .as_deref()
        .expect("requested"));
    let turnaround = i64::from(sim::panopto::world::SITE_CAPTION_TURNAROUND_MINUTES) * 60_000;
    assert!((filed + turnaround..=filed + turnaround + 150 * 60_000).contains(&on_time));
    let late = ms(session(&gt, &ids[1])
        .captions_time
        .as_deref()
        .expect("requested"));
    assert!(late >= filed + turnaround + 600 * 60_000, "late folder");
    assert_eq!(session(&gt, &ids[2]).captions_time, None, "never folder");
    advance_to(&t, on_time + 1).await;
    let gt = t.sim.ground_truth();
    assert!(session(&gt, &ids[0]).has_captions);
    assert!(!session(&gt, &ids[1]).has_captions);

    // The folder setting itself is readable and switchable.
    let path = format!("/_sim/panopto/folders/{}/captioning", folders[0]);
    assert_eq!(
        t.get_json(&path).await["turnaround_minutes"],
        json!(sim::panopto::world::SITE_CAPTION_TURNAROUND_MINUTES)
    );
    let r = t
        .http
        .put(t.url(&path))
        .json(&json!({ "turnaround_minutes": null }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(t.get_json(&path).await["turnaround_minutes"], Value::Null);
    t.stop().await;
}

#[tokio::test]
async fn staff_edits_rename_or_move_sessions_after_class() {
    let t = TestSim::start(unlimited(66)).await;
    let mut faults = t.sim.faults();
    faults.panopto.staff_edit_probability = 1.0;
    faults.panopto.staff_edit_delay_minutes = 10.0;
    t.sim.set_faults(faults).expect("faults");
    t.advance(23.5 * 3600.0).await;
    let gt = t.sim.ground_truth();
    let defaults: Vec<&str> = gt
        .recorders
        .iter()
        .map(|r| r.default_folder_id.as_str())
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    for l in lectures_on(&gt, FIRST_DAY) {
        let Some(id) = &l.session_id else { continue };
        let s = session(&gt, id);
        let edit = s.staff_edit.as_deref().expect("edited");
        if edit.starts_with("renamed: ") {
            assert!(s.name.ends_with("(edited)"), "{}", s.name);
            kinds.insert("renamed");
        } else {
            assert!(edit.starts_with("moved: "), "{edit}");
            assert!(
                !defaults.contains(&s.folder_id.as_str()),
                "in a course folder"
            );
            kinds.insert("moved");
        }
    }
    assert_eq!(kinds.len(), 2, "both kinds of edit");
    t.stop().await;
}

#[tokio::test]
async fn a_cancelled_class_loses_its_scheduled_session() {
    let t = TestSim::start(unlimited(67)).await;
    t.advance(2.0 * 3600.0).await;
    let gt = t.sim.ground_truth();
    let l = lectures_on(&gt, FIRST_DAY)
        .into_iter()
        .find(|l| l.expected == "recorded")
        .unwrap()
        .clone();
    let cancel = |body: Value| {
        let t = &t;
        async move {
            t.http
                .post(t.url("/_sim/timetable/cancellations"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        cancel(json!({ "meeting_id": 999_999, "date": FIRST_DAY }))
            .await
            .status(),
        400
    );
    assert_eq!(
        cancel(json!({ "meeting_id": l.meeting_id, "date": "25/08/2025" }))
            .await
            .status(),
        400
    );
    let r = cancel(
        json!({ "meeting_id": l.meeting_id, "date": FIRST_DAY, "reason": "instructor ill" }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let gt = t.sim.ground_truth();
    let now = lectures_on(&gt, FIRST_DAY)
        .into_iter()
        .find(|x| x.meeting_id == l.meeting_id)
        .unwrap();
    assert_eq!(
        (now.expected.as_str(), now.outcome.as_str()),
        ("cancelled", "cancelled")
    );
    assert_eq!(now.cancelled_reason.as_deref(), Some("instructor ill"));
    let old = l.session_id.unwrap();
    assert!(
        session(&gt, &old).deleted,
        "the scheduled recording is cancelled"
    );
    let csv = t.sim.timetable_csv("cancellations.csv").unwrap();
    assert!(
        csv.lines()
            .any(|x| x.starts_with(&format!("{FIRST_DAY},{},", l.meeting_id))
                && x.ends_with(",instructor ill")),
        "{csv:.400}"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_panopto_outage_window_answers_503_then_recovers() {
    let t = TestSim::start(unlimited(68)).await;
    let now = t.sim.clock().now_ms();
    let mut faults = t.sim.faults();
    faults.panopto.outage = Some(Window {
        from: Some(iso(now)),
        until: Some(iso(now + 10 * 60_000)),
    });
    t.sim.set_faults(faults).expect("faults");
    let r = t
        .panopto_get("/Panopto/api/v1/folders/search?searchQuery=Fall")
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let cfg = t.sim.config().clone();
    let token = || {
        t.http
            .post(t.url("/Panopto/oauth2/connect/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", cfg.panopto_client_id.as_str()),
                ("client_secret", cfg.panopto_client_secret.as_str()),
                ("username", cfg.panopto_username.as_str()),
                ("password", cfg.panopto_password.as_str()),
                ("scope", "api offline_access"),
            ])
            .send()
    };
    assert_eq!(token().await.unwrap().status(), 503);
    t.advance(10.0 * 60.0).await;
    let r = t
        .panopto_get("/Panopto/api/v1/folders/search?searchQuery=Fall")
        .await;
    assert_eq!(r.status(), 200);

    // Revoked tokens: access and refresh alike; the password grant works again.
    let grant: Value = token().await.unwrap().json().await.unwrap();
    let access = grant["access_token"].as_str().unwrap().to_owned();
    let refresh = grant["refresh_token"].as_str().unwrap().to_owned();
    let search = |tok: String| {
        t.http
            .get(t.url("/Panopto/api/v1/folders/search?searchQuery=Fall"))
            .bearer_auth(tok)
            .send()
    };
    assert_eq!(search(access.clone()).await.unwrap().status(), 200);
    let revoked: Value = t
        .http
        .post(t.url("/_sim/panopto/revoke_tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(revoked["revoked"].as_u64().unwrap() >= 1);
    assert_eq!(search(access).await.unwrap().status(), 401);
    let refreshed = t
        .http
        .post(t.url("/Panopto/oauth2/connect/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", cfg.panopto_client_id.as_str()),
            ("client_secret", cfg.panopto_client_secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);
    let again: Value = token().await.unwrap().json().await.unwrap();
    let fresh = again["access_token"].as_str().unwrap().to_owned();
    assert_eq!(search(fresh).await.unwrap().status(), 200);
    assert_eq!(
        t.panopto_get("/Panopto/api/v1/folders/search?searchQuery=Fall")
            .await
            .status(),
        200,
        "command-line tokens are not revoked"
    );
    t.stop().await;
}
