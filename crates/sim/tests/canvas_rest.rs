//! Canvas REST over real HTTP: shapes agree with the published API models, Link pagination
//! walks every item exactly once (numbered and bookmark), writes create what coursewire needs,
//! and bad requests get Canvas's JSON errors.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every member of the published model is present, and members both sides fill have the
/// same JSON type, except documented quirks of the published examples.
fn assert_shape(model: &str, ours: &Value, absent_ok: &[&str], quirks: &[&str]) {
    let fixture = data_json(&format!("canvas/rest_fixtures/api_doc_models/{model}.json"));
    let (Some(f), Some(o)) = (fixture.as_object(), ours.as_object()) else {
        panic!("{model}: not objects");
    };
    for (k, fv) in f {
        if absent_ok.contains(&k.as_str()) {
            continue;
        }
        let ov = o
            .get(k)
            .unwrap_or_else(|| panic!("{model}: missing member {k}"));
        if fv.is_null() || ov.is_null() || quirks.contains(&k.as_str()) {
            continue;
        }
        assert_eq!(kind(ov), kind(fv), "{model}.{k}: ours {ov}, published {fv}");
    }
}

#[tokio::test]
async fn shapes_agree_with_published_models() {
    let t = TestSim::start(config(11)).await;
    let gt = t.sim.ground_truth();
    let course = gt
        .courses
        .iter()
        .find(|c| c.workflow_state == "available")
        .expect("a course");
    // Members Canvas sends only when include[] asks for them are asked for.
    let c = t
        .get_json(&format!(
            "/api/v1/courses/{}?include[]=syllabus_body&include[]=public_description\
             &include[]=total_students&include[]=term&include[]=course_progress\
             &include[]=needs_grading_count&include[]=storage_quota_used_mb&include[]=permissions",
            course.id
        ))
        .await;
    assert_shape(
        "Course",
        &c,
        &[
            "blueprint_restrictions",
            "blueprint_restrictions_by_object_type",
        ],
        &[],
    );
    assert_eq!(c["id"], json!(course.id));

    let sections = t
        .get_json(&format!(
            "/api/v1/courses/{}/sections?include[]=total_students",
            course.id
        ))
        .await;
    // Published example: `sis_course_id` is a number although typed string.
    assert_shape("Section", &sections[0], &[], &["sis_course_id"]);

    let enrollments = t
        .get_json(&format!(
            "/api/v1/courses/{}/enrollments?type[]=StudentEnrollment",
            course.id
        ))
        .await;
    // Published example: unposted scores are "" strings.
    assert_shape(
        "Enrollment",
        &enrollments[0],
        &[],
        &[
            "unposted_current_grade",
            "unposted_final_grade",
            "unposted_current_score",
            "unposted_final_score",
        ],
    );
    assert_eq!(enrollments[0]["type"], "StudentEnrollment");

    let user_id = enrollments[0]["user_id"].as_u64().expect("user id");
    let user = t
        .get_json(&format!(
            "/api/v1/users/{user_id}?include[]=last_login&include[]=bio"
        ))
        .await;
    // Published example: `sis_import_id` is "18" although typed integer.
    assert_shape("User", &user, &[], &["sis_import_id"]);

    let modules = t
        .get_json(&format!("/api/v1/courses/{}/modules", course.id))
        .await;
    assert_shape("Module", &modules[0], &[], &[]);
    let items_url = modules[0]["items_url"].as_str().expect("items_url");
    let items: Value = t
        .http
        .get(items_url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("items")
        .json()
        .await
        .expect("json");
    assert_shape("ModuleItem", &items[0], &[], &[]);

    let assignments = t
        .get_json(&format!(
            "/api/v1/courses/{}/assignments?include[]=all_dates&include[]=submission\
             &include[]=assignment_visibility&include[]=overrides\
             &include[]=needs_grading_count_by_section",
            course.id
        ))
        .await;
    // Published example: `intra_group_peer_reviews` is "false".
    assert_shape(
        "Assignment",
        &assignments[0],
        &[],
        &["intra_group_peer_reviews"],
    );

    let aid = assignments[0]["id"].as_u64().expect("assignment id");
    let subs = t
        .get_json(&format!(
            "/api/v1/courses/{}/assignments/{aid}/submissions?include[]=assignment\
             &include[]=course&include[]=user&include[]=submission_comments",
            course.id
        ))
        .await;
    // Published example: `redo_request` is "true".
    assert_shape("Submission", &subs[0], &[], &["redo_request"]);
    t.stop().await;
}

#[tokio::test]
async fn numbered_pagination_walks_every_course_exactly_once() {
    let t = TestSim::start(config(12)).await;
    let gt = t.sim.ground_truth();
    let expected: BTreeSet<u64> = gt
        .courses
        .iter()
        .filter(|c| c.workflow_state != "deleted")
        .map(|c| c.id)
        .collect();

    let first = t.get("/api/v1/accounts/1/courses").await;
    let link = first
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .expect("Link")
        .to_owned();
    for r in ["current", "next", "first", "last"] {
        assert!(rel(&link, r).is_some(), "rel={r} in {link}");
    }
    let page: Vec<Value> = first.json().await.expect("json");
    assert_eq!(page.len(), 10, "per_page defaults to 10");
    let big: Vec<Value> = t
        .get_json("/api/v1/accounts/1/courses?per_page=1000")
        .await
        .as_array()
        .cloned()
        .expect("array");
    assert_eq!(
        big.len(),
        expected.len().min(100),
        "per_page is capped at 100"
    );

    let (items, pages) = t.walk("/api/v1/accounts/1/courses?per_page=7").await;
    let ids: Vec<u64> = items
        .iter()
        .map(|c| c["id"].as_u64().expect("id"))
        .collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no course twice");
    assert_eq!(unique, expected);
    assert_eq!(pages, expected.len().div_ceil(7));
    t.stop().await;
}

#[tokio::test]
async fn bookmark_pagination_walks_enrollments_exactly_once_even_while_they_change() {
    let t = TestSim::start(config(13)).await;
    let gt = t.sim.ground_truth();
    // The course with the most enrollments.
    let mut counts = std::collections::BTreeMap::<u64, usize>::new();
    for e in &gt.enrollments {
        *counts.entry(e.course_id).or_default() += 1;
    }
    let (&course, _) = counts.iter().max_by_key(|(_, n)| **n).expect("course");
    let states = "state[]=active&state[]=invited&state[]=creation_pending&state[]=inactive&state[]=completed&state[]=deleted&state[]=rejected";
    let path = format!("/api/v1/courses/{course}/enrollments?per_page=4&{states}");

    let first = t.get(&path).await;
    let link = first
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .expect("Link")
        .to_owned();
    assert!(
        rel(&link, "last").is_none(),
        "bookmark collections have no last: {link}"
    );
    let next = rel(&link, "next").expect("next");
    assert!(next.contains("page=bookmark:"), "{next}");
    let mut seen: Vec<u64> = first
        .json::<Vec<Value>>()
        .await
        .expect("json")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();

    // An enrollment added mid-walk appears once, at the end.
    let student = gt
        .users
        .iter()
        .find(|u| {
            u.sis_user_id.is_some()
                && !gt
                    .enrollments
                    .iter()
                    .any(|e| e.user_id == u.id && e.course_id == course)
        })
        .expect("a user not in the course");
    let created: Value = t
        .http
        .post(t.url(&format!("/api/v1/courses/{course}/enrollments")))
        .bearer_auth(TOKEN)
        .form(&[
            ("enrollment[user_id]", student.id.to_string()),
            ("enrollment[enrollment_state]", "active".to_owned()),
        ])
        .send()
        .await
        .expect("enroll")
        .json()
        .await
        .expect("json");
    let new_id = created["id"].as_u64().expect("new enrollment id");
    assert_eq!(created["enrollment_state"], "active");

    let mut url = next;
    loop {
        let r = t
            .http
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("page");
        assert!(r.status().is_success());
        let n = next_link(r.headers());
        seen.extend(
            r.json::<Vec<Value>>()
                .await
                .expect("json")
                .iter()
                .map(|e| e["id"].as_u64().expect("id")),
        );
        match n {
            Some(n) => url = n,
            None => break,
        }
    }
    let mut expected: Vec<u64> = gt
        .enrollments
        .iter()
        .filter(|e| e.course_id == course)
        .map(|e| e.id)
        .collect();
    expected.push(new_id);
    assert_eq!(seen, expected, "every enrollment once, in id order");

    // Default filter: active and invited (plus inactive for a course).
    let (default_items, _) = t
        .walk(&format!("/api/v1/courses/{course}/enrollments?per_page=50"))
        .await;
    assert!(default_items.iter().all(|e| {
        ["active", "invited", "inactive"].contains(&e["enrollment_state"].as_str().unwrap_or(""))
    }));

    // A garbage bookmark is a 400 with Canvas's error body.
    let bad = t
        .get(&format!(
            "/api/v1/courses/{course}/enrollments?page=bookmark:%%%"
        ))
        .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert!(body["errors"][0]["message"].is_string());
    t.stop().await;
}

#[tokio::test]
async fn section_and_user_enrollments_and_sis_ids() {
    let t = TestSim::start(config(14)).await;
    let gt = t.sim.ground_truth();
    let section = &gt.sections[0];
    let sis = section.sis_section_id.clone().expect("sis id");
    let s = t
        .get_json(&format!("/api/v1/sections/sis_section_id:{sis}"))
        .await;
    assert_eq!(s["id"], json!(section.id));
    let (items, _) = t
        .walk(&format!(
            "/api/v1/sections/{}/enrollments?per_page=3&state[]=active",
            section.id
        ))
        .await;
    let expected: Vec<u64> = gt
        .enrollments
        .iter()
        .filter(|e| e.section_id == section.id && e.state == "active")
        .map(|e| e.id)
        .collect();
    let got: Vec<u64> = items
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(got, expected);

    let course = gt
        .courses
        .iter()
        .find(|c| c.id == section.course_id)
        .expect("course");
    let c = t
        .get_json(&format!(
            "/api/v1/courses/sis_course_id:{}",
            course.sis_course_id.clone().expect("sis")
        ))
        .await;
    assert_eq!(c["id"], json!(course.id));

    let e = gt
        .enrollments
        .iter()
        .find(|e| e.r#type == "StudentEnrollment" && e.state == "active")
        .expect("student");
    let user = gt.users.iter().find(|u| u.id == e.user_id).expect("user");
    let by_sis = t
        .get_json(&format!(
            "/api/v1/users/sis_user_id:{}",
            user.sis_user_id.clone().expect("sis")
        ))
        .await;
    assert_eq!(by_sis["id"], json!(user.id));
    let (mine, _) = t
        .walk(&format!(
            "/api/v1/users/{}/enrollments?type[]=StudentEnrollment",
            user.id
        ))
        .await;
    assert!(mine.iter().any(|x| x["id"] == json!(e.id)));
    t.stop().await;
}

#[tokio::test]
async fn creates_a_module_and_an_external_url_item() {
    let t = TestSim::start(config(15)).await;
    let gt = t.sim.ground_truth();
    let course = gt
        .courses
        .iter()
        .find(|c| c.workflow_state == "available")
        .expect("course")
        .id;
    let before = t.sim.counters().live_events.emitted;

    let m: Value = t
        .http
        .post(t.url(&format!("/api/v1/courses/{course}/modules")))
        .bearer_auth(TOKEN)
        .form(&[("module[name]", "Lecture recordings")])
        .send()
        .await
        .expect("create module")
        .json()
        .await
        .expect("json");
    assert_eq!(m["name"], "Lecture recordings");
    assert_eq!(m["published"], false, "new modules are unpublished");
    let mid = m["id"].as_u64().expect("module id");

    let item = t
        .http
        .post(t.url(&format!("/api/v1/courses/{course}/modules/{mid}/items")))
        .bearer_auth(TOKEN)
        .json(&json!({"module_item": {
            "type": "ExternalUrl", "title": "Lecture 1 recording",
            "external_url": "https://panopto.example/Viewer.aspx?id=1", "position": 1,
            "completion_requirement": {"type": "must_view"}
        }}))
        .send()
        .await
        .expect("create item");
    assert_eq!(item.status(), 200);
    let item: Value = item.json().await.expect("json");
    assert_eq!(item["type"], "ExternalUrl");
    assert_eq!(
        item["external_url"],
        "https://panopto.example/Viewer.aspx?id=1"
    );
    assert_eq!(item["completion_requirement"]["type"], "must_view");
    assert_eq!(item["module_id"], json!(mid));

    let (items, _) = t
        .walk(&format!("/api/v1/courses/{course}/modules/{mid}/items"))
        .await;
    assert_eq!(items.len(), 1);
    let gt = t.sim.ground_truth();
    assert!(
        gt.module_items
            .iter()
            .any(|i| i.id == item["id"].as_u64().unwrap_or(0) && i.r#type == "ExternalUrl")
    );

    let events = t.live_events(0).await;
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"]["metadata"]["event_name"].as_str())
        .collect();
    assert!(
        names.contains(&"module_created") && names.contains(&"module_item_created"),
        "{names:?}"
    );
    assert_eq!(t.sim.counters().live_events.emitted, before + 2);

    // Bad requests: no URL, unknown type, unknown course, unknown module.
    let bad = t
        .http
        .post(t.url(&format!("/api/v1/courses/{course}/modules/{mid}/items")))
        .bearer_auth(TOKEN)
        .form(&[
            ("module_item[type]", "ExternalUrl"),
            ("module_item[title]", "x"),
        ])
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("external_url")
    );
    let bad = t
        .http
        .post(t.url(&format!("/api/v1/courses/{course}/modules/{mid}/items")))
        .bearer_auth(TOKEN)
        .form(&[("module_item[type]", "Hologram")])
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 400);
    let missing = t.get("/api/v1/courses/999999/modules").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["message"],
        "The specified resource does not exist."
    );
    assert_eq!(
        t.get(&format!("/api/v1/courses/{course}/modules/1/items"))
            .await
            .status(),
        404
    );
    assert_eq!(t.get("/api/v1/courses/not-a-number").await.status(), 404);
    let r = t
        .http
        .post(t.url(&format!("/api/v1/courses/{course}/modules")))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("bad json");
    assert_eq!(r.status(), 400);
    t.stop().await;
}

#[tokio::test]
async fn grading_and_enrollment_changes_through_rest() {
    let t = TestSim::start(config(16)).await;
    let gt = t.sim.ground_truth();
    let a = gt
        .assignments
        .iter()
        .find(|a| a.published)
        .expect("assignment");
    let e = gt
        .enrollments
        .iter()
        .find(|e| {
            e.course_id == a.course_id && e.r#type == "StudentEnrollment" && e.state == "active"
        })
        .expect("student");
    let path = format!(
        "/api/v1/courses/{}/assignments/{}/submissions/{}",
        a.course_id, a.id, e.user_id
    );
    let r: Value = t
        .http
        .put(t.url(&path))
        .bearer_auth(TOKEN)
        .form(&[("submission[posted_grade]", "50%")])
        .send()
        .await
        .expect("grade")
        .json()
        .await
        .expect("json");
    assert_eq!(r["score"], json!(a.points_possible / 2.0));
    assert_eq!(r["workflow_state"], "graded");
    let again = t.get_json(&path).await;
    assert_eq!(again["score"], r["score"]);
    let bad = t
        .http
        .put(t.url(&path))
        .bearer_auth(TOKEN)
        .form(&[("submission[posted_grade]", "lots")])
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 400);

    let (graded, _) = t
        .walk(&format!(
            "/api/v1/courses/{}/students/submissions?student_ids[]=all&workflow_state=graded",
            a.course_id
        ))
        .await;
    assert_eq!(graded.len(), 1);

    let del: Value = t
        .http
        .delete(t.url(&format!(
            "/api/v1/courses/{}/enrollments/{}?task=delete",
            a.course_id, e.id
        )))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("json");
    assert_eq!(del["enrollment_state"], "deleted");
    let back: Value = t
        .http
        .put(t.url(&format!(
            "/api/v1/courses/{}/enrollments/{}/reactivate",
            a.course_id, e.id
        )))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("reactivate")
        .json()
        .await
        .expect("json");
    assert_eq!(back["enrollment_state"], "active");
    let names: Vec<String> = t
        .live_events(0)
        .await
        .iter()
        .filter_map(|e| {
            e["event"]["metadata"]["event_name"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    for want in [
        "grade_change",
        "submission_updated",
        "enrollment_updated",
        "enrollment_state_updated",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    t.stop().await;
}

#[tokio::test]
async fn a_teacher_lists_own_courses() {
    let t = TestSim::start(config(17)).await;
    let gt = t.sim.ground_truth();
    let e = gt
        .enrollments
        .iter()
        .find(|e| e.r#type == "TeacherEnrollment" && e.state == "active")
        .expect("teacher");
    let minted: Value = t
        .http
        .post(t.url("/_sim/canvas/tokens"))
        .json(&json!({"user_id": e.user_id}))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let token = minted["access_token"].as_str().expect("token");
    let mine: Vec<Value> = t
        .http
        .get(t.url("/api/v1/courses?per_page=100"))
        .bearer_auth(token)
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let got: BTreeSet<u64> = mine.iter().map(|c| c["id"].as_u64().expect("id")).collect();
    let expected: BTreeSet<u64> = gt
        .enrollments
        .iter()
        .filter(|x| {
            x.user_id == e.user_id
                && ["active", "invited", "creation_pending"].contains(&x.state.as_str())
        })
        .filter(|x| {
            gt.courses
                .iter()
                .any(|c| c.id == x.course_id && c.workflow_state != "deleted")
        })
        .map(|x| x.course_id)
        .collect();
    assert_eq!(got, expected);
    assert!(got.contains(&e.course_id));
    let me: Value = t
        .http
        .get(t.url("/api/v1/users/self"))
        .bearer_auth(token)
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], json!(e.user_id));
    assert_eq!(
        t.http
            .get(t.url("/api/v1/courses?enrollment_state=bogus"))
            .bearer_auth(token)
            .send()
            .await
            .expect("req")
            .status(),
        400
    );
    t.stop().await;
}

/// canvasapi (PyPI) walks the university the way universities' scripts do
/// (`tests/python/canvasapi_walk.py` says what it checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvasapi_walks_accounts_courses_enrollments_users_modules_and_submissions() {
    let t = TestSim::start(config(81)).await;
    let Some(out) = python_check("canvasapi", "canvasapi_walk.py", &[t.base.as_str(), TOKEN])
    else {
        return;
    };
    assert_eq!(out.trim(), "ok");
    t.stop().await;
}
