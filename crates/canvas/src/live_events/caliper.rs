//! Decoding of IMS Caliper 1.1 events as Canvas emits them, mapped onto Canvas event names.
//!
//! A Caliper subscription carries the same facts as a Canvas-format one in a different shape:
//! a `type`/`action` pair instead of an event name, URNs instead of ids, and the Canvas
//! fields under `extensions."com.instructure.canvas"`. To give consumers one vocabulary, this
//! module maps each Caliper event to the Canvas event name it stands for (rules below), builds
//! a Canvas-like body from the object and its extensions, and then reuses the Canvas subject
//! and typed-data rules. Events it cannot map stay `caliper:<Type>/<Action>` with type
//! `edu.canvas.unknown` and the raw event as data.
//!
//! Mapping: `SessionEvent/LoggedIn|LoggedOut` → `logged_in|logged_out`; `GradeEvent/Graded` →
//! `grade_change`; `AssessmentEvent/Submitted` → `quiz_submitted`; `AssignableEvent/Submitted`
//! → `submission_created`; `NavigationEvent/NavigatedTo`, `ViewEvent/Viewed` →
//! `asset_accessed`; `MessageEvent/Posted` → `discussion_entry_created`; otherwise the actions
//! `Created|Modified|Deleted` give `<kind>_created|updated|deleted` where `<kind>` is the
//! object URN's innermost kind (`section` → `course_section`; a `Document` on a course is
//! `syllabus_updated`; an account object with `is_admin` is
//! `user_account_association_created`; an enrollment object with `state` fields is
//! `enrollment_state_*`), if that name is catalogued.

use serde_json::{Map, Value};

use super::canvas_format::{entity_for, event_time, meta_text, root_account_source, with_raw};
use super::catalogue::{UNKNOWN_TYPE, lookup};
use super::entities::{self, preview};
use super::{DecodeError, DecodedEvent, Format, Parts, dedup, ids};

pub(crate) const CANVAS_EXT: &str = "com.instructure.canvas";

/// Decodes a Caliper envelope: one event per element of `data`.
pub(crate) fn decode_envelope(
    envelope: &Map<String, Value>,
) -> Result<Vec<DecodedEvent>, DecodeError> {
    let events = match envelope.get("data") {
        Some(Value::Array(events)) => events,
        Some(_) => {
            return Err(DecodeError::wrong_type(
                "data",
                "an array of Caliper events",
            ));
        }
        None => return Err(DecodeError::MissingField("data")),
    };
    let sensor_host = envelope
        .get("sensor")
        .and_then(Value::as_str)
        .and_then(url_host);
    events
        .iter()
        .enumerate()
        .map(|(i, event)| match event {
            Value::Object(event) => decode_event(event, sensor_host.as_deref()),
            _ => Err(DecodeError::wrong_type(
                format!("data[{i}]"),
                "a Caliper event object",
            )),
        })
        .collect()
}

/// Decodes one Caliper event; `sensor_host` is the envelope's sensor host, if any.
pub(crate) fn decode_event(
    event: &Map<String, Value>,
    sensor_host: Option<&str>,
) -> Result<DecodedEvent, DecodeError> {
    let mut warnings = Vec::new();
    let caliper_type = text(event, "type");
    let action = text(event, "action");
    let empty = Map::new();
    let object = event
        .get("object")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let object_ext = canvas_extension(object).unwrap_or(&empty);
    let event_ext = canvas_extension(event).unwrap_or(&empty);

    let canvas_name = canvas_name(caliper_type, action, object, object_ext);
    let event_name =
        canvas_name.map_or_else(|| format!("caliper:{caliper_type}/{action}"), str::to_owned);
    let spec = canvas_name.and_then(lookup);

    let event_time = event_time(
        event.get("eventTime").filter(|v| !v.is_null()),
        "eventTime",
        &mut warnings,
    );
    let raw = Value::Object(event.clone());
    let dedup_key = match event.get("id").and_then(Value::as_str).map(str::trim) {
        Some(id) if !id.is_empty() => dedup::caliper_dedup_key(id),
        _ => {
            warnings.push("Caliper event has no id; dedup key derived from its content".into());
            dedup::caliper_content_key(&raw)
        }
    };

    let actor = event.get("actor").and_then(Value::as_object);
    let metadata = synthetic_metadata(actor, event_ext);
    let (entity, data) = match spec {
        Some(spec) => {
            let body = synthetic_body(event, object, object_ext, spec);
            let entity = entity_for(spec, &body, &metadata, "object", &mut warnings);
            let typed = entities::normalize(spec.shape, &body, "object", &mut warnings);
            (entity, with_raw(typed, raw))
        }
        None => {
            warnings.push(format!(
                "Caliper {} has no Canvas event mapping; passed through as {UNKNOWN_TYPE}",
                preview(&Value::String(format!("{caliper_type}/{action}")))
            ));
            (None, raw)
        }
    };

    let source = meta_text(event_ext, "hostname")
        .or_else(|| sensor_host.map(str::to_owned))
        .or_else(|| {
            let ed_app = event.get("edApp")?;
            let id = ed_app
                .get("id")
                .and_then(Value::as_str)
                .or(ed_app.as_str())?;
            url_host(id)
        })
        .map_or_else(
            || root_account_source(meta_text(&metadata, "root_account_uuid"), None),
            |host| format!("canvas://{}", host.to_ascii_lowercase()),
        );

    Ok(Parts {
        format: Format::Caliper,
        event_name,
        // Caliper names its object's type, so its name and body cannot disagree.
        sent_as: None,
        spec,
        event_time,
        dedup_key,
        entity,
        source,
        root_account_uuid: meta_text(&metadata, "root_account_uuid"),
        data,
        warnings,
    }
    .assemble())
}

/// The Canvas event name a Caliper event stands for (see the module documentation).
fn canvas_name(
    caliper_type: &str,
    action: &str,
    object: &Map<String, Value>,
    object_ext: &Map<String, Value>,
) -> Option<&'static str> {
    let fixed = match (caliper_type, action) {
        ("SessionEvent", "LoggedIn") => Some("logged_in"),
        ("SessionEvent", "LoggedOut") => Some("logged_out"),
        ("GradeEvent", "Graded") => Some("grade_change"),
        ("AssessmentEvent", "Submitted") => Some("quiz_submitted"),
        ("AssignableEvent", "Submitted") => Some("submission_created"),
        ("NavigationEvent", "NavigatedTo") | ("ViewEvent", "Viewed") => Some("asset_accessed"),
        ("MessageEvent", "Posted") => Some("discussion_entry_created"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let verb = match action {
        "Created" => "created",
        "Modified" => "updated",
        "Deleted" => "deleted",
        _ => return None,
    };
    let urn = object.get("id").and_then(Value::as_str)?;
    let (urn_kind, _) = ids::urn_last(urn)?;
    let kind = snake_case(urn_kind);
    let has = |key: &str| object_ext.contains_key(key);
    let kind = match kind.as_str() {
        "section" => "course_section",
        "course" if verb == "updated" && text(object, "type") == "Document" => {
            return Some("syllabus_updated");
        }
        "account" if has("is_admin") || has("user_id") => "user_account_association",
        "enrollment" if has("state") || has("state_is_current") || has("access_is_current") => {
            "enrollment_state"
        }
        other => other,
    };
    lookup(&format!("{kind}_{verb}")).map(|spec| spec.name)
}

/// Metadata-like fields of a Caliper event: acting user, request details, root account.
fn synthetic_metadata(
    actor: Option<&Map<String, Value>>,
    event_ext: &Map<String, Value>,
) -> Map<String, Value> {
    let mut metadata = event_ext.clone();
    if let Some(actor) = actor {
        if let Some(id) = actor.get("id").filter(|id| {
            id.as_str()
                .and_then(ids::urn_last)
                .is_some_and(|(kind, _)| kind == "user")
        }) {
            metadata.insert("user_id".into(), id.clone());
        }
        if let Some(actor_ext) = canvas_extension(actor) {
            for key in [
                "root_account_uuid",
                "root_account_id",
                "user_login",
                "user_sis_id",
            ] {
                if let Some(value) = actor_ext.get(key) {
                    metadata.entry(key).or_insert_with(|| value.clone());
                }
            }
        }
    }
    metadata
}

/// A Canvas-format-like body for `spec` built from the Caliper object: the Canvas extension
/// fields, `<kind>_id` for every URN segment of the object and group, and the Caliper
/// properties that have a Canvas counterpart. Fields already present are never overwritten.
fn synthetic_body(
    event: &Map<String, Value>,
    object: &Map<String, Value>,
    object_ext: &Map<String, Value>,
    spec: &super::EventSpec,
) -> Map<String, Value> {
    let mut body = object_ext.clone();
    let mut put = |key: &str, value: Option<&Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            body.entry(key).or_insert_with(|| value.clone());
        }
    };
    let object_urn = object.get("id").and_then(Value::as_str).unwrap_or_default();
    for (kind, id) in ids::urn_parts(object_urn) {
        put(&id_field(kind), Some(&Value::from(id)));
    }
    if let Some((_, id)) = ids::urn_last(object_urn) {
        // The subject field of the mapped event, e.g. `submission_id` for quiz_submitted.
        if let super::catalogue::IdSource::Body([first, ..]) = spec.id_source {
            put(first, Some(&Value::from(id)));
        }
        if spec.name == "asset_accessed" {
            put("asset_id", Some(&Value::from(id)));
        }
    }
    for (caliper, canvas) in [
        ("name", "name"),
        ("name", "title"),
        ("description", "description"),
        ("dateCreated", "created_at"),
        ("dateModified", "updated_at"),
        ("dateToSubmit", "due_at"),
        ("dateToShow", "unlock_at"),
        ("maxScore", "points_possible"),
        ("count", "attempt"),
        ("body", "body"),
        ("startedAtTime", "state_started_at"),
    ] {
        put(canvas, object.get(caliper));
    }
    put("user_id", object.get("assignee").and_then(|a| a.get("id")));
    put(
        "assignment_id",
        object.get("assignable").and_then(|a| a.get("id")),
    );
    if let Some(generated) = event.get("generated") {
        put("score", generated.get("scoreGiven"));
        put("points_possible", generated.get("maxScore"));
        put("grader_id", generated.get("scoredBy"));
    }
    let group_urn = event
        .get("group")
        .and_then(|g| g.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    for (kind, id) in ids::urn_parts(group_urn) {
        put(&id_field(kind), Some(&Value::from(id)));
    }
    body
}

/// The Canvas body field holding the id of a URN kind: `section` → `course_section_id`,
/// `wikiPage` → `wiki_page_id`.
fn id_field(urn_kind: &str) -> String {
    match snake_case(urn_kind).as_str() {
        "section" => "course_section_id".to_owned(),
        kind => format!("{kind}_id"),
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn canvas_extension(map: &Map<String, Value>) -> Option<&Map<String, Value>> {
    map.get("extensions")?.get(CANVAS_EXT)?.as_object()
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Host (with port) of an `http(s)://` URL, lower-cased; `None` for anything else.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_give_hosts() {
        assert_eq!(
            url_host("http://oxana.instructure.com/").as_deref(),
            Some("oxana.instructure.com")
        );
        assert_eq!(
            url_host("https://A.example:8443?x").as_deref(),
            Some("a.example:8443")
        );
        assert_eq!(url_host("urn:instructure:canvas:user:1"), None);
        assert_eq!(url_host("http:///"), None);
    }

    #[test]
    fn names_map_by_type_action_and_object() {
        let object = |id: &str, ty: &str| {
            json!({"id": id, "type": ty})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        let none = Map::new();
        let enrollment = object("urn:instructure:canvas:enrollment:1", "Entity");
        assert_eq!(
            canvas_name("Event", "Created", &enrollment, &none),
            Some("enrollment_created")
        );
        assert_eq!(
            canvas_name("Event", "Modified", &enrollment, &none),
            Some("enrollment_updated")
        );
        let state = json!({"state": "active"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            canvas_name("Event", "Created", &enrollment, &state),
            Some("enrollment_state_created")
        );
        let section = object("urn:instructure:canvas:course:1:section:2", "CourseSection");
        assert_eq!(
            canvas_name("Event", "Created", &section, &none),
            Some("course_section_created")
        );
        let syllabus = object("urn:instructure:canvas:course:1", "Document");
        assert_eq!(
            canvas_name("Event", "Modified", &syllabus, &none),
            Some("syllabus_updated")
        );
        let wiki = object("urn:instructure:canvas:wikiPage:1", "Page");
        assert_eq!(
            canvas_name("Event", "Deleted", &wiki, &none),
            Some("wiki_page_deleted")
        );
        assert_eq!(
            canvas_name("GradeEvent", "Graded", &none, &none),
            Some("grade_change")
        );
        assert_eq!(
            canvas_name("SessionEvent", "LoggedIn", &none, &none),
            Some("logged_in")
        );
        assert_eq!(canvas_name("Event", "Archived", &enrollment, &none), None);
        let odd = object("urn:instructure:canvas:widget:1", "Entity");
        assert_eq!(canvas_name("Event", "Created", &odd, &none), None);
    }
}
