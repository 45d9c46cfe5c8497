//! The university's timetable as files: Canvas SIS CSV (`accounts.csv`, `terms.csv`,
//! `courses.csv`, `sections.csv`, `users.csv`, `enrollments.csv`, canvas.md D) plus three
//! documented CSVs Canvas has no format for:
//!
//! * `rooms.csv`: `room_id,building,name,capacity,has_recorder,recorder_id`
//! * `recorders.csv`: `recorder_id,name,external_id,default_folder_id` (external_id = room_id)
//! * `meetings.csv`: `meeting_id,section_id,course_id,room_id,days,start_time,end_time,
//!   duration_minutes,time_zone,first_date,last_date` — `section_id`/`course_id` are SIS ids,
//!   `days` uses M T W R F, times are local `HH:MM` in `time_zone` (`America/New_York`:
//!   daylight saving time is kept, so a class stays at its local time across the November
//!   change); the meeting takes place every such day from `first_date` to `last_date`
//!   (local dates) except the rows of `cancellations.csv`.
//! * `cancellations.csv`: `date,meeting_id,section_id,course_id,reason` — one row per class
//!   that does not take place: `date` local `YYYY-MM-DD`, `meeting_id` as in `meetings.csv`,
//!   SIS `section_id`/`course_id`, `reason` free text (`holiday: <name>` for the term's
//!   holidays, whose every class is listed).
//!
//! Columns of the three room files, in order:
//!
//! | file | column | meaning |
//! |---|---|---|
//! | rooms | `room_id` | the room's code (`BLDG-NNN`), the key of every other file |
//! | rooms | `building`, `name`, `capacity` | where it is, its display name, seats |
//! | rooms | `has_recorder` | `true` / `false`: a Panopto remote recorder is installed |
//! | rooms | `recorder_id` | that recorder's Panopto GUID (empty without one) |
//! | recorders | `recorder_id`, `name` | the Panopto GUID and name |
//! | recorders | `external_id` | the room it is in (Panopto's recorder ExternalId) |
//! | recorders | `default_folder_id` | where its recordings land until filed |
//! | meetings | `meeting_id` | the meeting pattern's id (stable across exports) |
//! | meetings | `start_time`, `end_time`, `duration_minutes` | local start and end, length |

use crate::clock::iso;
use crate::ground_truth::local_time;
use crate::university::*;
use crate::world::World;

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn row(out: &mut String, cols: &[&str]) {
    let line: Vec<String> = cols.iter().map(|c| field(c)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

pub const FILES: [&str; 10] = [
    "accounts.csv",
    "terms.csv",
    "courses.csv",
    "sections.csv",
    "users.csv",
    "enrollments.csv",
    "rooms.csv",
    "recorders.csv",
    "meetings.csv",
    "cancellations.csv",
];

/// One export by file name, or `None` for an unknown name.
pub fn export(w: &World, file: &str) -> Option<String> {
    let u = &w.uni;
    let mut out = String::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    match file {
        "accounts.csv" => {
            row(
                &mut out,
                &["account_id", "parent_account_id", "name", "status"],
            );
            for a in u.accounts.iter().filter(|a| a.parent_account_id.is_some()) {
                row(&mut out, &[&opt(&a.sis_account_id), "", &a.name, "active"]);
            }
        }
        "terms.csv" => {
            row(
                &mut out,
                &["term_id", "name", "status", "start_date", "end_date"],
            );
            for t in u.terms.iter().filter(|t| t.sis_term_id.is_some()) {
                row(
                    &mut out,
                    &[
                        &opt(&t.sis_term_id),
                        &t.name,
                        "active",
                        &t.start_at.map(iso).unwrap_or_default(),
                        &t.end_at.map(iso).unwrap_or_default(),
                    ],
                );
            }
        }
        "courses.csv" => {
            row(
                &mut out,
                &[
                    "course_id",
                    "short_name",
                    "long_name",
                    "account_id",
                    "term_id",
                    "status",
                    "start_date",
                    "end_date",
                    "course_format",
                ],
            );
            for c in u.courses.iter().filter(|c| c.sis_course_id.is_some()) {
                let account = u
                    .accounts
                    .get(c.account_id)
                    .and_then(|a| a.sis_account_id.clone())
                    .unwrap_or_default();
                let term = u
                    .terms
                    .get(c.term_id)
                    .and_then(|t| t.sis_term_id.clone())
                    .unwrap_or_default();
                let status = match c.workflow_state {
                    CourseState::Available => "published",
                    CourseState::Unpublished => "active",
                    CourseState::Completed => "completed",
                    CourseState::Deleted => "deleted",
                };
                row(
                    &mut out,
                    &[
                        &opt(&c.sis_course_id),
                        &c.course_code,
                        &c.name,
                        &account,
                        &term,
                        status,
                        &c.start_at.map(iso).unwrap_or_default(),
                        &c.end_at.map(iso).unwrap_or_default(),
                        c.course_format,
                    ],
                );
            }
        }
        "sections.csv" => {
            row(
                &mut out,
                &[
                    "section_id",
                    "course_id",
                    "name",
                    "status",
                    "start_date",
                    "end_date",
                ],
            );
            for s in u.sections.iter().filter(|s| s.sis_section_id.is_some()) {
                let course = u
                    .courses
                    .get(s.course_id)
                    .and_then(|c| c.sis_course_id.clone())
                    .unwrap_or_default();
                row(
                    &mut out,
                    &[
                        &opt(&s.sis_section_id),
                        &course,
                        &s.name,
                        s.workflow_state,
                        &s.start_at.map(iso).unwrap_or_default(),
                        &s.end_at.map(iso).unwrap_or_default(),
                    ],
                );
            }
        }
        "users.csv" => {
            row(
                &mut out,
                &[
                    "user_id",
                    "login_id",
                    "first_name",
                    "last_name",
                    "full_name",
                    "sortable_name",
                    "short_name",
                    "email",
                    "status",
                ],
            );
            for x in u.users.iter().filter(|x| x.sis_user_id.is_some()) {
                let status = if x.workflow_state == "deleted" {
                    "deleted"
                } else {
                    "active"
                };
                row(
                    &mut out,
                    &[
                        &opt(&x.sis_user_id),
                        &x.login_id,
                        &x.first_name,
                        &x.last_name,
                        &x.name,
                        &x.sortable_name,
                        &x.short_name,
                        &x.email,
                        status,
                    ],
                );
            }
        }
        "enrollments.csv" => {
            row(
                &mut out,
                &[
                    "course_id",
                    "root_account",
                    "user_id",
                    "role",
                    "section_id",
                    "status",
                    "associated_user_id",
                    "limit_section_privileges",
                ],
            );
            for e in u.enrollments.iter() {
                let (Some(user), Some(section), Some(course)) = (
                    u.users.get(e.user_id),
                    u.sections.get(e.section_id),
                    u.courses.get(e.course_id),
                ) else {
                    continue;
                };
                let (Some(uid), Some(sid), Some(cid)) = (
                    &user.sis_user_id,
                    &section.sis_section_id,
                    &course.sis_course_id,
                ) else {
                    continue;
                };
                let status = match e.state {
                    EnrollmentState::Active
                    | EnrollmentState::Invited
                    | EnrollmentState::CreationPending => "active",
                    EnrollmentState::Inactive => "inactive",
                    EnrollmentState::Completed => "completed",
                    EnrollmentState::Deleted | EnrollmentState::Rejected => "deleted",
                };
                let observed = e
                    .associated_user_id
                    .and_then(|a| u.users.get(a))
                    .and_then(|a| a.sis_user_id.clone())
                    .unwrap_or_default();
                row(
                    &mut out,
                    &[
                        cid,
                        "",
                        uid,
                        e.kind.sis_role(),
                        sid,
                        status,
                        &observed,
                        if e.limit_privileges_to_course_section {
                            "true"
                        } else {
                            "false"
                        },
                    ],
                );
            }
        }
        "rooms.csv" => {
            row(
                &mut out,
                &[
                    "room_id",
                    "building",
                    "name",
                    "capacity",
                    "has_recorder",
                    "recorder_id",
                ],
            );
            for r in &u.rooms {
                let rec = w
                    .panopto
                    .recorder_by_room
                    .get(&r.id)
                    .cloned()
                    .unwrap_or_default();
                row(
                    &mut out,
                    &[
                        &r.id,
                        &r.building,
                        &r.name,
                        &r.capacity.to_string(),
                        if r.has_recorder { "true" } else { "false" },
                        &rec,
                    ],
                );
            }
        }
        "recorders.csv" => {
            row(
                &mut out,
                &["recorder_id", "name", "external_id", "default_folder_id"],
            );
            for r in w.panopto.recorders.values() {
                row(
                    &mut out,
                    &[&r.id, &r.name, &r.room_id, &r.default_folder_id],
                );
            }
        }
        "meetings.csv" => {
            row(
                &mut out,
                &[
                    "meeting_id",
                    "section_id",
                    "course_id",
                    "room_id",
                    "days",
                    "start_time",
                    "end_time",
                    "duration_minutes",
                    "time_zone",
                    "first_date",
                    "last_date",
                ],
            );
            let first = u.date_of_day(0).format("%Y-%m-%d").to_string();
            let last = u.date_of_day(7 * 15 - 3).format("%Y-%m-%d").to_string();
            for m in &u.meetings {
                let Some((section, course)) = sis_ids(u, m) else {
                    continue;
                };
                row(
                    &mut out,
                    &[
                        &m.id.to_string(),
                        &section,
                        &course,
                        &m.room_id,
                        &m.pattern.days_code(),
                        &local_time(m.start_minute),
                        &local_time(m.start_minute + m.duration_minutes),
                        &m.duration_minutes.to_string(),
                        TIME_ZONE,
                        &first,
                        &last,
                    ],
                );
            }
        }
        "cancellations.csv" => {
            row(
                &mut out,
                &["date", "meeting_id", "section_id", "course_id", "reason"],
            );
            for (date, meeting_id, reason) in cancelled_classes(u) {
                let Some((section, course)) = u
                    .meetings
                    .iter()
                    .find(|m| m.id == meeting_id)
                    .and_then(|m| sis_ids(u, m))
                else {
                    continue;
                };
                row(
                    &mut out,
                    &[
                        &date.to_string(),
                        &meeting_id.to_string(),
                        &section,
                        &course,
                        &reason,
                    ],
                );
            }
        }
        _ => return None,
    }
    Some(out)
}

/// A meeting's section and course SIS ids (empty when they have none).
fn sis_ids(u: &University, m: &Meeting) -> Option<(String, String)> {
    let section = u.sections.get(m.section_id)?;
    let course = u.courses.get(m.course_id)?;
    Some((
        section.sis_section_id.clone().unwrap_or_default(),
        course.sis_course_id.clone().unwrap_or_default(),
    ))
}

/// Every class of the term that does not take place, by date then meeting.
pub fn cancelled_classes(u: &University) -> Vec<(chrono::NaiveDate, u64, String)> {
    let mut out = Vec::new();
    for day in 0..7 * 15 {
        let date = u.date_of_day(day);
        for (m, _, _) in u.meetings_on(day) {
            if let Some(reason) = u.cancellation(m.id, date) {
                out.push((date, m.id, reason));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_rfc4180() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
    }
}
