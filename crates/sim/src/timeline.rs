//! The term timeline: what happens at the university as simulated time passes. Each day's
//! actions are drawn when the clock reaches that day, from a stream seeded by (seed, day),
//! and applied in time order: add/drop waves in the first two weeks, submissions before and
//! grading peaks after each due date, weekly module publishing, occasional renames and due
//! date changes, and the day's lectures scheduled on the room recorders. With no external
//! writes, the same seed and the same clock position give the same world.

use std::collections::BTreeMap;

use rand08::Rng;
use rand08::seq::SliceRandom;

use crate::changes::{self, NewEnrollment, NewItem, NewUser};
use crate::ids;
use crate::live_events::envelope::Origin;
use crate::university::*;
use crate::world::World;

const HOUR: i64 = 3_600_000;
const ADD_DROP_DAYS: i64 = 12;
const TERM_DAYS: i64 = 112;

#[derive(Debug, Clone)]
pub enum Action {
    AddEnrollment {
        user_id: u64,
        course_id: u64,
        section_id: u64,
    },
    DropEnrollment {
        enrollment_id: u64,
        to: EnrollmentState,
    },
    NewStudent {
        name: String,
        courses: Vec<(u64, u64)>,
    },
    PublishCourse {
        course_id: u64,
    },
    Submit {
        assignment_id: u64,
        user_id: u64,
    },
    Grade {
        assignment_id: u64,
        user_id: u64,
        score: f64,
    },
    ShiftDue {
        assignment_id: u64,
        by_ms: i64,
    },
    PublishModule {
        module_id: u64,
    },
    AddLectureNotes {
        module_id: u64,
        week: i64,
    },
    RenameSection {
        section_id: u64,
        name: String,
    },
    RenameUser {
        user_id: u64,
        name: String,
    },
    ScheduleLectures {
        day: i64,
    },
    /// A person renames or moves a lecture's session by hand.
    StaffEdit {
        session_id: String,
    },
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub enabled: bool,
    seed: u64,
    next_day: i64,
    queue: BTreeMap<(i64, u64), Action>,
    seq: u64,
    pub applied: u64,
}

impl Timeline {
    pub fn new(seed: u64, enabled: bool, first_day: i64) -> Timeline {
        Timeline {
            enabled,
            seed,
            next_day: first_day,
            queue: BTreeMap::new(),
            seq: 0,
            applied: 0,
        }
    }

    fn push(&mut self, at: i64, action: Action) {
        self.seq += 1;
        self.queue.insert((at, self.seq), action);
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Sessions a person is due to rename or move by hand, and when (a test picks which
    /// course's rule to vary by them).
    pub fn staff_edits_due(&self) -> Vec<(i64, String)> {
        self.queue
            .iter()
            .filter_map(|((at, _), action)| match action {
                Action::StaffEdit { session_id } => Some((*at, session_id.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Apply everything due up to `now` (generating days as they start). Returns actions applied.
pub fn advance(w: &mut World, now: i64) -> u64 {
    if !w.timeline.enabled {
        return 0;
    }
    let mut tl = std::mem::take(&mut w.timeline);
    let before = tl.applied;
    loop {
        let day_start = w.uni.day_start(tl.next_day);
        let next_action = tl.queue.first_key_value().map(|((t, _), _)| *t);
        if day_start <= now && next_action.is_none_or(|t| day_start <= t) {
            let day = tl.next_day;
            tl.next_day += 1;
            if (0..TERM_DAYS).contains(&day) {
                generate_day(w, &mut tl, day);
            }
            continue;
        }
        match tl.queue.first_entry() {
            Some(e) if e.key().0 <= now => {
                let ((at, _), action) = e.remove_entry();
                apply(w, &mut tl, action, at);
                tl.applied += 1;
            }
            _ => break,
        }
    }
    let applied = tl.applied - before;
    w.timeline = tl;
    applied
}

fn random_time(rng: &mut impl Rng, day_start: i64, from_hour: i64, to_hour: i64) -> i64 {
    day_start + rng.gen_range(from_hour * HOUR..to_hour * HOUR)
}

fn generate_day(w: &mut World, tl: &mut Timeline, day: i64) {
    let mut rng = ids::rng(tl.seed, &format!("day-{day}"));
    let u = &w.uni;
    let start = u.day_start(day);
    let students = u
        .users
        .iter()
        .filter(|x| x.kind == UserKind::Student)
        .count()
        .max(1);
    let live_courses: Vec<u64> = u
        .courses
        .iter()
        .filter(|c| c.workflow_state == CourseState::Available)
        .map(|c| c.id)
        .collect();
    let student_ids: Vec<u64> = u
        .users
        .iter()
        .filter(|x| x.kind == UserKind::Student)
        .map(|x| x.id)
        .collect();

    tl.push(start + HOUR, Action::ScheduleLectures { day });

    if day < ADD_DROP_DAYS {
        let adds = (students as f64 * 0.015).ceil() as usize;
        for _ in 0..adds {
            let (Some(&user_id), Some(&course_id)) =
                (student_ids.choose(&mut rng), live_courses.choose(&mut rng))
            else {
                break;
            };
            let Some(&section_id) = University::ids(&u.course_sections, course_id).choose(&mut rng)
            else {
                continue;
            };
            tl.push(
                random_time(&mut rng, start, 7, 23),
                Action::AddEnrollment {
                    user_id,
                    course_id,
                    section_id,
                },
            );
        }
        let drops = (students as f64 * 0.01).ceil() as usize;
        let n = u.enrollments.len() as u64;
        for _ in 0..drops {
            let enrollment_id = u.enrollments.base() + rng.gen_range(0..n.max(1));
            let to = if rng.gen_bool(0.7) {
                EnrollmentState::Deleted
            } else {
                EnrollmentState::Inactive
            };
            tl.push(
                random_time(&mut rng, start, 7, 23),
                Action::DropEnrollment { enrollment_id, to },
            );
        }
        if day < 5 {
            let newcomers = (students as f64 * 0.002).ceil() as usize;
            for _ in 0..newcomers {
                let first = crate::university::names_first(&mut rng);
                let last = crate::university::names_last(&mut rng);
                let k = rng.gen_range(3..=4);
                let courses: Vec<(u64, u64)> = live_courses
                    .choose_multiple(&mut rng, k)
                    .filter_map(|c| {
                        University::ids(&u.course_sections, *c)
                            .first()
                            .map(|s| (*c, *s))
                    })
                    .collect();
                tl.push(
                    random_time(&mut rng, start, 8, 18),
                    Action::NewStudent {
                        name: format!("{first} {last}"),
                        courses,
                    },
                );
            }
        }
        if day < 4 {
            for c in u
                .courses
                .iter()
                .filter(|c| c.workflow_state == CourseState::Unpublished)
            {
                if rng.gen_bool(0.4) {
                    tl.push(
                        random_time(&mut rng, start, 8, 18),
                        Action::PublishCourse { course_id: c.id },
                    );
                }
            }
        }
    }

    // Submissions for assignments due in three days; grading after the due date.
    for a in u.assignments.iter().filter(|a| a.published) {
        let Some(due) = a.due_at else { continue };
        if u.day_of(due) != day + 3 {
            continue;
        }
        for user_id in u.course_students(a.course_id) {
            let submits = rng.gen_bool(0.85);
            if submits {
                let late = rng.gen_bool(0.08);
                let at = if late {
                    due + rng.gen_range(HOUR..20 * HOUR)
                } else {
                    rng.gen_range(start..due)
                };
                tl.push(
                    at,
                    Action::Submit {
                        assignment_id: a.id,
                        user_id,
                    },
                );
            }
            if submits || rng.gen_bool(0.4) {
                let grading_day = due + rng.gen_range(1..=5) * DAY_MS;
                let at = crate::university::day_floor(grading_day, u)
                    + rng.gen_range(9 * HOUR..22 * HOUR);
                let score = if submits {
                    (a.points_possible * rng.gen_range(0.55..1.0) * 2.0).round() / 2.0
                } else {
                    0.0
                };
                tl.push(
                    at,
                    Action::Grade {
                        assignment_id: a.id,
                        user_id,
                        score,
                    },
                );
            }
        }
    }

    for a in u
        .assignments
        .iter()
        .filter(|a| a.published && a.due_at.is_some_and(|d| d > start + 3 * DAY_MS))
    {
        if rng.gen_bool(0.005) {
            tl.push(
                random_time(&mut rng, start, 8, 22),
                Action::ShiftDue {
                    assignment_id: a.id,
                    by_ms: 2 * DAY_MS,
                },
            );
        }
    }

    if day % 7 == 0 {
        let week = day / 7 + 1;
        for c in u
            .courses
            .iter()
            .filter(|c| c.workflow_state == CourseState::Available)
        {
            let modules = University::ids(&u.course_modules, c.id);
            let target = modules
                .iter()
                .filter_map(|m| u.modules.get(*m))
                .find(|m| !m.published && m.workflow_state == "active");
            if let Some(m) = target
                && rng.gen_bool(0.7)
            {
                tl.push(
                    random_time(&mut rng, start, 6, 10),
                    Action::PublishModule { module_id: m.id },
                );
            }
            if rng.gen_bool(0.3) {
                let idx = ((week - 1) as usize).min(modules.len().saturating_sub(1));
                if let Some(&module_id) = modules.get(idx) {
                    tl.push(
                        random_time(&mut rng, start, 10, 20),
                        Action::AddLectureNotes { module_id, week },
                    );
                }
            }
        }
    }

    for s in u.sections.iter().filter(|s| s.workflow_state == "active") {
        if rng.gen_bool(0.001) {
            tl.push(
                random_time(&mut rng, start, 8, 18),
                Action::RenameSection {
                    section_id: s.id,
                    name: format!("{} (combined)", s.name),
                },
            );
        }
    }
    let renames = ((students as f64) * 0.0002).round() as usize;
    for _ in 0..renames {
        if let Some(&user_id) = student_ids.choose(&mut rng) {
            let first = crate::university::names_first(&mut rng);
            let last = crate::university::names_last(&mut rng);
            tl.push(
                random_time(&mut rng, start, 8, 20),
                Action::RenameUser {
                    user_id,
                    name: format!("{first} {last}"),
                },
            );
        }
    }
}

fn teacher_of(u: &University, course_id: u64) -> u64 {
    University::ids(&u.course_enrollments, course_id)
        .iter()
        .filter_map(|e| u.enrollments.get(*e))
        .find(|e| e.kind == EnrollmentType::TeacherEnrollment)
        .map(|e| e.user_id)
        .unwrap_or(u.admin_user_id)
}

fn ui(user_id: u64, method: &'static str, path: String, role: Option<&'static str>) -> Origin {
    Origin::Request {
        user_id,
        method,
        path,
        api: false,
        role,
    }
}

fn sis_job() -> Origin {
    Origin::Job {
        tag: "SIS::CSV::ImportRunner#run",
    }
}

/// Apply one action; an action whose preconditions no longer hold (the student already
/// dropped, the enrollment is gone) is skipped, as a real user's click would fail.
fn apply(w: &mut World, tl: &mut Timeline, action: Action, at: i64) {
    let result = match action {
        Action::AddEnrollment {
            user_id,
            course_id,
            section_id,
        } => {
            let already = University::ids(&w.uni.user_enrollments, user_id)
                .iter()
                .filter_map(|e| w.uni.enrollments.get(*e))
                .any(|e| e.course_id == course_id && e.state != EnrollmentState::Deleted);
            if already {
                return;
            }
            changes::create_enrollment(
                w,
                NewEnrollment {
                    course_id,
                    section_id: Some(section_id),
                    user_id,
                    kind: EnrollmentType::StudentEnrollment,
                    state: EnrollmentState::Active,
                    limit_privileges_to_course_section: false,
                    associated_user_id: None,
                },
                &sis_job(),
                at,
            )
            .map(|_| ())
        }
        Action::DropEnrollment { enrollment_id, to } => {
            let ok = w.uni.enrollments.get(enrollment_id).is_some_and(|e| {
                e.kind == EnrollmentType::StudentEnrollment && e.state == EnrollmentState::Active
            });
            if !ok {
                return;
            }
            changes::set_enrollment_state(w, enrollment_id, to, &sis_job(), at)
        }
        Action::NewStudent { name, courses } => {
            let n = w.uni.users.next_id();
            let login = format!(
                "{}{}",
                name.split_whitespace()
                    .last()
                    .unwrap_or("student")
                    .to_lowercase(),
                n
            );
            let user = changes::create_user(
                w,
                NewUser {
                    name,
                    login_id: login,
                    sis_user_id: Some(format!("U{n:07}")),
                    email: None,
                    kind: UserKind::Student,
                },
                &sis_job(),
                at,
            );
            match user {
                Ok(user_id) => {
                    for (course_id, section_id) in courses {
                        let _ = changes::create_enrollment(
                            w,
                            NewEnrollment {
                                course_id,
                                section_id: Some(section_id),
                                user_id,
                                kind: EnrollmentType::StudentEnrollment,
                                state: EnrollmentState::Active,
                                limit_privileges_to_course_section: false,
                                associated_user_id: None,
                            },
                            &sis_job(),
                            at,
                        );
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Action::PublishCourse { course_id } => {
            let teacher = teacher_of(&w.uni, course_id);
            let origin = ui(
                teacher,
                "PUT",
                format!("/courses/{course_id}"),
                Some("TeacherEnrollment"),
            );
            changes::update_course(
                w,
                course_id,
                None,
                Some(CourseState::Available),
                &origin,
                at,
            )
        }
        Action::Submit {
            assignment_id,
            user_id,
        } => changes::submit(w, assignment_id, user_id, at).map(|_| ()),
        Action::Grade {
            assignment_id,
            user_id,
            score,
        } => {
            let Some(course_id) = w.uni.assignments.get(assignment_id).map(|a| a.course_id) else {
                return;
            };
            let grader = teacher_of(&w.uni, course_id);
            let origin = ui(
                grader,
                "POST",
                format!("/courses/{course_id}/gradebook/update_submission"),
                Some("TeacherEnrollment"),
            );
            changes::grade(
                w,
                assignment_id,
                user_id,
                Some(score),
                Some(grader),
                &origin,
                at,
            )
            .map(|_| ())
        }
        Action::ShiftDue {
            assignment_id,
            by_ms,
        } => {
            let Some(a) = w.uni.assignments.get(assignment_id) else {
                return;
            };
            let (course_id, due) = (a.course_id, a.due_at);
            let teacher = teacher_of(&w.uni, course_id);
            let origin = ui(
                teacher,
                "PUT",
                format!("/api/v1/courses/{course_id}/assignments/{assignment_id}"),
                Some("TeacherEnrollment"),
            );
            let patch = changes::AssignmentPatch {
                due_at: Some(due.map(|d| d + by_ms)),
                ..Default::default()
            };
            changes::update_assignment(w, assignment_id, patch, &origin, at)
        }
        Action::PublishModule { module_id } => {
            let Some(course_id) = w.uni.modules.get(module_id).map(|m| m.course_id) else {
                return;
            };
            let teacher = teacher_of(&w.uni, course_id);
            let origin = ui(
                teacher,
                "PUT",
                format!("/courses/{course_id}/modules/{module_id}"),
                Some("TeacherEnrollment"),
            );
            changes::update_module(w, course_id, module_id, None, Some(true), &origin, at)
        }
        Action::AddLectureNotes { module_id, week } => {
            let Some(course_id) = w.uni.modules.get(module_id).map(|m| m.course_id) else {
                return;
            };
            let teacher = teacher_of(&w.uni, course_id);
            let origin = ui(
                teacher,
                "POST",
                format!("/courses/{course_id}/modules/{module_id}/items"),
                Some("TeacherEnrollment"),
            );
            let item = NewItem {
                title: Some(format!("Week {week} lecture notes")),
                kind: ItemKind::Page,
                content_id: Some(course_id * 100 + 50 + week as u64),
                page_url: Some(format!("week-{week}-lecture-notes")),
                external_url: None,
                position: None,
                indent: 1,
                new_tab: false,
                completion: None,
            };
            changes::create_module_item(w, course_id, module_id, item, &origin, at).map(|_| ())
        }
        Action::RenameSection { section_id, name } => {
            let origin = sis_job();
            changes::update_section(w, section_id, Some(name), false, &origin, at)
        }
        Action::RenameUser { user_id, name } => {
            let origin = ui(user_id, "PUT", format!("/profile/{user_id}"), None);
            changes::update_user(w, user_id, Some(name), &origin, at)
        }
        Action::ScheduleLectures { day } => {
            let uni = &w.uni;
            for edit in w.panopto.schedule_lectures(uni, day, at) {
                tl.push(
                    edit.at_ms,
                    Action::StaffEdit {
                        session_id: edit.session_id,
                    },
                );
            }
            Ok(())
        }
        Action::StaffEdit { session_id } => {
            w.panopto.staff_edit(&session_id, at);
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::trace!(error = %e, "timeline action skipped");
    }
}
