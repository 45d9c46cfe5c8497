//! The synthetic university: Canvas's accounts, term, courses, sections, users, enrollments,
//! modules, module items, assignments and submissions, plus the timetable (rooms, section
//! meetings) that Canvas does not hold but lecture capture needs. Everything is in plain
//! vectors and B-trees keyed by id, so iteration (and therefore every export) is in id order
//! and reproducible. This module owns the data and its invariants (indexes stay in step with
//! rows); it knows nothing about HTTP, JSON shapes or events.

mod generate;
mod names;

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

pub use generate::generate;

/// The university's time zone. Meeting times are local to it, and it keeps daylight saving
/// time: the fall term starts in EDT (UTC-4) and crosses into EST (UTC-5) on the first Sunday
/// of November, so a 09:00 class is 13:00 UTC in September and 14:00 UTC in December.
pub const TIME_ZONE: &str = "America/New_York";
pub const ZONE: Tz = chrono_tz::America::New_York;
/// A day in ms: for durations only; local days are 23 or 25 hours long on the change days.
pub const DAY_MS: i64 = 86_400_000;

/// UTC ms of local `date` at `minute` minutes after midnight. A local time that occurs twice
/// (the autumn change) is its first occurrence; one that does not occur (the spring gap) is
/// read an hour later, as a wall clock moved forward shows it.
pub fn local_ms(date: NaiveDate, minute: u32) -> i64 {
    let at = date.and_time(NaiveTime::MIN) + chrono::Duration::minutes(i64::from(minute));
    let found = ZONE.from_local_datetime(&at).earliest().or_else(|| {
        ZONE.from_local_datetime(&(at + chrono::Duration::hours(1)))
            .earliest()
    });
    found.map_or(i64::MIN, |t| t.timestamp_millis())
}

/// The local date of a UTC instant.
pub fn local_date(ms: i64) -> NaiveDate {
    crate::clock::from_ms(ms).with_timezone(&ZONE).date_naive()
}

/// Rows addressed by sequential ids starting at `base`.
#[derive(Debug, Clone)]
pub struct Table<T> {
    base: u64,
    rows: Vec<T>,
}

impl<T> Table<T> {
    pub fn new(base: u64) -> Self {
        Table {
            base,
            rows: Vec::new(),
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn next_id(&self) -> u64 {
        self.base + self.rows.len() as u64
    }

    pub fn push(&mut self, row: T) -> u64 {
        let id = self.next_id();
        self.rows.push(row);
        id
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        let i = id.checked_sub(self.base)?;
        self.rows.get(usize::try_from(i).ok()?)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let i = id.checked_sub(self.base)?;
        self.rows.get_mut(usize::try_from(i).ok()?)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.rows.iter()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: u64,
    pub name: String,
    pub parent_account_id: Option<u64>,
    pub root_account_id: Option<u64>,
    pub uuid: String,
    pub sis_account_id: Option<String>,
    /// Subject code for department accounts (`BIOL`).
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Term {
    pub id: u64,
    pub name: String,
    pub sis_term_id: Option<String>,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CourseState {
    Unpublished,
    Available,
    Completed,
    Deleted,
}

impl CourseState {
    /// The REST `workflow_state`.
    pub fn rest(self) -> &'static str {
        match self {
            CourseState::Unpublished => "unpublished",
            CourseState::Available => "available",
            CourseState::Completed => "completed",
            CourseState::Deleted => "deleted",
        }
    }

    /// The model state Live Events report (`claimed` is an unpublished course).
    pub fn event(self) -> &'static str {
        match self {
            CourseState::Unpublished => "claimed",
            other => other.rest(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Course {
    pub id: u64,
    pub account_id: u64,
    pub term_id: u64,
    pub name: String,
    pub course_code: String,
    pub sis_course_id: Option<String>,
    pub integration_id: Option<String>,
    pub uuid: String,
    pub workflow_state: CourseState,
    pub created_at: i64,
    pub updated_at: i64,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub course_format: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: u64,
    pub course_id: u64,
    pub name: String,
    pub sis_section_id: Option<String>,
    pub integration_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub restrict_enrollments_to_section_dates: bool,
    pub default_section: bool,
    /// `active` or `deleted`.
    pub workflow_state: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum UserKind {
    Admin,
    Faculty,
    Student,
    GradStudent,
    Staff,
    Parent,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub short_name: String,
    pub sortable_name: String,
    pub sis_user_id: Option<String>,
    pub integration_id: Option<String>,
    pub login_id: String,
    pub email: String,
    pub uuid: String,
    pub pronouns: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// `registered`, `pre_registered` or `deleted`.
    pub workflow_state: &'static str,
    pub kind: UserKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum EnrollmentType {
    StudentEnrollment,
    TeacherEnrollment,
    TaEnrollment,
    DesignerEnrollment,
    ObserverEnrollment,
}

impl EnrollmentType {
    pub const ALL: [EnrollmentType; 5] = [
        EnrollmentType::StudentEnrollment,
        EnrollmentType::TeacherEnrollment,
        EnrollmentType::TaEnrollment,
        EnrollmentType::DesignerEnrollment,
        EnrollmentType::ObserverEnrollment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentType::StudentEnrollment => "StudentEnrollment",
            EnrollmentType::TeacherEnrollment => "TeacherEnrollment",
            EnrollmentType::TaEnrollment => "TaEnrollment",
            EnrollmentType::DesignerEnrollment => "DesignerEnrollment",
            EnrollmentType::ObserverEnrollment => "ObserverEnrollment",
        }
    }

    pub fn parse(s: &str) -> Option<EnrollmentType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// SIS CSV role name and the `role` of short forms (`student`, `ta`…).
    pub fn sis_role(self) -> &'static str {
        match self {
            EnrollmentType::StudentEnrollment => "student",
            EnrollmentType::TeacherEnrollment => "teacher",
            EnrollmentType::TaEnrollment => "ta",
            EnrollmentType::DesignerEnrollment => "designer",
            EnrollmentType::ObserverEnrollment => "observer",
        }
    }

    /// Canvas's built-in role ids (1–5 on a fresh install, in this order).
    pub fn role_id(self) -> u64 {
        match self {
            EnrollmentType::StudentEnrollment => 3,
            EnrollmentType::TeacherEnrollment => 4,
            EnrollmentType::TaEnrollment => 5,
            EnrollmentType::DesignerEnrollment => 6,
            EnrollmentType::ObserverEnrollment => 7,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    Active,
    Invited,
    CreationPending,
    Inactive,
    Completed,
    Deleted,
    Rejected,
}

impl EnrollmentState {
    pub const ALL: [EnrollmentState; 7] = [
        EnrollmentState::Active,
        EnrollmentState::Invited,
        EnrollmentState::CreationPending,
        EnrollmentState::Inactive,
        EnrollmentState::Completed,
        EnrollmentState::Deleted,
        EnrollmentState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentState::Active => "active",
            EnrollmentState::Invited => "invited",
            EnrollmentState::CreationPending => "creation_pending",
            EnrollmentState::Inactive => "inactive",
            EnrollmentState::Completed => "completed",
            EnrollmentState::Deleted => "deleted",
            EnrollmentState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<EnrollmentState> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The computed `EnrollmentState.state` Live Events report.
    pub fn computed(self) -> &'static str {
        match self {
            EnrollmentState::Invited => "pending_invited",
            EnrollmentState::CreationPending => "pending_active",
            other => other.as_str(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub id: u64,
    pub course_id: u64,
    pub section_id: u64,
    pub user_id: u64,
    pub kind: EnrollmentType,
    pub state: EnrollmentState,
    pub associated_user_id: Option<u64>,
    pub limit_privileges_to_course_section: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_activity_at: Option<i64>,
    /// SIS-created (from the timetable export) rather than added in the UI or API.
    pub from_sis: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Module {
    pub id: u64,
    pub course_id: u64,
    pub name: String,
    pub position: u32,
    pub published: bool,
    /// `active` or `deleted` (`unpublished` is `published == false` on an active module).
    pub workflow_state: &'static str,
    pub unlock_at: Option<i64>,
    pub require_sequential_progress: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Module {
    /// Live Events report `unpublished` for an active, unpublished module.
    pub fn event_state(&self) -> &'static str {
        if self.workflow_state == "active" && !self.published {
            "unpublished"
        } else {
            self.workflow_state
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ItemKind {
    Assignment,
    Page,
    ExternalUrl,
    SubHeader,
    File,
    Discussion,
    Quiz,
    ExternalTool,
}

impl ItemKind {
    pub const ALL: [ItemKind; 8] = [
        ItemKind::Assignment,
        ItemKind::Page,
        ItemKind::ExternalUrl,
        ItemKind::SubHeader,
        ItemKind::File,
        ItemKind::Discussion,
        ItemKind::Quiz,
        ItemKind::ExternalTool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Assignment => "Assignment",
            ItemKind::Page => "Page",
            ItemKind::ExternalUrl => "ExternalUrl",
            ItemKind::SubHeader => "SubHeader",
            ItemKind::File => "File",
            ItemKind::Discussion => "Discussion",
            ItemKind::Quiz => "Quiz",
            ItemKind::ExternalTool => "ExternalTool",
        }
    }

    pub fn parse(s: &str) -> Option<ItemKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionRequirement {
    /// must_view | must_contribute | must_submit | min_score | must_mark_done
    pub kind: String,
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleItem {
    pub id: u64,
    pub module_id: u64,
    pub course_id: u64,
    pub position: u32,
    pub title: String,
    pub kind: ItemKind,
    pub content_id: Option<u64>,
    pub page_url: Option<String>,
    pub external_url: Option<String>,
    pub new_tab: bool,
    pub indent: u32,
    pub published: bool,
    /// `active` or `deleted`.
    pub workflow_state: &'static str,
    pub completion_requirement: Option<CompletionRequirement>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub id: u64,
    pub course_id: u64,
    pub assignment_group_id: u64,
    pub name: String,
    pub description: String,
    pub position: u32,
    pub points_possible: f64,
    pub grading_type: &'static str,
    pub submission_types: Vec<&'static str>,
    pub due_at: Option<i64>,
    pub unlock_at: Option<i64>,
    pub lock_at: Option<i64>,
    pub published: bool,
    /// `published`, `unpublished` or `deleted`.
    pub workflow_state: &'static str,
    pub created_at: i64,
    pub updated_at: i64,
    pub lti_assignment_id: String,
}

/// A submission that exists because a student submitted or a grader graded. Students with
/// neither have an implicit `unsubmitted` submission (see [`University::submission_id`]).
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub id: u64,
    pub assignment_id: u64,
    pub user_id: u64,
    pub course_id: u64,
    /// submitted | unsubmitted | graded | pending_review
    pub workflow_state: &'static str,
    pub submission_type: Option<&'static str>,
    pub body: Option<String>,
    pub url: Option<String>,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub attempt: Option<u32>,
    pub submitted_at: Option<i64>,
    pub graded_at: Option<i64>,
    pub grader_id: Option<u64>,
    pub late: bool,
    pub missing: bool,
    pub excused: bool,
    pub posted_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Room {
    /// Room id as the timetable names it (`KNE-120`); a recorder's ExternalId.
    pub id: String,
    pub building: String,
    pub name: String,
    pub capacity: u32,
    pub has_recorder: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Pattern {
    /// Monday, Wednesday, Friday.
    Mwf,
    /// Tuesday, Thursday.
    Tth,
    /// One weekly meeting (labs, seminars).
    Weekly(u8),
}

impl Pattern {
    /// Days of the week (0 = Monday) the pattern meets.
    pub fn weekdays(self) -> Vec<u8> {
        match self {
            Pattern::Mwf => vec![0, 2, 4],
            Pattern::Tth => vec![1, 3],
            Pattern::Weekly(d) => vec![d],
        }
    }

    /// `MWF`, `TR`, `W`: the usual timetable notation.
    pub fn days_code(self) -> String {
        const CODES: [&str; 7] = ["M", "T", "W", "R", "F", "S", "U"];
        self.weekdays()
            .iter()
            .map(|d| CODES[*d as usize % 7])
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Meeting {
    pub id: u64,
    pub section_id: u64,
    pub course_id: u64,
    pub room_id: String,
    pub pattern: Pattern,
    /// Local start, minutes after midnight.
    pub start_minute: u32,
    pub duration_minutes: u32,
}

/// The whole Canvas-side world plus the timetable.
#[derive(Debug, Clone)]
pub struct University {
    pub seed: u64,
    pub root_account_id: u64,
    pub root_account_uuid: String,
    pub accounts: Table<Account>,
    pub terms: Table<Term>,
    pub courses: Table<Course>,
    pub sections: Table<Section>,
    pub users: Table<User>,
    pub enrollments: Table<Enrollment>,
    pub modules: Table<Module>,
    pub module_items: Table<ModuleItem>,
    pub assignments: Table<Assignment>,
    /// Keyed by (assignment_id, user_id).
    pub submissions: BTreeMap<(u64, u64), Submission>,
    pub rooms: Vec<Room>,
    pub meetings: Vec<Meeting>,
    /// Dates with no classes at all (the term's holidays), with their names.
    pub holidays: BTreeMap<NaiveDate, String>,
    /// Single classes called off, by (meeting, date), with the reason given.
    pub cancellations: BTreeMap<(u64, NaiveDate), String>,
    pub admin_user_id: u64,
    pub current_term_id: u64,
    pub term_start: i64,
    pub term_end: i64,
    // Indexes (ids in ascending order).
    pub course_sections: BTreeMap<u64, Vec<u64>>,
    pub course_enrollments: BTreeMap<u64, Vec<u64>>,
    pub section_enrollments: BTreeMap<u64, Vec<u64>>,
    pub user_enrollments: BTreeMap<u64, Vec<u64>>,
    pub course_modules: BTreeMap<u64, Vec<u64>>,
    pub module_items_by_module: BTreeMap<u64, Vec<u64>>,
    pub course_assignments: BTreeMap<u64, Vec<u64>>,
    pub account_courses: BTreeMap<u64, Vec<u64>>,
    pub section_meetings: BTreeMap<u64, Vec<u64>>,
    pub sis_courses: BTreeMap<String, u64>,
    pub sis_sections: BTreeMap<String, u64>,
    pub sis_users: BTreeMap<String, u64>,
    pub logins: BTreeMap<String, u64>,
}

/// Submission ids of implicit (never touched) submissions are derived, so they are stable
/// without materialising one row per student and assignment.
const SUBMISSION_ID_FACTOR: u64 = 1_000_000;

impl University {
    pub fn add_enrollment(&mut self, e: Enrollment) -> u64 {
        let (course, section, user) = (e.course_id, e.section_id, e.user_id);
        let id = self.enrollments.push(e);
        self.course_enrollments.entry(course).or_default().push(id);
        self.section_enrollments
            .entry(section)
            .or_default()
            .push(id);
        self.user_enrollments.entry(user).or_default().push(id);
        id
    }

    pub fn add_section(&mut self, s: Section) -> u64 {
        let (course, sis) = (s.course_id, s.sis_section_id.clone());
        let id = self.sections.push(s);
        self.course_sections.entry(course).or_default().push(id);
        if let Some(sis) = sis {
            self.sis_sections.insert(sis, id);
        }
        id
    }

    pub fn add_user(&mut self, u: User) -> u64 {
        let (sis, login) = (u.sis_user_id.clone(), u.login_id.clone());
        let id = self.users.push(u);
        if let Some(sis) = sis {
            self.sis_users.insert(sis, id);
        }
        self.logins.insert(login, id);
        id
    }

    pub fn add_course(&mut self, c: Course) -> u64 {
        let (account, sis) = (c.account_id, c.sis_course_id.clone());
        let id = self.courses.push(c);
        self.account_courses.entry(account).or_default().push(id);
        if let Some(sis) = sis {
            self.sis_courses.insert(sis, id);
        }
        id
    }

    pub fn add_module(&mut self, m: Module) -> u64 {
        let course = m.course_id;
        let id = self.modules.push(m);
        self.course_modules.entry(course).or_default().push(id);
        id
    }

    pub fn add_module_item(&mut self, item: ModuleItem) -> u64 {
        let module = item.module_id;
        let id = self.module_items.push(item);
        self.module_items_by_module
            .entry(module)
            .or_default()
            .push(id);
        id
    }

    pub fn add_assignment(&mut self, a: Assignment) -> u64 {
        let course = a.course_id;
        let id = self.assignments.push(a);
        self.course_assignments.entry(course).or_default().push(id);
        id
    }

    pub fn ids(index: &BTreeMap<u64, Vec<u64>>, key: u64) -> &[u64] {
        index.get(&key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The id of a student's submission for an assignment, existing or implicit.
    pub fn submission_id(assignment_id: u64, user_id: u64) -> u64 {
        assignment_id * SUBMISSION_ID_FACTOR + user_id
    }

    /// The implicit `unsubmitted` submission a student has before submitting.
    pub fn implicit_submission(&self, assignment: &Assignment, user_id: u64) -> Submission {
        Submission {
            id: Self::submission_id(assignment.id, user_id),
            assignment_id: assignment.id,
            user_id,
            course_id: assignment.course_id,
            workflow_state: "unsubmitted",
            submission_type: None,
            body: None,
            url: None,
            score: None,
            grade: None,
            attempt: None,
            submitted_at: None,
            graded_at: None,
            grader_id: None,
            late: false,
            missing: false,
            excused: false,
            posted_at: None,
            updated_at: assignment.created_at,
        }
    }

    pub fn submission_or_implicit(&self, assignment: &Assignment, user_id: u64) -> Submission {
        self.submissions
            .get(&(assignment.id, user_id))
            .cloned()
            .unwrap_or_else(|| self.implicit_submission(assignment, user_id))
    }

    /// Students (any state but deleted/rejected) of a course, by enrollment order, deduplicated.
    pub fn course_students(&self, course_id: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Self::ids(&self.course_enrollments, course_id)
            .iter()
            .filter_map(|id| self.enrollments.get(*id))
            .filter(|e| {
                e.kind == EnrollmentType::StudentEnrollment
                    && !matches!(
                        e.state,
                        EnrollmentState::Deleted | EnrollmentState::Rejected
                    )
            })
            .map(|e| e.user_id)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Resolve a Canvas path id: a number, `sis_course_id:X`, etc. `kind` is the SIS prefix
    /// family (`course`, `section`, `user`).
    pub fn resolve(&self, kind: &str, raw: &str, caller: u64) -> Option<u64> {
        if let Ok(id) = raw.parse::<u64>() {
            return Some(id);
        }
        if kind == "user" && raw == "self" {
            return Some(caller);
        }
        let (prefix, value) = raw.split_once(':')?;
        match (kind, prefix) {
            ("course", "sis_course_id") => self.sis_courses.get(value).copied(),
            ("section", "sis_section_id") => self.sis_sections.get(value).copied(),
            ("user", "sis_user_id") => self.sis_users.get(value).copied(),
            ("user", "sis_login_id") => self.logins.get(value).copied(),
            _ => None,
        }
    }

    /// The local date of term day `day` (day 0 = the first day of term).
    pub fn date_of_day(&self, day: i64) -> NaiveDate {
        local_date(self.term_start) + chrono::Duration::days(day)
    }

    /// Start of local day `day` of term in UTC ms.
    pub fn day_start(&self, day: i64) -> i64 {
        local_ms(self.date_of_day(day), 0)
    }

    /// Term day of a UTC time (may be negative before term).
    pub fn day_of(&self, ms: i64) -> i64 {
        (local_date(ms) - local_date(self.term_start)).num_days()
    }

    /// Why meeting `meeting_id` does not take place on `date`, if it does not.
    pub fn cancellation(&self, meeting_id: u64, date: NaiveDate) -> Option<String> {
        self.holidays
            .get(&date)
            .map(|h| format!("holiday: {h}"))
            .or_else(|| self.cancellations.get(&(meeting_id, date)).cloned())
    }

    /// Meetings of `day` as (meeting, local start UTC ms, end UTC ms); none on weekends or
    /// after the last teaching week.
    pub fn meetings_on(&self, day: i64) -> Vec<(&Meeting, i64, i64)> {
        let teaching_days = 7 * 15;
        if !(0..teaching_days).contains(&day) {
            return Vec::new();
        }
        let weekday = (day % 7) as u8; // term starts on a Monday
        self.meetings
            .iter()
            .filter(|m| m.pattern.weekdays().contains(&weekday))
            .filter(|m| {
                self.sections
                    .get(m.section_id)
                    .is_some_and(|s| s.workflow_state == "active")
            })
            .map(|m| {
                let start = local_ms(self.date_of_day(day), m.start_minute);
                (m, start, start + i64::from(m.duration_minutes) * 60_000)
            })
            .collect()
    }
}

/// A letter or point grade string for a score, as Canvas shows for `points` grading.
pub fn grade_for(score: f64) -> String {
    if score.fract() == 0.0 {
        format!("{}", score as i64)
    } else {
        format!("{score}")
    }
}

/// A first name from the fixed list.
pub fn names_first(rng: &mut impl rand08::Rng) -> &'static str {
    names::FIRST_NAMES[rng.gen_range(0..names::FIRST_NAMES.len())]
}

/// A last name from the fixed list.
pub fn names_last(rng: &mut impl rand08::Rng) -> &'static str {
    names::LAST_NAMES[rng.gen_range(0..names::LAST_NAMES.len())]
}

/// Start of the local day containing `ms`.
pub fn day_floor(ms: i64, u: &University) -> i64 {
    u.day_start(u.day_of(ms))
}
