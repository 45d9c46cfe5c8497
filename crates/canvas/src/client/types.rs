//! Serde models of the Canvas REST objects coursewire reads (canvas.md B5). Only the fields
//! the service needs; every field is optional or defaulted and unknown fields are ignored, so
//! Canvas adding, omitting or nulling a field never breaks a crawl. They must not carry
//! behaviour: mapping to coursewire's domain happens elsewhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /accounts/:id/courses`, `GET /courses/:id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Course {
    pub id: u64,
    pub name: Option<String>,
    pub course_code: Option<String>,
    pub workflow_state: Option<String>,
    pub account_id: Option<u64>,
    pub root_account_id: Option<u64>,
    pub enrollment_term_id: Option<u64>,
    pub sis_course_id: Option<String>,
    pub integration_id: Option<String>,
    pub uuid: Option<String>,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub time_zone: Option<String>,
}

/// `GET /courses/:id/sections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Section {
    pub id: u64,
    pub course_id: Option<u64>,
    pub name: Option<String>,
    pub sis_section_id: Option<String>,
    pub integration_id: Option<String>,
    pub sis_course_id: Option<String>,
    pub nonxlist_course_id: Option<u64>,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
}

/// The user stub embedded in enrollments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserStub {
    pub id: u64,
    pub name: Option<String>,
    pub sortable_name: Option<String>,
    pub short_name: Option<String>,
    pub sis_user_id: Option<String>,
    pub login_id: Option<String>,
}

/// `GET /courses/:id/enrollments` (and section/user variants).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Enrollment {
    pub id: u64,
    pub user_id: Option<u64>,
    pub course_id: Option<u64>,
    pub course_section_id: Option<u64>,
    /// `StudentEnrollment`, `TeacherEnrollment`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub role: Option<String>,
    pub role_id: Option<u64>,
    pub enrollment_state: Option<String>,
    pub sis_user_id: Option<String>,
    pub sis_section_id: Option<String>,
    pub sis_course_id: Option<String>,
    pub limit_privileges_to_course_section: Option<bool>,
    /// The observed student of an `ObserverEnrollment`.
    pub associated_user_id: Option<u64>,
    pub updated_at: Option<DateTime<Utc>>,
    pub user: Option<UserStub>,
}

/// `GET /users/:id`, `GET /accounts/:id/users`, `GET /courses/:id/users`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub id: u64,
    pub name: Option<String>,
    pub sortable_name: Option<String>,
    pub short_name: Option<String>,
    pub sis_user_id: Option<String>,
    pub integration_id: Option<String>,
    pub login_id: Option<String>,
    pub email: Option<String>,
    pub time_zone: Option<String>,
}

/// `GET /courses/:id/modules`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Module {
    pub id: u64,
    pub name: Option<String>,
    pub position: Option<u32>,
    pub workflow_state: Option<String>,
    pub published: Option<bool>,
    pub items_count: Option<u32>,
    pub items_url: Option<String>,
    pub unlock_at: Option<DateTime<Utc>>,
}

/// `module_item[completion_requirement]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletionRequirement {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub min_score: Option<f64>,
    pub completed: Option<bool>,
}

/// `GET /courses/:id/modules/:id/items`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleItem {
    pub id: u64,
    pub module_id: Option<u64>,
    pub position: Option<u32>,
    pub title: Option<String>,
    pub indent: Option<u32>,
    /// `File`, `Page`, `ExternalUrl`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub content_id: Option<u64>,
    pub html_url: Option<String>,
    pub url: Option<String>,
    pub page_url: Option<String>,
    pub external_url: Option<String>,
    pub new_tab: Option<bool>,
    pub published: Option<bool>,
    pub completion_requirement: Option<CompletionRequirement>,
}

/// `GET /courses/:id/assignments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Assignment {
    pub id: u64,
    pub course_id: Option<u64>,
    pub name: Option<String>,
    pub position: Option<u32>,
    pub due_at: Option<DateTime<Utc>>,
    pub unlock_at: Option<DateTime<Utc>>,
    pub lock_at: Option<DateTime<Utc>>,
    pub points_possible: Option<f64>,
    pub grading_type: Option<String>,
    pub submission_types: Option<Vec<String>>,
    pub published: Option<bool>,
    pub workflow_state: Option<String>,
    pub html_url: Option<String>,
    pub integration_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_of_missing_extra_and_null_fields() {
        let e: Enrollment = serde_json::from_str(
            r#"{"id":5,"type":"StudentEnrollment","user":{"id":9,"name":"A","extra":1},
               "updated_at":null,"surprise":[1,2]}"#,
        )
        .expect("decodes");
        assert_eq!(e.kind.as_deref(), Some("StudentEnrollment"));
        assert_eq!(e.user.map(|u| u.id), Some(9));
        let a: Assignment =
            serde_json::from_str(r#"{"id":1,"submission_types":null}"#).expect("decodes");
        assert_eq!(a.id, 1, "null arrays must not fail a crawl");
    }
}
