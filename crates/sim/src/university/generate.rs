//! Seeded generation of the university. One ChaCha stream drives every choice in a fixed
//! order, so a seed always yields the same rows with the same ids. Course popularity is
//! heavy-tailed (a few 300-seat lectures, many small seminars), enrollments cover every
//! Canvas state, and every section gets a room and a weekly pattern from the timetable.

use std::collections::BTreeMap;

use chrono::Datelike;
use rand08::Rng;
use rand08::seq::SliceRandom;

use super::names::*;
use super::*;
use crate::config::{Scale, default_start};
use crate::ids;

struct Params {
    departments: usize,
    courses: usize,
    students: usize,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Small => Params {
            departments: 6,
            courses: 50,
            students: 600,
        },
        Scale::Medium => Params {
            departments: 40,
            courses: 3_000,
            students: 30_000,
        },
        Scale::Large => Params {
            departments: 48,
            courses: 30_000,
            students: 300_000,
        },
    }
}

const DAY: i64 = DAY_MS;

/// Build the university for `scale` and `seed`.
pub fn generate(scale: Scale, seed: u64) -> University {
    let p = params(scale);
    let mut rng = ids::rng(seed, "university");
    let term_start = default_start().timestamp_millis();
    let term_end = term_start + 111 * DAY;
    let before = term_start - 120 * DAY;

    let mut u = University {
        seed,
        root_account_id: 1,
        root_account_uuid: ids::canvas_uuid(&mut rng),
        accounts: Table::new(1),
        terms: Table::new(1),
        courses: Table::new(101),
        sections: Table::new(501),
        users: Table::new(1001),
        enrollments: Table::new(10_001),
        modules: Table::new(3_001),
        module_items: Table::new(4_001),
        assignments: Table::new(2_001),
        submissions: BTreeMap::new(),
        rooms: Vec::new(),
        meetings: Vec::new(),
        holidays: BTreeMap::new(),
        cancellations: BTreeMap::new(),
        admin_user_id: 0,
        current_term_id: 0,
        term_start,
        term_end,
        course_sections: BTreeMap::new(),
        course_enrollments: BTreeMap::new(),
        section_enrollments: BTreeMap::new(),
        user_enrollments: BTreeMap::new(),
        course_modules: BTreeMap::new(),
        module_items_by_module: BTreeMap::new(),
        course_assignments: BTreeMap::new(),
        account_courses: BTreeMap::new(),
        section_meetings: BTreeMap::new(),
        sis_courses: BTreeMap::new(),
        sis_sections: BTreeMap::new(),
        sis_users: BTreeMap::new(),
        logins: BTreeMap::new(),
    };

    // Accounts: the root and one sub-account per department.
    let root_uuid = u.root_account_uuid.clone();
    u.accounts.push(Account {
        id: 1,
        name: "Coursewire State University".to_owned(),
        parent_account_id: None,
        root_account_id: None,
        uuid: root_uuid,
        sis_account_id: Some("ROOT".to_owned()),
        code: None,
    });
    let departments: Vec<(u64, &str, &str)> = SUBJECTS
        .iter()
        .take(p.departments)
        .map(|(code, name)| {
            let id = u.accounts.next_id();
            let uuid = ids::canvas_uuid(&mut rng);
            u.accounts.push(Account {
                id,
                name: format!("Department of {name}"),
                parent_account_id: Some(1),
                root_account_id: Some(1),
                uuid,
                sis_account_id: Some(format!("DEPT-{code}")),
                code: Some((*code).to_owned()),
            });
            (id, *code, *name)
        })
        .collect();

    u.terms.push(Term {
        id: 1,
        name: "Default Term".to_owned(),
        sis_term_id: None,
        start_at: None,
        end_at: None,
    });
    u.current_term_id = u.terms.push(Term {
        id: 2,
        name: "Fall 2025".to_owned(),
        sis_term_id: Some("2025FA".to_owned()),
        start_at: Some(term_start),
        end_at: Some(term_end),
    });

    // People.
    let person = |u: &mut University, rng: &mut rand_chacha::ChaCha20Rng, kind: UserKind| -> u64 {
        let id = u.users.next_id();
        let first = *FIRST_NAMES.choose(rng).unwrap_or(&"Alex");
        let last = *LAST_NAMES.choose(rng).unwrap_or(&"Smith");
        let login = format!("{}{}{}", first[..1].to_lowercase(), last.to_lowercase(), id);
        let created = before + rng.gen_range(0..60 * DAY);
        let uuid = ids::canvas_uuid(rng);
        let pronouns = match rng.gen_range(0..10) {
            0 => Some("she/her".to_owned()),
            1 => Some("he/him".to_owned()),
            2 => Some("they/them".to_owned()),
            _ => None,
        };
        u.add_user(User {
            id,
            name: format!("{first} {last}"),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            short_name: format!("{first} {last}"),
            sortable_name: format!("{last}, {first}"),
            sis_user_id: (kind != UserKind::Admin).then(|| format!("U{id:07}")),
            integration_id: None,
            email: format!("{login}@sim.coursewire.test"),
            login_id: login,
            uuid,
            pronouns,
            created_at: created,
            updated_at: created,
            workflow_state: "registered",
            kind,
        })
    };
    u.admin_user_id = {
        let id = person(&mut u, &mut rng, UserKind::Admin);
        if let Some(admin) = u.users.get_mut(id) {
            admin.name = "Sim Admin".to_owned();
            admin.first_name = "Sim".to_owned();
            admin.last_name = "Admin".to_owned();
            admin.short_name = "Sim Admin".to_owned();
            admin.sortable_name = "Admin, Sim".to_owned();
            admin.login_id = "admin".to_owned();
            admin.email = "admin@sim.coursewire.test".to_owned();
        }
        u.logins.insert("admin".to_owned(), id);
        id
    };
    let faculty_per_dept = (p.courses / p.departments / 2).max(3);
    let faculty: Vec<Vec<u64>> = (0..departments.len())
        .map(|_| {
            (0..faculty_per_dept)
                .map(|_| person(&mut u, &mut rng, UserKind::Faculty))
                .collect()
        })
        .collect();
    let staff: Vec<u64> = (0..departments.len())
        .map(|_| person(&mut u, &mut rng, UserKind::Staff))
        .collect();
    let grads: Vec<u64> = (0..(p.courses * 3 / 10).max(5))
        .map(|_| person(&mut u, &mut rng, UserKind::GradStudent))
        .collect();
    let students: Vec<u64> = (0..p.students)
        .map(|_| person(&mut u, &mut rng, UserKind::Student))
        .collect();
    let parents: Vec<u64> = (0..(p.students / 200).max(2))
        .map(|_| person(&mut u, &mut rng, UserKind::Parent))
        .collect();

    // Courses, with heavy-tailed popularity.
    let mut numbers: Vec<Vec<u32>> = departments
        .iter()
        .map(|_| {
            let mut n: Vec<u32> = (100..1000).collect();
            n.shuffle(&mut rng);
            n
        })
        .collect();
    let mut weights = Vec::with_capacity(p.courses);
    let mut course_ids = Vec::with_capacity(p.courses);
    let mut course_dept = Vec::with_capacity(p.courses);
    for i in 0..p.courses {
        let d = i % departments.len();
        let (account_id, code, dept_name) = departments[d];
        let number = numbers[d].pop().unwrap_or(999);
        let template = COURSE_TEMPLATES.choose(&mut rng).unwrap_or(&"{}");
        let roll: f64 = rng.r#gen();
        let state = match roll {
            r if r < 0.92 => CourseState::Available,
            r if r < 0.97 => CourseState::Unpublished,
            r if r < 0.99 => CourseState::Completed,
            _ => CourseState::Deleted,
        };
        let online = rng.gen_bool(0.05);
        let created = before + rng.gen_range(0..90 * DAY);
        let uuid = ids::canvas_uuid(&mut rng);
        let id = u.add_course(Course {
            id: u.courses.next_id(),
            account_id,
            term_id: u.current_term_id,
            name: template.replace("{}", dept_name),
            course_code: format!("{code} {number}"),
            sis_course_id: Some(format!("2025FA-{code}-{number}")),
            integration_id: None,
            uuid,
            workflow_state: state,
            created_at: created,
            updated_at: created,
            start_at: Some(term_start),
            end_at: Some(term_end),
            course_format: if online { "online" } else { "on_campus" },
        });
        let u01: f64 = rng.gen_range(0.02..1.0);
        weights.push(1.0 / u01.powf(0.75));
        course_ids.push(id);
        course_dept.push(d);
    }
    let total_weight: f64 = weights.iter().sum();
    let seats = p.students as f64 * 4.5;

    // Sections and staff enrollments.
    let mut sections_of: Vec<Vec<u64>> = Vec::with_capacity(p.courses);
    for (i, &course_id) in course_ids.iter().enumerate() {
        let expected = seats * weights[i] / total_weight;
        let n = ((expected / 45.0).ceil() as usize).clamp(1, 6);
        let (code, sis, created, state) = match u.courses.get(course_id) {
            Some(c) => (
                c.course_code.clone(),
                c.sis_course_id.clone().unwrap_or_default(),
                c.created_at,
                c.workflow_state,
            ),
            None => continue,
        };
        let mut secs = Vec::with_capacity(n);
        for s in 0..n {
            let letter = (b'A' + s as u8) as char;
            let id = u.add_section(Section {
                id: u.sections.next_id(),
                course_id,
                name: format!("{code} {letter}"),
                sis_section_id: Some(format!("{sis}-{letter}")),
                integration_id: None,
                created_at: created,
                updated_at: created,
                start_at: None,
                end_at: None,
                restrict_enrollments_to_section_dates: false,
                default_section: false,
                workflow_state: "active",
            });
            secs.push(id);
        }
        let dept = course_dept[i];
        let teachers = if rng.gen_bool(0.15) { 2 } else { 1 };
        let staff_state = if state == CourseState::Completed {
            EnrollmentState::Completed
        } else {
            EnrollmentState::Active
        };
        for _ in 0..teachers {
            let teacher = *faculty[dept].choose(&mut rng).unwrap_or(&u.admin_user_id);
            for &section_id in &secs {
                enroll(
                    &mut u,
                    course_id,
                    section_id,
                    teacher,
                    EnrollmentType::TeacherEnrollment,
                    staff_state,
                    created,
                    None,
                );
            }
        }
        if n >= 2 {
            for &section_id in &secs {
                let ta = *grads.choose(&mut rng).unwrap_or(&u.admin_user_id);
                enroll(
                    &mut u,
                    course_id,
                    section_id,
                    ta,
                    EnrollmentType::TaEnrollment,
                    staff_state,
                    created,
                    None,
                );
            }
        }
        if rng.gen_bool(0.03) {
            enroll(
                &mut u,
                course_id,
                secs[0],
                staff[dept],
                EnrollmentType::DesignerEnrollment,
                staff_state,
                created,
                None,
            );
        }
        sections_of.push(secs);
    }

    // Students, by weighted sampling of courses.
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w;
        cumulative.push(acc);
    }
    let mut student_courses: BTreeMap<u64, Vec<(u64, u64, EnrollmentState)>> = BTreeMap::new();
    for &student in &students {
        let k = *[3usize, 4, 4, 5, 5, 6].choose(&mut rng).unwrap_or(&4);
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        let mut tries = 0;
        while chosen.len() < k.min(course_ids.len()) && tries < 50 {
            tries += 1;
            let x = rng.gen_range(0.0..acc);
            let i = cumulative
                .partition_point(|c| *c <= x)
                .min(course_ids.len() - 1);
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        for i in chosen {
            let course_id = course_ids[i];
            let section_id = *sections_of[i].choose(&mut rng).unwrap_or(&0);
            let course_state = u.courses.get(course_id).map(|c| c.workflow_state);
            let state = if course_state == Some(CourseState::Completed) {
                EnrollmentState::Completed
            } else {
                student_state(rng.r#gen())
            };
            let created = before + 60 * DAY + rng.gen_range(0..55 * DAY);
            enroll(
                &mut u,
                course_id,
                section_id,
                student,
                EnrollmentType::StudentEnrollment,
                state,
                created,
                None,
            );
            student_courses
                .entry(student)
                .or_default()
                .push((course_id, section_id, state));
        }
    }
    for &parent in &parents {
        let student = *students.choose(&mut rng).unwrap_or(&0);
        let courses = student_courses.get(&student).cloned().unwrap_or_default();
        for (course_id, section_id, state) in courses {
            if state == EnrollmentState::Active {
                let created = before + 110 * DAY;
                enroll(
                    &mut u,
                    course_id,
                    section_id,
                    parent,
                    EnrollmentType::ObserverEnrollment,
                    state,
                    created,
                    Some(student),
                );
            }
        }
    }

    // Assignments and modules.
    for &course_id in &course_ids {
        let created = u
            .courses
            .get(course_id)
            .map(|c| c.created_at)
            .unwrap_or(before);
        let n_assign = rng.gen_range(3..=6);
        let mut assignment_ids = Vec::with_capacity(n_assign);
        for a in 0..n_assign {
            let week = 2 + (a as i64 * 13) / n_assign as i64 + rng.gen_range(0..2);
            let day = week * 7 + rng.gen_range(0..5);
            let due = local_ms(
                local_date(term_start) + chrono::Duration::days(day),
                23 * 60 + 59,
            );
            let kind = ASSIGNMENT_KINDS.choose(&mut rng).unwrap_or(&"Assignment");
            let published = rng.gen_bool(0.9);
            let types: &[&str] = match rng.gen_range(0..4) {
                0 => &["online_upload"],
                1 => &["online_text_entry"],
                2 => &["online_url", "online_upload"],
                _ => &["online_quiz"],
            };
            let points = *[10.0, 20.0, 25.0, 50.0, 100.0]
                .choose(&mut rng)
                .unwrap_or(&100.0);
            let lti = ids::uuid(&mut rng).to_string();
            let id = u.add_assignment(Assignment {
                id: u.assignments.next_id(),
                course_id,
                assignment_group_id: course_id * 10 + 1,
                name: format!("{kind} {}", a + 1),
                description: format!("<p>{kind} {} for this course.</p>", a + 1),
                position: a as u32 + 1,
                points_possible: points,
                grading_type: "points",
                submission_types: types.to_vec(),
                due_at: Some(due),
                unlock_at: Some(due - 7 * DAY),
                lock_at: rng.gen_bool(0.5).then_some(due + 3 * DAY),
                published,
                workflow_state: if published {
                    "published"
                } else {
                    "unpublished"
                },
                created_at: created,
                updated_at: created,
                lti_assignment_id: lti,
            });
            assignment_ids.push(id);
        }
        let n_modules = rng.gen_range(4..=8);
        let mut next_assignment = 0;
        for m in 0..n_modules {
            let topic = MODULE_TOPICS.choose(&mut rng).unwrap_or(&"Topics");
            let published = m * 3 < n_modules * 2;
            let module_id = u.add_module(Module {
                id: u.modules.next_id(),
                course_id,
                name: format!("Week {}: {topic}", m + 1),
                position: m as u32 + 1,
                published,
                workflow_state: "active",
                unlock_at: None,
                require_sequential_progress: false,
                created_at: created,
                updated_at: created,
            });
            let n_items = rng.gen_range(2..=5);
            for it in 0..n_items {
                let (kind, title, content_id, page_url, external_url) = if it == 0 {
                    (
                        ItemKind::SubHeader,
                        format!("Week {} overview", m + 1),
                        None,
                        None,
                        None,
                    )
                } else if next_assignment < assignment_ids.len() && rng.gen_bool(0.5) {
                    let a = assignment_ids[next_assignment];
                    next_assignment += 1;
                    let name = u
                        .assignments
                        .get(a)
                        .map(|x| x.name.clone())
                        .unwrap_or_default();
                    (ItemKind::Assignment, name, Some(a), None, None)
                } else {
                    match rng.gen_range(0..3) {
                        0 => {
                            let slug = format!("week-{}-notes", m + 1);
                            (
                                ItemKind::Page,
                                format!("Week {} notes", m + 1),
                                Some(course_id * 100 + m as u64),
                                Some(slug),
                                None,
                            )
                        }
                        1 => (
                            ItemKind::ExternalUrl,
                            "Course website".to_owned(),
                            None,
                            None,
                            Some(format!(
                                "https://www.example.edu/courses/{course_id}/week/{}",
                                m + 1
                            )),
                        ),
                        _ => (
                            ItemKind::File,
                            format!("Slides week {}.pdf", m + 1),
                            Some(course_id * 1_000 + m as u64 * 10 + it as u64),
                            None,
                            None,
                        ),
                    }
                };
                let completion = match kind {
                    ItemKind::Assignment => Some(CompletionRequirement {
                        kind: "must_submit".to_owned(),
                        min_score: None,
                    }),
                    ItemKind::Page | ItemKind::File if rng.gen_bool(0.5) => {
                        Some(CompletionRequirement {
                            kind: "must_view".to_owned(),
                            min_score: None,
                        })
                    }
                    _ => None,
                };
                u.add_module_item(ModuleItem {
                    id: u.module_items.next_id(),
                    module_id,
                    course_id,
                    position: it as u32 + 1,
                    title,
                    kind,
                    content_id,
                    page_url,
                    external_url,
                    new_tab: false,
                    indent: u32::from(it > 0),
                    published,
                    workflow_state: "active",
                    completion_requirement: completion,
                    created_at: created,
                    updated_at: created,
                });
            }
        }
    }

    build_timetable(&mut u, &mut rng, &sections_of);
    add_days_off(&mut u);
    u
}

/// Share of single classes the timetable cancels (an instructor away, a room closed).
const CANCELLED_SHARE: f64 = 0.004;
const CANCEL_REASONS: [&str; 3] = [
    "instructor unavailable",
    "room closed",
    "class moved online",
];

/// The fall holidays (Labor Day; the Thanksgiving recess, Wednesday to Friday) and a few
/// single cancellations, drawn from their own stream so the rest of the university does not
/// depend on them.
fn add_days_off(u: &mut University) {
    let first = u.date_of_day(0);
    let year = first.year();
    let nth_weekday = |month: u32, weekday: chrono::Weekday, n: u8| {
        NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
    };
    if let Some(d) = nth_weekday(9, chrono::Weekday::Mon, 1) {
        u.holidays.insert(d, "Labor Day".to_owned());
    }
    if let Some(thursday) = nth_weekday(11, chrono::Weekday::Thu, 4) {
        for offset in -1..=1 {
            u.holidays.insert(
                thursday + chrono::Duration::days(offset),
                "Thanksgiving recess".to_owned(),
            );
        }
    }
    let mut rng = ids::rng(u.seed, "cancellations");
    for m in &u.meetings {
        for day in 0..7 * 15 {
            if !m.pattern.weekdays().contains(&((day % 7) as u8)) {
                continue;
            }
            if rng.gen_bool(CANCELLED_SHARE) {
                let reason = CANCEL_REASONS[rng.gen_range(0..CANCEL_REASONS.len())];
                u.cancellations.insert(
                    (m.id, first + chrono::Duration::days(day)),
                    reason.to_owned(),
                );
            }
        }
    }
}

fn student_state(roll: f64) -> EnrollmentState {
    match roll {
        r if r < 0.90 => EnrollmentState::Active,
        r if r < 0.93 => EnrollmentState::Invited,
        r if r < 0.95 => EnrollmentState::Inactive,
        r if r < 0.965 => EnrollmentState::Completed,
        r if r < 0.985 => EnrollmentState::Deleted,
        r if r < 0.993 => EnrollmentState::CreationPending,
        _ => EnrollmentState::Rejected,
    }
}

#[allow(clippy::too_many_arguments)]
fn enroll(
    u: &mut University,
    course_id: u64,
    section_id: u64,
    user_id: u64,
    kind: EnrollmentType,
    state: EnrollmentState,
    created: i64,
    associated_user_id: Option<u64>,
) -> u64 {
    u.add_enrollment(Enrollment {
        id: u.enrollments.next_id(),
        course_id,
        section_id,
        user_id,
        kind,
        state,
        associated_user_id,
        limit_privileges_to_course_section: kind == EnrollmentType::TaEnrollment,
        created_at: created,
        updated_at: created,
        last_activity_at: None,
        from_sis: true,
    })
}

/// Rooms sized for the sections, and one weekly pattern per in-person section.
fn build_timetable(
    u: &mut University,
    rng: &mut rand_chacha::ChaCha20Rng,
    sections_of: &[Vec<u64>],
) {
    const MWF_SLOTS: [u32; 10] = [480, 540, 600, 660, 720, 780, 840, 900, 960, 1020];
    const TTH_SLOTS: [u32; 7] = [480, 570, 660, 750, 840, 930, 1020];
    let in_person: Vec<(u64, u64)> = sections_of
        .iter()
        .flatten()
        .filter_map(|s| u.sections.get(*s).map(|sec| (sec.id, sec.course_id)))
        .filter(|(_, c)| {
            u.courses
                .get(*c)
                .is_some_and(|c| c.course_format != "online")
        })
        .collect();
    let slots_per_room = (MWF_SLOTS.len() + TTH_SLOTS.len()) as f64;
    let n_rooms = ((in_person.len() as f64 / (slots_per_room * 0.7)).ceil() as usize).max(4);
    for r in 0..n_rooms {
        let (code, building) = BUILDINGS[r % BUILDINGS.len()];
        // Unique by construction: one number per (building, round).
        let number = 110 + (r / BUILDINGS.len()) as u32 * 10;
        u.rooms.push(Room {
            id: format!("{code}-{number}"),
            building: building.to_owned(),
            name: format!("{code} {number}"),
            capacity: *[24u32, 40, 60, 90, 150, 300].choose(rng).unwrap_or(&40),
            has_recorder: rng.gen_bool(0.8),
        });
    }
    // Occupancy per (room index, pattern, slot).
    let mut mwf = vec![[false; 10]; n_rooms];
    let mut tth = vec![[false; 7]; n_rooms];
    for (section_id, course_id) in in_person {
        let want_mwf = rng.gen_bool(0.6);
        let mut placed = None;
        for attempt in 0..(n_rooms * 17 + 40) {
            let use_mwf = if attempt < 30 {
                want_mwf
            } else {
                attempt % 2 == 0
            };
            let room = if attempt < 30 {
                rng.gen_range(0..n_rooms)
            } else {
                (attempt / 2) % n_rooms
            };
            if use_mwf {
                let slot = rng.gen_range(0..MWF_SLOTS.len());
                if !mwf[room][slot] {
                    mwf[room][slot] = true;
                    placed = Some((room, Pattern::Mwf, MWF_SLOTS[slot], 50));
                    break;
                }
            } else {
                let slot = rng.gen_range(0..TTH_SLOTS.len());
                if !tth[room][slot] {
                    tth[room][slot] = true;
                    placed = Some((room, Pattern::Tth, TTH_SLOTS[slot], 75));
                    break;
                }
            }
        }
        if let Some((room, pattern, start, duration)) = placed {
            let id = u.meetings.len() as u64 + 1;
            u.meetings.push(Meeting {
                id,
                section_id,
                course_id,
                room_id: u.rooms[room].id.clone(),
                pattern,
                start_minute: start,
                duration_minutes: duration,
            });
            u.section_meetings.entry(section_id).or_default().push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn small_university_has_every_kind_of_row() {
        let u = generate(Scale::Small, 1);
        assert_eq!(u.courses.len(), 50);
        assert!(u.sections.len() >= 50);
        assert!(u.users.len() > 600);
        for state in EnrollmentState::ALL {
            assert!(
                u.enrollments.iter().any(|e| e.state == state),
                "no {state:?} enrollment"
            );
        }
        for kind in EnrollmentType::ALL {
            assert!(u.enrollments.iter().any(|e| e.kind == kind), "no {kind:?}");
        }
        assert!(!u.meetings.is_empty() && !u.rooms.is_empty());
        assert!(u.rooms.iter().any(|r| r.has_recorder));
        let mut room_ids: Vec<&str> = u.rooms.iter().map(|r| r.id.as_str()).collect();
        room_ids.sort_unstable();
        room_ids.dedup();
        assert_eq!(room_ids.len(), u.rooms.len(), "room ids are unique");
    }

    #[test]
    fn classes_keep_their_local_time_across_the_november_change() {
        let u = generate(Scale::Small, 1);
        // Term day 0 is Monday 25 August (EDT); day 70 is Monday 3 November (EST).
        assert_eq!(u.date_of_day(70).to_string(), "2025-11-03");
        let hour_utc = |day: i64| -> Vec<(u64, u32)> {
            u.meetings_on(day)
                .into_iter()
                .map(|(m, start, _)| (m.id, crate::clock::from_ms(start).hour()))
                .collect()
        };
        let (before, after) = (hour_utc(63), hour_utc(70));
        assert!(!before.is_empty());
        assert_eq!(before.len(), after.len());
        for ((id, b), (id2, a)) in before.iter().zip(&after) {
            assert_eq!(id, id2);
            assert_eq!(*a, (b + 1) % 24, "meeting {id}: one UTC hour later in EST");
        }
        // Local midnight of the change day itself (Sunday 2 November, 25 hours long).
        assert_eq!(u.day_start(70) - u.day_start(69), 25 * 3_600_000);
        assert_eq!(u.day_of(u.day_start(70) - 1), 69);
    }
}
