//! Lecture occurrences: every section meeting on every date the simulation has reached, with
//! its room, recorder, the session scheduled for it and what became of it. Each day's
//! lectures are scheduled on the room recorders at 01:00 local, as a university's scheduler
//! does; a cancelled class (holiday or cancellation in the timetable) and a room without a
//! recorder get no session. What a recorder fault does to a lecture is its session's fate,
//! decided from the faults in force for the lecture's start and decided again whenever the
//! faults change before it starts. The ground truth reports each occurrence's expected and
//! actual outcome from these records, which is what tests of the monitors check against.

use chrono::NaiveDate;
use rand08::Rng;
use serde::Serialize;

use super::faults::RecorderProblem;
use super::world::{Fate, PanoptoWorld, Session, StaffEdit};
use crate::university::University;

/// One section meeting on one date.
#[derive(Debug, Clone, Serialize)]
pub struct Lecture {
    pub date: NaiveDate,
    pub meeting_id: u64,
    pub section_id: u64,
    pub course_id: u64,
    pub room_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The room's recorder (`None`: the room has none).
    pub recorder_id: Option<String>,
    /// Why the class did not take place, if it did not.
    pub cancelled: Option<String>,
    pub session_id: Option<String>,
}

/// What should become, or became, of a lecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Recorded,
    /// Recorded by an offline recorder and uploaded later (or not yet).
    RecordedLate,
    /// The recorder was faulted: nothing was recorded.
    BrokenRecorder,
    /// Recorded, but by another room's recorder.
    WrongRoom,
    NoRecorder,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::RecordedLate => "recorded_late",
            Outcome::BrokenRecorder => "broken_recorder",
            Outcome::WrongRoom => "wrong_room",
            Outcome::NoRecorder => "no_recorder",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// A staff edit due at a time, for the timeline to apply.
#[derive(Debug, Clone)]
pub struct DueEdit {
    pub at_ms: i64,
    pub session_id: String,
}

impl PanoptoWorld {
    /// Record and schedule the lectures of term day `day` (at `now`, before they start).
    /// Returns the staff edits drawn for them.
    pub fn schedule_lectures(&mut self, u: &University, day: i64, now: i64) -> Vec<DueEdit> {
        let date = u.date_of_day(day);
        let mut edits = Vec::new();
        let meetings: Vec<(u64, u64, u64, String, i64, i64)> = u
            .meetings_on(day)
            .into_iter()
            .map(|(m, s, e)| (m.id, m.section_id, m.course_id, m.room_id.clone(), s, e))
            .collect();
        for (meeting_id, section_id, course_id, room_id, start, end) in meetings {
            let mut lecture = Lecture {
                date,
                meeting_id,
                section_id,
                course_id,
                recorder_id: self.recorder_by_room.get(&room_id).cloned(),
                room_id,
                start_ms: start,
                end_ms: end,
                cancelled: u.cancellation(meeting_id, date),
                session_id: None,
            };
            if let (Some(recorder), None) = (&lecture.recorder_id, &lecture.cancelled) {
                let section = u
                    .sections
                    .get(section_id)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let id = self.schedule(
                    format!("{section} - {date}"),
                    recorder.clone(),
                    start,
                    end,
                    Some((section_id, meeting_id)),
                    now,
                );
                let p = self.faults.staff_edit_probability.clamp(0.0, 1.0);
                if self.rng_mut().gen_bool(p) {
                    edits.push(DueEdit {
                        at_ms: end
                            + (self.faults.staff_edit_delay_minutes.max(0.0) * 60_000.0) as i64,
                        session_id: id.clone(),
                    });
                }
                lecture.session_id = Some(id);
            }
            self.lectures.insert((date, meeting_id), lecture);
        }
        edits
    }

    /// A session's fate under the faults in force when it starts, on the recorder that
    /// really records it.
    pub fn fate_of(&self, x: &Session) -> Fate {
        let room = x
            .recorder_id
            .as_ref()
            .and_then(|r| self.recorders.get(r))
            .map(|r| r.room_id.as_str())
            .unwrap_or_default();
        match self.faults.recorder_problem(room, x.start_ms) {
            Some((RecorderProblem::Faulted, _)) => Fate::NotRecorded,
            Some((RecorderProblem::Offline, window)) => Fate::Uploads(window.until_ms()),
            None => Fate::Records,
        }
    }

    /// New faults at `now`: every scheduled session that has not started yet, and every
    /// offline upload still to come, is decided again.
    pub fn set_faults(&mut self, faults: super::faults::PanoptoFaults, now: i64) {
        self.faults = faults;
        let open: Vec<String> = self
            .sessions
            .values()
            .filter(|x| x.deleted_ms.is_none() && x.scheduled_recorder_id.is_some())
            .filter(|x| {
                x.start_ms > now || matches!(x.fate, Fate::Uploads(u) if u.is_none_or(|u| u > now))
            })
            .map(|x| x.id.clone())
            .collect();
        for id in open {
            self.decide_again(&id, now);
        }
    }

    /// Decide a session's fate again at `now` (faults or its times changed).
    pub fn decide_again(&mut self, id: &str, now: i64) {
        let Some(x) = self.sessions.get(id) else {
            return;
        };
        // A lecture already recorded locally keeps its recording: only when it arrives
        // can change, and not into the past.
        let fate = match (x.start_ms > now, self.fate_of(x)) {
            (true, fate) | (false, fate @ Fate::Uploads(None)) => fate,
            (false, Fate::Uploads(Some(at))) => Fate::Uploads(Some(at.max(now))),
            (false, _) => Fate::Uploads(Some(now)),
        };
        if let Some(x) = self.sessions.get_mut(id) {
            x.fate = fate;
            x.settle();
            if x.complete_ms.is_none() {
                x.captions_ms = None;
            }
        }
        self.request_captions(id, now);
    }

    /// A person renames the session or moves it into another course's folder (the mistakes
    /// staff make by hand), unless it is gone.
    pub fn staff_edit(&mut self, id: &str, at: i64) {
        let Some(x) = self.sessions.get(id) else {
            return;
        };
        if x.deleted_ms.is_some_and(|d| d <= at) || x.staff_edit.is_some() {
            return;
        }
        let folder = x.folder_id.clone();
        let rename = self.rng_mut().gen_bool(0.5);
        let others: Vec<String> = self
            .course_folders
            .values()
            .filter(|f| **f != folder)
            .cloned()
            .collect();
        if rename || others.is_empty() {
            let n = self.rng_mut().gen_range(1..=28);
            let name = format!("Lecture {n} (edited)");
            if let Some(x) = self.sessions.get_mut(id) {
                x.staff_edit = Some(StaffEdit {
                    at_ms: at,
                    kind: "renamed",
                    detail: format!("{} → {name}", x.name),
                });
                x.name = name;
                x.updated_ms = at;
            }
        } else {
            let to = others[self.rng_mut().gen_range(0..others.len())].clone();
            self.move_session(id, to.clone(), at);
            if let Some(x) = self.sessions.get_mut(id) {
                x.staff_edit = Some(StaffEdit {
                    at_ms: at,
                    kind: "moved",
                    detail: format!("{folder} → {to}"),
                });
            }
        }
    }

    /// Cancel a lecture already recorded here (a late cancellation in the timetable): its
    /// scheduled session, if it has not started, is deleted.
    pub fn cancel_lecture(&mut self, date: NaiveDate, meeting_id: u64, reason: String, now: i64) {
        let Some(lecture) = self.lectures.get_mut(&(date, meeting_id)) else {
            return;
        };
        if lecture.start_ms <= now || lecture.cancelled.is_some() {
            return;
        }
        lecture.cancelled = Some(reason);
        if let Some(x) = lecture
            .session_id
            .take()
            .and_then(|id| self.sessions.get_mut(&id))
        {
            x.deleted_ms = Some(now);
        }
    }

    /// What the timetable says should become of a lecture.
    pub fn expected_outcome(&self, l: &Lecture) -> Outcome {
        if l.cancelled.is_some() {
            Outcome::Cancelled
        } else if l.recorder_id.is_none() {
            Outcome::NoRecorder
        } else {
            Outcome::Recorded
        }
    }

    /// What became of it (or will, as far as the faults in force decide).
    pub fn actual_outcome(&self, l: &Lecture) -> Outcome {
        let expected = self.expected_outcome(l);
        if expected != Outcome::Recorded {
            return expected;
        }
        let Some(x) = l.session_id.as_ref().and_then(|id| self.sessions.get(id)) else {
            return Outcome::BrokenRecorder;
        };
        match x.fate {
            Fate::NotRecorded => Outcome::BrokenRecorder,
            _ if x.recorder_id != x.scheduled_recorder_id => Outcome::WrongRoom,
            Fate::Uploads(_) => Outcome::RecordedLate,
            Fate::Records => Outcome::Recorded,
        }
    }

    /// Lectures started by `now` that were not recorded because of a faulted recorder.
    pub fn missed_lectures(&self, now: i64) -> u64 {
        self.lectures
            .values()
            .filter(|l| l.start_ms <= now && self.actual_outcome(l) == Outcome::BrokenRecorder)
            .count() as u64
    }
}
