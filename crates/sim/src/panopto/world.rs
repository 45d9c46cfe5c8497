//! The Panopto site: folders (a term tree with one folder per course, as Panopto's LMS
//! provisioning makes, plus one default folder per recorder), remote recorders (ExternalId =
//! room), sessions, groups and permissions. A lecture's state is a function of simulated time
//! and the times fixed when it was scheduled (start, end, processing done, captions ready),
//! so it moves Scheduled → Recording → Processing → Complete without a timer per session,
//! and faults switched on later affect only lectures scheduled later.

use std::collections::{BTreeMap, BTreeSet};

use panopto::SessionState;
use rand_chacha::ChaCha20Rng;
use rand08::Rng;
use serde::{Deserialize, Serialize};

use crate::ids;
use crate::university::University;

pub const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Panopto fault knobs (switchable at run time through `/_sim/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PanoptoFaults {
    /// Rooms whose recorder is broken: their lectures produce no session.
    pub broken_recorder_rooms: BTreeSet<String>,
    /// Probability that a lecture's processing takes `late_processing_minutes` longer.
    pub late_processing_probability: f64,
    pub late_processing_minutes: f64,
    /// Probability that automatic captions arrive `late_captions_minutes` late.
    pub late_captions_probability: f64,
    pub late_captions_minutes: f64,
    /// Probability that automatic captions never arrive.
    pub captions_never_probability: f64,
    /// Probability that a lecture is recorded by another room's recorder.
    pub wrong_room_probability: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Permission {
    pub principal_type: panopto::PrincipalType,
    pub principal_id: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub parent: Option<String>,
    pub external_id: Option<String>,
    pub access_inherited: bool,
    pub access_level: panopto::AccessLevel,
    pub permissions: Vec<Permission>,
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recorder {
    pub id: String,
    pub name: String,
    pub room_id: String,
    pub default_folder_id: String,
    pub machine_ip: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub folder_id: String,
    pub external_id: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// When processing finishes; `None` while the recording never started (broken recorder).
    pub complete_ms: Option<i64>,
    /// When automatic captions become available (`None`: never).
    pub captions_ms: Option<i64>,
    /// Caption languages uploaded through the API.
    pub uploaded_captions: BTreeSet<String>,
    /// The recorder that actually records (differs from the scheduled one on a wrong-room fault).
    pub recorder_id: Option<String>,
    pub scheduled_recorder_id: Option<String>,
    pub is_broadcast: bool,
    /// The timetable meeting this lecture came from, if any: (section, meeting).
    pub section_id: Option<u64>,
    pub meeting_id: Option<u64>,
    pub access_inherited: bool,
    pub access_level: panopto::AccessLevel,
    pub permissions: Vec<Permission>,
    pub deleted_ms: Option<i64>,
}

impl Session {
    pub fn state_at(&self, now: i64) -> SessionState {
        let Some(complete) = self.complete_ms else {
            return SessionState::Scheduled;
        };
        if now < self.start_ms {
            SessionState::Scheduled
        } else if now < self.end_ms {
            if self.is_broadcast {
                SessionState::Broadcasting
            } else {
                SessionState::Recording
            }
        } else if now < complete {
            SessionState::Processing
        } else {
            SessionState::Complete
        }
    }

    /// Seconds of media at `now` (`None` before recording starts).
    pub fn duration_at(&self, now: i64) -> Option<f64> {
        self.complete_ms?;
        if now < self.start_ms {
            return None;
        }
        Some((now.min(self.end_ms) - self.start_ms) as f64 / 1000.0)
    }

    pub fn has_captions_at(&self, now: i64) -> bool {
        !self.uploaded_captions.is_empty()
            || (self.state_at(now) == SessionState::Complete
                && self.captions_ms.is_some_and(|c| c <= now))
    }

    /// The most recent change at or before `now` (the searchIndexSync `UpdateTime`).
    pub fn last_update_at(&self, now: i64) -> i64 {
        let mut t = self.created_ms.max(self.updated_ms.min(now));
        for x in [
            Some(self.start_ms),
            Some(self.end_ms),
            self.complete_ms,
            self.captions_ms,
            self.deleted_ms,
        ]
        .into_iter()
        .flatten()
        {
            if x <= now && x > t && (self.complete_ms.is_some() || x == self.created_ms) {
                t = x;
            }
        }
        t.min(now)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub course_id: Option<u64>,
}

#[derive(Debug)]
pub struct PanoptoWorld {
    rng: ChaCha20Rng,
    pub folders: BTreeMap<String, Folder>,
    pub sessions: BTreeMap<String, Session>,
    pub recorders: BTreeMap<String, Recorder>,
    pub recorder_by_room: BTreeMap<String, String>,
    /// Session ids per recording recorder, in scheduling order.
    pub sessions_by_recorder: BTreeMap<String, Vec<String>>,
    pub groups: BTreeMap<String, Group>,
    pub course_folders: BTreeMap<u64, String>,
    pub term_folder_id: String,
    pub faults: PanoptoFaults,
    /// Lectures that produced no session (broken recorder).
    pub missed_lectures: u64,
}

/// Deterministic GUID for a named Panopto object (users and groups mirror Canvas rows).
pub fn named_guid(seed: u64, name: &str) -> String {
    let ns = uuid::Uuid::from_u128(0x6b1f_3c20_0000_4000_8000_0000_0000_0000 ^ u128::from(seed));
    uuid::Uuid::new_v5(&ns, name.as_bytes()).to_string()
}

impl PanoptoWorld {
    /// Provision the site for a university: term and department folders, a folder and
    /// viewer/creator groups per course, a recorder with a default folder per equipped room.
    pub fn provision(u: &University) -> PanoptoWorld {
        let mut rng = ids::rng(u.seed, "panopto");
        let mut w = PanoptoWorld {
            term_folder_id: String::new(),
            rng: ids::rng(u.seed, "panopto-lectures"),
            folders: BTreeMap::new(),
            sessions: BTreeMap::new(),
            recorders: BTreeMap::new(),
            recorder_by_room: BTreeMap::new(),
            sessions_by_recorder: BTreeMap::new(),
            groups: BTreeMap::new(),
            course_folders: BTreeMap::new(),
            faults: PanoptoFaults::default(),
            missed_lectures: 0,
        };
        let term = u
            .terms
            .get(u.current_term_id)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let term_id = w.add_folder(&mut rng, term.clone(), None, None);
        w.term_folder_id = term_id.clone();
        let recorders_root = w.add_folder(&mut rng, "Room recorders".to_owned(), None, None);
        let mut dept_folders = BTreeMap::new();
        for a in u.accounts.iter().filter(|a| a.parent_account_id.is_some()) {
            let name = format!("{term} ({})", a.name.trim_start_matches("Department of "));
            let id = w.add_folder(&mut rng, name, Some(term_id.clone()), None);
            dept_folders.insert(a.id, id);
        }
        for c in u.courses.iter() {
            let parent = dept_folders
                .get(&c.account_id)
                .cloned()
                .unwrap_or_else(|| term_id.clone());
            let name = format!("{term} - {}", c.course_code);
            let external = Some(format!("canvas-sim:{}", c.id));
            let id = w.add_folder(&mut rng, name, Some(parent), external);
            if let Some(f) = w.folders.get_mut(&id) {
                f.access_inherited = false;
            }
            w.course_folders.insert(c.id, id.clone());
            for (suffix, role) in [("viewers", "Viewer"), ("creators", "Creator")] {
                let gname = format!("canvas-sim:{}_{suffix}", c.id);
                let gid = named_guid(u.seed, &format!("group:{gname}"));
                w.groups.insert(
                    gid.clone(),
                    Group {
                        id: gid.clone(),
                        name: gname.clone(),
                        external_id: Some(gname),
                        course_id: Some(c.id),
                    },
                );
                if let Some(f) = w.folders.get_mut(&id) {
                    f.permissions.push(Permission {
                        principal_type: panopto::PrincipalType::Group,
                        principal_id: gid,
                        role: role.to_owned(),
                    });
                }
            }
        }
        for room in u.rooms.iter().filter(|r| r.has_recorder) {
            let folder = w.add_folder(
                &mut rng,
                format!("{} default folder", room.name),
                Some(recorders_root.clone()),
                None,
            );
            let id = ids::uuid(&mut rng).to_string();
            let octet = rng.gen_range(2..250);
            w.recorder_by_room.insert(room.id.clone(), id.clone());
            w.recorders.insert(
                id.clone(),
                Recorder {
                    id,
                    name: room.name.clone(),
                    room_id: room.id.clone(),
                    default_folder_id: folder,
                    machine_ip: format!("10.20.{}.{octet}", w.recorders.len() % 250),
                },
            );
        }
        w
    }

    fn add_folder(
        &mut self,
        rng: &mut ChaCha20Rng,
        name: String,
        parent: Option<String>,
        external_id: Option<String>,
    ) -> String {
        let id = ids::uuid(rng).to_string();
        self.folders.insert(
            id.clone(),
            Folder {
                id: id.clone(),
                name,
                description: None,
                access_inherited: parent.is_some(),
                parent,
                external_id,
                access_level: panopto::AccessLevel::Restricted,
                permissions: Vec::new(),
                deleted: false,
            },
        );
        id
    }

    /// Create a folder through the API.
    pub fn create_folder(
        &mut self,
        name: String,
        description: Option<String>,
        parent: Option<String>,
    ) -> String {
        let mut rng = ids::rng(self.rng.r#gen(), "folder");
        let id = self.add_folder(&mut rng, name, parent, None);
        if let Some(f) = self.folders.get_mut(&id) {
            f.description = description;
        }
        id
    }

    pub fn new_guid(&mut self) -> String {
        ids::uuid(&mut self.rng).to_string()
    }

    /// Schedule the day's lectures: one session per meeting in a room with a working
    /// recorder, with its processing and caption times drawn now.
    pub fn schedule_lectures(&mut self, u: &University, day: i64, now: i64) -> usize {
        let mut created = 0;
        let meetings: Vec<(u64, u64, String, i64, i64)> = u
            .meetings_on(day)
            .into_iter()
            .map(|(m, s, e)| (m.id, m.section_id, m.room_id.clone(), s, e))
            .collect();
        for (meeting_id, section_id, room_id, start, end) in meetings {
            let Some(recorder_id) = self.recorder_by_room.get(&room_id).cloned() else {
                continue;
            };
            if self.faults.broken_recorder_rooms.contains(&room_id) {
                self.missed_lectures += 1;
                continue;
            }
            let section_name = u
                .sections
                .get(section_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            let date = crate::university::local_date(start)
                .format("%Y-%m-%d")
                .to_string();
            self.schedule(
                format!("{section_name} - {date}"),
                recorder_id,
                start,
                end,
                Some((section_id, meeting_id)),
                now,
            );
            created += 1;
        }
        created
    }

    /// Create a scheduled session on `recorder_id` (also used by `POST scheduledRecordings`).
    pub fn schedule(
        &mut self,
        name: String,
        recorder_id: String,
        start: i64,
        end: i64,
        meeting: Option<(u64, u64)>,
        now: i64,
    ) -> String {
        let f = self.faults.clone();
        let mut actual = recorder_id.clone();
        if self.rng.gen_bool(f.wrong_room_probability.clamp(0.0, 1.0)) && self.recorders.len() > 1 {
            let others: Vec<&String> = self
                .recorders
                .keys()
                .filter(|k| **k != recorder_id)
                .collect();
            let pick = self.rng.gen_range(0..others.len());
            actual = others[pick].clone();
        }
        let folder_id = self
            .recorders
            .get(&actual)
            .map(|r| r.default_folder_id.clone())
            .unwrap_or_else(|| self.term_folder_id.clone());
        let mut processing_min = self.rng.gen_range(10.0..40.0);
        if self
            .rng
            .gen_bool(f.late_processing_probability.clamp(0.0, 1.0))
        {
            processing_min += f.late_processing_minutes.max(0.0);
        }
        let complete = end + (processing_min * 60_000.0) as i64;
        let captions = if self
            .rng
            .gen_bool(f.captions_never_probability.clamp(0.0, 1.0))
        {
            None
        } else {
            let mut minutes = self.rng.gen_range(30.0..180.0);
            if self
                .rng
                .gen_bool(f.late_captions_probability.clamp(0.0, 1.0))
            {
                minutes += f.late_captions_minutes.max(0.0);
            }
            Some(complete + (minutes * 60_000.0) as i64)
        };
        let id = self.new_guid();
        self.sessions_by_recorder
            .entry(actual.clone())
            .or_default()
            .push(id.clone());
        self.sessions.insert(
            id.clone(),
            Session {
                id: id.clone(),
                name,
                description: None,
                folder_id,
                external_id: None,
                created_ms: now,
                updated_ms: now,
                start_ms: start,
                end_ms: end,
                complete_ms: Some(complete),
                captions_ms: captions,
                uploaded_captions: BTreeSet::new(),
                recorder_id: Some(actual),
                scheduled_recorder_id: Some(recorder_id),
                is_broadcast: false,
                section_id: meeting.map(|m| m.0),
                meeting_id: meeting.map(|m| m.1),
                access_inherited: true,
                access_level: panopto::AccessLevel::Restricted,
                permissions: Vec::new(),
                deleted_ms: None,
            },
        );
        id
    }

    /// The REST recorder state at `now`.
    pub fn recorder_state(&self, recorder_id: &str, now: i64) -> panopto::RemoteRecorderState {
        let Some(r) = self.recorders.get(recorder_id) else {
            return panopto::RemoteRecorderState::Disconnected;
        };
        if self.faults.broken_recorder_rooms.contains(&r.room_id) {
            return panopto::RemoteRecorderState::Faulted;
        }
        // Lectures are scheduled in time order, so the current one is among the latest.
        let recent = self
            .sessions_by_recorder
            .get(recorder_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let recording = recent
            .iter()
            .rev()
            .take(16)
            .filter_map(|id| self.sessions.get(id))
            .any(|s| {
                s.deleted_ms.is_none()
                    && matches!(
                        s.state_at(now),
                        SessionState::Recording | SessionState::Broadcasting
                    )
            });
        if recording {
            panopto::RemoteRecorderState::Recording
        } else {
            panopto::RemoteRecorderState::Stopped
        }
    }
}
