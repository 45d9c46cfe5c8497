//! The ground truth: every course, section, user, enrollment, module, module item and
//! assignment the university holds, plus the timetable and every Panopto session with its
//! state, at one simulated instant. Tests compare coursewire's catalog with it. Rows are in
//! id order and serialised with fixed field order, so the same seed and clock position give
//! byte-identical JSON.

use serde::{Deserialize, Serialize};

use crate::clock::iso;
use crate::world::World;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub seed: u64,
    pub sim_time: String,
    pub root_account_id: u64,
    /// What every Live Event carries as `metadata.root_account_uuid`.
    pub root_account_uuid: String,
    pub term: TermRow,
    pub accounts: Vec<AccountRow>,
    pub courses: Vec<CourseRow>,
    pub sections: Vec<SectionRow>,
    pub users: Vec<UserRow>,
    pub enrollments: Vec<EnrollmentRow>,
    pub modules: Vec<ModuleRow>,
    pub module_items: Vec<ModuleItemRow>,
    pub assignments: Vec<AssignmentRow>,
    pub rooms: Vec<RoomRow>,
    pub meetings: Vec<MeetingRow>,
    pub recorders: Vec<RecorderRow>,
    pub sessions: Vec<SessionRow>,
    /// Every section meeting on every date reached so far, by date then meeting.
    pub lectures: Vec<LectureRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermRow {
    pub id: u64,
    pub name: String,
    pub sis_term_id: Option<String>,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRow {
    pub id: u64,
    pub name: String,
    pub parent_account_id: Option<u64>,
    pub sis_account_id: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CourseRow {
    pub id: u64,
    pub account_id: u64,
    pub term_id: u64,
    pub name: String,
    pub course_code: String,
    pub sis_course_id: Option<String>,
    pub workflow_state: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionRow {
    pub id: u64,
    pub course_id: u64,
    pub name: String,
    pub sis_section_id: Option<String>,
    pub workflow_state: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: u64,
    pub name: String,
    pub sortable_name: String,
    pub login_id: String,
    pub sis_user_id: Option<String>,
    pub email: String,
    pub workflow_state: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentRow {
    pub id: u64,
    pub course_id: u64,
    pub section_id: u64,
    pub user_id: u64,
    pub r#type: String,
    pub state: String,
    pub associated_user_id: Option<u64>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleRow {
    pub id: u64,
    pub course_id: u64,
    pub name: String,
    pub position: u32,
    pub published: bool,
    pub workflow_state: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleItemRow {
    pub id: u64,
    pub module_id: u64,
    pub course_id: u64,
    pub position: u32,
    pub title: String,
    pub r#type: String,
    pub content_id: Option<u64>,
    pub external_url: Option<String>,
    pub workflow_state: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub id: u64,
    pub course_id: u64,
    pub name: String,
    pub due_at: Option<String>,
    pub points_possible: f64,
    pub published: bool,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRow {
    pub id: String,
    pub name: String,
    pub building: String,
    pub capacity: u32,
    pub has_recorder: bool,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetingRow {
    pub id: u64,
    pub section_id: u64,
    pub course_id: u64,
    pub room_id: String,
    pub days: String,
    pub start_local: String,
    pub duration_minutes: u32,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecorderRow {
    pub id: String,
    pub name: String,
    pub room_id: String,
    pub default_folder_id: String,
    /// Faulted at this instant.
    pub broken: bool,
    /// The REST state at this instant (`Faulted`, `Disconnected`, `Recording`, `Stopped`).
    pub state: String,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub name: String,
    pub folder_id: String,
    pub state: String,
    pub start_time: String,
    pub end_time: String,
    pub recorder_id: Option<String>,
    pub scheduled_recorder_id: Option<String>,
    pub section_id: Option<u64>,
    pub meeting_id: Option<u64>,
    pub has_captions: bool,
    pub deleted: bool,
    /// When an offline recorder's upload arrives (or arrived), if it was offline.
    pub upload_time: Option<String>,
    /// When automatic captions are (or were) ready, once requested.
    pub captions_time: Option<String>,
    /// A person's hand edit: `renamed: old → new` or `moved: folder → folder`.
    pub staff_edit: Option<String>,
    /// Who can view it, as Panopto evaluates folders, groups and grants (`viewers.rs`):
    /// `restricted` (only `viewer_user_ids`), `organization` or `public`.
    pub audience: String,
    /// Canvas ids of the users granted viewing by name, through groups or directly.
    pub viewer_user_ids: Vec<u64>,
}

/// One section meeting on one date: what the timetable expects and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LectureRow {
    /// Local date (`YYYY-MM-DD`, the university's time zone).
    pub date: String,
    pub meeting_id: u64,
    pub section_id: u64,
    pub course_id: u64,
    pub room_id: String,
    pub start_time: String,
    pub end_time: String,
    /// The room's recorder (`None`: the room has none).
    pub recorder_id: Option<String>,
    /// `recorded`, `cancelled` or `no_recorder`.
    pub expected: String,
    /// `recorded`, `recorded_late`, `broken_recorder`, `wrong_room`, `no_recorder` or
    /// `cancelled`: decided by the faults in force at its start.
    pub outcome: String,
    pub cancelled_reason: Option<String>,
    pub session_id: Option<String>,
    /// For `recorded_late`: when the upload arrives (`None`: not yet known).
    pub upload_time: Option<String>,
}

fn upload_time(s: &crate::panopto::world::Session) -> Option<String> {
    match s.fate {
        crate::panopto::world::Fate::Uploads(at) => at.map(crate::clock::iso_ms),
        _ => None,
    }
}

pub fn local_time(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

pub fn capture(w: &World, now: i64) -> GroundTruth {
    let u = &w.uni;
    let panopto_users = crate::panopto::people::users_by_guid(u);
    let viewers = |id: &str| -> (String, Vec<u64>) {
        w.panopto.viewers(id).map_or_else(
            || ("restricted".to_owned(), Vec::new()),
            |v| {
                let mut ids: Vec<u64> = v
                    .users
                    .iter()
                    .filter_map(|g| panopto_users.get(g).map(|p| p.canvas_id))
                    .collect();
                ids.sort_unstable();
                (v.audience.to_owned(), ids)
            },
        )
    };
    let term = u.terms.get(u.current_term_id);
    GroundTruth {
        seed: u.seed,
        sim_time: iso(now),
        root_account_id: u.root_account_id,
        root_account_uuid: u.root_account_uuid.clone(),
        term: TermRow {
            id: u.current_term_id,
            name: term.map(|t| t.name.clone()).unwrap_or_default(),
            sis_term_id: term.and_then(|t| t.sis_term_id.clone()),
            start_at: term.and_then(|t| t.start_at).map(iso),
            end_at: term.and_then(|t| t.end_at).map(iso),
        },
        accounts: u
            .accounts
            .iter()
            .map(|a| AccountRow {
                id: a.id,
                name: a.name.clone(),
                parent_account_id: a.parent_account_id,
                sis_account_id: a.sis_account_id.clone(),
            })
            .collect(),
        courses: u
            .courses
            .iter()
            .map(|c| CourseRow {
                id: c.id,
                account_id: c.account_id,
                term_id: c.term_id,
                name: c.name.clone(),
                course_code: c.course_code.clone(),
                sis_course_id: c.sis_course_id.clone(),
                workflow_state: c.workflow_state.rest().to_owned(),
            })
            .collect(),
        sections: u
            .sections
            .iter()
            .map(|s| SectionRow {
                id: s.id,
                course_id: s.course_id,
                name: s.name.clone(),
                sis_section_id: s.sis_section_id.clone(),
                workflow_state: s.workflow_state.to_owned(),
            })
            .collect(),
        users: u
            .users
            .iter()
            .map(|x| UserRow {
                id: x.id,
                name: x.name.clone(),
                sortable_name: x.sortable_name.clone(),
                login_id: x.login_id.clone(),
                sis_user_id: x.sis_user_id.clone(),
                email: x.email.clone(),
                workflow_state: x.workflow_state.to_owned(),
            })
            .collect(),
        enrollments: u
            .enrollments
            .iter()
            .map(|e| EnrollmentRow {
                id: e.id,
                course_id: e.course_id,
                section_id: e.section_id,
                user_id: e.user_id,
                r#type: e.kind.as_str().to_owned(),
                state: e.state.as_str().to_owned(),
                associated_user_id: e.associated_user_id,
            })
            .collect(),
        modules: u
            .modules
            .iter()
            .map(|m| ModuleRow {
                id: m.id,
                course_id: m.course_id,
                name: m.name.clone(),
                position: m.position,
                published: m.published,
                workflow_state: m.workflow_state.to_owned(),
            })
            .collect(),
        module_items: u
            .module_items
            .iter()
            .map(|i| ModuleItemRow {
                id: i.id,
                module_id: i.module_id,
                course_id: i.course_id,
                position: i.position,
                title: i.title.clone(),
                r#type: i.kind.as_str().to_owned(),
                content_id: i.content_id,
                external_url: i.external_url.clone(),
                workflow_state: i.workflow_state.to_owned(),
            })
            .collect(),
        assignments: u
            .assignments
            .iter()
            .map(|a| AssignmentRow {
                id: a.id,
                course_id: a.course_id,
                name: a.name.clone(),
                due_at: a.due_at.map(iso),
                points_possible: a.points_possible,
                published: a.published,
            })
            .collect(),
        rooms: u
            .rooms
            .iter()
            .map(|r| RoomRow {
                id: r.id.clone(),
                name: r.name.clone(),
                building: r.building.clone(),
                capacity: r.capacity,
                has_recorder: r.has_recorder,
            })
            .collect(),
        meetings: u
            .meetings
            .iter()
            .map(|m| MeetingRow {
                id: m.id,
                section_id: m.section_id,
                course_id: m.course_id,
                room_id: m.room_id.clone(),
                days: m.pattern.days_code(),
                start_local: local_time(m.start_minute),
                duration_minutes: m.duration_minutes,
            })
            .collect(),
        recorders: w
            .panopto
            .recorders
            .values()
            .map(|r| RecorderRow {
                id: r.id.clone(),
                name: r.name.clone(),
                room_id: r.room_id.clone(),
                default_folder_id: r.default_folder_id.clone(),
                broken: w.panopto.recorder_state(&r.id, now)
                    == panopto::RemoteRecorderState::Faulted,
                state: format!("{:?}", w.panopto.recorder_state(&r.id, now)),
            })
            .collect(),
        sessions: w
            .panopto
            .sessions
            .values()
            .map(|s| {
                let (audience, viewer_user_ids) = viewers(&s.id);
                SessionRow {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    folder_id: s.folder_id.clone(),
                    state: s.state_at(now).as_str().to_owned(),
                    start_time: crate::clock::iso_ms(s.start_ms),
                    end_time: crate::clock::iso_ms(s.end_ms),
                    recorder_id: s.recorder_id.clone(),
                    scheduled_recorder_id: s.scheduled_recorder_id.clone(),
                    section_id: s.section_id,
                    meeting_id: s.meeting_id,
                    has_captions: s.has_captions_at(now),
                    deleted: s.deleted_ms.is_some_and(|d| d <= now),
                    upload_time: upload_time(s),
                    captions_time: s.captions_ms.map(crate::clock::iso_ms),
                    staff_edit: s
                        .staff_edit
                        .as_ref()
                        .map(|e| format!("{}: {}", e.kind, e.detail)),
                    audience,
                    viewer_user_ids,
                }
            })
            .collect(),
        lectures: w
            .panopto
            .lectures
            .values()
            .map(|l| {
                let session = l
                    .session_id
                    .as_ref()
                    .and_then(|id| w.panopto.sessions.get(id));
                LectureRow {
                    date: l.date.to_string(),
                    meeting_id: l.meeting_id,
                    section_id: l.section_id,
                    course_id: l.course_id,
                    room_id: l.room_id.clone(),
                    start_time: crate::clock::iso_ms(l.start_ms),
                    end_time: crate::clock::iso_ms(l.end_ms),
                    recorder_id: l.recorder_id.clone(),
                    expected: w.panopto.expected_outcome(l).as_str().to_owned(),
                    outcome: w.panopto.actual_outcome(l).as_str().to_owned(),
                    cancelled_reason: l.cancelled.clone(),
                    session_id: l.session_id.clone(),
                    upload_time: session.and_then(upload_time),
                }
            })
            .collect(),
    }
}
