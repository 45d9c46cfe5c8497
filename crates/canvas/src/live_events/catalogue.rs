//! The Live Events catalogue: every documented Canvas event name, its CloudEvents `type`, how
//! its subject (entity key) is found, and which normalized shape its `data` gets.
//!
//! This table is the single source of the mapping documented in the [module
//! docs](super); the decoder, the Caliper mapping and the tests all read it, so a new event
//! type is one line here. Names not in the table are not errors: they decode as
//! `edu.canvas.unknown` (see [`super`]).

/// How the entity an event is about is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdSource {
    /// The first of these body fields that holds an id.
    Body(&'static [&'static str]),
    /// `body.<object>.<field>` (course_completed / course_progress: `body.course.id`).
    Nested(&'static str, &'static str),
    /// `metadata.user_id` — the acting user (logged_in / logged_out).
    MetadataUser,
    /// `<body.asset_type>/<body.asset_id>` (asset_accessed): the kind comes from the event.
    Asset,
    /// The event names no entity with an integer id.
    Nothing,
}

/// Which typed, normalized struct (see `entities`) an event's `data` gets besides `raw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Course,
    Section,
    Enrollment,
    EnrollmentState,
    User,
    Account,
    Module,
    ModuleItem,
    Assignment,
    Submission,
    GradeChange,
    CourseGrade,
    /// No typed form: `data` is `{"raw": body}`.
    Raw,
}

/// One documented Live Events event type.
#[derive(Debug)]
pub struct EventSpec {
    /// Canvas event name, e.g. `enrollment_created`.
    pub name: &'static str,
    /// CloudEvents `type`, e.g. `edu.canvas.enrollment.created`.
    pub cloud_type: &'static str,
    /// Kind of the subject entity (`enrollment`, `section` …); `None` when the event has no
    /// entity or (asset_accessed) the kind comes from the event itself.
    pub subject_kind: Option<&'static str>,
    pub(crate) id_source: IdSource,
    pub(crate) shape: Shape,
}

const fn ev(
    name: &'static str,
    cloud_type: &'static str,
    subject_kind: &'static str,
    id_source: IdSource,
    shape: Shape,
) -> EventSpec {
    let subject_kind = if subject_kind.is_empty() {
        None
    } else {
        Some(subject_kind)
    };
    EventSpec {
        name,
        cloud_type,
        subject_kind,
        id_source,
        shape,
    }
}

use IdSource::{Asset, Body, MetadataUser, Nested, Nothing};
use Shape::Raw;

/// All 82 documented Canvas-format event types (reference/canvas.md A7), in catalogue order.
/// One line per event so the table reads as the documentation it is.
#[rustfmt::skip]
static CATALOGUE: [EventSpec; 82] = [
    // courses
    ev("course_created", "edu.canvas.course.created", "course", Body(&["course_id"]), Shape::Course),
    ev("course_updated", "edu.canvas.course.updated", "course", Body(&["course_id"]), Shape::Course),
    ev("course_completed", "edu.canvas.course_progress.completed", "course", Nested("course", "id"), Raw),
    ev("course_progress", "edu.canvas.course_progress.updated", "course", Nested("course", "id"), Raw),
    ev("course_grade_change", "edu.canvas.course_grade.changed", "course", Body(&["course_id"]), Shape::CourseGrade),
    ev("syllabus_updated", "edu.canvas.syllabus.updated", "course", Body(&["course_id"]), Raw),
    ev("content_migration_started", "edu.canvas.content_migration.started", "content_migration", Body(&["content_migration_id"]), Raw),
    ev("content_migration_completed", "edu.canvas.content_migration.completed", "content_migration", Body(&["content_migration_id"]), Raw),
    ev("master_migration_started", "edu.canvas.master_migration.started", "master_migration", Body(&["master_migration_id"]), Raw),
    // sections
    ev("course_section_created", "edu.canvas.course_section.created", "section", Body(&["course_section_id"]), Shape::Section),
    ev("course_section_updated", "edu.canvas.course_section.updated", "section", Body(&["course_section_id"]), Shape::Section),
    // enrollments
    ev("enrollment_created", "edu.canvas.enrollment.created", "enrollment", Body(&["enrollment_id"]), Shape::Enrollment),
    ev("enrollment_updated", "edu.canvas.enrollment.updated", "enrollment", Body(&["enrollment_id"]), Shape::Enrollment),
    ev("enrollment_state_created", "edu.canvas.enrollment_state.created", "enrollment", Body(&["enrollment_id"]), Shape::EnrollmentState),
    ev("enrollment_state_updated", "edu.canvas.enrollment_state.updated", "enrollment", Body(&["enrollment_id"]), Shape::EnrollmentState),
    // users / accounts
    ev("user_created", "edu.canvas.user.created", "user", Body(&["user_id"]), Shape::User),
    ev("user_updated", "edu.canvas.user.updated", "user", Body(&["user_id"]), Shape::User),
    ev("user_account_association_created", "edu.canvas.user_account_association.created", "user", Body(&["user_id"]), Raw),
    ev("account_created", "edu.canvas.account.created", "account", Body(&["account_id"]), Shape::Account),
    ev("account_updated", "edu.canvas.account.updated", "account", Body(&["account_id"]), Shape::Account),
    ev("account_notification_created", "edu.canvas.account_notification.created", "account_notification", Body(&["account_notification_id"]), Raw),
    // auth
    ev("logged_in", "edu.canvas.session.logged_in", "user", MetadataUser, Raw),
    ev("logged_out", "edu.canvas.session.logged_out", "user", MetadataUser, Raw),
    // assignments
    ev("assignment_created", "edu.canvas.assignment.created", "assignment", Body(&["assignment_id"]), Shape::Assignment),
    ev("assignment_updated", "edu.canvas.assignment.updated", "assignment", Body(&["assignment_id"]), Shape::Assignment),
    ev("assignment_group_created", "edu.canvas.assignment_group.created", "assignment_group", Body(&["assignment_group_id"]), Raw),
    ev("assignment_group_updated", "edu.canvas.assignment_group.updated", "assignment_group", Body(&["assignment_group_id"]), Raw),
    ev("assignment_override_created", "edu.canvas.assignment_override.created", "assignment_override", Body(&["assignment_override_id"]), Raw),
    ev("assignment_override_updated", "edu.canvas.assignment_override.updated", "assignment_override", Body(&["assignment_override_id"]), Raw),
    // submissions / grades
    ev("submission_created", "edu.canvas.submission.created", "submission", Body(&["submission_id"]), Shape::Submission),
    ev("submission_updated", "edu.canvas.submission.updated", "submission", Body(&["submission_id"]), Shape::Submission),
    ev("submission_comment_created", "edu.canvas.submission_comment.created", "submission_comment", Body(&["submission_comment_id"]), Raw),
    ev("submission_custom_grade_status", "edu.canvas.submission_custom_grade_status.changed", "submission", Body(&["submission_id"]), Raw),
    ev("grade_change", "edu.canvas.grade.changed", "submission", Body(&["submission_id"]), Shape::GradeChange),
    ev("grade_override", "edu.canvas.grade_override.changed", "enrollment", Body(&["enrollment_id"]), Raw),
    ev("final_grade_custom_status", "edu.canvas.final_grade_custom_status.changed", "enrollment", Body(&["enrollment_id"]), Raw),
    ev("plagiarism_resubmit", "edu.canvas.plagiarism.resubmitted", "submission", Body(&["submission_id"]), Raw),
    ev("rubric_assessed", "edu.canvas.rubric_assessment.assessed", "rubric_assessment", Body(&["rubric_assessment_id", "id"]), Raw),
    // modules
    ev("module_created", "edu.canvas.module.created", "module", Body(&["module_id"]), Shape::Module),
    ev("module_updated", "edu.canvas.module.updated", "module", Body(&["module_id"]), Shape::Module),
    ev("module_item_created", "edu.canvas.module_item.created", "module_item", Body(&["module_item_id"]), Shape::ModuleItem),
    ev("module_item_updated", "edu.canvas.module_item.updated", "module_item", Body(&["module_item_id"]), Shape::ModuleItem),
    // quizzes (classic)
    ev("quiz_created", "edu.canvas.quiz.created", "quiz", Body(&["quiz_id"]), Raw),
    ev("quiz_updated", "edu.canvas.quiz.updated", "quiz", Body(&["quiz_id"]), Raw),
    ev("quiz_submitted", "edu.canvas.quiz.submitted", "quiz_submission", Body(&["submission_id", "quiz_submission_id"]), Raw),
    // SIS
    ev("sis_batch_created", "edu.canvas.sis_batch.created", "sis_batch", Body(&["sis_batch_id"]), Raw),
    ev("sis_batch_updated", "edu.canvas.sis_batch.updated", "sis_batch", Body(&["sis_batch_id"]), Raw),
    // LTI
    ev("lti_resource_link_created", "edu.canvas.lti_resource_link.created", "lti_resource_link", Body(&["resource_link_id"]), Raw),
    ev("lti_resource_link_updated", "edu.canvas.lti_resource_link.updated", "lti_resource_link", Body(&["resource_link_id"]), Raw),
    // other
    ev("asset_accessed", "edu.canvas.asset.accessed", "", Asset, Raw),
    ev("attachment_created", "edu.canvas.attachment.created", "attachment", Body(&["attachment_id"]), Raw),
    ev("attachment_updated", "edu.canvas.attachment.updated", "attachment", Body(&["attachment_id"]), Raw),
    ev("attachment_deleted", "edu.canvas.attachment.deleted", "attachment", Body(&["attachment_id"]), Raw),
    ev("conversation_created", "edu.canvas.conversation.created", "conversation", Body(&["conversation_id"]), Raw),
    ev("conversation_forwarded", "edu.canvas.conversation.forwarded", "conversation", Body(&["conversation_id"]), Raw),
    ev("conversation_message_created", "edu.canvas.conversation_message.created", "conversation_message", Body(&["message_id", "conversation_message_id"]), Raw),
    ev("discussion_entry_created", "edu.canvas.discussion_entry.created", "discussion_entry", Body(&["discussion_entry_id"]), Raw),
    ev("discussion_entry_submitted", "edu.canvas.discussion_entry.submitted", "discussion_entry", Body(&["discussion_entry_id"]), Raw),
    ev("discussion_topic_created", "edu.canvas.discussion_topic.created", "discussion_topic", Body(&["discussion_topic_id"]), Raw),
    ev("discussion_topic_updated", "edu.canvas.discussion_topic.updated", "discussion_topic", Body(&["discussion_topic_id"]), Raw),
    ev("group_category_created", "edu.canvas.group_category.created", "group_category", Body(&["group_category_id"]), Raw),
    ev("group_category_updated", "edu.canvas.group_category.updated", "group_category", Body(&["group_category_id"]), Raw),
    ev("group_created", "edu.canvas.group.created", "group", Body(&["group_id"]), Raw),
    ev("group_updated", "edu.canvas.group.updated", "group", Body(&["group_id"]), Raw),
    ev("group_membership_created", "edu.canvas.group_membership.created", "group_membership", Body(&["group_membership_id"]), Raw),
    ev("group_membership_updated", "edu.canvas.group_membership.updated", "group_membership", Body(&["group_membership_id"]), Raw),
    ev("learning_outcome_created", "edu.canvas.learning_outcome.created", "learning_outcome", Body(&["learning_outcome_id"]), Raw),
    ev("learning_outcome_updated", "edu.canvas.learning_outcome.updated", "learning_outcome", Body(&["learning_outcome_id"]), Raw),
    ev("learning_outcome_group_created", "edu.canvas.learning_outcome_group.created", "learning_outcome_group", Body(&["learning_outcome_group_id"]), Raw),
    ev("learning_outcome_group_updated", "edu.canvas.learning_outcome_group.updated", "learning_outcome_group", Body(&["learning_outcome_group_id"]), Raw),
    ev("learning_outcome_link_created", "edu.canvas.learning_outcome_link.created", "learning_outcome_link", Body(&["learning_outcome_link_id"]), Raw),
    ev("learning_outcome_link_updated", "edu.canvas.learning_outcome_link.updated", "learning_outcome_link", Body(&["learning_outcome_link_id"]), Raw),
    // A result has no id of its own in the body; it is keyed by the outcome it rates.
    ev("learning_outcome_result_created", "edu.canvas.learning_outcome_result.created", "learning_outcome", Body(&["learning_outcome_id"]), Raw),
    ev("learning_outcome_result_updated", "edu.canvas.learning_outcome_result.updated", "learning_outcome", Body(&["learning_outcome_id"]), Raw),
    ev("outcome_calculation_method_created", "edu.canvas.outcome_calculation_method.created", "outcome_calculation_method", Body(&["outcome_calculation_method_id"]), Raw),
    ev("outcome_calculation_method_updated", "edu.canvas.outcome_calculation_method.updated", "outcome_calculation_method", Body(&["outcome_calculation_method_id"]), Raw),
    ev("outcome_proficiency_created", "edu.canvas.outcome_proficiency.created", "outcome_proficiency", Body(&["outcome_proficiency_id"]), Raw),
    ev("outcome_proficiency_updated", "edu.canvas.outcome_proficiency.updated", "outcome_proficiency", Body(&["outcome_proficiency_id"]), Raw),
    // Only course/assignment uuids and LTI ids in the body: no integer entity.
    ev("outcomes_retry_outcome_alignment_clone", "edu.canvas.outcome_alignment_clone.retried", "", Nothing, Raw),
    ev("wiki_page_created", "edu.canvas.wiki_page.created", "wiki_page", Body(&["wiki_page_id"]), Raw),
    ev("wiki_page_updated", "edu.canvas.wiki_page.updated", "wiki_page", Body(&["wiki_page_id"]), Raw),
    ev("wiki_page_deleted", "edu.canvas.wiki_page.deleted", "wiki_page", Body(&["wiki_page_id"]), Raw),
];

/// Names Canvas actually emits that differ from the documented file name.
const ALIASES: &[(&str, &str)] = &[
    // The published example of this event carries a dotted event_name.
    (
        "outcomes.retry_outcome_alignment_clone",
        "outcomes_retry_outcome_alignment_clone",
    ),
];

/// CloudEvents `type` of every event whose name is not in the catalogue.
pub const UNKNOWN_TYPE: &str = "edu.canvas.unknown";

/// The whole catalogue, in documentation order.
pub fn catalogue() -> &'static [EventSpec] {
    &CATALOGUE
}

/// The catalogue entry of a Canvas event name (exact, case-sensitive; known aliases resolved).
pub fn lookup(name: &str) -> Option<&'static EventSpec> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical);
    CATALOGUE.iter().find(|spec| spec.name == name)
}

/// The id field that marks a body as one entity's, most specific first: an enrollment's body
/// also holds its section's, course's and user's ids, a section's its course's, a course's its
/// account's (reference/canvas.md A7, and the published schemas).
const BODY_KEYS: &[(&str, &str)] = &[
    ("enrollment_id", "enrollment"),
    ("module_item_id", "module_item"),
    ("assignment_id", "assignment"),
    ("module_id", "module"),
    ("course_section_id", "course_section"),
    ("course_id", "course"),
    ("user_id", "user"),
    ("account_id", "account"),
];

/// When `spec` is one entity's `_created`/`_updated` event but `body` is another entity's
/// (the published examples hold such slips, and Canvas will not resend), the spec of that
/// other entity's event with the same action: the body decides what the event is about.
/// `None` when they agree, or when the body names no entity at all.
pub(crate) fn as_the_body_says(
    spec: &EventSpec,
    body: &serde_json::Map<String, serde_json::Value>,
) -> Option<&'static EventSpec> {
    let (family, action) = spec.name.rsplit_once('_')?;
    if !matches!(action, "created" | "updated") || !BODY_KEYS.iter().any(|(_, f)| *f == family) {
        return None;
    }
    let (_, body_family) = BODY_KEYS.iter().find(|(field, _)| {
        body.get(*field)
            .and_then(super::ids::parse_local_id)
            .is_some()
    })?;
    if *body_family == family {
        return None;
    }
    lookup(&format!("{body_family}_{action}"))
}

/// The CloudEvents `type` for a Canvas event name: the catalogue's, or [`UNKNOWN_TYPE`].
pub fn cloud_event_type(name: &str) -> &'static str {
    lookup(name).map_or(UNKNOWN_TYPE, |spec| spec.cloud_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_is_consistent() {
        let names: HashSet<_> = CATALOGUE.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), 82, "event names are unique");
        let types: HashSet<_> = CATALOGUE.iter().map(|s| s.cloud_type).collect();
        assert_eq!(types.len(), 82, "cloud types are unique");
        for spec in &CATALOGUE {
            let rest = spec
                .cloud_type
                .strip_prefix("edu.canvas.")
                .unwrap_or_else(|| panic!("{} type prefix", spec.name));
            let parts: Vec<_> = rest.split('.').collect();
            assert_eq!(parts.len(), 2, "{}: <entity>.<action>", spec.name);
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'),
                "{}",
                spec.name
            );
            let has_kind = spec.subject_kind.is_some();
            let expects_kind = !matches!(spec.id_source, IdSource::Asset | IdSource::Nothing);
            assert_eq!(has_kind, expects_kind, "{}", spec.name);
        }
    }

    #[test]
    fn lookup_resolves_names_and_aliases() {
        assert_eq!(
            cloud_event_type("enrollment_created"),
            "edu.canvas.enrollment.created"
        );
        assert_eq!(
            cloud_event_type("course_section_updated"),
            "edu.canvas.course_section.updated"
        );
        assert_eq!(
            cloud_event_type("logged_in"),
            "edu.canvas.session.logged_in"
        );
        assert_eq!(cloud_event_type("grade_change"), "edu.canvas.grade.changed");
        assert_eq!(
            cloud_event_type("outcomes.retry_outcome_alignment_clone"),
            "edu.canvas.outcome_alignment_clone.retried"
        );
        assert_eq!(cloud_event_type("Enrollment_Created"), UNKNOWN_TYPE);
        assert_eq!(cloud_event_type(""), UNKNOWN_TYPE);
    }
}
