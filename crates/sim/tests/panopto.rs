//! Panopto over real HTTP: OAuth2 password and refresh grants, the 5/s rate limit, REST
//! shapes agreeing with the published payloads, lectures moving Scheduled → Recording →
//! Processing → Complete on the simulated clock (seen through SOAP `GetSessionsList`), and
//! the lecture fault knobs.

mod common;

use std::collections::BTreeSet;

use common::*;
use panopto::SessionState;
use panopto::soap::{self, AuthenticationInfo, ListSessionsRequest, Pagination};
use serde_json::{Value, json};
use sim::SimConfig;

fn unlimited(seed: u64) -> SimConfig {
    let mut c = config(seed);
    c.panopto_limits.enabled = false;
    c
}

async fn pget(t: &TestSim, path: &str) -> reqwest::Response {
    t.panopto_get(path).await
}

async fn pjson(t: &TestSim, path: &str) -> Value {
    t.panopto_json(path).await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().filter(|k| !k.starts_with('_')).cloned().collect())
        .unwrap_or_default()
}

fn assert_keys(what: &str, ours: &Value, published: &Value, except: &[&str]) {
    let want: BTreeSet<String> = keys(published)
        .into_iter()
        .filter(|k| !except.contains(&k.as_str()))
        .collect();
    let got: BTreeSet<String> = keys(ours)
        .into_iter()
        .filter(|k| !except.contains(&k.as_str()))
        .collect();
    assert_eq!(got, want, "{what}");
}

#[tokio::test]
async fn oauth_password_and_refresh_grants() {
    let t = TestSim::start(config(41)).await;
    let cfg = t.sim.config().clone();
    let form = |extra: Vec<(&'static str, String)>| {
        let mut f = vec![
            ("client_id", cfg.panopto_client_id.clone()),
            ("client_secret", cfg.panopto_client_secret.clone()),
        ];
        f.extend(extra);
        f
    };
    let url = t.url("/Panopto/oauth2/connect/token");
    let bad = t
        .http
        .post(&url)
        .form(&form(vec![
            ("grant_type", "password".into()),
            ("username", cfg.panopto_username.clone()),
            ("password", "wrong".into()),
        ]))
        .send()
        .await
        .expect("token");
    assert_eq!(bad.status(), 400);
    let r: Value = t
        .http
        .post(&url)
        .form(&form(vec![
            ("grant_type", "password".into()),
            ("username", cfg.panopto_username.clone()),
            ("password", cfg.panopto_password.clone()),
            ("scope", "openid api offline_access".into()),
        ]))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let published = data_json("panopto/oauth-token.response.json");
    assert_keys("token response", &r, &published, &[]);
    assert_eq!(r["expires_in"], 3600);
    let access = r["access_token"].as_str().expect("access").to_owned();
    let ok = t
        .http
        .get(t.url("/Panopto/api/v1/folders/search?searchQuery=fall"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        t.http
            .get(t.url("/Panopto/api/v1/folders/search?searchQuery=fall"))
            .send()
            .await
            .expect("req")
            .status(),
        401
    );

    t.advance(3_600.0).await;
    let expired = t
        .http
        .get(t.url("/Panopto/api/v1/folders/search?searchQuery=fall"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("req");
    assert_eq!(expired.status(), 401);
    let refreshed: Value = t
        .http
        .post(&url)
        .form(&form(vec![
            ("grant_type", "refresh_token".into()),
            (
                "refresh_token",
                r["refresh_token"].as_str().expect("rt").to_owned(),
            ),
        ]))
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let access2 = refreshed["access_token"].as_str().expect("access");
    let ok = t
        .http
        .get(t.url("/Panopto/api/v1/folders/search?searchQuery=fall"))
        .bearer_auth(access2)
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn the_sixth_request_inside_one_second_gets_429() {
    let t = TestSim::start(config(42)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            pget(&t, "/Panopto/api/v1/remoteRecorders/search?searchQuery=1")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429]);
    let c = t.sim.counters().panopto;
    assert_eq!((c.requests, c.throttled), (6, 1));
    // A second later the window has room again.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        pget(&t, "/Panopto/api/v1/remoteRecorders/search?searchQuery=1")
            .await
            .status(),
        200
    );
    t.stop().await;
}

#[tokio::test]
async fn rest_shapes_agree_with_published_payloads() {
    let t = TestSim::start(unlimited(43)).await;
    // Monday 02:00 local: today's lectures are scheduled; run to 18:00 so some are complete.
    t.advance(18.0 * 3_600.0).await;
    let gt = t.sim.ground_truth();

    let top = pjson(
        &t,
        "/Panopto/api/v1/folders/00000000-0000-0000-0000-000000000000/children",
    )
    .await;
    assert_keys(
        "ListResponse",
        &top,
        &data_json("panopto/folder-children.rest.json"),
        &[],
    );
    let term_folder = top["Results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|f| f["Name"] == "Fall 2025")
        .expect("term folder")
        .clone();
    let kids = pjson(
        &t,
        &format!(
            "/Panopto/api/v1/folders/{}/children",
            term_folder["Id"].as_str().expect("id")
        ),
    )
    .await;
    let dept = &kids["Results"][0];
    assert_keys(
        "Folder (child)",
        dept,
        &data_json("panopto/folder.rest.json"),
        &[],
    );
    assert_eq!(dept["ParentFolder"]["Id"], term_folder["Id"]);
    let folder = pjson(
        &t,
        &format!(
            "/Panopto/api/v1/folders/{}",
            dept["Id"].as_str().expect("id")
        ),
    )
    .await;
    assert_keys(
        "Folder",
        &folder,
        &data_json("panopto/folder.rest.json"),
        &[],
    );
    assert_keys(
        "Folder.Urls",
        &folder["Urls"],
        &data_json("panopto/folder.rest.json")["Urls"],
        &[],
    );

    let done = gt
        .sessions
        .iter()
        .find(|s| s.state == "Complete")
        .expect("a complete lecture");
    let session = pjson(&t, &format!("/Panopto/api/v1/sessions/{}", done.id)).await;
    let published = data_json("panopto/session.rest.json");
    assert_keys("Session", &session, &published, &[]);
    assert_keys("Session.Urls", &session["Urls"], &published["Urls"], &[]);
    assert!(session["Duration"].as_f64().is_some_and(|d| d > 0.0));
    assert_eq!(session["Folder"], json!(done.folder_id));

    let listed = pjson(
        &t,
        &format!(
            "/Panopto/api/v1/folders/{}/sessions?sortField=CreatedDate&sortOrder=Desc",
            done.folder_id
        ),
    )
    .await;
    let list_published = data_json("panopto/session-list.rest.json");
    assert_keys(
        "Session (list)",
        &listed["Results"][0],
        &list_published["Results"][0],
        &["Context"],
    );
    assert_keys(
        "Session (list).Urls",
        &listed["Results"][0]["Urls"],
        &list_published["Results"][0]["Urls"],
        &[],
    );

    let rec = gt.recorders.first().expect("recorder");
    let recs = pjson(
        &t,
        &format!(
            "/Panopto/api/v1/remoteRecorders/search?searchQuery={}",
            rec.room_id
        ),
    )
    .await;
    let rec_published = data_json("panopto/remote-recorder.rest.json");
    assert_keys(
        "RemoteRecorder",
        &recs["Results"][0],
        &rec_published["Results"][0],
        &[],
    );

    let access = pjson(
        &t,
        &format!("/Panopto/api/v1/sessions/{}/settings/access", done.id),
    )
    .await;
    assert_keys(
        "AccessSettings",
        &access,
        &data_json("panopto/access-settings.rest.json"),
        &[],
    );
    let course_folder = gt.courses.first().expect("course");
    let found = pjson(
        &t,
        &format!(
            "/Panopto/api/v1/folders/search?searchQuery={}",
            course_folder.course_code.replace(' ', "%20")
        ),
    )
    .await;
    let fid = found["Results"][0]["Id"]
        .as_str()
        .expect("course folder")
        .to_owned();
    let perms = pjson(&t, &format!("/Panopto/api/v1/folders/{fid}/permissions")).await;
    let perm_published = data_json("panopto/permissions.rest.json");
    assert_keys(
        "Permission",
        &perms["Results"][0],
        &perm_published["Results"][0],
        &[],
    );
    assert_keys(
        "Principal",
        &perms["Results"][0]["Principal"],
        &perm_published["Results"][0]["Principal"],
        &[],
    );

    let missing = pget(
        &t,
        "/Panopto/api/v1/folders/0b0b0b0b-0000-0000-0000-000000000000",
    )
    .await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("json");
    assert_keys(
        "APIError",
        &body["Error"],
        &data_json("panopto/error.rest.json")["Error"],
        &[],
    );
    assert_eq!(body["Error"]["Success"], false);
    assert_eq!(
        pget(&t, "/Panopto/api/v1/sessions/search").await.status(),
        400,
        "searchQuery is required"
    );

    let updates = pjson(
        &t,
        "/Panopto/api/v1/searchIndexSync/updates?fromDate=2025-08-01T00:00:00Z",
    )
    .await;
    assert_keys(
        "SearchIndexUpdates",
        &updates,
        &data_json("panopto/search-index-sync-updates.rest.json"),
        &[],
    );
    let first = &updates["Updates"][0];
    assert_keys(
        "SearchIndexUpdate",
        first,
        &data_json("panopto/search-index-sync-updates.rest.json")["Updates"][0],
        &[],
    );
    let content = pjson(
        &t,
        &format!("/Panopto/api/v1/searchIndexSync/content?id={}", done.id),
    )
    .await;
    let content_published = data_json("panopto/search-index-sync-content.rest.json");
    assert_keys("SearchIndexContent", &content, &content_published, &[]);
    assert_keys(
        "VideoContent",
        &content["VideoContent"],
        &content_published["VideoContent"],
        &[],
    );

    let users = pjson(&t, "/Panopto/api/v1/users/search?searchQuery=a").await;
    assert!(!users["Results"].as_array().expect("results").is_empty());
    let groups = pjson(&t, "/Panopto/api/v1/groups/search?searchQuery=_viewers").await;
    assert!(
        groups["Results"][0]["Name"]
            .as_str()
            .is_some_and(|n| n.ends_with("_viewers"))
    );

    // Pages end with an empty page.
    let mut page = 0;
    loop {
        let p = pjson(
            &t,
            &format!("/Panopto/api/v1/folders/search?searchQuery=fall&pageNumber={page}"),
        )
        .await;
        if p["Results"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        page += 1;
        assert!(page < 1_000);
    }
    assert!(page > 1, "several pages of folders");
    t.stop().await;
}

async fn soap_states(t: &TestSim, request: ListSessionsRequest) -> Vec<panopto::SoapSession> {
    let cfg = t.sim.config();
    let auth = AuthenticationInfo {
        user_key: Some(cfg.panopto_username.clone()),
        password: Some(cfg.panopto_password.clone()),
        auth_code: None,
    };
    let body = soap::encode_get_sessions_list_request(&auth, &request, None);
    let r = t
        .http
        .post(t.url(soap::SESSION_MANAGEMENT_PATH))
        .header("content-type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            "\"http://tempuri.org/ISessionManagement/GetSessionsList\"",
        )
        .body(body)
        .send()
        .await
        .expect("soap");
    assert_eq!(r.status(), 200);
    let (sessions, total) =
        soap::decode_get_sessions_list_response(&r.text().await.expect("text")).expect("decodes");
    assert!(total >= sessions.len() as u64);
    sessions
}

#[tokio::test]
async fn lectures_move_through_their_states_on_the_simulated_clock() {
    let t = TestSim::start(unlimited(44)).await;
    // 02:00 local on the first Monday: today's lectures are scheduled.
    t.advance(2.0 * 3_600.0).await;
    let gt = t.sim.ground_truth();
    assert!(!gt.sessions.is_empty());
    assert!(gt.sessions.iter().all(|s| s.state == "Scheduled"));
    let lecture = gt
        .sessions
        .iter()
        .min_by_key(|s| (&s.start_time, &s.id))
        .expect("first lecture")
        .clone();
    let meeting = gt
        .meetings
        .iter()
        .find(|m| Some(m.id) == lecture.meeting_id)
        .expect("meeting");
    let recorder = gt
        .recorders
        .iter()
        .find(|r| Some(&r.id) == lecture.recorder_id.as_ref())
        .expect("recorder");
    assert_eq!(
        recorder.room_id, meeting.room_id,
        "recorded in its own room"
    );
    assert_eq!(
        lecture.folder_id, recorder.default_folder_id,
        "lands in the recorder's default folder"
    );

    let by_recorder = |states: Vec<SessionState>| ListSessionsRequest {
        remote_recorder_id: Some(recorder.id.clone()),
        states,
        sort_by: Some("Date".into()),
        sort_increasing: Some(true),
        pagination: Some(Pagination {
            max_number_results: 100,
            page_number: 0,
        }),
        ..Default::default()
    };
    let state_of = |sessions: &[panopto::SoapSession]| {
        sessions
            .iter()
            .find(|s| s.id == lecture.id)
            .map(|s| s.state)
    };
    assert_eq!(
        state_of(&soap_states(&t, by_recorder(vec![])).await),
        Some(SessionState::Scheduled)
    );

    let start = chrono::DateTime::parse_from_rfc3339(&lecture.start_time)
        .expect("start")
        .timestamp_millis();
    let end = chrono::DateTime::parse_from_rfc3339(&lecture.end_time)
        .expect("end")
        .timestamp_millis();
    let now = t.sim.clock().now_ms();
    t.advance(((start - now) as f64 / 1000.0) + 60.0).await;
    assert_eq!(
        state_of(&soap_states(&t, by_recorder(vec![])).await),
        Some(SessionState::Recording)
    );
    let live = pjson(&t, "/Panopto/api/v1/sessions/inProgress/recording").await;
    assert!(
        live["Results"]
            .as_array()
            .expect("results")
            .iter()
            .any(|s| s["Id"] == json!(lecture.id))
    );
    let recs = pjson(
        &t,
        &format!(
            "/Panopto/api/v1/remoteRecorders/search?searchQuery={}",
            recorder.room_id
        ),
    )
    .await;
    assert_eq!(recs["Results"][0]["State"], "Recording");

    t.advance(((end - start) as f64 / 1000.0) + 30.0).await;
    assert_eq!(
        state_of(&soap_states(&t, by_recorder(vec![])).await),
        Some(SessionState::Processing)
    );
    assert!(
        state_of(&soap_states(&t, by_recorder(vec![SessionState::Complete])).await).is_none(),
        "state filter"
    );
    t.advance(45.0 * 60.0).await;
    let done = soap_states(&t, by_recorder(vec![SessionState::Complete])).await;
    let s = done.iter().find(|s| s.id == lecture.id).expect("complete");
    assert_eq!(s.state, SessionState::Complete);
    assert_eq!(s.duration, Some(((end - start) / 1000) as f64));
    assert_eq!(s.remote_recorder_ids, vec![recorder.id.clone()]);
    t.stop().await;
}

#[tokio::test]
async fn lecture_faults_broken_recorder_wrong_room_and_captions() {
    let t = TestSim::start(unlimited(45)).await;
    let gt = t.sim.ground_truth();
    let broken_room = gt.recorders[0].room_id.clone();
    let mut faults = t.sim.faults();
    faults
        .panopto
        .broken_recorder_rooms
        .insert(broken_room.clone());
    faults.panopto.wrong_room_probability = 1.0;
    faults.panopto.captions_never_probability = 1.0;
    t.sim.set_faults(faults).expect("faults");
    t.advance(23.0 * 3_600.0).await;
    let gt = t.sim.ground_truth();
    let broken_recorder = gt.recorders[0].id.clone();
    assert!(gt.recorders[0].broken);
    // Wrong-room recording sends every lecture to another recorder, so the broken one's
    // own lectures are recorded elsewhere, and lectures sent to it are never recorded.
    for s in gt
        .sessions
        .iter()
        .filter(|s| s.recorder_id.as_deref() == Some(broken_recorder.as_str()))
    {
        assert_eq!(s.state, "Scheduled", "a faulted recorder records nothing");
    }
    let on_broken: Vec<&str> = gt
        .sessions
        .iter()
        .filter(|s| s.recorder_id.as_deref() == Some(broken_recorder.as_str()))
        .map(|s| s.id.as_str())
        .collect();
    assert!(!on_broken.is_empty());
    assert_eq!(
        t.sim.counters().lectures.missed_lectures as usize,
        on_broken.len()
    );
    for l in &gt.lectures {
        let on_it = l
            .session_id
            .as_deref()
            .is_some_and(|id| on_broken.contains(&id));
        if on_it {
            assert_eq!(l.outcome, "broken_recorder");
        } else if l.outcome != "no_recorder" && l.outcome != "cancelled" {
            assert_eq!(l.outcome, "wrong_room");
        }
    }
    assert!(!gt.sessions.is_empty());
    for s in &gt.sessions {
        assert_ne!(
            s.recorder_id, s.scheduled_recorder_id,
            "recorded in the wrong room"
        );
        if s.state == "Complete" {
            assert!(!s.has_captions, "captions never arrive");
        }
    }
    let recs = pjson(
        &t,
        &format!("/Panopto/api/v1/remoteRecorders/search?searchQuery={broken_room}"),
    )
    .await;
    assert_eq!(recs["Results"][0]["State"], "Faulted");
    t.stop().await;
}

#[tokio::test]
async fn scheduled_recordings_and_session_edits() {
    let t = TestSim::start(unlimited(46)).await;
    let gt = t.sim.ground_truth();
    let rec = &gt.recorders[0];
    let course_folder = {
        let found = pjson(
            &t,
            "/Panopto/api/v1/folders/search?searchQuery=Fall%202025%20-",
        )
        .await;
        found["Results"][0]["Id"]
            .as_str()
            .expect("folder")
            .to_owned()
    };
    let mut body = data_json("panopto/scheduled-recording-create.request.json");
    body.as_object_mut()
        .expect("object")
        .retain(|k, _| !k.starts_with('_'));
    body["FolderId"] = json!(course_folder);
    body["Recorders"][0]["RemoteRecorderId"] = json!(rec.id);
    body["StartTime"] = json!("2025-08-25T23:00:00Z");
    body["EndTime"] = json!("2025-08-25T23:50:00Z");
    let url = t.url("/Panopto/api/v1/scheduledRecordings?resolveConflicts=false");
    let created = t
        .http
        .post(&url)
        .bearer_auth(PANOPTO_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.expect("json");
    assert_keys(
        "ScheduledRecording",
        &created,
        &data_json("panopto/scheduled-recording.rest.json"),
        &[],
    );
    let id = created["Id"].as_str().expect("id").to_owned();
    let again = pjson(&t, &format!("/Panopto/api/v1/scheduledRecordings/{id}")).await;
    assert_eq!(
        again["RecorderScheduleEntries"][0]["RecorderId"],
        json!(rec.id)
    );
    let no_flag = t
        .http
        .post(t.url("/Panopto/api/v1/scheduledRecordings"))
        .bearer_auth(PANOPTO_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("req");
    assert_eq!(no_flag.status(), 400, "resolveConflicts is required");
    let garbage = t
        .http
        .post(&url)
        .bearer_auth(PANOPTO_TOKEN)
        .body("{")
        .send()
        .await
        .expect("req");
    assert_eq!(garbage.status(), 400);

    // Rename and move a session (SessionUpdate), then find it in its new folder.
    let upd = t
        .http
        .put(t.url(&format!("/Panopto/api/v1/sessions/{id}")))
        .bearer_auth(PANOPTO_TOKEN)
        .json(&json!({"Name": "BIOL 101 A - Lecture 01", "FolderId": course_folder}))
        .send()
        .await
        .expect("update");
    assert_eq!(upd.status(), 200);
    let s = pjson(&t, &format!("/Panopto/api/v1/sessions/{id}")).await;
    assert_eq!(s["Name"], "BIOL 101 A - Lecture 01");
    let listed = pjson(
        &t,
        &format!("/Panopto/api/v1/folders/{course_folder}/sessions"),
    )
    .await;
    assert!(
        listed["Results"]
            .as_array()
            .expect("results")
            .iter()
            .any(|x| x["Id"] == json!(id))
    );

    // Caption upload (multipart) makes CaptionDownloadUrl appear.
    let multipart = "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.vtt\"\r\nContent-Type: text/vtt\r\n\r\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n\r\n--b0undary\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nEnglish_USA\r\n--b0undary--\r\n";
    let up = t
        .http
        .post(t.url(&format!("/Panopto/api/v1/sessions/{id}/captions")))
        .bearer_auth(PANOPTO_TOKEN)
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(multipart)
        .send()
        .await
        .expect("upload");
    assert_eq!(up.status(), 200);
    let s = pjson(&t, &format!("/Panopto/api/v1/sessions/{id}")).await;
    assert!(s["Urls"]["CaptionDownloadUrl"].is_string());

    // Grant a group viewer access on the session.
    let group = pjson(&t, "/Panopto/api/v1/groups/search?searchQuery=_viewers").await["Results"][0]
        ["Id"]
        .clone();
    let grant = t
        .http
        .post(t.url(&format!("/Panopto/api/v1/sessions/{id}/permissions")))
        .bearer_auth(PANOPTO_TOKEN)
        .json(&json!({"RoleType": "Viewer", "PrincipalId": group, "PrincipalType": "Group"}))
        .send()
        .await
        .expect("grant");
    assert_eq!(grant.status(), 200);
    let perms = pjson(&t, &format!("/Panopto/api/v1/sessions/{id}/permissions")).await;
    assert!(
        perms["Results"]
            .as_array()
            .expect("results")
            .iter()
            .any(|p| p["Principal"]["Id"] == group && p["IsInherited"] == false)
    );
    t.stop().await;
}

#[tokio::test]
async fn recorders_are_found_by_room_through_soap() {
    let t = TestSim::start(unlimited(47)).await;
    let gt = t.sim.ground_truth();
    let rec = &gt.recorders[gt.recorders.len() / 2];
    let cfg = t.sim.config();
    let auth = AuthenticationInfo {
        user_key: Some(cfg.panopto_username.clone()),
        password: Some(cfg.panopto_password.clone()),
        auth_code: None,
    };
    let post = |body: String| {
        let http = t.http.clone();
        let url = t.url(soap::REMOTE_RECORDER_MANAGEMENT_PATH);
        async move {
            http.post(url)
                .header("content-type", "text/xml")
                .body(body)
                .send()
                .await
                .expect("soap")
        }
    };
    let r = post(soap::encode_get_recorders_by_external_id_request(
        &auth,
        &[rec.room_id.clone(), "NOPE-1".to_owned()],
    ))
    .await;
    assert_eq!(r.status(), 200);
    let found = soap::decode_get_recorders_by_external_id_response(&r.text().await.expect("text"))
        .expect("decodes");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, rec.id);
    assert_eq!(found[0].external_id.as_deref(), Some(rec.room_id.as_str()));

    let r = post(soap::encode_list_recorders_request(
        &auth,
        Pagination {
            max_number_results: 1000,
            page_number: 0,
        },
    ))
    .await;
    let (all, total) =
        soap::decode_list_recorders_response(&r.text().await.expect("text")).expect("decodes");
    assert_eq!(total as usize, gt.recorders.len());
    let ids: BTreeSet<String> = all.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, gt.recorders.iter().map(|r| r.id.clone()).collect());

    let wrong = AuthenticationInfo {
        user_key: Some("nobody".into()),
        password: Some("x".into()),
        auth_code: None,
    };
    let r = post(soap::encode_list_recorders_request(
        &wrong,
        Pagination::default(),
    ))
    .await;
    assert_eq!(r.status(), 500);
    assert!(matches!(
        soap::decode_list_recorders_response(&r.text().await.expect("text")),
        Err(soap::SoapError::Fault { .. })
    ));
    let r = post("<not-soap/>".to_owned()).await;
    assert_eq!(r.status(), 500);
    t.stop().await;
}

#[tokio::test]
async fn late_processing_keeps_a_lecture_processing() {
    let t = TestSim::start(unlimited(48)).await;
    let mut faults = t.sim.faults();
    faults.panopto.late_processing_probability = 1.0;
    faults.panopto.late_processing_minutes = 300.0;
    t.sim.set_faults(faults).expect("faults");
    t.advance(2.0 * 3_600.0).await;
    let gt = t.sim.ground_truth();
    let lecture = gt
        .sessions
        .iter()
        .min_by_key(|s| (&s.end_time, &s.id))
        .expect("lecture")
        .clone();
    let end = chrono::DateTime::parse_from_rfc3339(&lecture.end_time)
        .expect("end")
        .timestamp_millis();
    let now = t.sim.clock().now_ms();
    t.advance((end - now) as f64 / 1000.0 + 3_600.0).await;
    let state = |gt: &sim::GroundTruth| {
        gt.sessions
            .iter()
            .find(|s| s.id == lecture.id)
            .map(|s| s.state.clone())
    };
    assert_eq!(
        state(&t.sim.ground_truth()).as_deref(),
        Some("Processing"),
        "an hour after class, still processing"
    );
    t.advance(6.0 * 3_600.0).await;
    assert_eq!(state(&t.sim.ground_truth()).as_deref(), Some("Complete"));
    t.stop().await;
}

/// With the limits on the simulated clock, a client pacing itself to 100 requests a simulated
/// minute is never refused (however fast the simulated clock runs), and one that does not
/// pace gets 429 with `Retry-After` in simulated seconds, then is taken once that has passed.
#[tokio::test]
async fn limits_on_simulated_time_refuse_only_clients_that_do_not_pace() {
    let mut cfg = config(31);
    cfg.panopto_limits.clock = sim::config::ThrottleClock::Simulated;
    let t = TestSim::start(cfg).await;
    let get = || async {
        t.http
            .get(t.url("/Panopto/api/v1/folders/search?searchQuery=fall"))
            .bearer_auth(PANOPTO_TOKEN)
            .send()
            .await
            .expect("req")
    };
    // Paced: one request every 0.65 simulated seconds, 150 of them (past a simulated minute).
    for n in 0..150 {
        let r = get().await;
        assert_eq!(r.status(), 200, "paced request {n} refused");
        t.advance(0.65).await;
    }
    // Not paced: the clock stands still, so the sixth within a simulated second is refused.
    t.advance(60.0).await;
    for _ in 0..5 {
        assert_eq!(get().await.status(), 200);
    }
    let refused = get().await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Real time passing changes nothing on the simulated clock; simulated time does.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get().await.status(), 429, "wall time does not count");
    t.advance(1.0).await;
    assert_eq!(get().await.status(), 200);
}

/// The REST answers validate against Panopto's own OpenAPI document
/// (`tests/python/panopto_openapi.py`; its unreliable nullability is reported, not failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_validate_against_panoptos_openapi_document() {
    let t = TestSim::start(unlimited(48)).await;
    t.advance(2.0 * 3600.0).await;
    let gt = t.sim.ground_truth();
    let session = &gt.sessions[0];
    let folder = &session.folder_id;
    let room = &gt.recorders[0].room_id;
    let spec = data_path("panopto/openapi/panoptoApi.yaml");
    let Some(out) = python_check(
        "jsonschema",
        "panopto_openapi.py",
        &[
            &spec,
            t.base.as_str(),
            PANOPTO_TOKEN,
            folder,
            &session.id,
            room,
        ],
    ) else {
        return;
    };
    assert_eq!(out.lines().last(), Some("ok"), "{out}");
    eprintln!("{out}");
    t.stop().await;
}
