//! Canvas Live Events decoding: raw payload JSON in, normalized [`DecodedEvent`]s (each with
//! its CloudEvents 1.0 form) out.
//!
//! This module owns everything between "the signature verified" and "the processor applies
//! the event": recognising the format (Canvas `{metadata, body}` or IMS Caliper 1.1
//! `{sensor, sendTime, dataVersion, data: [...]}`), reducing ids to **local** ids, parsing
//! times leniently, deriving a content-based **dedup key** (Canvas sends no event id), mapping
//! every documented event name to a CloudEvents `type` and entity **subject**, and building
//! typed `data` for the core catalog entities. It does no I/O, keeps no state and never
//! panics: input that is not an event is a [`DecodeError`]; anything softer (odd timestamps,
//! ids of the wrong type, unknown event names, a malformed field we do not need) is decoded
//! anyway and reported in [`DecodedEvent::warnings`], because Canvas drops what we fail to
//! accept and the raw body is kept in `data.raw` for later replay.
//!
//! # Conventions
//!
//! * **Ids**: string or JSON number, global (`shard × 10^13 + local`) or local, or a Caliper
//!   URN; always reduced to the local id ([`ids`]).
//! * **Subject**: `<kind>/<local id>`, one kind per catalog entity — `course`, `section` (not
//!   `course_section`), `enrollment`, `user`, `account`, `module`, `module_item`,
//!   `assignment`, `submission` …; events *about* an entity use that entity's key
//!   (`enrollment_state_*` → `enrollment/…`, `grade_change` → `submission/…`) so the
//!   processor orders them in the same lane.
//! * **Type**: `edu.canvas.<entity>.<action>` where `<entity>` keeps Canvas's own name
//!   (`course_section`, `enrollment_state`) and `<action>` is a past-tense verb; names without a
//!   `_created`/`_updated` suffix get an explicit entry (`logged_in` →
//!   `edu.canvas.session.logged_in`, `grade_change` → `edu.canvas.grade.changed`,
//!   `course_completed` → `edu.canvas.course_progress.completed` — *a student* completed the
//!   course's requirements; `course.completed` would read as the course concluding).
//!   A name not in the table below → `edu.canvas.unknown`, `data` = the raw body, the name in
//!   the `canvaseventname` extension — never an error.
//! * **Time**: `time` / [`DecodedEvent::event_time`] from `metadata.event_time` (Caliper:
//!   `eventTime`), written RFC 3339 UTC with milliseconds.
//! * **Source**: `canvas://<metadata.hostname>`; system (job) events have no hostname and get
//!   `canvas://root-account/<root_account_uuid, else root_account_id>`; Caliper uses the
//!   `hostname` extension, else the host of `sensor`, else of `edApp.id`. Consumers should key
//!   on `subject`, not `source`.
//! * **Extensions**: `canvaseventname` (always), `canvasrootaccount` (root account uuid, when
//!   present).
//! * **Dedup key / id**: see [`dedup`]: `canvas:<sha256 of name, time, request/job id,
//!   canonical body>`, `caliper:<event id>`; the CloudEvent `id` is the UUID v5 of the key.
//! * **Data**: for the core entity events a typed struct from [`entities`] with local ids and
//!   parsed times, plus `"raw": <body>`; for every other catalogued event `{"raw": <body>}`.
//!   Caliper events are mapped onto the same Canvas names and structs where the mapping is
//!   known (`raw` is then the Caliper event), else they are `caliper:<Type>/<Action>`,
//!   `edu.canvas.unknown`.
//!
//! # Catalogue (all 82 documented Canvas-format events)
//!
//! | event_name | CloudEvents `type` | `subject` | `data` |
//! |---|---|---|---|
//! | `course_created` | `edu.canvas.course.created` | `course/<course_id>` | `CourseData` + raw |
//! | `course_updated` | `edu.canvas.course.updated` | `course/<course_id>` | `CourseData` + raw |
//! | `course_completed` | `edu.canvas.course_progress.completed` | `course/<course.id>` | raw |
//! | `course_progress` | `edu.canvas.course_progress.updated` | `course/<course.id>` | raw |
//! | `course_grade_change` | `edu.canvas.course_grade.changed` | `course/<course_id>` | `CourseGradeData` + raw |
//! | `syllabus_updated` | `edu.canvas.syllabus.updated` | `course/<course_id>` | raw |
//! | `content_migration_started` | `edu.canvas.content_migration.started` | `content_migration/<content_migration_id>` | raw |
//! | `content_migration_completed` | `edu.canvas.content_migration.completed` | `content_migration/<content_migration_id>` | raw |
//! | `master_migration_started` | `edu.canvas.master_migration.started` | `master_migration/<master_migration_id>` | raw |
//! | `course_section_created` | `edu.canvas.course_section.created` | `section/<course_section_id>` | `SectionData` + raw |
//! | `course_section_updated` | `edu.canvas.course_section.updated` | `section/<course_section_id>` | `SectionData` + raw |
//! | `enrollment_created` | `edu.canvas.enrollment.created` | `enrollment/<enrollment_id>` | `EnrollmentData` + raw |
//! | `enrollment_updated` | `edu.canvas.enrollment.updated` | `enrollment/<enrollment_id>` | `EnrollmentData` + raw |
//! | `enrollment_state_created` | `edu.canvas.enrollment_state.created` | `enrollment/<enrollment_id>` | `EnrollmentStateData` + raw |
//! | `enrollment_state_updated` | `edu.canvas.enrollment_state.updated` | `enrollment/<enrollment_id>` | `EnrollmentStateData` + raw |
//! | `user_created` | `edu.canvas.user.created` | `user/<user_id>` | `UserData` + raw |
//! | `user_updated` | `edu.canvas.user.updated` | `user/<user_id>` | `UserData` + raw |
//! | `user_account_association_created` | `edu.canvas.user_account_association.created` | `user/<user_id>` | raw |
//! | `account_created` | `edu.canvas.account.created` | `account/<account_id>` | `AccountData` + raw |
//! | `account_updated` | `edu.canvas.account.updated` | `account/<account_id>` | `AccountData` + raw |
//! | `account_notification_created` | `edu.canvas.account_notification.created` | `account_notification/<account_notification_id>` | raw |
//! | `logged_in` | `edu.canvas.session.logged_in` | `user/<metadata.user_id>` | raw |
//! | `logged_out` | `edu.canvas.session.logged_out` | `user/<metadata.user_id>` | raw |
//! | `assignment_created` | `edu.canvas.assignment.created` | `assignment/<assignment_id>` | `AssignmentData` + raw |
//! | `assignment_updated` | `edu.canvas.assignment.updated` | `assignment/<assignment_id>` | `AssignmentData` + raw |
//! | `assignment_group_created` | `edu.canvas.assignment_group.created` | `assignment_group/<assignment_group_id>` | raw |
//! | `assignment_group_updated` | `edu.canvas.assignment_group.updated` | `assignment_group/<assignment_group_id>` | raw |
//! | `assignment_override_created` | `edu.canvas.assignment_override.created` | `assignment_override/<assignment_override_id>` | raw |
//! | `assignment_override_updated` | `edu.canvas.assignment_override.updated` | `assignment_override/<assignment_override_id>` | raw |
//! | `submission_created` | `edu.canvas.submission.created` | `submission/<submission_id>` | `SubmissionData` + raw |
//! | `submission_updated` | `edu.canvas.submission.updated` | `submission/<submission_id>` | `SubmissionData` + raw |
//! | `submission_comment_created` | `edu.canvas.submission_comment.created` | `submission_comment/<submission_comment_id>` | raw |
//! | `submission_custom_grade_status` | `edu.canvas.submission_custom_grade_status.changed` | `submission/<submission_id>` | raw |
//! | `grade_change` | `edu.canvas.grade.changed` | `submission/<submission_id>` | `GradeChangeData` + raw |
//! | `grade_override` | `edu.canvas.grade_override.changed` | `enrollment/<enrollment_id>` | raw |
//! | `final_grade_custom_status` | `edu.canvas.final_grade_custom_status.changed` | `enrollment/<enrollment_id>` | raw |
//! | `plagiarism_resubmit` | `edu.canvas.plagiarism.resubmitted` | `submission/<submission_id>` | raw |
//! | `rubric_assessed` | `edu.canvas.rubric_assessment.assessed` | `rubric_assessment/<rubric_assessment_id or id>` | raw |
//! | `module_created` | `edu.canvas.module.created` | `module/<module_id>` | `ModuleData` + raw |
//! | `module_updated` | `edu.canvas.module.updated` | `module/<module_id>` | `ModuleData` + raw |
//! | `module_item_created` | `edu.canvas.module_item.created` | `module_item/<module_item_id>` | `ModuleItemData` + raw |
//! | `module_item_updated` | `edu.canvas.module_item.updated` | `module_item/<module_item_id>` | `ModuleItemData` + raw |
//! | `quiz_created` | `edu.canvas.quiz.created` | `quiz/<quiz_id>` | raw |
//! | `quiz_updated` | `edu.canvas.quiz.updated` | `quiz/<quiz_id>` | raw |
//! | `quiz_submitted` | `edu.canvas.quiz.submitted` | `quiz_submission/<submission_id or quiz_submission_id>` | raw |
//! | `sis_batch_created` | `edu.canvas.sis_batch.created` | `sis_batch/<sis_batch_id>` | raw |
//! | `sis_batch_updated` | `edu.canvas.sis_batch.updated` | `sis_batch/<sis_batch_id>` | raw |
//! | `lti_resource_link_created` | `edu.canvas.lti_resource_link.created` | `lti_resource_link/<resource_link_id>` | raw |
//! | `lti_resource_link_updated` | `edu.canvas.lti_resource_link.updated` | `lti_resource_link/<resource_link_id>` | raw |
//! | `asset_accessed` | `edu.canvas.asset.accessed` | `<asset_type>/<asset_id>` | raw |
//! | `attachment_created` | `edu.canvas.attachment.created` | `attachment/<attachment_id>` | raw |
//! | `attachment_updated` | `edu.canvas.attachment.updated` | `attachment/<attachment_id>` | raw |
//! | `attachment_deleted` | `edu.canvas.attachment.deleted` | `attachment/<attachment_id>` | raw |
//! | `conversation_created` | `edu.canvas.conversation.created` | `conversation/<conversation_id>` | raw |
//! | `conversation_forwarded` | `edu.canvas.conversation.forwarded` | `conversation/<conversation_id>` | raw |
//! | `conversation_message_created` | `edu.canvas.conversation_message.created` | `conversation_message/<message_id or conversation_message_id>` | raw |
//! | `discussion_entry_created` | `edu.canvas.discussion_entry.created` | `discussion_entry/<discussion_entry_id>` | raw |
//! | `discussion_entry_submitted` | `edu.canvas.discussion_entry.submitted` | `discussion_entry/<discussion_entry_id>` | raw |
//! | `discussion_topic_created` | `edu.canvas.discussion_topic.created` | `discussion_topic/<discussion_topic_id>` | raw |
//! | `discussion_topic_updated` | `edu.canvas.discussion_topic.updated` | `discussion_topic/<discussion_topic_id>` | raw |
//! | `group_category_created` | `edu.canvas.group_category.created` | `group_category/<group_category_id>` | raw |
//! | `group_category_updated` | `edu.canvas.group_category.updated` | `group_category/<group_category_id>` | raw |
//! | `group_created` | `edu.canvas.group.created` | `group/<group_id>` | raw |
//! | `group_updated` | `edu.canvas.group.updated` | `group/<group_id>` | raw |
//! | `group_membership_created` | `edu.canvas.group_membership.created` | `group_membership/<group_membership_id>` | raw |
//! | `group_membership_updated` | `edu.canvas.group_membership.updated` | `group_membership/<group_membership_id>` | raw |
//! | `learning_outcome_created` | `edu.canvas.learning_outcome.created` | `learning_outcome/<learning_outcome_id>` | raw |
//! | `learning_outcome_updated` | `edu.canvas.learning_outcome.updated` | `learning_outcome/<learning_outcome_id>` | raw |
//! | `learning_outcome_group_created` | `edu.canvas.learning_outcome_group.created` | `learning_outcome_group/<learning_outcome_group_id>` | raw |
//! | `learning_outcome_group_updated` | `edu.canvas.learning_outcome_group.updated` | `learning_outcome_group/<learning_outcome_group_id>` | raw |
//! | `learning_outcome_link_created` | `edu.canvas.learning_outcome_link.created` | `learning_outcome_link/<learning_outcome_link_id>` | raw |
//! | `learning_outcome_link_updated` | `edu.canvas.learning_outcome_link.updated` | `learning_outcome_link/<learning_outcome_link_id>` | raw |
//! | `learning_outcome_result_created` | `edu.canvas.learning_outcome_result.created` | `learning_outcome/<learning_outcome_id>` | raw |
//! | `learning_outcome_result_updated` | `edu.canvas.learning_outcome_result.updated` | `learning_outcome/<learning_outcome_id>` | raw |
//! | `outcome_calculation_method_created` | `edu.canvas.outcome_calculation_method.created` | `outcome_calculation_method/<outcome_calculation_method_id>` | raw |
//! | `outcome_calculation_method_updated` | `edu.canvas.outcome_calculation_method.updated` | `outcome_calculation_method/<outcome_calculation_method_id>` | raw |
//! | `outcome_proficiency_created` | `edu.canvas.outcome_proficiency.created` | `outcome_proficiency/<outcome_proficiency_id>` | raw |
//! | `outcome_proficiency_updated` | `edu.canvas.outcome_proficiency.updated` | `outcome_proficiency/<outcome_proficiency_id>` | raw |
//! | `outcomes_retry_outcome_alignment_clone` | `edu.canvas.outcome_alignment_clone.retried` | none | raw |
//! | `wiki_page_created` | `edu.canvas.wiki_page.created` | `wiki_page/<wiki_page_id>` | raw |
//! | `wiki_page_updated` | `edu.canvas.wiki_page.updated` | `wiki_page/<wiki_page_id>` | raw |
//! | `wiki_page_deleted` | `edu.canvas.wiki_page.deleted` | `wiki_page/<wiki_page_id>` | raw |
//!
//! `outcomes.retry_outcome_alignment_clone` (with a dot, as Canvas's own example sends it) is
//! accepted as an alias of `outcomes_retry_outcome_alignment_clone`.

pub mod catalogue;
pub mod cloud_event;
pub mod dedup;
pub mod entities;
mod error;
pub mod ids;
pub mod time;

mod caliper;
mod canvas_format;
mod envelope;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use catalogue::{EventSpec, UNKNOWN_TYPE, catalogue, cloud_event_type, lookup};
pub use cloud_event::CloudEvent;
pub use envelope::{root_accounts, unwrap_envelope};
pub use error::{DecodeError, MAX_DEPTH};

/// The wire format an event arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Canvas format: `{ "metadata": {...}, "body": {...} }`.
    Canvas,
    /// IMS Caliper 1.1: `{ "sensor", "sendTime", "dataVersion", "data": [event, ...] }`.
    Caliper,
}

/// The entity an event is about, keyed by its **local** id: `enrollment/46825`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityKey {
    /// Entity kind: `course`, `section`, `enrollment`, `user`, `assignment` …
    pub kind: String,
    /// Local Canvas id (global ids reduced with [`ids::local_id`]).
    pub id: i64,
}

impl EntityKey {
    /// An entity key; `id` must already be local.
    pub fn new(kind: impl Into<String>, id: i64) -> Self {
        Self {
            kind: kind.into(),
            id,
        }
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

/// One decoded Live Event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodedEvent {
    /// The wire format it arrived in.
    pub format: Format,
    /// Canvas event name (`enrollment_created`); for Caliper the mapped Canvas name when known,
    /// else `caliper:<Type>/<Action>`.
    pub event_name: String,
    /// The `event_name` Canvas sent, when the body showed the event to be about another
    /// entity and was decoded as that entity's event instead (the body decides; a warning
    /// says so too). Kept for the audit.
    pub sent_as: Option<String>,
    /// When Canvas emitted it; `None` (with a warning) when absent or unparseable.
    pub event_time: Option<DateTime<Utc>>,
    /// Content-derived idempotency key, see [`dedup`].
    pub dedup_key: String,
    /// The entity it is about, with its local id.
    pub entity: Option<EntityKey>,
    /// Everything that was tolerated rather than rejected, one line each.
    pub warnings: Vec<String>,
    /// The normalized CloudEvents form.
    pub cloud: CloudEvent,
}

/// Decodes a Live Events payload given as JSON text: one Canvas-format event, a Caliper 1.1
/// envelope (one [`DecodedEvent`] per element of `data`), or a bare Caliper event. The format
/// is detected from the shape. A UTF-8 byte-order mark is ignored.
///
/// # Errors
///
/// [`DecodeError`] when the bytes are not JSON, nest deeper than [`MAX_DEPTH`], are not an
/// object of a known shape, or lack `metadata.event_name`. Never panics.
pub fn decode_bytes(bytes: &[u8]) -> Result<Vec<DecodedEvent>, DecodeError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError::from_json(&e))?;
    decode_value(&value)
}

/// Decodes an already-parsed payload; see [`decode_bytes`].
///
/// # Errors
///
/// As [`decode_bytes`], minus the JSON syntax errors.
pub fn decode_value(value: &Value) -> Result<Vec<DecodedEvent>, DecodeError> {
    check_depth(value)?;
    let Value::Object(map) = value else {
        return Err(DecodeError::NotAnObject);
    };
    match envelope::detect(map) {
        Some(envelope::Kind::Canvas) => canvas_format::decode(map).map(|event| vec![event]),
        Some(envelope::Kind::CaliperEnvelope) => caliper::decode_envelope(map),
        Some(envelope::Kind::CaliperEvent) => {
            caliper::decode_event(map, None).map(|event| vec![event])
        }
        None => Err(DecodeError::UnknownFormat),
    }
}

/// Rejects values nested deeper than [`MAX_DEPTH`], without recursion, so that everything after
/// it (canonical JSON, cloning into `raw`) may recurse safely.
fn check_depth(value: &Value) -> Result<(), DecodeError> {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// Everything a decoder found out about one event, before it is assembled.
struct Parts {
    format: Format,
    event_name: String,
    sent_as: Option<String>,
    spec: Option<&'static EventSpec>,
    event_time: Option<DateTime<Utc>>,
    dedup_key: String,
    entity: Option<EntityKey>,
    source: String,
    root_account_uuid: Option<String>,
    data: Value,
    warnings: Vec<String>,
}

impl Parts {
    fn assemble(self) -> DecodedEvent {
        let mut extensions = std::collections::BTreeMap::new();
        extensions.insert(
            cloud_event::EXT_EVENT_NAME.to_owned(),
            Value::String(self.event_name.clone()),
        );
        if let Some(uuid) = self.root_account_uuid {
            extensions.insert(
                cloud_event::EXT_ROOT_ACCOUNT.to_owned(),
                Value::String(uuid),
            );
        }
        let cloud = CloudEvent {
            specversion: cloud_event::SPEC_VERSION.to_owned(),
            id: dedup::cloud_event_id(&self.dedup_key),
            source: self.source,
            r#type: self
                .spec
                .map_or(UNKNOWN_TYPE, |spec| spec.cloud_type)
                .to_owned(),
            subject: self.entity.as_ref().map(EntityKey::to_string),
            time: self.event_time.as_ref().map(time::format_rfc3339_ms),
            datacontenttype: cloud_event::DATA_CONTENT_TYPE.to_owned(),
            data: self.data,
            extensions,
        };
        DecodedEvent {
            format: self.format,
            event_name: self.event_name,
            sent_as: self.sent_as,
            event_time: self.event_time,
            dedup_key: self.dedup_key,
            entity: self.entity,
            warnings: self.warnings,
            cloud,
        }
    }
}
