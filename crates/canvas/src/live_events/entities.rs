//! Typed, normalized forms of the core catalog entities carried by Live Events.
//!
//! The catalog needs a handful of events in a dependable shape: local integer ids, parsed
//! times, booleans that are booleans. This module reads those fields out of a raw event body
//! *field by field* rather than deserializing the body as a whole, so a wrong type in one field
//! costs that field (with a warning) and never the event — the published examples already mix
//! string and numeric ids and non-ISO times. Every struct is serialized into the CloudEvent
//! `data` next to `raw` (the body as received), so nothing Canvas sent is lost.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalogue::Shape;
use super::ids;
use super::time::{TimeParse, parse_time_value, serialize_opt_ms};

/// `course_created` / `course_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CourseData {
    /// Local course id (`course_id`).
    pub id: Option<i64>,
    pub account_id: Option<i64>,
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// available, claimed, completed, created, deleted.
    pub workflow_state: Option<String>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `course_section_created` / `course_section_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionData {
    /// Local section id (`course_section_id`).
    pub id: Option<i64>,
    pub course_id: Option<i64>,
    pub name: Option<String>,
    pub workflow_state: Option<String>,
    pub sis_source_id: Option<String>,
    pub integration_id: Option<String>,
    pub enrollment_term_id: Option<i64>,
    /// Original course of a cross-listed section.
    pub nonxlist_course_id: Option<i64>,
    pub default_section: Option<bool>,
    pub accepting_enrollments: Option<bool>,
    pub restrict_enrollments_to_section_dates: Option<bool>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub start_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub end_at: Option<DateTime<Utc>>,
    /// Field names protected from SIS imports; repaired when Canvas sends the array split at
    /// its commas (`["[\"course_id\"", " \"name\"]"]`).
    pub stuck_sis_fields: Option<Vec<String>>,
    pub root_account_id: Option<i64>,
    pub sis_batch_id: Option<i64>,
}

/// `enrollment_created` / `enrollment_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentData {
    /// Local enrollment id (`enrollment_id`).
    pub id: Option<i64>,
    pub course_id: Option<i64>,
    /// Local section id (`course_section_id`).
    pub section_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The observed user, observer enrollments only.
    pub associated_user_id: Option<i64>,
    /// StudentEnrollment, TeacherEnrollment, TaEnrollment, ObserverEnrollment, DesignerEnrollment …
    #[serde(rename = "type")]
    pub enrollment_type: Option<String>,
    /// active, completed, creation_pending, deleted, inactive, invited.
    pub workflow_state: Option<String>,
    pub limit_privileges_to_course_section: Option<bool>,
    pub user_name: Option<String>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `enrollment_state_created` / `enrollment_state_updated`: the computed, date-aware state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentStateData {
    pub enrollment_id: Option<i64>,
    /// active, pending_invited, pending_active, completed, inactive, deleted …
    pub state: Option<String>,
    pub state_is_current: Option<bool>,
    pub access_is_current: Option<bool>,
    pub restricted_access: Option<bool>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub state_started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub state_valid_until: Option<DateTime<Utc>>,
}

/// `user_created` / `user_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserData {
    /// Local user id (`user_id`).
    pub id: Option<i64>,
    pub name: Option<String>,
    pub short_name: Option<String>,
    /// `user_login`.
    pub login: Option<String>,
    /// `user_sis_id`.
    pub sis_id: Option<String>,
    pub uuid: Option<String>,
    /// pre_registered, registered, deleted.
    pub workflow_state: Option<String>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `account_created` / `account_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountData {
    /// Local account id (`account_id`).
    pub id: Option<i64>,
    pub name: Option<String>,
    pub parent_account_id: Option<i64>,
    pub root_account_id: Option<i64>,
    pub root_account_uuid: Option<String>,
    pub workflow_state: Option<String>,
    pub external_status: Option<String>,
    pub domain: Option<String>,
    pub default_time_zone: Option<String>,
    pub default_locale: Option<String>,
}

/// `module_created` / `module_updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleData {
    /// Local module id (`module_id`).
    pub id: Option<i64>,
    /// `context_id` when the context is a course (it almost always is).
    pub course_id: Option<i64>,
    pub context_type: Option<String>,
    pub context_id: Option<i64>,
    pub name: Option<String>,
    pub position: Option<i64>,
    /// active, unpublished, deleted.
    pub workflow_state: Option<String>,
}

/// `module_item_created` / `module_item_updated`. Canvas sends no title, type or URL for module
/// items: fetch the item through REST/GraphQL when they are needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleItemData {
    /// Local module item id (`module_item_id`).
    pub id: Option<i64>,
    pub module_id: Option<i64>,
    pub course_id: Option<i64>,
    pub context_type: Option<String>,
    pub context_id: Option<i64>,
    pub position: Option<i64>,
    /// active, unpublished, deleted.
    pub workflow_state: Option<String>,
}

/// `assignment_created` / `assignment_updated` (the description stays in `raw`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentData {
    /// Local assignment id (`assignment_id`).
    pub id: Option<i64>,
    pub course_id: Option<i64>,
    pub context_type: Option<String>,
    pub context_id: Option<i64>,
    pub assignment_group_id: Option<i64>,
    pub title: Option<String>,
    pub points_possible: Option<f64>,
    /// `submission_types`, split at commas.
    pub submission_types: Option<Vec<String>>,
    /// published, unpublished, deleted, duplicating, failed_to_duplicate …
    pub workflow_state: Option<String>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub unlock_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub lock_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub updated_at: Option<DateTime<Utc>>,
    pub lti_assignment_id: Option<String>,
    pub lti_resource_link_id: Option<String>,
}

/// `submission_created` / `submission_updated` (the submitted text stays in `raw`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionData {
    /// Local submission id (`submission_id`).
    pub id: Option<i64>,
    pub assignment_id: Option<i64>,
    pub user_id: Option<i64>,
    pub group_id: Option<i64>,
    pub attempt: Option<i64>,
    pub grade: Option<String>,
    pub score: Option<f64>,
    pub submission_type: Option<String>,
    /// submitted, pending_review, graded, unsubmitted.
    pub workflow_state: Option<String>,
    pub late: Option<bool>,
    pub missing: Option<bool>,
    pub url: Option<String>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub graded_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `grade_change`: a submission's grade was created or changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeChangeData {
    pub submission_id: Option<i64>,
    pub assignment_id: Option<i64>,
    /// The student (`user_id`, else `student_id`).
    pub user_id: Option<i64>,
    /// `None` for automatic grading.
    pub grader_id: Option<i64>,
    pub grade: Option<String>,
    pub old_grade: Option<String>,
    pub score: Option<f64>,
    pub old_score: Option<f64>,
    pub points_possible: Option<f64>,
    pub old_points_possible: Option<f64>,
    pub grading_complete: Option<bool>,
    pub muted: Option<bool>,
    pub student_sis_id: Option<String>,
}

/// `course_grade_change`: a student's course scores were recalculated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CourseGradeData {
    pub course_id: Option<i64>,
    pub user_id: Option<i64>,
    /// active or deleted (the score row).
    pub workflow_state: Option<String>,
    pub current_score: Option<f64>,
    pub old_current_score: Option<f64>,
    pub final_score: Option<f64>,
    pub old_final_score: Option<f64>,
    pub unposted_current_score: Option<f64>,
    pub old_unposted_current_score: Option<f64>,
    pub unposted_final_score: Option<f64>,
    pub old_unposted_final_score: Option<f64>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "serialize_opt_ms")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The typed form of `body` for `shape`, serialized, or `None` for [`Shape::Raw`]. Problems
/// with individual fields are appended to `warnings` as `<prefix>.<field>: …`.
pub(crate) fn normalize(
    shape: Shape,
    body: &Map<String, Value>,
    prefix: &'static str,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    let mut f = Fields {
        body,
        prefix,
        warnings,
    };
    let typed = match shape {
        Shape::Raw => return None,
        Shape::Course => to_value(course(&mut f)),
        Shape::Section => to_value(section(&mut f)),
        Shape::Enrollment => to_value(enrollment(&mut f)),
        Shape::EnrollmentState => to_value(enrollment_state(&mut f)),
        Shape::User => to_value(user(&mut f)),
        Shape::Account => to_value(account(&mut f)),
        Shape::Module => to_value(module(&mut f)),
        Shape::ModuleItem => to_value(module_item(&mut f)),
        Shape::Assignment => to_value(assignment(&mut f)),
        Shape::Submission => to_value(submission(&mut f)),
        Shape::GradeChange => to_value(grade_change(&mut f)),
        Shape::CourseGrade => to_value(course_grade(&mut f)),
    };
    match typed {
        Ok(value) => Some(value),
        Err(err) => {
            warnings.push(format!("typed data not produced: {err}"));
            None
        }
    }
}

fn to_value<T: Serialize>(typed: T) -> serde_json::Result<Value> {
    serde_json::to_value(typed)
}

fn course(f: &mut Fields<'_>) -> CourseData {
    CourseData {
        id: f.id("course_id"),
        account_id: f.id("account_id"),
        name: f.text("name"),
        uuid: f.text("uuid"),
        workflow_state: f.text("workflow_state"),
        created_at: f.time("created_at"),
        updated_at: f.time("updated_at"),
    }
}

fn section(f: &mut Fields<'_>) -> SectionData {
    SectionData {
        id: f.id("course_section_id"),
        course_id: f.id("course_id"),
        name: f.text("name"),
        workflow_state: f.text("workflow_state"),
        sis_source_id: f.text("sis_source_id"),
        integration_id: f.text("integration_id"),
        enrollment_term_id: f.id("enrollment_term_id"),
        nonxlist_course_id: f.id("nonxlist_course_id"),
        default_section: f.flag("default_section"),
        accepting_enrollments: f.flag("accepting_enrollments"),
        restrict_enrollments_to_section_dates: f.flag("restrict_enrollments_to_section_dates"),
        start_at: f.time("start_at"),
        end_at: f.time("end_at"),
        stuck_sis_fields: f.string_list("stuck_sis_fields"),
        root_account_id: f.id("root_account_id"),
        sis_batch_id: f.id("sis_batch_id"),
    }
}

fn enrollment(f: &mut Fields<'_>) -> EnrollmentData {
    EnrollmentData {
        id: f.id("enrollment_id"),
        course_id: f.id("course_id"),
        section_id: f.id("course_section_id"),
        user_id: f.id("user_id"),
        associated_user_id: f.id("associated_user_id"),
        enrollment_type: f.text("type"),
        workflow_state: f.text("workflow_state"),
        limit_privileges_to_course_section: f.flag("limit_privileges_to_course_section"),
        user_name: f.text("user_name"),
        created_at: f.time("created_at"),
        updated_at: f.time("updated_at"),
    }
}

fn enrollment_state(f: &mut Fields<'_>) -> EnrollmentStateData {
    EnrollmentStateData {
        enrollment_id: f.id("enrollment_id"),
        state: f.text("state"),
        state_is_current: f.flag("state_is_current"),
        access_is_current: f.flag("access_is_current"),
        restricted_access: f.flag("restricted_access"),
        state_started_at: f.time("state_started_at"),
        state_valid_until: f.time("state_valid_until"),
    }
}

fn user(f: &mut Fields<'_>) -> UserData {
    UserData {
        id: f.id("user_id"),
        name: f.text("name"),
        short_name: f.text("short_name"),
        login: f.text("user_login"),
        sis_id: f.text("user_sis_id"),
        uuid: f.text("uuid"),
        workflow_state: f.text("workflow_state"),
        created_at: f.time("created_at"),
        updated_at: f.time("updated_at"),
    }
}

fn account(f: &mut Fields<'_>) -> AccountData {
    AccountData {
        id: f.id("account_id"),
        name: f.text("name"),
        parent_account_id: f.id("parent_account_id"),
        root_account_id: f.id("root_account_id"),
        root_account_uuid: f.text("root_account_uuid"),
        workflow_state: f.text("workflow_state"),
        external_status: f.text("external_status"),
        domain: f.text("domain"),
        default_time_zone: f.text("default_time_zone"),
        default_locale: f.text("default_locale"),
    }
}

fn module(f: &mut Fields<'_>) -> ModuleData {
    let (context_type, context_id, course_id) = context(f);
    ModuleData {
        id: f.id("module_id"),
        course_id,
        context_type,
        context_id,
        name: f.text("name"),
        position: f.int("position"),
        workflow_state: f.text("workflow_state"),
    }
}

fn module_item(f: &mut Fields<'_>) -> ModuleItemData {
    let (context_type, context_id, course_id) = context(f);
    ModuleItemData {
        id: f.id("module_item_id"),
        module_id: f.id("module_id"),
        course_id,
        context_type,
        context_id,
        position: f.int("position"),
        workflow_state: f.text("workflow_state"),
    }
}

fn assignment(f: &mut Fields<'_>) -> AssignmentData {
    let (context_type, context_id, course_id) = context(f);
    AssignmentData {
        id: f.id("assignment_id"),
        course_id,
        context_type,
        context_id,
        assignment_group_id: f.id("assignment_group_id"),
        title: f.text("title"),
        points_possible: f.number("points_possible"),
        submission_types: f.string_list("submission_types"),
        workflow_state: f.text("workflow_state"),
        due_at: f.time("due_at"),
        unlock_at: f.time("unlock_at"),
        lock_at: f.time("lock_at"),
        updated_at: f.time("updated_at"),
        lti_assignment_id: f.text("lti_assignment_id"),
        lti_resource_link_id: f.text("lti_resource_link_id"),
    }
}

fn submission(f: &mut Fields<'_>) -> SubmissionData {
    SubmissionData {
        id: f.id("submission_id"),
        assignment_id: f.id("assignment_id"),
        user_id: f.id("user_id"),
        group_id: f.id("group_id"),
        attempt: f.int("attempt"),
        grade: f.text("grade"),
        score: f.number("score"),
        submission_type: f.text("submission_type"),
        workflow_state: f.text("workflow_state"),
        late: f.flag("late"),
        missing: f.flag("missing"),
        url: f.text("url"),
        submitted_at: f.time("submitted_at"),
        graded_at: f.time("graded_at"),
        updated_at: f.time("updated_at"),
    }
}

fn grade_change(f: &mut Fields<'_>) -> GradeChangeData {
    GradeChangeData {
        submission_id: f.id("submission_id"),
        assignment_id: f.id("assignment_id"),
        user_id: f.id("user_id").or_else(|| f.id("student_id")),
        grader_id: f.id("grader_id"),
        grade: f.text("grade"),
        old_grade: f.text("old_grade"),
        score: f.number("score"),
        old_score: f.number("old_score"),
        points_possible: f.number("points_possible"),
        old_points_possible: f.number("old_points_possible"),
        grading_complete: f.flag("grading_complete"),
        muted: f.flag("muted"),
        student_sis_id: f.text("student_sis_id"),
    }
}

fn course_grade(f: &mut Fields<'_>) -> CourseGradeData {
    CourseGradeData {
        course_id: f.id("course_id"),
        user_id: f.id("user_id"),
        workflow_state: f.text("workflow_state"),
        current_score: f.number("current_score"),
        old_current_score: f.number("old_current_score"),
        final_score: f.number("final_score"),
        old_final_score: f.number("old_final_score"),
        unposted_current_score: f.number("unposted_current_score"),
        old_unposted_current_score: f.number("old_unposted_current_score"),
        unposted_final_score: f.number("unposted_final_score"),
        old_unposted_final_score: f.number("old_unposted_final_score"),
        created_at: f.time("created_at"),
        updated_at: f.time("updated_at"),
    }
}

/// `(context_type, context_id, course_id)`; the course id is the context id when the context is
/// a course, or when no context type is given.
fn context(f: &mut Fields<'_>) -> (Option<String>, Option<i64>, Option<i64>) {
    let context_type = f.text("context_type");
    let context_id = f.id("context_id");
    let in_course = context_type.as_deref().is_none_or(|t| t == "Course");
    let course_id = if in_course {
        context_id.or_else(|| f.id("course_id"))
    } else {
        f.id("course_id")
    };
    (context_type, context_id, course_id)
}

/// Tolerant readers of single body fields: `null` and absent are `None` silently; a value of
/// the wrong type is `None` plus a warning.
struct Fields<'a> {
    body: &'a Map<String, Value>,
    prefix: &'static str,
    warnings: &'a mut Vec<String>,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.body.get(key).filter(|v| !v.is_null())
    }

    fn warn(&mut self, key: &str, expected: &str, got: &Value) {
        self.warnings.push(format!(
            "{}.{key}: expected {expected}, got {}; ignored",
            self.prefix,
            preview(got)
        ));
    }

    fn id(&mut self, key: &str) -> Option<i64> {
        let value = self.get(key)?;
        let id = ids::parse_local_id(value);
        if id.is_none() {
            self.warn(key, "an id (string or integer)", value);
        }
        id
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.warn(key, "a string", other);
                None
            }
        }
    }

    fn flag(&mut self, key: &str) -> Option<bool> {
        let value = self.get(key)?;
        let flag = match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            Value::Number(n) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            _ => None,
        };
        if flag.is_none() {
            self.warn(key, "a boolean", value);
        }
        flag
    }

    fn number(&mut self, key: &str) -> Option<f64> {
        let value = self.get(key)?;
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite());
        if number.is_none() {
            self.warn(key, "a number", value);
        }
        number
    }

    fn int(&mut self, key: &str) -> Option<i64> {
        let value = self.get(key)?;
        let int = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if int.is_none() {
            self.warn(key, "an integer", value);
        }
        int
    }

    fn time(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let value = self.get(key)?;
        match parse_time_value(value) {
            TimeParse::Iso(t) => Some(t),
            TimeParse::Lenient(t) => {
                let msg = format!(
                    "{}.{key} not ISO-8601 ({}), parsed leniently",
                    self.prefix,
                    preview(value)
                );
                self.warnings.push(msg);
                Some(t)
            }
            TimeParse::Invalid => {
                self.warn(key, "a timestamp", value);
                None
            }
        }
    }

    /// A list of strings sent as a JSON array, a JSON-encoded array string, or a comma-separated
    /// string — including Canvas's habit of splitting a JSON array text at its commas.
    fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let value = self.get(key)?;
        let joined = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                let clean = items
                    .iter()
                    .all(|s| !s.contains(['[', ']', '"']) && !s.trim().is_empty());
                if clean {
                    return Some(items.iter().map(|s| s.trim().to_owned()).collect());
                }
                items.join(",")
            }
            other => {
                self.warn(key, "a list of strings", other);
                return None;
            }
        };
        let list = split_list(&joined);
        if matches!(value, Value::Array(_)) {
            self.warnings.push(format!(
                "{}.{key} was a malformed array ({}), repaired",
                self.prefix,
                preview(value)
            ));
        }
        Some(list)
    }
}

fn split_list(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    if trimmed.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(trimmed)
    {
        return list;
    }
    trimmed
        .split(',')
        .map(|item| {
            item.trim()
                .trim_matches(|c| matches!(c, '[' | ']' | '"' | ' '))
        })
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A short rendering of a JSON value for warnings (at most ~60 characters).
pub(crate) fn preview(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        text
    } else {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(shape: Shape, body: Value) -> (Value, Vec<String>) {
        let mut warnings = Vec::new();
        let map = body.as_object().cloned().unwrap_or_default();
        let typed = normalize(shape, &map, "body", &mut warnings).expect("typed shape");
        (typed, warnings)
    }

    #[test]
    fn wrong_types_cost_the_field_not_the_event() {
        let (typed, warnings) = run(
            Shape::Enrollment,
            json!({
                "enrollment_id": "21070000000046825",
                "course_id": {"oops": 1},
                "limit_privileges_to_course_section": "maybe",
                "workflow_state": ["active"],
                "created_at": "not a time",
                "type": 7
            }),
        );
        assert_eq!(typed["id"], 46825);
        assert_eq!(typed["course_id"], Value::Null);
        assert_eq!(typed["limit_privileges_to_course_section"], Value::Null);
        assert_eq!(typed["workflow_state"], Value::Null);
        assert_eq!(typed["created_at"], Value::Null);
        assert_eq!(typed["type"], "7");
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(
            warnings[0].starts_with("body.course_id: expected an id"),
            "{warnings:?}"
        );
    }

    #[test]
    fn stuck_sis_fields_are_repaired() {
        for (input, repaired) in [
            (json!(["[\"course_id\"", " \"name\"]"]), true),
            (json!("[\"course_id\", \"name\"]"), false),
            (json!("course_id,name"), false),
            (json!(["course_id", "name"]), false),
        ] {
            let (typed, warnings) = run(Shape::Section, json!({ "stuck_sis_fields": input }));
            assert_eq!(
                typed["stuck_sis_fields"],
                json!(["course_id", "name"]),
                "{input}"
            );
            assert_eq!(!warnings.is_empty(), repaired, "{input}: {warnings:?}");
        }
    }

    #[test]
    fn module_context_gives_course_id() {
        let (typed, _) = run(
            Shape::Module,
            json!({"context_id": "565", "context_type": "Course", "module_id": "14", "position": 3}),
        );
        assert_eq!(typed["course_id"], 565);
        assert_eq!(typed["id"], 14);
        assert_eq!(typed["position"], 3);
        let (typed, _) = run(
            Shape::Module,
            json!({"context_id": "7", "context_type": "Group", "module_id": "14"}),
        );
        assert_eq!(typed["course_id"], Value::Null);
    }

    #[test]
    fn assignment_submission_types_split() {
        let (typed, _) = run(
            Shape::Assignment,
            json!({"submission_types": "online_url,online_upload", "points_possible": "100"}),
        );
        assert_eq!(
            typed["submission_types"],
            json!(["online_url", "online_upload"])
        );
        assert_eq!(typed["points_possible"], 100.0);
    }
}
