//! The control API (clock, faults, ground truth) and the timetable exports agree with the
//! world they describe.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn clock_can_be_stepped_set_and_refuses_going_back() {
    let t = TestSim::start(config(51)).await;
    let c: Value = t
        .http
        .get(t.url("/_sim/clock"))
        .send()
        .await
        .expect("clock")
        .json()
        .await
        .expect("json");
    assert_eq!(c["paused"], true);
    assert_eq!(c["now"], "2025-08-25T04:00:00.000Z");
    let c = t.advance(90.0).await;
    assert_eq!(c["now"], "2025-08-25T04:01:30.000Z");
    let set = |body: Value| {
        let http = t.http.clone();
        let url = t.url("/_sim/clock");
        async move { http.post(url).json(&body).send().await.expect("clock") }
    };
    let r = set(json!({"set": "2025-09-01T12:00:00Z"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["now"],
        "2025-09-01T12:00:00.000Z"
    );
    assert_eq!(
        set(json!({"set": "2025-08-01T00:00:00Z"})).await.status(),
        400
    );
    assert_eq!(set(json!({"advance_seconds": -5})).await.status(), 400);
    assert_eq!(set(json!({"warp": 9})).await.status(), 400);
    // Setting the clock applied a week of timeline before answering; the Live Events it made
    // are counted as the delivery task takes them in, so give that task a moment.
    let mut counters = Value::Null;
    for _ in 0..100 {
        counters = t
            .http
            .get(t.url("/_sim/counters"))
            .send()
            .await
            .expect("counters")
            .json()
            .await
            .expect("json");
        if counters["live_events"]["emitted"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counters["timeline"]["applied"].as_u64().unwrap_or(0) > 0);
    assert!(
        counters["live_events"]["emitted"].as_u64().unwrap_or(0) > 0,
        "{counters}"
    );
    // Running at speed 3,600: at least a simulated minute passes in 50 ms... and pausing stops it.
    assert_eq!(
        set(json!({"pause": false, "speed": 3600.0})).await.status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let r: Value = set(json!({"pause": true}))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        r["now_ms"].as_i64().unwrap_or(0) >= 1_756_728_000_000 + 60_000,
        "{r}"
    );
    t.stop().await;
}

#[tokio::test]
async fn ground_truth_and_counters_over_http() {
    let t = TestSim::start(config(52)).await;
    let gt: Value = t
        .http
        .get(t.url("/_sim/ground_truth"))
        .send()
        .await
        .expect("gt")
        .json()
        .await
        .expect("json");
    for k in [
        "courses",
        "sections",
        "users",
        "enrollments",
        "modules",
        "module_items",
        "rooms",
        "meetings",
        "recorders",
        "sessions",
    ] {
        assert!(gt[k].is_array(), "{k}");
    }
    assert_eq!(gt["seed"], 52);
    assert_eq!(
        serde_json::to_value(t.sim.ground_truth()).expect("value"),
        gt
    );
    let faults: Value = t
        .http
        .get(t.url("/_sim/faults"))
        .send()
        .await
        .expect("faults")
        .json()
        .await
        .expect("json");
    assert_eq!(faults["live_events"]["outage"], false);
    let bad = t
        .http
        .put(t.url("/_sim/faults"))
        .json(&json!({"live_events": {"outage": "yes"}}))
        .send()
        .await
        .expect("faults");
    assert_eq!(bad.status(), 400);
    let info: Value = t
        .http
        .get(t.url("/_sim"))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    assert_eq!(info["live_events_jwks"], "/jwks");
    let token: Value = t
        .http
        .post(t.url("/_sim/canvas/tokens"))
        .json(&json!({}))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let r = t
        .http
        .get(t.url("/api/v1/accounts/1"))
        .bearer_auth(token["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(
        t.http
            .get(t.url("/nowhere"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );
    t.stop().await;
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    // The generated values contain no commas or quotes except names, which are quoted.
    let rows = lines
        .map(|l| {
            let mut out = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match (c, quoted) {
                    ('"', _) => quoted = !quoted,
                    (',', false) => out.push(std::mem::take(&mut cur)),
                    _ => cur.push(c),
                }
            }
            out.push(cur);
            out
        })
        .collect();
    (header, rows)
}

#[tokio::test]
async fn timetable_exports_match_the_ground_truth() {
    let t = TestSim::start(config(53)).await;
    let gt = t.sim.ground_truth();
    let get = |f: &'static str| {
        let http = t.http.clone();
        let url = t.url(&format!("/_sim/timetable/{f}"));
        async move {
            let r = http.get(url).send().await.expect("csv");
            assert_eq!(r.status(), 200, "{f}");
            assert!(
                r.headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("text/csv"))
            );
            r.text().await.expect("text")
        }
    };
    let (h, rows) = csv_rows(&get("courses.csv").await);
    assert_eq!(
        h,
        [
            "course_id",
            "short_name",
            "long_name",
            "account_id",
            "term_id",
            "status",
            "start_date",
            "end_date",
            "course_format"
        ]
    );
    assert_eq!(rows.len(), gt.courses.len());
    let (h, rows) = csv_rows(&get("sections.csv").await);
    assert_eq!(h[..4], ["section_id", "course_id", "name", "status"]);
    assert_eq!(rows.len(), gt.sections.len());
    let (h, rows) = csv_rows(&get("users.csv").await);
    assert_eq!(h[..2], ["user_id", "login_id"]);
    assert_eq!(
        rows.len(),
        gt.users.iter().filter(|u| u.sis_user_id.is_some()).count()
    );
    let (h, rows) = csv_rows(&get("enrollments.csv").await);
    assert_eq!(
        h[..6],
        [
            "course_id",
            "root_account",
            "user_id",
            "role",
            "section_id",
            "status"
        ]
    );
    assert_eq!(rows.len(), gt.enrollments.len());
    let roles: BTreeSet<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert!(roles.is_subset(&["student", "teacher", "ta", "designer", "observer"].into()));
    let (h, rows) = csv_rows(&get("rooms.csv").await);
    assert_eq!(
        h,
        [
            "room_id",
            "building",
            "name",
            "capacity",
            "has_recorder",
            "recorder_id"
        ]
    );
    assert_eq!(rows.len(), gt.rooms.len());
    let (h, rows) = csv_rows(&get("recorders.csv").await);
    assert_eq!(
        h,
        ["recorder_id", "name", "external_id", "default_folder_id"]
    );
    assert_eq!(rows.len(), gt.recorders.len());
    for r in &rows {
        assert!(
            gt.rooms
                .iter()
                .any(|room| room.id == r[2] && room.has_recorder),
            "recorder external id names an equipped room"
        );
    }
    let (h, rows) = csv_rows(&get("meetings.csv").await);
    assert_eq!(
        h[..6],
        [
            "meeting_id",
            "section_id",
            "course_id",
            "room_id",
            "days",
            "start_time"
        ]
    );
    assert_eq!(rows.len(), gt.meetings.len());
    let sis_sections: BTreeSet<String> = gt
        .sections
        .iter()
        .filter_map(|s| s.sis_section_id.clone())
        .collect();
    assert!(rows.iter().all(|r| sis_sections.contains(&r[1])));
    assert_eq!(
        t.http
            .get(t.url("/_sim/timetable/nope.csv"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );
    t.stop().await;
}
