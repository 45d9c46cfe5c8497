//! Behaviour of the Live Events decoder against the published Canvas data in
//! `../shared/data/canvas/live_events/` (read in place, never copied), payloads built from the
//! published schemas, and hostile input.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use canvas::live_events::{self, DecodeError, DecodedEvent, Format, UNKNOWN_TYPE, ids};
use canvas::{decode_bytes, decode_value};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/canvas/live_events")
}

/// `(file stem, bytes)` of every `*.json` in `dir`, sorted, skipping `_`-prefixed files.
fn json_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            (!stem.starts_with('_')).then(|| (stem, fs::read(&p).expect("read example")))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    files
}

fn decode_one(bytes: &[u8]) -> DecodedEvent {
    let mut events = decode_bytes(bytes).expect("decodes");
    assert_eq!(events.len(), 1);
    events.remove(0)
}

/// Expected (type, subject, time) of each published Canvas-format example, written from the
/// examples by hand — independent of the decoder's catalogue table.
#[rustfmt::skip]
fn canvas_expectations() -> BTreeMap<&'static str, (&'static str, &'static str, &'static str)> {
    BTreeMap::from([
        ("account_created", ("edu.canvas.account.created", "account/3", "2024-11-01T18:42:07.091Z")),
        ("asset_accessed", ("edu.canvas.asset.accessed", "group/144", "2019-11-01T00:09:07.150Z")),
        ("assignment_created", ("edu.canvas.assignment.created", "assignment/371", "2019-11-01T19:11:11.323Z")),
        ("assignment_group_created", ("edu.canvas.assignment_group.created", "assignment_group/642", "2019-11-01T19:11:42.910Z")),
        ("assignment_group_updated", ("edu.canvas.assignment_group.updated", "assignment_group/642", "2019-11-01T00:09:05.961Z")),
        ("assignment_override_created", ("edu.canvas.assignment_override.created", "assignment_override/1", "2019-11-01T19:11:14.005Z")),
        ("assignment_updated", ("edu.canvas.assignment.updated", "assignment/2030605", "2019-11-01T19:11:14.005Z")),
        ("content_migration_completed", ("edu.canvas.content_migration.completed", "content_migration/72", "2019-11-01T19:11:02.024Z")),
        ("course_completed", ("edu.canvas.course_progress.completed", "course/565", "2019-11-01T19:11:26.615Z")),
        ("course_created", ("edu.canvas.course.created", "course/56", "2019-11-05T13:38:00.218Z")),
        ("course_grade_change", ("edu.canvas.course_grade.changed", "course/2", "2019-12-11T16:26:34.552Z")),
        ("course_progress", ("edu.canvas.course_progress.updated", "course/1234567", "2019-11-01T19:11:13.590Z")),
        ("course_section_created", ("edu.canvas.course_section.created", "section/1234567", "2019-11-05T20:42:54.587Z")),
        ("enrollment_created", ("edu.canvas.enrollment.created", "enrollment/46825", "2018-10-09T21:07:33.000Z")),
        ("enrollment_state_created", ("edu.canvas.enrollment_state.created", "enrollment/143", "2019-11-01T19:11:09.910Z")),
        ("enrollment_state_updated", ("edu.canvas.enrollment_state.updated", "enrollment/1533", "2019-11-01T19:11:00.802Z")),
        ("final_grade_custom_status", ("edu.canvas.final_grade_custom_status.changed", "enrollment/67890", "2019-12-11T16:26:34.552Z")),
        ("grade_change", ("edu.canvas.grade.changed", "submission/11086", "2019-11-01T19:11:05.222Z")),
        ("logged_in", ("edu.canvas.session.logged_in", "user/1", "2019-11-01T19:11:01.335Z")),
        ("logged_out", ("edu.canvas.session.logged_out", "user/1", "2019-11-01T19:11:04.195Z")),
        ("lti_resource_link_created", ("edu.canvas.lti_resource_link.created", "lti_resource_link/1230", "2019-11-01T19:11:01.676Z")),
        ("module_created", ("edu.canvas.module.created", "module/1234567", "2019-11-01T19:11:05.880Z")),
        ("module_item_created", ("edu.canvas.module_item.created", "module_item/19587", "2019-11-01T19:11:07.287Z")),
        ("module_updated", ("edu.canvas.module.updated", "module/14", "2019-11-01T19:11:03.000Z")),
        ("quiz_submitted", ("edu.canvas.quiz.submitted", "quiz_submission/13995723", "2019-11-01T19:11:33.388Z")),
        ("sis_batch_created", ("edu.canvas.sis_batch.created", "sis_batch/31048324", "2020-01-14T14:14:11.498Z")),
        ("sis_batch_updated", ("edu.canvas.sis_batch.updated", "sis_batch/1440004", "2020-01-15T16:20:25.548Z")),
        ("submission_comment_created", ("edu.canvas.submission_comment.created", "submission_comment/19811981", "2019-11-01T19:11:13.216Z")),
        ("submission_created", ("edu.canvas.submission.created", "submission/12345567", "2019-11-01T19:11:21.419Z")),
        ("submission_custom_grade_status", ("edu.canvas.submission_custom_grade_status.changed", "submission/100", "2019-12-11T16:26:34.552Z")),
        ("user_account_association_created", ("edu.canvas.user_account_association.created", "user/712", "2019-11-01T19:11:11.717Z")),
        ("user_created", ("edu.canvas.user.created", "user/25999", "2019-11-01T19:11:11.964Z")),
        ("wiki_page_created", ("edu.canvas.wiki_page.created", "wiki_page/9", "2019-11-01T19:11:05.861Z")),
    ])
}

fn assert_cloud_basics(event: &DecodedEvent) {
    let cloud = &event.cloud;
    assert_eq!(cloud.specversion, "1.0");
    assert_eq!(cloud.datacontenttype, "application/json");
    let id = uuid::Uuid::parse_str(&cloud.id).expect("id is a UUID");
    assert_eq!(id.get_version_num(), 5);
    assert_eq!(cloud.canvas_event_name(), Some(event.event_name.as_str()));
    assert_eq!(
        cloud.subject,
        event.entity.as_ref().map(ToString::to_string)
    );
    // The structured-mode JSON has the attributes flat, with "type" spelled so.
    let json = serde_json::to_value(cloud).expect("serialize");
    assert_eq!(json["type"], cloud.r#type.as_str());
    assert_eq!(json["canvaseventname"], event.event_name.as_str());
}

#[test]
fn every_canvas_example_decodes_with_type_subject_time_and_stable_id() {
    let expectations = canvas_expectations();
    let files = json_files(&data_dir());
    assert_eq!(
        files.len(),
        expectations.len(),
        "an example without expectations"
    );
    for (stem, bytes) in files {
        let (ty, subject, time) = expectations
            .get(stem.as_str())
            .unwrap_or_else(|| panic!("no expectation for {stem}"));
        let event = decode_one(&bytes);
        assert_eq!(event.format, Format::Canvas, "{stem}");
        assert_eq!(event.event_name, stem, "{stem}");
        assert_eq!(event.cloud.r#type, *ty, "{stem}");
        assert_eq!(event.cloud.subject.as_deref(), Some(*subject), "{stem}");
        assert_eq!(event.cloud.time.as_deref(), Some(*time), "{stem}");
        assert!(event.dedup_key.starts_with("canvas:"), "{stem}");
        assert_cloud_basics(&event);
        let original: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            event.cloud.data["raw"], original["body"],
            "{stem}: raw body kept"
        );
        assert_eq!(
            event.cloud.extensions.get("canvasrootaccount"),
            original["metadata"].get("root_account_uuid"),
            "{stem}"
        );
        let again = decode_one(&bytes);
        assert_eq!(again.cloud.id, event.cloud.id, "{stem}: stable id");
        assert_eq!(again, event, "{stem}: deterministic");
    }
}

#[rustfmt::skip]
#[test]
fn every_caliper_example_decodes_with_type_subject_time_and_stable_id() {
    let expectations = BTreeMap::from([
        ("assignment_created", ("edu.canvas.assignment.created", "assignment/371", "2019-11-01T19:11:11.323Z")),
        ("course_created", ("edu.canvas.course.created", "course/56", "2019-11-05T13:38:00.218Z")),
        ("enrollment_created", ("edu.canvas.enrollment.created", "enrollment/46825", "2018-10-09T21:07:33.000Z")),
        ("submission_created", ("edu.canvas.submission.created", "submission/12345567", "2019-11-01T19:11:21.419Z")),
    ]);
    let files = json_files(&data_dir().join("caliper"));
    assert_eq!(files.len(), expectations.len());
    for (stem, bytes) in files {
        let (ty, subject, time) = expectations[stem.as_str()];
        let original: Value = serde_json::from_slice(&bytes).expect("json");
        let events = decode_bytes(&bytes).expect("decodes");
        assert_eq!(events.len(), original["data"].as_array().map_or(0, Vec::len));
        let event = &events[0];
        assert_eq!(event.format, Format::Caliper, "{stem}");
        assert_eq!(event.event_name, stem, "{stem}: mapped to the Canvas name");
        assert_eq!(event.cloud.r#type, ty, "{stem}");
        assert_eq!(event.cloud.subject.as_deref(), Some(subject), "{stem}");
        assert_eq!(event.cloud.time.as_deref(), Some(time), "{stem}");
        assert_eq!(event.cloud.source, "canvas://oxana.instructure.com", "{stem}");
        let caliper_id = original["data"][0]["id"].as_str().expect("caliper id");
        assert_eq!(event.dedup_key, format!("caliper:{caliper_id}"));
        assert_eq!(event.cloud.data["raw"], original["data"][0], "{stem}");
        assert_eq!(
            event.cloud.extensions["canvasrootaccount"],
            "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
        );
        assert_cloud_basics(event);
        assert_eq!(decode_one(&bytes).cloud.id, event.cloud.id, "{stem}: stable id");
    }
}

#[test]
fn golden_enrollment_created() {
    let bytes = fs::read(data_dir().join("enrollment_created.json")).expect("example");
    let event = decode_one(&bytes);
    assert_eq!(
        event.entity,
        Some(live_events::EntityKey::new("enrollment", 46825))
    );
    assert_eq!(
        event.entity.as_ref().map(ToString::to_string).as_deref(),
        Some("enrollment/46825")
    );
    assert_eq!(event.cloud.subject.as_deref(), Some("enrollment/46825"));
    assert_eq!(event.cloud.r#type, "edu.canvas.enrollment.created");
    assert_eq!(event.cloud.source, "canvas://oxana.instructure.com");
    assert_eq!(
        event.cloud.time.as_deref(),
        Some("2018-10-09T21:07:33.000Z")
    );
    let data = &event.cloud.data;
    assert_eq!(data["id"], 46825);
    assert_eq!(data["course_id"], 565);
    assert_eq!(data["section_id"], 4811);
    assert_eq!(data["user_id"], 20064);
    assert_eq!(data["associated_user_id"], 562);
    assert_eq!(data["type"], "StudentEnrollment");
    assert_eq!(data["workflow_state"], "invited");
    assert_eq!(data["limit_privileges_to_course_section"], false);
    assert_eq!(data["created_at"], "2018-10-09T21:07:33.000Z");
    assert!(event.warnings.is_empty(), "{:?}", event.warnings);

    // The Caliper form of the same event normalizes to the same entity and fields.
    let caliper = fs::read(data_dir().join("caliper/enrollment_created.json")).expect("example");
    let caliper = decode_one(&caliper);
    assert_eq!(caliper.entity, event.entity);
    assert_eq!(caliper.cloud.r#type, event.cloud.r#type);
    assert_eq!(caliper.event_time, event.event_time);
    for field in [
        "id",
        "course_id",
        "section_id",
        "user_id",
        "type",
        "workflow_state",
    ] {
        assert_eq!(caliper.cloud.data[field], data[field], "{field}");
    }
}

#[test]
fn golden_quirky_examples() {
    let read = |name: &str| decode_one(&fs::read(data_dir().join(name)).expect("example"));

    // Malformed stuck_sis_fields array is repaired, with a warning.
    let section = read("course_section_created.json");
    assert_eq!(section.cloud.data["id"], 1_234_567);
    assert_eq!(section.cloud.data["course_id"], 565);
    assert_eq!(
        section.cloud.data["stuck_sis_fields"],
        json!(["course_id", "name"])
    );
    assert!(
        section
            .warnings
            .iter()
            .any(|w| w.contains("stuck_sis_fields"))
    );

    // Ruby Time#to_s timestamp in the body is parsed leniently, with a warning.
    let state = read("enrollment_state_created.json");
    assert_eq!(
        state.cloud.data["state_started_at"],
        "2019-10-05T13:38:00.000Z"
    );
    assert_eq!(state.cloud.data["state"], "pending_invited");
    assert!(
        state
            .warnings
            .iter()
            .any(|w| w.contains("state_started_at not ISO-8601")),
        "{:?}",
        state.warnings
    );

    // JSON-number ids.
    let account = read("account_created.json");
    assert_eq!(account.cloud.data["id"], 3);
    assert_eq!(account.cloud.data["parent_account_id"], 2);
    // A system (job) event has no hostname: the source names the root account.
    assert_eq!(
        account.cloud.source,
        "canvas://root-account/VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
    );

    let grade = read("grade_change.json");
    assert_eq!(grade.cloud.data["submission_id"], 11086);
    assert_eq!(grade.cloud.data["user_id"], 48);
    assert_eq!(grade.cloud.data["grader_id"], 987);
    assert_eq!(grade.cloud.data["score"], 5.0);

    let module = read("module_item_created.json");
    assert_eq!(module.cloud.data["course_id"], 565);
    assert_eq!(module.cloud.data["module_id"], 14);

    // A non-core event gets {"raw": body} only.
    let wiki = read("wiki_page_created.json");
    assert_eq!(wiki.cloud.data.as_object().map(Map::len), Some(1));
}

#[test]
fn non_iso_and_missing_event_times_are_warnings_not_errors() {
    let mut event = json!({
        "metadata": {"event_name": "course_updated", "event_time": "2019-11-05 07:38:00 -0800"},
        "body": {"course_id": "565"}
    });
    let decoded = decode_value(&event).expect("decodes").remove(0);
    assert_eq!(
        decoded.cloud.time.as_deref(),
        Some("2019-11-05T15:38:00.000Z")
    );
    assert!(
        decoded
            .warnings
            .iter()
            .any(|w| w.contains("event_time not ISO-8601"))
    );

    event["metadata"]["event_time"] = json!("last tuesday");
    let decoded = decode_value(&event).expect("decodes").remove(0);
    assert_eq!(decoded.event_time, None);
    assert_eq!(decoded.cloud.time, None);
    assert!(decoded.warnings.iter().any(|w| w.contains("unparseable")));
    assert_eq!(decoded.cloud.subject.as_deref(), Some("course/565"));

    event["metadata"]
        .as_object_mut()
        .expect("object")
        .remove("event_time");
    let decoded = decode_value(&event).expect("decodes").remove(0);
    assert_eq!(decoded.event_time, None);
    assert!(decoded.warnings.iter().any(|w| w.contains("missing")));
}

#[test]
fn unknown_event_names_pass_through_as_unknown() {
    let event = json!({
        "metadata": {"event_name": "widget_frobbed", "event_time": "2024-01-01T00:00:00.000Z",
                     "hostname": "canvas.example.edu", "root_account_uuid": "ROOT"},
        "body": {"widget_id": "21070000000000007", "shiny": true}
    });
    let decoded = decode_value(&event)
        .expect("unknown names are not errors")
        .remove(0);
    assert_eq!(decoded.cloud.r#type, UNKNOWN_TYPE);
    assert_eq!(decoded.cloud.r#type, "edu.canvas.unknown");
    assert_eq!(
        decoded.cloud.extensions["canvaseventname"],
        "widget_frobbed"
    );
    assert_eq!(decoded.cloud.extensions["canvasrootaccount"], "ROOT");
    assert_eq!(decoded.cloud.data, event["body"]);
    assert_eq!(decoded.cloud.source, "canvas://canvas.example.edu");
    assert_eq!(decoded.entity, None);
    assert!(
        decoded
            .warnings
            .iter()
            .any(|w| w.contains("not in the Live Events catalogue"))
    );

    // Unmappable Caliper events likewise.
    let caliper = json!({
        "sensor": "https://canvas.example.edu/", "dataVersion": "v1p1",
        "data": [{"id": "urn:uuid:1", "type": "ToolUseEvent", "action": "Used",
                  "actor": {"id": "urn:instructure:canvas:user:5", "type": "Person"},
                  "object": {"id": "urn:instructure:canvas:tool:9"},
                  "eventTime": "2024-01-01T00:00:00.000Z"}]
    });
    let decoded = decode_value(&caliper).expect("decodes").remove(0);
    assert_eq!(decoded.event_name, "caliper:ToolUseEvent/Used");
    assert_eq!(decoded.cloud.r#type, "edu.canvas.unknown");
    assert_eq!(decoded.cloud.data, caliper["data"][0]);
    assert_eq!(decoded.cloud.source, "canvas://canvas.example.edu");
}

#[test]
fn when_the_event_name_and_the_body_disagree_the_body_decides() {
    // A section's body (it holds course_section_id as well as its course's id) sent as
    // `course_updated`: read as the section it describes, not as course 565.
    let slip = json!({
        "metadata": {"event_name": "course_updated", "event_time": "2026-09-01T10:00:00Z",
                     "hostname": "canvas.test.edu", "request_id": "r-slip"},
        "body": {"course_section_id": "21070000000004811", "course_id": "565",
                 "name": "Lab A", "workflow_state": "active"}
    });
    let event = decode_value(&slip).expect("decodes").remove(0);
    assert_eq!(event.event_name, "course_section_updated");
    assert_eq!(event.sent_as.as_deref(), Some("course_updated"));
    assert_eq!(event.cloud.r#type, "edu.canvas.course_section.updated");
    assert_eq!(event.cloud.subject.as_deref(), Some("section/4811"));
    assert!(
        event
            .warnings
            .iter()
            .any(|w| w.contains("event_name course_updated disagrees with its body")),
        "{:?}",
        event.warnings
    );
    // The dedup key is the one of what Canvas sent: a redelivery of the slip is a duplicate.
    let again = decode_value(&slip).expect("decodes").remove(0);
    assert_eq!(again.dedup_key, event.dedup_key);

    // A body that agrees, or that names no entity, leaves the name alone.
    let agrees = decode_value(&json!({
        "metadata": {"event_name": "course_section_updated"},
        "body": {"course_section_id": "4811", "course_id": "565"}
    }))
    .expect("decodes")
    .remove(0);
    assert_eq!(agrees.sent_as, None);
    let nameless = decode_value(&json!({
        "metadata": {"event_name": "course_updated"},
        "body": {"name": "x"}
    }))
    .expect("decodes")
    .remove(0);
    assert_eq!(
        (nameless.event_name.as_str(), nameless.sent_as),
        ("course_updated", None)
    );
}

#[test]
fn dedup_key_is_content_derived() {
    let bytes = fs::read(data_dir().join("enrollment_created.json")).expect("example");
    let original = decode_one(&bytes);

    // A redelivery re-serialized differently (key order, whitespace) is the same event.
    let value: Value = serde_json::from_slice(&bytes).expect("json");
    let mut reordered = Map::new();
    reordered.insert("body".into(), value["body"].clone());
    reordered.insert("metadata".into(), value["metadata"].clone());
    let text = serde_json::to_string_pretty(&Value::Object(reordered)).expect("serialize");
    let redelivered = decode_one(text.as_bytes());
    assert_eq!(redelivered.dedup_key, original.dedup_key);
    assert_eq!(redelivered.cloud.id, original.cloud.id);

    // Metadata that is not part of the key (user agent, session) does not change it …
    let mut other_meta = value.clone();
    other_meta["metadata"]["user_agent"] = json!("curl/8");
    assert_eq!(
        decode_value(&other_meta).expect("decodes")[0].dedup_key,
        original.dedup_key
    );

    // … while a different request, time or body does.
    for (path, new) in [
        ("request_id", json!("another-request")),
        ("event_time", json!("2018-10-09T21:07:34Z")),
    ] {
        let mut changed = value.clone();
        changed["metadata"][path] = new;
        assert_ne!(
            decode_value(&changed).expect("decodes")[0].dedup_key,
            original.dedup_key
        );
    }
    let mut changed = value.clone();
    changed["body"]["workflow_state"] = json!("active");
    let changed = decode_value(&changed).expect("decodes").remove(0);
    assert_ne!(changed.dedup_key, original.dedup_key);
    assert_ne!(changed.cloud.id, original.cloud.id);

    // Several events of one request share request_id: the body separates them.
    let state = fs::read(data_dir().join("enrollment_state_created.json")).expect("example");
    let state = decode_one(&state);
    assert_ne!(state.dedup_key, original.dedup_key);
}

#[test]
fn format_errors_are_clear_one_line_errors() {
    let cases: Vec<(&[u8], DecodeError)> = vec![
        (b"[]", DecodeError::NotAnObject),
        (b"\"metadata\"", DecodeError::NotAnObject),
        (br#"{"foo": 1}"#, DecodeError::UnknownFormat),
        (
            br#"{"metadata": {}, "body": {}}"#,
            DecodeError::MissingField("metadata.event_name"),
        ),
        (
            br#"{"metadata": {"event_name": ""}, "body": {}}"#,
            DecodeError::MissingField("metadata.event_name"),
        ),
        (
            br#"{"metadata": {"event_name": 5}, "body": {}}"#,
            DecodeError::WrongType {
                field: "metadata.event_name".into(),
                expected: "a string",
            },
        ),
        (
            br#"{"sensor": "x", "data": [1]}"#,
            DecodeError::WrongType {
                field: "data[0]".into(),
                expected: "a Caliper event object",
            },
        ),
    ];
    for (input, want) in cases {
        let got = decode_bytes(input).expect_err("must fail");
        assert_eq!(got, want, "{}", String::from_utf8_lossy(input));
        let message = got.to_string();
        assert!(!message.is_empty() && !message.contains('\n'), "{message}");
    }
    for input in [
        &b""[..],
        b"{",
        b"\xff\xfe",
        b"{\"metadata\": }",
        b"{} trailing",
    ] {
        let got = decode_bytes(input).expect_err("must fail");
        assert!(matches!(got, DecodeError::NotJson(_)), "{got:?}");
        assert!(!got.to_string().contains('\n'));
    }
}

#[test]
fn caliper_envelopes_give_one_event_per_element() {
    let bytes = fs::read(data_dir().join("caliper/enrollment_created.json")).expect("example");
    let mut envelope: Value = serde_json::from_slice(&bytes).expect("json");
    let first = envelope["data"][0].clone();
    let mut second = first.clone();
    second["id"] = json!("urn:uuid:00000000-0000-4000-8000-000000000002");
    second["action"] = json!("Modified");
    envelope["data"] = json!([first, second]);
    let events = decode_value(&envelope).expect("decodes");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_name, "enrollment_created");
    assert_eq!(events[1].event_name, "enrollment_updated");
    assert_ne!(events[0].cloud.id, events[1].cloud.id);

    envelope["data"] = json!([]);
    assert_eq!(decode_value(&envelope), Ok(vec![]));

    // A bare Caliper event (no envelope) decodes too.
    let events = decode_value(&first).expect("bare event");
    assert_eq!(events[0].cloud.subject.as_deref(), Some("enrollment/46825"));
}

#[test]
fn signed_delivery_claims_unwrap_to_a_decodable_envelope() {
    let bytes = fs::read(data_dir().join("logged_in.json")).expect("example");
    let envelope: Value = serde_json::from_slice(&bytes).expect("json");
    let claims =
        json!({"iss": "canvas", "iat": 1_572_635_461, "exp": 1_572_639_061, "data": envelope});
    let unwrapped = live_events::unwrap_envelope(claims).expect("one envelope");
    assert_eq!(unwrapped, envelope);
    let event = decode_value(&unwrapped).expect("decodes").remove(0);
    assert_eq!(event.cloud.r#type, "edu.canvas.session.logged_in");
}

// ---------------------------------------------------------------------------------------------
// Payloads built from the published schemas, including events with no example file.

/// Subject expected for each schema-described event: `(kind, body field)`; `metadata.user_id`
/// for the auth events. Written from the schemas, independently of the decoder's table.
#[rustfmt::skip]
fn schema_subject(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "account_created" => ("account", "account_id"),
        "assignment_created" | "assignment_updated" => ("assignment", "assignment_id"),
        "assignment_group_created" | "assignment_group_updated" => ("assignment_group", "assignment_group_id"),
        "assignment_override_created" | "assignment_override_updated" => ("assignment_override", "assignment_override_id"),
        "content_migration_completed" => ("content_migration", "content_migration_id"),
        "course_completed" | "course_progress" => ("course", "course.id"),
        "course_created" | "course_updated" | "course_grade_change" => ("course", "course_id"),
        "course_section_created" | "course_section_updated" => ("section", "course_section_id"),
        "enrollment_created" | "enrollment_updated" | "enrollment_state_created"
        | "enrollment_state_updated" | "final_grade_custom_status" | "grade_override" => ("enrollment", "enrollment_id"),
        "grade_change" | "submission_created" | "submission_updated"
        | "submission_custom_grade_status" => ("submission", "submission_id"),
        "logged_in" | "logged_out" => ("user", "metadata.user_id"),
        "lti_resource_link_created" => ("lti_resource_link", "resource_link_id"),
        "module_created" | "module_updated" => ("module", "module_id"),
        "module_item_created" | "module_item_updated" => ("module_item", "module_item_id"),
        "quiz_submitted" => ("quiz_submission", "submission_id"),
        "sis_batch_created" | "sis_batch_updated" => ("sis_batch", "sis_batch_id"),
        "submission_comment_created" => ("submission_comment", "submission_comment_id"),
        "user_account_association_created" | "user_created" | "user_updated" => ("user", "user_id"),
        "wiki_page_created" => ("wiki_page", "wiki_page_id"),
        _ => return None,
    })
}

/// Events whose `data` carries a typed struct besides `raw`.
const CORE_EVENTS: &[&str] = &[
    "course_created",
    "course_updated",
    "course_section_created",
    "course_section_updated",
    "enrollment_created",
    "enrollment_updated",
    "enrollment_state_created",
    "enrollment_state_updated",
    "user_created",
    "user_updated",
    "account_created",
    "account_updated",
    "module_created",
    "module_updated",
    "module_item_created",
    "module_item_updated",
    "assignment_created",
    "assignment_updated",
    "submission_created",
    "submission_updated",
    "grade_change",
    "course_grade_change",
];

const SCHEMA_TIME: &str = "2024-03-04T05:06:07.089Z";
const ACTING_USER: &str = "21070000000000420";

/// A plausible value for a schema field: global ids as strings (each field its own local id),
/// ISO times, booleans, numbers and lists where the field name says so.
fn plausible(field: &str, next_id: &mut i64) -> Value {
    const FLAGS: &[&str] = &[
        "accepting_enrollments",
        "default_section",
        "restrict_enrollments_to_section_dates",
        "limit_privileges_to_course_section",
        "access_is_current",
        "restricted_access",
        "state_is_current",
        "late",
        "missing",
        "muted",
        "grading_complete",
        "is_admin",
        "created_on_blueprint_sync",
        "import_quizzes_next",
        "all_day",
        "aligned_to_outcomes",
        "mastery",
        "original_mastery",
    ];
    const NUMBERS: &[&str] = &[
        "attempt",
        "position",
        "group_weight",
        "requirement_count",
        "requirement_completed_count",
        "calculation_int",
    ];
    let is_time = field.ends_with("_at") || field.ends_with("_until") || field.ends_with("_date");
    if FLAGS.contains(&field) {
        json!(true)
    } else if NUMBERS.contains(&field) || field.contains("score") || field.contains("points") {
        json!(3)
    } else if is_time {
        json!("2024-02-01T10:00:00Z")
    } else if field.ends_with("_ids") {
        *next_id += 1;
        json!([format!("2107{:013}", *next_id)])
    } else if field == "id" || field.ends_with("_id") {
        *next_id += 1;
        json!(format!("2107{:013}", *next_id))
    } else if field == "stuck_sis_fields" {
        json!(["name"])
    } else if field == "asset_type" {
        json!("wiki_page")
    } else if field == "workflow_state" {
        json!("active")
    } else if field == "context_type" {
        json!("Course")
    } else {
        json!(format!("{field} value"))
    }
}

fn body_from_schema(schema: &Map<String, Value>, next_id: &mut i64) -> Value {
    let body = schema
        .iter()
        .map(|(field, description)| {
            let value = match description {
                Value::Object(inner) => body_from_schema(inner, next_id),
                _ => plausible(field, next_id),
            };
            (field.clone(), value)
        })
        .collect();
    Value::Object(body)
}

#[test]
fn every_schema_event_decodes_from_a_payload_built_from_its_schema() {
    let files = json_files(&data_dir().join("schemas"));
    assert!(files.len() >= 40, "{} schemas", files.len());
    let mut without_example = Vec::new();
    for (stem, bytes) in files {
        let schema: Value = serde_json::from_slice(&bytes).expect("schema json");
        let name = schema["name"].as_str().expect("schema name");
        assert_eq!(name, stem);
        if !data_dir().join(format!("{stem}.json")).exists() {
            without_example.push(stem.clone());
        }
        let mut next_id = 100;
        let body = body_from_schema(
            schema["schema"].as_object().expect("schema map"),
            &mut next_id,
        );
        let payload = json!({
            "metadata": {
                "event_name": name,
                "event_time": SCHEMA_TIME,
                "producer": "canvas",
                "root_account_id": "21070000000000001",
                "root_account_uuid": "ROOTUUID",
                "hostname": "canvas.example.edu",
                "request_id": format!("request-{name}"),
                "user_id": ACTING_USER,
            },
            "body": body,
        });
        let event = decode_value(&payload)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .remove(0);
        assert_eq!(event.event_name, name);
        assert_ne!(event.cloud.r#type, UNKNOWN_TYPE, "{name} is catalogued");
        assert_eq!(event.cloud.r#type, live_events::cloud_event_type(name));
        assert_eq!(event.cloud.time.as_deref(), Some(SCHEMA_TIME), "{name}");
        assert_eq!(event.cloud.source, "canvas://canvas.example.edu");
        assert!(event.warnings.is_empty(), "{name}: {:?}", event.warnings);
        assert_cloud_basics(&event);

        let (kind, field) = schema_subject(name).unwrap_or_else(|| panic!("{name}: add a subject"));
        let raw_id = match field {
            "metadata.user_id" => json!(ACTING_USER),
            "course.id" => body["course"]["id"].clone(),
            _ => body[field].clone(),
        };
        let local = ids::parse_local_id(&raw_id).unwrap_or_else(|| panic!("{name}: id in {field}"));
        assert!(local < ids::SHARD_FACTOR && local > 100, "{name}: local id");
        assert_eq!(
            event.cloud.subject,
            Some(format!("{kind}/{local}")),
            "{name}"
        );

        let data = event.cloud.data.as_object().expect("data object");
        assert_eq!(data["raw"], body, "{name}: raw body");
        if CORE_EVENTS.contains(&name) {
            assert!(data.len() > 1, "{name}: typed data");
            // Every id in the typed data is local.
            for (key, value) in data {
                if key.ends_with("id")
                    && let Some(id) = value.as_i64()
                {
                    assert!(id < ids::SHARD_FACTOR, "{name}.{key} = {id} is global");
                }
            }
        } else {
            assert_eq!(data.len(), 1, "{name}: raw only");
        }
    }
    // The schemas describe events the examples do not cover; they were exercised above.
    for expected in [
        "course_updated",
        "enrollment_updated",
        "user_updated",
        "module_item_updated",
        "submission_updated",
        "grade_override",
        "course_section_updated",
    ] {
        assert!(without_example.iter().any(|s| s == expected), "{expected}");
    }
}

#[test]
fn the_catalogue_covers_all_82_documented_events() {
    let catalogue = live_events::catalogue();
    assert_eq!(catalogue.len(), 82);
    for spec in catalogue {
        let payload =
            json!({"metadata": {"event_name": spec.name, "event_time": SCHEMA_TIME}, "body": {}});
        let event = decode_value(&payload).expect("decodes").remove(0);
        assert_eq!(event.cloud.r#type, spec.cloud_type);
        assert!(spec.cloud_type.starts_with("edu.canvas."));
        assert_ne!(spec.cloud_type, UNKNOWN_TYPE);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input.

fn example_texts() -> &'static [(String, Vec<u8>)] {
    static EXAMPLES: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let mut all = json_files(&data_dir());
        all.extend(json_files(&data_dir().join("caliper")));
        all
    })
}

#[test]
fn every_truncated_prefix_of_every_example_is_an_error() {
    for (stem, bytes) in example_texts() {
        let text = bytes.trim_ascii_end();
        for len in 0..text.len() {
            assert!(
                decode_bytes(&text[..len]).is_err(),
                "{stem}: prefix of {len} bytes decoded"
            );
        }
        assert!(decode_bytes(text).is_ok(), "{stem}");
    }
}

#[test]
fn deep_nesting_is_too_deep_not_a_stack_overflow() {
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(decode_bytes(arrays.as_bytes()), Err(DecodeError::TooDeep));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    assert_eq!(decode_bytes(objects.as_bytes()), Err(DecodeError::TooDeep));
    let unclosed = "[{\"a\":".repeat(depth);
    assert_eq!(decode_bytes(unclosed.as_bytes()), Err(DecodeError::TooDeep));
    let inside = format!(
        r#"{{"metadata": {{"event_name": "course_created", "event_time": {}1{}}}, "body": {{}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(decode_bytes(inside.as_bytes()), Err(DecodeError::TooDeep));

    // A deep value built in memory is refused before anything recursive touches it.
    let mut deep = json!("leaf");
    for _ in 0..1_000 {
        deep = json!({"body": [deep]});
    }
    let payload = json!({"metadata": {"event_name": "course_created"}, "body": {"x": deep}});
    assert_eq!(decode_value(&payload), Err(DecodeError::TooDeep));
    // Within the limit is fine.
    let mut shallow = json!(1);
    for _ in 0..100 {
        shallow = json!([shallow]);
    }
    let payload = json!({"metadata": {"event_name": "course_created"}, "body": {"x": shallow}});
    assert!(decode_value(&payload).is_ok());
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
        "[0-9]{1,22}".prop_map(Value::String),
        "urn:instructure:canvas:[a-zA-Z]{1,8}:[0-9]{1,18}(:section:[0-9]{1,5})?".prop_map(Value::String),
        "20[0-9]{2}-[0-1][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?( ?([+-][0-9]{2}:?[0-9]{2}|Z|UTC))?"
            .prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_@.]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the decoder reads, so random bodies hit the typed paths.
const KNOWN_FIELDS: &[&str] = &[
    "course_id",
    "course_section_id",
    "enrollment_id",
    "user_id",
    "account_id",
    "module_id",
    "module_item_id",
    "assignment_id",
    "submission_id",
    "asset_type",
    "asset_id",
    "course",
    "workflow_state",
    "type",
    "stuck_sis_fields",
    "submission_types",
    "created_at",
    "state_started_at",
    "score",
    "points_possible",
    "late",
    "position",
    "context_type",
    "context_id",
    "id",
    "extensions",
    "object",
    "actor",
    "eventTime",
    "group",
    "generated",
];

fn arb_known_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(prop::sample::select(KNOWN_FIELDS), arb_json(), 0..10)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn arb_event_name() -> impl Strategy<Value = Value> {
    let names: Vec<&'static str> = live_events::catalogue().iter().map(|s| s.name).collect();
    prop_oneof![
        prop::sample::select(names).prop_map(Value::from),
        "[a-z_.]{0,24}".prop_map(Value::String),
        arb_leaf(),
    ]
}

fn arb_canvas_payload() -> impl Strategy<Value = Value> {
    (
        arb_event_name(),
        arb_json(),
        arb_known_object(),
        arb_known_object(),
        any::<bool>(),
    )
        .prop_map(|(name, time, mut metadata, body, body_is_object)| {
            if let Value::Object(meta) = &mut metadata {
                meta.insert("event_name".into(), name);
                meta.insert("event_time".into(), time);
            }
            let body = if body_is_object {
                body
            } else {
                body["id"].clone()
            };
            json!({"metadata": metadata, "body": body})
        })
}

fn arb_caliper_payload() -> impl Strategy<Value = Value> {
    let types = prop::sample::select(vec![
        "Event",
        "SessionEvent",
        "GradeEvent",
        "AssignableEvent",
        "NavigationEvent",
        "Odd",
    ]);
    let actions = prop::sample::select(vec![
        "Created",
        "Modified",
        "Deleted",
        "LoggedIn",
        "Graded",
        "Submitted",
        "NavigatedTo",
        "X",
    ]);
    (
        types,
        actions,
        arb_known_object(),
        arb_known_object(),
        arb_json(),
    )
        .prop_map(|(ty, action, object, ext, extra)| {
            let mut object = object;
            if let Value::Object(o) = &mut object {
                o.insert("extensions".into(), json!({"com.instructure.canvas": ext}));
            }
            json!({"sensor": extra, "dataVersion": "v1p1", "data": [
                {"id": "urn:uuid:x", "type": ty, "action": action, "object": object,
                 "actor": {"id": "urn:instructure:canvas:user:1"}, "eventTime": extra}
            ]})
        })
}

/// Properties every successful decode has.
fn check_decoded(input: &Value, events: &[DecodedEvent]) {
    for event in events {
        assert!(event.cloud.r#type.starts_with("edu.canvas."));
        assert!(uuid::Uuid::parse_str(&event.cloud.id).is_ok());
        if let Some(entity) = &event.entity {
            assert!((0..ids::SHARD_FACTOR).contains(&entity.id));
        }
        serde_json::to_string(event).expect("serializable");
    }
    let again = decode_value(input).expect("decodes again");
    assert_eq!(again, events, "deterministic");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_bytes(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        if let Ok(events) = decode_value(&value) {
            check_decoded(&value, &events);
        }
        // decode_bytes is exactly "parse, then decode_value" (floats may not survive a text
        // round trip bit-exactly, so compare against the re-parsed value).
        let text = serde_json::to_vec(&value).expect("serialize");
        let reparsed: Value = serde_json::from_slice(&text).expect("reparse");
        prop_assert_eq!(decode_bytes(&text), decode_value(&reparsed));
    }

    #[test]
    fn random_canvas_payloads_never_panic(payload in arb_canvas_payload()) {
        match decode_value(&payload) {
            Ok(events) => {
                prop_assert_eq!(events.len(), 1);
                check_decoded(&payload, &events);
            }
            Err(err) => prop_assert!(matches!(
                err,
                DecodeError::MissingField(_) | DecodeError::WrongType { .. }
            ), "{err:?}"),
        }
    }

    #[test]
    fn random_caliper_payloads_never_panic(payload in arb_caliper_payload()) {
        let events = decode_value(&payload).expect("caliper events always decode");
        prop_assert_eq!(events.len(), 1);
        check_decoded(&payload, &events);
    }

    #[test]
    fn random_deep_nesting_is_an_error(depth in 129usize..20_000, brackets in "[\\[{]{1,4}") {
        let opener: String = brackets
            .chars()
            .map(|c| if c == '{' { "{\"k\":".to_owned() } else { "[".to_owned() })
            .collect();
        let text = opener.repeat(depth);
        prop_assert!(decode_bytes(text.as_bytes()).is_err());
    }

    #[test]
    fn prefixes_and_corruptions_of_examples_never_panic(
        which in 0usize..37, cut in any::<prop::sample::Index>(), flip in any::<u8>()
    ) {
        let examples = example_texts();
        let (_, bytes) = &examples[which % examples.len()];
        let mut corrupted = bytes.clone();
        let at = cut.index(corrupted.len());
        corrupted[at] ^= flip;
        let _ = decode_bytes(&corrupted);
        let text = bytes.trim_ascii_end();
        prop_assert!(decode_bytes(&text[..at.min(text.len() - 1)]).is_err());
    }
}
