//! REST JSON for Canvas objects, with every member of the published API models
//! (`data/canvas/rest_fixtures/api_doc_models/`) so clients meet the shapes they will meet on
//! a real Canvas: integer ids, ISO-8601 times, `null` where Canvas has nothing to say.
//! URLs point at the simulator's own origin so a client can follow them.

use serde_json::{Value, json};

use crate::changes::course_scores;
use crate::clock::iso;
use crate::university::*;

/// Members of a Course Canvas sends only when `include[]` names them, with that name.
pub const COURSE_INCLUDES: &[(&str, &str)] = &[
    ("syllabus_body", "syllabus_body"),
    ("public_description", "public_description"),
    ("total_students", "total_students"),
    ("term", "term"),
    ("course_progress", "course_progress"),
    ("needs_grading_count", "needs_grading_count"),
    ("storage_quota_used_mb", "storage_quota_used_mb"),
    ("permissions", "permissions"),
];
/// Members of a Section sent only on request.
pub const SECTION_INCLUDES: &[(&str, &str)] = &[("total_students", "total_students")];
/// Members of a User in a list (course users, `search_users`) sent only on request.
pub const USER_LIST_INCLUDES: &[(&str, &str)] = &[
    ("email", "email"),
    ("avatar_url", "avatar_url"),
    ("last_login", "last_login"),
    ("time_zone", "time_zone"),
    ("locale", "locale"),
    ("bio", "bio"),
    ("enrollments", "enrollments"),
];
/// Members of an Assignment sent only on request.
pub const ASSIGNMENT_INCLUDES: &[(&str, &str)] = &[
    ("all_dates", "all_dates"),
    ("submission", "submission"),
    ("assignment_visibility", "assignment_visibility"),
    ("overrides", "overrides"),
    (
        "needs_grading_count_by_section",
        "needs_grading_count_by_section",
    ),
];
/// Members of a Submission sent only on request.
pub const SUBMISSION_INCLUDES: &[(&str, &str)] = &[
    ("assignment", "assignment"),
    ("course", "course"),
    ("user", "user"),
    ("submission_comments", "submission_comments"),
];
/// Members of a single User (`GET /users/:id` sends email, locale, avatar and time zone).
pub const USER_INCLUDES: &[(&str, &str)] = &[("last_login", "last_login"), ("bio", "bio")];

/// `v` without the members `gated` lists whose `include[]` value `wanted` does not name:
/// Canvas leaves them out rather than sending `null`.
pub fn with_includes(mut v: Value, gated: &[(&str, &str)], wanted: &[&str]) -> Value {
    if let Some(m) = v.as_object_mut() {
        for (member, include) in gated {
            if !wanted.contains(include) {
                m.remove(*member);
            }
        }
    }
    v
}

fn ts(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |t| json!(iso(t)))
}

pub fn course(u: &University, c: &Course, origin: &str) -> Value {
    let term = u.terms.get(c.term_id);
    let students = u.course_students(c.id).len();
    json!({
        "id": c.id,
        "sis_course_id": c.sis_course_id,
        "uuid": c.uuid,
        "integration_id": c.integration_id,
        "sis_import_id": c.sis_course_id.as_ref().map(|_| 1),
        "name": c.name,
        "course_code": c.course_code,
        "original_name": Value::Null,
        "workflow_state": c.workflow_state.rest(),
        "account_id": c.account_id,
        "root_account_id": u.root_account_id,
        "enrollment_term_id": c.term_id,
        "grading_periods": Value::Null,
        "grading_standard_id": Value::Null,
        "grade_passback_setting": Value::Null,
        "created_at": iso(c.created_at),
        "start_at": ts(c.start_at),
        "end_at": ts(c.end_at),
        "locale": Value::Null,
        "enrollments": Value::Null,
        "total_students": students,
        "calendar": { "ics": format!("{origin}/feeds/calendars/course_{}.ics", c.uuid) },
        "default_view": "modules",
        "syllabus_body": Value::Null,
        "needs_grading_count": 0,
        "term": term.map(|t| json!({"id": t.id, "name": t.name, "start_at": ts(t.start_at), "end_at": ts(t.end_at)})),
        "course_progress": Value::Null,
        "apply_assignment_group_weights": false,
        "permissions": {},
        "is_public": false,
        "is_public_to_auth_users": false,
        "public_syllabus": false,
        "public_syllabus_to_auth": false,
        "public_description": Value::Null,
        "storage_quota_mb": 500,
        "storage_quota_used_mb": 0.0,
        "hide_final_grades": false,
        "license": "private",
        "allow_student_assignment_edits": false,
        "allow_wiki_comments": false,
        "allow_student_forum_attachments": false,
        "open_enrollment": false,
        "self_enrollment": false,
        "restrict_enrollments_to_course_dates": false,
        "course_format": c.course_format,
        "access_restricted_by_date": false,
        "time_zone": TIME_ZONE,
        "blueprint": false,
        "template": false,
    })
}

pub fn section(u: &University, s: &Section) -> Value {
    let course = u.courses.get(s.course_id);
    let students = University::ids(&u.section_enrollments, s.id)
        .iter()
        .filter_map(|e| u.enrollments.get(*e))
        .filter(|e| {
            e.kind == EnrollmentType::StudentEnrollment && e.state == EnrollmentState::Active
        })
        .count();
    json!({
        "id": s.id,
        "name": s.name,
        "sis_section_id": s.sis_section_id,
        "integration_id": s.integration_id,
        "sis_import_id": s.sis_section_id.as_ref().map(|_| 1),
        "course_id": s.course_id,
        "sis_course_id": course.and_then(|c| c.sis_course_id.clone()),
        "start_at": ts(s.start_at),
        "end_at": ts(s.end_at),
        "restrict_enrollments_to_section_dates": s.restrict_enrollments_to_section_dates,
        "nonxlist_course_id": Value::Null,
        "total_students": students,
        "created_at": iso(s.created_at),
    })
}

pub fn user_stub(user: &User) -> Value {
    json!({
        "id": user.id,
        "name": user.name,
        "created_at": iso(user.created_at),
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
        "sis_user_id": user.sis_user_id,
        "integration_id": user.integration_id,
        "login_id": user.login_id,
    })
}

pub fn user(user: &User) -> Value {
    json!({
        "id": user.id,
        "name": user.name,
        "sortable_name": user.sortable_name,
        "last_name": user.last_name,
        "first_name": user.first_name,
        "short_name": user.short_name,
        "sis_user_id": user.sis_user_id,
        "sis_import_id": user.sis_user_id.as_ref().map(|_| 1),
        "integration_id": user.integration_id,
        "login_id": user.login_id,
        "avatar_url": format!("https://canvas.instructure.com/images/messages/avatar-50.png?u={}", user.id),
        "avatar_state": "none",
        "enrollments": Value::Null,
        "email": user.email,
        "locale": Value::Null,
        "last_login": Value::Null,
        "time_zone": TIME_ZONE,
        "bio": Value::Null,
        "pronouns": user.pronouns,
        "created_at": iso(user.created_at),
    })
}

pub fn enrollment(u: &University, e: &Enrollment, origin: &str) -> Value {
    let course = u.courses.get(e.course_id);
    let section = u.sections.get(e.section_id);
    let account = course.and_then(|c| u.accounts.get(c.account_id));
    let person = u.users.get(e.user_id);
    let mut v = json!({
        "id": e.id,
        "course_id": e.course_id,
        "sis_course_id": course.and_then(|c| c.sis_course_id.clone()),
        "course_integration_id": course.and_then(|c| c.integration_id.clone()),
        "course_section_id": e.section_id,
        "section_integration_id": section.and_then(|s| s.integration_id.clone()),
        "sis_account_id": account.and_then(|a| a.sis_account_id.clone()),
        "sis_section_id": section.and_then(|s| s.sis_section_id.clone()),
        "sis_user_id": person.and_then(|p| p.sis_user_id.clone()),
        "enrollment_state": e.state.as_str(),
        "limit_privileges_to_course_section": e.limit_privileges_to_course_section,
        "sis_import_id": if e.from_sis { json!(1) } else { Value::Null },
        "root_account_id": u.root_account_id,
        "type": e.kind.as_str(),
        "user_id": e.user_id,
        "associated_user_id": e.associated_user_id,
        "role": e.kind.as_str(),
        "role_id": e.kind.role_id(),
        "created_at": iso(e.created_at),
        "updated_at": iso(e.updated_at),
        "start_at": Value::Null,
        "end_at": Value::Null,
        "last_activity_at": ts(e.last_activity_at),
        "last_attended_at": Value::Null,
        "total_activity_time": 0,
        "html_url": format!("{origin}/courses/{}/users/{}", e.course_id, e.user_id),
        "user": person.map(user_stub),
    });
    if e.kind == EnrollmentType::StudentEnrollment {
        let (current, final_score) = course_scores(u, e.course_id, e.user_id);
        let extra = json!({
            "grades": {
                "html_url": format!("{origin}/courses/{}/grades/{}", e.course_id, e.user_id),
                "current_score": current,
                "current_grade": Value::Null,
                "final_score": final_score.unwrap_or(0.0),
                "final_grade": Value::Null,
                "unposted_current_score": current,
                "unposted_final_score": final_score.unwrap_or(0.0),
            },
            "override_grade": Value::Null,
            "override_score": Value::Null,
            "unposted_current_grade": Value::Null,
            "unposted_final_grade": Value::Null,
            "unposted_current_score": current,
            "unposted_final_score": final_score.unwrap_or(0.0),
            "has_grading_periods": false,
            "totals_for_all_grading_periods_option": true,
            "current_grading_period_title": Value::Null,
            "current_grading_period_id": Value::Null,
            "current_period_override_grade": Value::Null,
            "current_period_override_score": Value::Null,
            "current_period_unposted_current_score": Value::Null,
            "current_period_unposted_final_score": Value::Null,
            "current_period_unposted_current_grade": Value::Null,
            "current_period_unposted_final_grade": Value::Null,
        });
        if let (Some(map), Value::Object(extra)) = (v.as_object_mut(), extra) {
            map.extend(extra);
        }
    }
    v
}

pub fn module(u: &University, m: &Module, origin: &str, with_items: bool) -> Value {
    let items: Vec<&ModuleItem> = University::ids(&u.module_items_by_module, m.id)
        .iter()
        .filter_map(|i| u.module_items.get(*i))
        .filter(|i| i.workflow_state != "deleted")
        .collect();
    let mut sorted = items.clone();
    sorted.sort_by_key(|i| (i.position, i.id));
    json!({
        "id": m.id,
        "workflow_state": m.workflow_state,
        "position": m.position,
        "name": m.name,
        "unlock_at": ts(m.unlock_at),
        "require_sequential_progress": m.require_sequential_progress,
        "requirement_type": "all",
        "prerequisite_module_ids": [],
        "items_count": items.len(),
        "items_url": format!("{origin}/api/v1/courses/{}/modules/{}/items", m.course_id, m.id),
        "items": if with_items { json!(sorted.iter().map(|i| module_item(u, i, origin)).collect::<Vec<_>>()) } else { Value::Null },
        "state": Value::Null,
        "completed_at": Value::Null,
        "publish_final_grade": false,
        "published": m.published,
    })
}

pub fn module_item(u: &University, i: &ModuleItem, origin: &str) -> Value {
    let c = i.course_id;
    let (html_url, url) = match i.kind {
        ItemKind::Assignment => (
            format!("{origin}/courses/{c}/modules/items/{}", i.id),
            json!(format!(
                "{origin}/api/v1/courses/{c}/assignments/{}",
                i.content_id.unwrap_or(0)
            )),
        ),
        ItemKind::Page => (
            format!("{origin}/courses/{c}/modules/items/{}", i.id),
            json!(format!(
                "{origin}/api/v1/courses/{c}/pages/{}",
                i.page_url.clone().unwrap_or_default()
            )),
        ),
        ItemKind::File => (
            format!("{origin}/courses/{c}/modules/items/{}", i.id),
            json!(format!(
                "{origin}/api/v1/courses/{c}/files/{}",
                i.content_id.unwrap_or(0)
            )),
        ),
        _ => (
            format!("{origin}/courses/{c}/modules/items/{}", i.id),
            Value::Null,
        ),
    };
    let details = match i.kind {
        ItemKind::Assignment => {
            let a = i.content_id.and_then(|id| u.assignments.get(id));
            json!({
                "points_possible": a.map(|a| a.points_possible),
                "due_at": ts(a.and_then(|a| a.due_at)),
                "unlock_at": ts(a.and_then(|a| a.unlock_at)),
                "lock_at": ts(a.and_then(|a| a.lock_at)),
            })
        }
        _ => json!({}),
    };
    json!({
        "id": i.id,
        "module_id": i.module_id,
        "position": i.position,
        "title": i.title,
        "indent": i.indent,
        "type": i.kind.as_str(),
        "content_id": i.content_id,
        "html_url": html_url,
        "url": url,
        "page_url": i.page_url,
        "external_url": i.external_url,
        "new_tab": i.new_tab,
        "completion_requirement": i.completion_requirement.as_ref().map(|c| json!({
            "type": c.kind, "min_score": c.min_score, "completed": false,
        })),
        "content_details": details,
        "published": i.published,
    })
}

pub fn assignment(
    a: &Assignment,
    origin: &str,
    needs_grading: usize,
    has_submitted: bool,
) -> Value {
    let c = a.course_id;
    json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
        "due_at": ts(a.due_at),
        "lock_at": ts(a.lock_at),
        "unlock_at": ts(a.unlock_at),
        "has_overrides": false,
        "all_dates": Value::Null,
        "course_id": c,
        "html_url": format!("{origin}/courses/{c}/assignments/{}", a.id),
        "submissions_download_url": format!("{origin}/courses/{c}/assignments/{}/submissions?zip=1", a.id),
        "assignment_group_id": a.assignment_group_id,
        "due_date_required": false,
        "allowed_extensions": [],
        "max_name_length": 255,
        "turnitin_enabled": false,
        "vericite_enabled": false,
        "turnitin_settings": Value::Null,
        "grade_group_students_individually": false,
        "external_tool_tag_attributes": Value::Null,
        "peer_reviews": false,
        "automatic_peer_reviews": false,
        "peer_review_count": 0,
        "peer_reviews_assign_at": Value::Null,
        "intra_group_peer_reviews": false,
        "group_category_id": Value::Null,
        "needs_grading_count": needs_grading,
        "needs_grading_count_by_section": Value::Null,
        "position": a.position,
        "post_to_sis": false,
        "integration_id": Value::Null,
        "integration_data": {},
        "points_possible": a.points_possible,
        "submission_types": a.submission_types,
        "has_submitted_submissions": has_submitted,
        "grading_type": a.grading_type,
        "grading_standard_id": Value::Null,
        "published": a.published,
        "unpublishable": !has_submitted,
        "only_visible_to_overrides": false,
        "locked_for_user": false,
        "lock_info": Value::Null,
        "lock_explanation": Value::Null,
        "quiz_id": Value::Null,
        "anonymous_submissions": false,
        "discussion_topic": Value::Null,
        "freeze_on_copy": false,
        "frozen": false,
        "frozen_attributes": [],
        "submission": Value::Null,
        "use_rubric_for_grading": false,
        "rubric_settings": Value::Null,
        "rubric": Value::Null,
        "assignment_visibility": Value::Null,
        "overrides": Value::Null,
        "omit_from_final_grade": false,
        "hide_in_gradebook": false,
        "moderated_grading": false,
        "grader_count": 0,
        "final_grader_id": Value::Null,
        "grader_comments_visible_to_graders": true,
        "graders_anonymous_to_graders": false,
        "grader_names_visible_to_final_grader": true,
        "anonymous_grading": false,
        "allowed_attempts": -1,
        "post_manually": false,
        "score_statistics": Value::Null,
        "can_submit": Value::Null,
        "ab_guid": [],
        "annotatable_attachment_id": Value::Null,
        "anonymize_students": false,
        "require_lockdown_browser": false,
        "important_dates": false,
        "muted": false,
        "anonymous_peer_reviews": false,
        "anonymous_instructor_annotations": false,
        "graded_submissions_exist": has_submitted,
        "is_quiz_assignment": a.submission_types.contains(&"online_quiz"),
        "in_closed_grading_period": false,
        "can_duplicate": true,
        "original_course_id": Value::Null,
        "original_assignment_id": Value::Null,
        "original_lti_resource_link_id": Value::Null,
        "original_assignment_name": Value::Null,
        "original_quiz_id": Value::Null,
        "workflow_state": a.workflow_state,
    })
}

pub fn submission(s: &Submission, origin: &str, now: i64, due_at: Option<i64>) -> Value {
    let c = s.course_id;
    let missing = s.submitted_at.is_none() && s.score.is_none() && due_at.is_some_and(|d| d < now);
    let seconds_late = match (s.submitted_at, due_at) {
        (Some(at), Some(due)) if at > due => (at - due) / 1000,
        _ => 0,
    };
    json!({
        "id": s.id,
        "assignment_id": s.assignment_id,
        "assignment": Value::Null,
        "course": Value::Null,
        "attempt": s.attempt,
        "body": s.body,
        "grade": s.grade,
        // Before any late-policy deduction (the simulator deducts none); Canvas always sends
        // both.
        "entered_grade": s.grade,
        "entered_score": s.score,
        "grade_matches_current_submission": true,
        "html_url": format!("{origin}/courses/{c}/assignments/{}/submissions/{}", s.assignment_id, s.user_id),
        "preview_url": format!("{origin}/courses/{c}/assignments/{}/submissions/{}?preview=1", s.assignment_id, s.user_id),
        "score": s.score,
        "submission_comments": Value::Null,
        "submission_type": s.submission_type,
        "submitted_at": ts(s.submitted_at),
        "url": s.url,
        "user_id": s.user_id,
        "grader_id": s.grader_id,
        "graded_at": ts(s.graded_at),
        "user": Value::Null,
        "late": s.late,
        "assignment_visible": true,
        "excused": s.excused,
        "missing": missing || s.missing,
        "late_policy_status": Value::Null,
        "points_deducted": if s.late { json!(0.0) } else { Value::Null },
        "seconds_late": seconds_late,
        "workflow_state": s.workflow_state,
        "extra_attempts": Value::Null,
        "anonymous_id": anonymous_id(s.id),
        "posted_at": ts(s.posted_at),
        "read_status": "read",
        "redo_request": false,
    })
}

fn anonymous_id(id: u64) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..5)
        .map(|_| {
            let c = A[(x % A.len() as u64) as usize] as char;
            x /= A.len() as u64;
            c
        })
        .collect()
}

pub fn account(a: &Account) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "uuid": a.uuid,
        "parent_account_id": a.parent_account_id,
        "root_account_id": a.root_account_id,
        "workflow_state": "active",
        "default_time_zone": TIME_ZONE,
        "sis_account_id": a.sis_account_id,
        "integration_id": Value::Null,
        "sis_import_id": Value::Null,
        "lti_guid": Value::Null,
    })
}
