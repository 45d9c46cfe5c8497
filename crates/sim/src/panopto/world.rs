//! The Panopto site: folders (a term tree with one folder per course, as Panopto's LMS
//! provisioning makes, plus one default folder per recorder), remote recorders (ExternalId =
//! room), sessions, groups and permissions. A lecture's state is a function of simulated time
//! and the times fixed when it was scheduled (start, end, processing done, upload, captions
//! ready), so it moves Scheduled → Recording → Processing → Complete without a timer per
//! session. The lecture occurrences and what faults do to them are in `lectures.rs`.

use std::collections::{BTreeMap, BTreeSet};

use panopto::SessionState;
use rand_chacha::ChaCha20Rng;
use rand08::Rng;
use serde::Serialize;

use crate::ids;
use crate::university::University;

pub const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// The caption provider's turnaround on the term's folders (plus 0–150 minutes per session).
pub const SITE_CAPTION_TURNAROUND_MINUTES: u32 = 30;

pub use super::faults::PanoptoFaults;
use super::faults::RecorderProblem;

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
    /// The membership provider an external id belongs to (`UpdateFolderExternalIdWithProvider`).
    pub external_provider: Option<String>,
    pub access_inherited: bool,
    pub access_level: panopto::AccessLevel,
    pub permissions: Vec<Permission>,
    pub deleted: bool,
    /// Automatic captioning: minutes the folder's caption provider takes once a session in it
    /// has finished processing (`None`: the folder requests no captions).
    pub caption_turnaround_minutes: Option<u32>,
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
    /// Whether and when the recording reaches Panopto (recorder faults, see `lectures.rs`).
    pub fate: Fate,
    /// Processing time after the media has arrived.
    pub processing_ms: i64,
    /// When processing finishes (`None`: the recording never arrives); follows from `fate`.
    pub complete_ms: Option<i64>,
    /// When automatic captions become available: fixed when the session is first in a
    /// captioning folder after processing (`None`: not requested, or never delivered).
    pub captions_ms: Option<i64>,
    /// Drawn when scheduled: the provider's delay on top of the folder's turnaround, and
    /// whether this session's captions never come.
    pub caption_delay_ms: i64,
    pub caption_never: bool,
    /// A person's hand edit (rename or move), once made.
    pub staff_edit: Option<StaffEdit>,
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

/// Whether a scheduled recording reaches Panopto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Records,
    /// The recorder was faulted: nothing is recorded.
    NotRecorded,
    /// The recorder was offline: recorded locally, uploaded when it reconnects (`None`: not
    /// yet known to reconnect).
    Uploads(Option<i64>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffEdit {
    pub at_ms: i64,
    /// `renamed` or `moved`.
    pub kind: &'static str,
    pub detail: String,
}

impl Session {
    /// When the media is on the server (`None`: never).
    pub fn media_ms(&self) -> Option<i64> {
        match self.fate {
            Fate::Records => Some(self.start_ms),
            Fate::NotRecorded | Fate::Uploads(None) => None,
            Fate::Uploads(Some(at)) => Some(at),
        }
    }

    /// Fix `complete_ms` after the fate, the end time or the processing time changed.
    pub fn settle(&mut self) {
        self.complete_ms = self
            .media_ms()
            .map(|m| m.max(self.end_ms) + self.processing_ms);
    }

    pub fn state_at(&self, now: i64) -> SessionState {
        let (Some(complete), Some(media)) = (self.complete_ms, self.media_ms()) else {
            return SessionState::Scheduled;
        };
        if now < self.start_ms || now < media {
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
        if now < self.start_ms || self.media_ms().is_none_or(|m| now < m) {
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
        let media = self.media_ms().filter(|m| *m > self.start_ms);
        for x in [
            Some(self.start_ms),
            Some(self.end_ms),
            media,
            self.complete_ms,
            self.captions_ms,
            self.staff_edit.as_ref().map(|e| e.at_ms),
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

pub use super::people::{Group, GroupType};

#[derive(Debug)]
pub struct PanoptoWorld {
    rng: ChaCha20Rng,
    pub folders: BTreeMap<String, Folder>,
    pub sessions: BTreeMap<String, Session>,
    pub recorders: BTreeMap<String, Recorder>,
    pub recorder_by_room: BTreeMap<String, String>,
    /// Session ids per recording recorder, in scheduling order.
    pub sessions_by_recorder: BTreeMap<String, Vec<String>>,
    /// Session ids per recorder they were scheduled on (differs on a wrong-room schedule),
    /// in scheduling order: what a recorder's `ScheduledRecordings` lists.
    pub sessions_by_scheduled_recorder: BTreeMap<String, Vec<String>>,
    pub groups: BTreeMap<String, Group>,
    pub course_folders: BTreeMap<u64, String>,
    pub term_folder_id: String,
    pub faults: PanoptoFaults,
    /// Every section meeting on every date the simulation has reached, by (date, meeting).
    pub lectures: BTreeMap<(chrono::NaiveDate, u64), super::lectures::Lecture>,
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
            sessions_by_scheduled_recorder: BTreeMap::new(),
            groups: BTreeMap::new(),
            course_folders: BTreeMap::new(),
            faults: PanoptoFaults::default(),
            lectures: BTreeMap::new(),
        };
        let term = u
            .terms
            .get(u.current_term_id)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let term_id = w.add_folder(&mut rng, term.clone(), None, None);
        // The term tree captions automatically (its folders inherit); recorders' default
        // folders do not, so a lecture is captioned once it is filed in its course.
        if let Some(f) = w.folders.get_mut(&term_id) {
            f.caption_turnaround_minutes = Some(SITE_CAPTION_TURNAROUND_MINUTES);
        }
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
                        kind: GroupType::Internal,
                        provider: None,
                        members: BTreeSet::new(),
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
        let caption_turnaround_minutes = parent
            .as_ref()
            .and_then(|p| self.folders.get(p))
            .and_then(|f| f.caption_turnaround_minutes);
        self.folders.insert(
            id.clone(),
            Folder {
                id: id.clone(),
                name,
                description: None,
                access_inherited: parent.is_some(),
                parent,
                external_provider: external_id
                    .as_ref()
                    .map(|_| super::people::PROVIDER.to_owned()),
                external_id,
                access_level: panopto::AccessLevel::Restricted,
                permissions: Vec::new(),
                deleted: false,
                caption_turnaround_minutes,
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

    /// A folder that has not been deleted.
    pub fn live_folder(&self, id: &str) -> Option<&Folder> {
        self.folders.get(id).filter(|f| !f.deleted)
    }

    /// A session that exists at `now` (created, not deleted).
    pub fn live_session(&self, id: &str, now: i64) -> Option<&Session> {
        self.sessions
            .get(id)
            .filter(|x| x.created_ms <= now && x.deleted_ms.is_none_or(|d| d > now))
    }

    pub(super) fn rng_mut(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    pub fn new_guid(&mut self) -> String {
        ids::uuid(&mut self.rng).to_string()
    }

    /// Create a scheduled session on `recorder_id` (the timetable's lectures and `POST
    /// scheduledRecordings`): which recorder really records it, how long processing takes and
    /// the caption provider's delay are drawn now; what the recorder's faults do to it is
    /// decided when it starts (`lectures.rs`).
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
        let caption_never = self
            .rng
            .gen_bool(f.captions_never_probability.clamp(0.0, 1.0));
        let mut caption_minutes = self.rng.gen_range(0.0..150.0);
        if self
            .rng
            .gen_bool(f.late_captions_probability.clamp(0.0, 1.0))
        {
            caption_minutes += f.late_captions_minutes.max(0.0);
        }
        let id = self.new_guid();
        self.sessions_by_recorder
            .entry(actual.clone())
            .or_default()
            .push(id.clone());
        self.sessions_by_scheduled_recorder
            .entry(recorder_id.clone())
            .or_default()
            .push(id.clone());
        let mut session = Session {
            id: id.clone(),
            name,
            description: None,
            folder_id,
            external_id: None,
            created_ms: now,
            updated_ms: now,
            start_ms: start,
            end_ms: end,
            fate: Fate::Records,
            processing_ms: (processing_min * 60_000.0) as i64,
            complete_ms: None,
            captions_ms: None,
            caption_delay_ms: (caption_minutes * 60_000.0) as i64,
            caption_never,
            staff_edit: None,
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
        };
        session.fate = self.fate_of(&session);
        session.settle();
        self.sessions.insert(id.clone(), session);
        self.request_captions(&id, now);
        id
    }

    /// Move a session into `folder_id` at `now` (the API or a person); a folder that captions
    /// automatically requests captions for it.
    pub fn move_session(&mut self, id: &str, folder_id: String, now: i64) {
        if let Some(x) = self.sessions.get_mut(id) {
            x.folder_id = folder_id;
            x.updated_ms = now;
        }
        self.request_captions(id, now);
    }

    /// Captions are requested once: the first time the session is in a captioning folder,
    /// and ready the folder's turnaround (plus the session's and the folder's delays) after
    /// both the request and the end of processing. A recording that has not arrived yet is
    /// asked again when it does (`lectures.rs`).
    pub fn request_captions(&mut self, id: &str, at: i64) {
        let Some(x) = self.sessions.get(id) else {
            return;
        };
        let Some(complete) = x.complete_ms else {
            return;
        };
        if x.captions_ms.is_some() || x.caption_never {
            return;
        }
        let Some(turnaround) = self
            .folders
            .get(&x.folder_id)
            .and_then(|f| f.caption_turnaround_minutes)
        else {
            return;
        };
        if self.faults.captions_never_folders.contains(&x.folder_id) {
            return;
        }
        let late = self
            .faults
            .captions_late_folders
            .get(&x.folder_id)
            .copied()
            .unwrap_or(0.0);
        let ready = complete.max(at)
            + i64::from(turnaround) * 60_000
            + x.caption_delay_ms
            + (late * 60_000.0) as i64;
        if let Some(x) = self.sessions.get_mut(id) {
            x.captions_ms = Some(ready);
        }
    }

    /// The REST recorder state at `now`.
    pub fn recorder_state(&self, recorder_id: &str, now: i64) -> panopto::RemoteRecorderState {
        let Some(r) = self.recorders.get(recorder_id) else {
            return panopto::RemoteRecorderState::Disconnected;
        };
        match self.faults.recorder_problem(&r.room_id, now) {
            Some((RecorderProblem::Faulted, _)) => return panopto::RemoteRecorderState::Faulted,
            Some((RecorderProblem::Offline, _)) => {
                return panopto::RemoteRecorderState::Disconnected;
            }
            None => {}
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
