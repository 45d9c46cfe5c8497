//! Canvas-format Live Events messages (`{"metadata":{...},"body":{...}}`), shaped like the
//! published examples in `data/canvas/live_events/`. Metadata ids are global
//! (`shard × 10^13 + local`) as in every example; body ids are global or local per event
//! kind exactly as the examples show (canvas.md A6/A8). Bodies are built from model rows, so
//! an event always says what the REST API would say at that moment.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::RngCore;
use serde_json::{Map, Value, json};

use crate::clock::{iso, iso_ms};
use crate::ids::{self, global_id, local_id};
use crate::university::{
    Assignment, Course, Enrollment, Module, ModuleItem, Section, Submission, University, User,
    grade_for,
};

/// Who caused a change: a user through an HTTP request (UI or API) or a background job.
#[derive(Debug, Clone)]
pub enum Origin {
    Request {
        user_id: u64,
        method: &'static str,
        /// Path and query of the request (the host is added).
        path: String,
        /// Through an API token (adds `developer_key_id`) rather than the browser UI.
        api: bool,
        /// The actor's role in the context (`TeacherEnrollment`) when it has one.
        role: Option<&'static str>,
    },
    Job {
        tag: &'static str,
    },
}

/// The context an event happened in.
#[derive(Debug, Clone, Copy)]
pub enum Context {
    Course(u64),
    Account(u64),
    None,
}

/// Ids as the event kind's published example writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm {
    Global,
    Local,
}

impl IdForm {
    pub fn of(event: &str) -> IdForm {
        match event {
            "course_section_created"
            | "course_section_updated"
            | "module_created"
            | "module_updated"
            | "module_item_created"
            | "module_item_updated"
            | "course_grade_change"
            | "course_completed"
            | "course_progress"
            | "grade_override"
            | "sis_batch_created"
            | "sis_batch_updated" => IdForm::Local,
            _ => IdForm::Global,
        }
    }

    fn id(self, local: u64) -> String {
        match self {
            IdForm::Global => global_id(local),
            IdForm::Local => local_id(local),
        }
    }

    fn opt(self, local: Option<u64>) -> Value {
        local.map_or(Value::Null, |l| Value::String(self.id(l)))
    }
}

/// Builds envelopes for one world: knows the host, the root account and a stream for
/// request, session and job ids.
#[derive(Debug)]
pub struct Envelopes {
    pub hostname: String,
    rng: ChaCha20Rng,
    next_job: u64,
}

const DEVELOPER_KEY_ID: &str = "170000000056";
const CLIENT_IP: &str = "198.51.100.24";
const BROWSER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
const API_AGENT: &str = "coursewire/0.1";

impl Envelopes {
    pub fn new(seed: u64, hostname: &str) -> Envelopes {
        Envelopes {
            hostname: hostname.to_owned(),
            rng: ids::rng(seed, "live-events"),
            next_job: 1_020_020_528_469_291,
        }
    }

    /// A full envelope for `event_name` with `body`.
    pub fn envelope(
        &mut self,
        u: &University,
        event_name: &str,
        origin: &Origin,
        context: Context,
        body: Value,
        now_ms: i64,
    ) -> Value {
        let mut m = Map::new();
        m.insert("event_name".into(), json!(event_name));
        m.insert("event_time".into(), json!(iso_ms(now_ms)));
        m.insert("producer".into(), json!("canvas"));
        m.insert("hostname".into(), json!(self.hostname));
        m.insert(
            "root_account_id".into(),
            json!(global_id(u.root_account_id)),
        );
        m.insert("root_account_uuid".into(), json!(u.root_account_uuid));
        m.insert(
            "root_account_lti_guid".into(),
            json!(format!("{}.{}", u.root_account_uuid, self.hostname)),
        );
        match context {
            Context::Course(id) => {
                m.insert("context_type".into(), json!("Course"));
                m.insert("context_id".into(), json!(global_id(id)));
                if let Some(c) = u.courses.get(id) {
                    m.insert("context_account_id".into(), json!(global_id(c.account_id)));
                    if let Some(sis) = &c.sis_course_id {
                        m.insert("context_sis_source_id".into(), json!(sis));
                    }
                }
            }
            Context::Account(id) => {
                m.insert("context_type".into(), json!("Account"));
                m.insert("context_id".into(), json!(global_id(id)));
                m.insert("context_account_id".into(), json!(global_id(id)));
            }
            Context::None => {}
        }
        match origin {
            Origin::Request {
                user_id,
                method,
                path,
                api,
                role,
            } => {
                let user = u.users.get(*user_id);
                m.insert("user_id".into(), json!(global_id(*user_id)));
                m.insert("user_login".into(), json!(user.map(|x| x.login_id.clone())));
                m.insert(
                    "user_sis_id".into(),
                    json!(user.and_then(|x| x.sis_user_id.clone())),
                );
                m.insert(
                    "user_account_id".into(),
                    json!(global_id(u.root_account_id)),
                );
                m.insert("time_zone".into(), json!(crate::university::TIME_ZONE));
                m.insert(
                    "request_id".into(),
                    json!(ids::uuid(&mut self.rng).to_string()),
                );
                m.insert(
                    "session_id".into(),
                    json!(ids::hex_token(&mut self.rng, 16)),
                );
                m.insert("http_method".into(), json!(method));
                m.insert(
                    "url".into(),
                    json!(format!("https://{}{}", self.hostname, path)),
                );
                m.insert("referrer".into(), Value::Null);
                m.insert("client_ip".into(), json!(CLIENT_IP));
                m.insert(
                    "user_agent".into(),
                    json!(if *api { API_AGENT } else { BROWSER_AGENT }),
                );
                if *api {
                    m.insert("developer_key_id".into(), json!(DEVELOPER_KEY_ID));
                }
                if let (Some(role), Context::Course(_)) = (role, context) {
                    m.insert("context_role".into(), json!(role));
                }
            }
            Origin::Job { tag } => {
                self.next_job += 1 + u64::from(self.rng.next_u32() % 7);
                m.insert("job_id".into(), json!(self.next_job.to_string()));
                m.insert("job_tag".into(), json!(tag));
            }
        }
        json!({ "metadata": Value::Object(m), "body": body })
    }
}

fn ts(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |t| json!(iso(t)))
}

pub fn course_body(event: &str, c: &Course) -> Value {
    let f = IdForm::of(event);
    json!({
        "account_id": f.id(c.account_id),
        "course_id": f.id(c.id),
        "created_at": iso(c.created_at),
        "name": c.name,
        "updated_at": iso(c.updated_at),
        "uuid": c.uuid,
        "workflow_state": c.workflow_state.event(),
    })
}

pub fn section_body(event: &str, s: &Section, u: &University) -> Value {
    let f = IdForm::of(event);
    let term = u.courses.get(s.course_id).map(|c| c.term_id);
    json!({
        "accepting_enrollments": s.workflow_state == "active",
        "can_manually_enroll": Value::Null,
        "course_id": f.id(s.course_id),
        "course_section_id": f.id(s.id),
        "default_section": s.default_section,
        "end_at": ts(s.end_at),
        "enrollment_term_id": f.opt(term),
        "integration_id": s.integration_id,
        "name": s.name,
        "nonxlist_course_id": Value::Null,
        "restrict_enrollments_to_section_dates": s.restrict_enrollments_to_section_dates,
        "root_account_id": f.id(u.root_account_id),
        "sis_batch_id": Value::Null,
        "sis_source_id": s.sis_section_id,
        "start_at": ts(s.start_at),
        "stuck_sis_fields": [],
        "workflow_state": s.workflow_state,
    })
}

pub fn enrollment_body(event: &str, e: &Enrollment, u: &University) -> Value {
    let f = IdForm::of(event);
    let mut body = json!({
        "course_id": f.id(e.course_id),
        "course_section_id": f.id(e.section_id),
        "created_at": iso(e.created_at),
        "enrollment_id": f.id(e.id),
        "limit_privileges_to_course_section": e.limit_privileges_to_course_section,
        "type": e.kind.as_str(),
        "updated_at": iso(e.updated_at),
        "user_id": f.id(e.user_id),
        "user_name": u.users.get(e.user_id).map(|x| x.name.clone()),
        "workflow_state": e.state.as_str(),
    });
    // "Omitted from non-observer enrollments" (schema).
    if let (Some(observed), Some(map)) = (e.associated_user_id, body.as_object_mut()) {
        map.insert("associated_user_id".into(), json!(f.id(observed)));
    }
    body
}

pub fn enrollment_state_body(event: &str, e: &Enrollment, u: &University) -> Value {
    let f = IdForm::of(event);
    let current = matches!(e.state, crate::university::EnrollmentState::Active);
    json!({
        "access_is_current": true,
        "enrollment_id": f.id(e.id),
        "restricted_access": false,
        "state": e.state.computed(),
        "state_is_current": true,
        "state_started_at": iso(e.updated_at),
        "state_valid_until": if current { json!(iso(u.term_end)) } else { Value::Null },
    })
}

pub fn user_body(event: &str, user: &User) -> Value {
    let f = IdForm::of(event);
    json!({
        "created_at": iso(user.created_at),
        "name": user.name,
        "short_name": user.short_name,
        "updated_at": iso(user.updated_at),
        "user_id": f.id(user.id),
        "user_login": user.login_id,
        "user_sis_id": user.sis_user_id,
        "uuid": user.uuid,
        "workflow_state": user.workflow_state,
    })
}

pub fn assignment_body(event: &str, a: &Assignment, u: &University, hostname: &str) -> Value {
    let f = IdForm::of(event);
    let course_uuid = u.courses.get(a.course_id).map(|c| c.uuid.clone());
    json!({
        "assignment_group_id": f.id(a.assignment_group_id),
        "assignment_id": f.id(a.id),
        "context_id": f.id(a.course_id),
        "context_type": "Course",
        "context_uuid": course_uuid,
        "created_on_blueprint_sync": false,
        "description": truncate(&a.description, 8_192),
        "due_at": ts(a.due_at),
        "lock_at": ts(a.lock_at),
        "lti_assignment_id": a.lti_assignment_id,
        "lti_resource_link_id": Value::Null,
        "lti_resource_link_id_duplicated_from": Value::Null,
        "assignment_id_duplicated_from": Value::Null,
        "domain_duplicated_from": Value::Null,
        "domain": hostname,
        "points_possible": a.points_possible,
        "submission_types": a.submission_types.join(","),
        "title": truncate(&a.name, 8_192),
        "unlock_at": ts(a.unlock_at),
        "updated_at": iso(a.updated_at),
        "workflow_state": a.workflow_state,
    })
}

pub fn submission_body(event: &str, s: &Submission, a: &Assignment) -> Value {
    let f = IdForm::of(event);
    json!({
        "assignment_id": f.id(s.assignment_id),
        "attempt": s.attempt,
        "body": s.body.as_deref().map(|b| truncate(b, 8_192)),
        "grade": s.grade,
        "graded_at": ts(s.graded_at),
        "group_id": Value::Null,
        "late": s.late,
        "lti_assignment_id": a.lti_assignment_id,
        "lti_user_id": Value::Null,
        "missing": s.missing,
        "score": s.score,
        "submission_id": f.id(s.id),
        "submission_type": s.submission_type,
        "submitted_at": ts(s.submitted_at),
        "updated_at": iso(s.updated_at),
        "url": s.url,
        "user_id": f.id(s.user_id),
        "workflow_state": s.workflow_state,
    })
}

#[derive(Debug)]
pub struct GradeChange<'a> {
    pub submission: &'a Submission,
    pub assignment: &'a Assignment,
    pub old_score: Option<f64>,
    pub grader_id: Option<u64>,
    pub student_sis_id: Option<String>,
}

pub fn grade_change_body(g: &GradeChange<'_>) -> Value {
    let f = IdForm::Global;
    let s = g.submission;
    json!({
        "assignment_id": f.id(s.assignment_id),
        "grade": s.grade,
        "grader_id": f.opt(g.grader_id),
        "grading_complete": s.score.is_some(),
        "muted": false,
        "old_grade": g.old_score.map(grade_for),
        "old_points_possible": g.assignment.points_possible,
        "old_score": g.old_score,
        "points_possible": g.assignment.points_possible,
        "score": s.score,
        "student_id": f.id(s.user_id),
        "student_sis_id": g.student_sis_id,
        "submission_id": f.id(s.id),
        "user_id": f.id(s.user_id),
    })
}

#[derive(Debug)]
pub struct CourseGrade {
    pub user_id: u64,
    pub course_id: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub current: Option<f64>,
    pub old_current: Option<f64>,
    pub final_score: Option<f64>,
    pub old_final: Option<f64>,
}

pub fn course_grade_change_body(g: &CourseGrade) -> Value {
    let f = IdForm::Local;
    json!({
        "user_id": f.id(g.user_id),
        "course_id": f.id(g.course_id),
        "workflow_state": "active",
        "created_at": iso(g.created_at),
        "updated_at": iso(g.updated_at),
        "current_score": g.current,
        "old_current_score": g.old_current,
        "final_score": g.final_score,
        "old_final_score": g.old_final,
        "unposted_current_score": g.current,
        "old_unposted_current_score": g.old_current,
        "unposted_final_score": g.final_score,
        "old_unposted_final_score": g.old_final,
    })
}

pub fn module_body(event: &str, m: &Module) -> Value {
    let f = IdForm::of(event);
    json!({
        "context_id": f.id(m.course_id),
        "context_type": "Course",
        "module_id": f.id(m.id),
        "name": m.name,
        "position": m.position,
        "workflow_state": m.event_state(),
    })
}

pub fn module_item_body(event: &str, item: &ModuleItem) -> Value {
    let f = IdForm::of(event);
    json!({
        "context_id": f.id(item.course_id),
        "context_type": "Course",
        "module_id": f.id(item.module_id),
        "module_item_id": f.id(item.id),
        "position": item.position,
        "workflow_state": if item.workflow_state == "active" && !item.published { "unpublished" } else { item.workflow_state },
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
