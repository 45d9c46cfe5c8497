//! Which lecture a Panopto session is the recording of. Pure: the session and the catalog's
//! timetable in, a [`Match`] out, so the decision is the same on first sight, on replay and
//! in `explain`.
//!
//! # Rules
//!
//! * **Room, then time.** A recorder's room is the timetable's (`recorders.csv`: a recorder's
//!   external id is its room, as UW's scheduler does it, panopto.md a8). The session's lecture
//!   is a meeting occurrence in that room that overlaps the session by at least half of the
//!   shorter of the two: a class recorded a few minutes late or long still matches, the next
//!   class in the room two minutes into an over-run does not.
//! * **Scheduled beats recorded.** Panopto's scheduled recording names the recorder the
//!   session was scheduled on; when another room's recorder recorded it (a wrong-room
//!   schedule, a recorder swapped), the session belongs to the meeting it was scheduled for,
//!   and the match is flagged with the room that recorded it.
//! * **Cross-listed sections share one recording**: overlapping occurrences in one room whose
//!   sections are in one course once cross-listing is applied are one lecture, matched to all
//!   of their sections.
//! * **Otherwise park**: no recorder, a recorder the timetable does not know, no lecture in
//!   the window (a cancelled one is named), or lectures of two courses: parked with the reason
//!   and the candidates a person would look at.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::lectures::Occurrence;

/// A session as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub start_ms: i64,
    /// After `start_ms`: a session not yet recorded ends when it is scheduled to.
    pub end_ms: i64,
    /// The recorder that recorded it (SOAP `RemoteRecorderIds`, the first).
    pub recorder_id: Option<String>,
    /// The recorder it was scheduled on, when Panopto said (a recorder's scheduled list).
    pub scheduled_recorder_id: Option<String>,
}

/// The timetable around a session: each recorder's room, the occurrences of the days the
/// session touches (cancelled ones included, so a park can name them), and the course each
/// cross-listed section is listed in.
#[derive(Debug, Clone, Default)]
pub struct Timetable {
    pub room_of_recorder: BTreeMap<String, String>,
    pub occurrences: Vec<Occurrence>,
    /// Section → the course it is cross-listed into (`xlists.csv`); absent: its own course.
    pub cross_listed_into: BTreeMap<String, String>,
}

impl Timetable {
    fn course_of(&self, o: &Occurrence) -> String {
        self.cross_listed_into
            .get(&o.section_id)
            .cloned()
            .unwrap_or_else(|| o.course_id.clone())
    }
}

/// The lecture a session records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lecture {
    pub meeting_id: String,
    /// Local date of the occurrence.
    pub date: String,
    pub room_id: String,
    /// The course the recording is posted in (cross-listing applied).
    pub course_id: String,
    /// Every section the recording is for (one, or the cross-listed ones), sorted.
    pub sections: Vec<String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    /// Set when another room's recorder recorded it: that room.
    pub recorded_in: Option<String>,
}

/// Why a session was parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParkReason {
    /// No recorder recorded it (an upload or a web recording).
    NoRecorder,
    /// Its recorder is in no room of the timetable.
    UnknownRecorder,
    /// No lecture in its room overlaps it.
    NoLecture,
    /// The only lecture it overlaps was cancelled.
    Cancelled,
    /// It overlaps lectures of more than one course.
    SeveralLectures,
}

impl ParkReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ParkReason::NoRecorder => "no_recorder",
            ParkReason::UnknownRecorder => "unknown_recorder",
            ParkReason::NoLecture => "no_lecture",
            ParkReason::Cancelled => "cancelled",
            ParkReason::SeveralLectures => "several_lectures",
        }
    }
}

/// An occurrence a person would look at for a parked session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub meeting_id: String,
    pub date: String,
    pub section_id: String,
    pub room_id: String,
    pub overlap_ms: i64,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Match {
    Matched(Lecture),
    Parked {
        reason: ParkReason,
        /// The room looked in, when one was known.
        room_id: Option<String>,
        candidates: Vec<Candidate>,
    },
}

fn overlap(s: &Session, o: &Occurrence) -> i64 {
    s.end_ms.min(o.ends_at_ms) - s.start_ms.max(o.starts_at_ms)
}

/// Enough overlap to be this occurrence's recording: half the shorter of the two.
fn overlaps_enough(s: &Session, o: &Occurrence) -> bool {
    let shorter = (s.end_ms - s.start_ms).min(o.ends_at_ms - o.starts_at_ms);
    let o = overlap(s, o);
    o > 0 && o * 2 >= shorter
}

/// The lecture `session` records, or why it is parked.
pub fn match_session(session: &Session, timetable: &Timetable) -> Match {
    let park = |reason, room_id: Option<&String>, candidates| Match::Parked {
        reason,
        room_id: room_id.cloned(),
        candidates,
    };
    let Some(recorder) = session
        .scheduled_recorder_id
        .as_ref()
        .or(session.recorder_id.as_ref())
    else {
        return park(ParkReason::NoRecorder, None, Vec::new());
    };
    let room_of = |r: &String| timetable.room_of_recorder.get(r);
    let recorded_room = session.recorder_id.as_ref().and_then(room_of);
    // The scheduled recorder's room, unless the timetable does not know it (then the recorder
    // that recorded it is the best evidence left).
    let Some(room) = room_of(recorder).or(recorded_room) else {
        return park(ParkReason::UnknownRecorder, None, Vec::new());
    };
    let in_room: Vec<&Occurrence> = timetable
        .occurrences
        .iter()
        .filter(|o| &o.room_id == room && overlap(session, o) > 0)
        .collect();
    let candidates = |list: &[&Occurrence]| -> Vec<Candidate> {
        list.iter()
            .map(|o| Candidate {
                meeting_id: o.meeting_id.clone(),
                date: o.date.clone(),
                section_id: o.section_id.clone(),
                room_id: o.room_id.clone(),
                overlap_ms: overlap(session, o),
                cancelled: o.cancelled,
            })
            .collect()
    };
    let held: Vec<&Occurrence> = in_room
        .iter()
        .copied()
        .filter(|o| !o.cancelled && overlaps_enough(session, o))
        .collect();
    if held.is_empty() {
        let reason = if in_room
            .iter()
            .any(|o| o.cancelled && overlaps_enough(session, o))
        {
            ParkReason::Cancelled
        } else {
            ParkReason::NoLecture
        };
        return park(reason, Some(room), candidates(&in_room));
    }
    let courses: BTreeSet<String> = held.iter().map(|o| timetable.course_of(o)).collect();
    if courses.len() > 1 {
        return park(ParkReason::SeveralLectures, Some(room), candidates(&held));
    }
    // One course: the occurrence with the most overlap names the lecture; every section of
    // the course meeting then is on it.
    let main = held
        .iter()
        .max_by_key(|o| (overlap(session, o), std::cmp::Reverse(o.meeting_id.clone())))
        .expect("held is not empty");
    let sections: BTreeSet<String> = held.iter().map(|o| o.section_id.clone()).collect();
    Match::Matched(Lecture {
        meeting_id: main.meeting_id.clone(),
        date: main.date.clone(),
        room_id: room.clone(),
        course_id: courses.into_iter().next().expect("one course"),
        sections: sections.into_iter().collect(),
        starts_at_ms: main.starts_at_ms,
        ends_at_ms: main.ends_at_ms,
        recorded_in: recorded_room.filter(|r| *r != room).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    /// 09:00 on the test day, as unix ms.
    const NINE: i64 = 1_762_171_200_000;

    fn occ(meeting: &str, section: &str, course: &str, room: &str, start: i64) -> Occurrence {
        Occurrence {
            meeting_id: meeting.into(),
            date: "2025-11-03".into(),
            section_id: section.into(),
            course_id: course.into(),
            room_id: room.into(),
            starts_at_ms: start,
            ends_at_ms: start + 50 * MIN,
            starts_at: String::new(),
            ends_at: String::new(),
            cancelled: false,
            cancelled_reason: None,
        }
    }

    fn timetable(occurrences: Vec<Occurrence>) -> Timetable {
        Timetable {
            room_of_recorder: [("rec-a", "KNE-120"), ("rec-b", "SAV-260")]
                .into_iter()
                .map(|(r, room)| (r.to_owned(), room.to_owned()))
                .collect(),
            occurrences,
            cross_listed_into: BTreeMap::new(),
        }
    }

    fn session(recorder: &str, start: i64, minutes: i64) -> Session {
        Session {
            id: "s1".into(),
            start_ms: start,
            end_ms: start + minutes * MIN,
            recorder_id: Some(recorder.into()),
            scheduled_recorder_id: None,
        }
    }

    fn matched(m: Match) -> Lecture {
        match m {
            Match::Matched(l) => l,
            other => panic!("not matched: {other:?}"),
        }
    }

    fn parked(m: Match) -> (ParkReason, Vec<Candidate>) {
        match m {
            Match::Parked {
                reason, candidates, ..
            } => (reason, candidates),
            other => panic!("not parked: {other:?}"),
        }
    }

    #[test]
    fn a_session_is_the_lecture_in_its_recorders_room_at_its_time() {
        let t = timetable(vec![
            occ("1", "S1", "C1", "KNE-120", NINE),
            occ("2", "S2", "C2", "KNE-120", NINE + 60 * MIN),
            occ("3", "S3", "C3", "SAV-260", NINE),
        ]);
        let l = matched(match_session(&session("rec-a", NINE, 50), &t));
        assert_eq!(
            (l.meeting_id.as_str(), l.sections.clone()),
            ("1", vec!["S1".to_owned()])
        );
        assert_eq!(l.recorded_in, None);
        // Started late and ran over into the break: still the 09:00 class.
        let l = matched(match_session(&session("rec-a", NINE + 7 * MIN, 55), &t));
        assert_eq!(l.meeting_id, "1");
        // Two minutes into the next class is not that class.
        let l = matched(match_session(&session("rec-a", NINE + 58 * MIN, 50), &t));
        assert_eq!(l.meeting_id, "2");
    }

    #[test]
    fn a_wrong_room_recording_goes_with_the_meeting_it_was_scheduled_for_and_is_flagged() {
        let t = timetable(vec![
            occ("1", "S1", "C1", "KNE-120", NINE),
            occ("3", "S3", "C3", "SAV-260", NINE),
        ]);
        let mut s = session("rec-b", NINE, 50);
        s.scheduled_recorder_id = Some("rec-a".into());
        let l = matched(match_session(&s, &t));
        assert_eq!(l.meeting_id, "1", "the scheduled room's lecture");
        assert_eq!(l.room_id, "KNE-120");
        assert_eq!(l.recorded_in.as_deref(), Some("SAV-260"));
    }

    #[test]
    fn cross_listed_sections_share_one_recording() {
        let mut t = timetable(vec![
            occ("1", "S1", "C1", "KNE-120", NINE),
            occ("7", "S7", "C7", "KNE-120", NINE),
        ]);
        t.cross_listed_into.insert("S7".into(), "C1".into());
        let l = matched(match_session(&session("rec-a", NINE, 50), &t));
        assert_eq!(l.sections, vec!["S1".to_owned(), "S7".to_owned()]);
        assert_eq!(l.course_id, "C1");
        // Two sections of one course in one room at one time are one lecture too.
        let t = timetable(vec![
            occ("1", "S1", "C1", "KNE-120", NINE),
            occ("4", "S1b", "C1", "KNE-120", NINE),
        ]);
        let l = matched(match_session(&session("rec-a", NINE, 50), &t));
        assert_eq!(l.sections.len(), 2);
    }

    #[test]
    fn what_matches_nothing_or_two_courses_is_parked_with_its_reason_and_candidates() {
        let mut cancelled = occ("5", "S5", "C5", "SAV-260", NINE);
        cancelled.cancelled = true;
        let t = timetable(vec![
            occ("1", "S1", "C1", "KNE-120", NINE),
            occ("7", "S7", "C7", "KNE-120", NINE),
            cancelled,
        ]);
        let (reason, candidates) = parked(match_session(&session("rec-a", NINE, 50), &t));
        assert_eq!(reason, ParkReason::SeveralLectures);
        assert_eq!(candidates.len(), 2);
        let (reason, candidates) = parked(match_session(&session("rec-b", NINE, 50), &t));
        assert_eq!(reason, ParkReason::Cancelled);
        assert_eq!(candidates[0].meeting_id, "5");
        assert!(candidates[0].cancelled);
        let (reason, _) = parked(match_session(
            &session("rec-a", NINE + 3 * 60 * MIN, 50),
            &t,
        ));
        assert_eq!(reason, ParkReason::NoLecture);
        let (reason, _) = parked(match_session(&session("rec-x", NINE, 50), &t));
        assert_eq!(reason, ParkReason::UnknownRecorder);
        let mut upload = session("rec-a", NINE, 50);
        upload.recorder_id = None;
        assert_eq!(parked(match_session(&upload, &t)).0, ParkReason::NoRecorder);
    }

    #[test]
    fn a_session_spanning_two_lectures_of_different_courses_is_parked() {
        let t = timetable(vec![
            occ("1", "S1", "C1", "KNE-120", NINE),
            occ("2", "S2", "C2", "KNE-120", NINE + 60 * MIN),
        ]);
        let (reason, candidates) = parked(match_session(&session("rec-a", NINE, 120), &t));
        assert_eq!(reason, ParkReason::SeveralLectures);
        assert_eq!(candidates.len(), 2);
    }
}
