//! What can go wrong on the Panopto side, switchable at run time through `/_sim/faults`
//! (`panopto`). Recorder problems and the outage are windows of simulated time; the others
//! are probabilities drawn per lecture when it is scheduled. A change reaches every lecture
//! that has not started yet (see `lectures.rs`); what already happened stays as it was.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::parse_iso;

/// A window of simulated time, `[from, until)`, ISO-8601; a bound left out is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Window {
    pub from: Option<String>,
    pub until: Option<String>,
}

impl Window {
    pub fn from_ms(&self) -> Option<i64> {
        self.from.as_deref().and_then(parse_iso)
    }

    pub fn until_ms(&self) -> Option<i64> {
        self.until.as_deref().and_then(parse_iso)
    }

    pub fn contains(&self, t: i64) -> bool {
        self.from_ms().is_none_or(|f| f <= t) && self.until_ms().is_none_or(|u| t < u)
    }

    fn validate(&self, what: &str) -> Result<(), String> {
        for (name, v) in [("from", &self.from), ("until", &self.until)] {
            if let Some(text) = v
                && parse_iso(text).is_none()
            {
                return Err(format!("{what}.{name} = {text:?} is not an ISO-8601 time"));
            }
        }
        if let (Some(f), Some(u)) = (self.from_ms(), self.until_ms())
            && u <= f
        {
            return Err(format!("{what}: until must be after from"));
        }
        Ok(())
    }
}

/// What is wrong with a room's recorder during a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecorderProblem {
    /// `Faulted`: lectures starting in the window are not recorded; `until` is the repair.
    Faulted,
    /// `Disconnected`: lectures starting in the window are recorded locally and uploaded when
    /// the recorder reconnects at `until` (never, if left out); the session keeps its real
    /// start time and stays `Scheduled` until the upload.
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderFault {
    pub room_id: String,
    pub problem: RecorderProblem,
    #[serde(flatten)]
    pub window: Window,
}

/// Panopto fault knobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanoptoFaults {
    /// Rooms whose recorder is `Faulted` for good (a [`RecorderFault`] with no window).
    pub broken_recorder_rooms: BTreeSet<String>,
    /// Recorder problems in windows of time.
    pub recorders: Vec<RecorderFault>,
    /// Probability that a lecture's processing takes `late_processing_minutes` longer.
    pub late_processing_probability: f64,
    pub late_processing_minutes: f64,
    /// Probability that automatic captions arrive `late_captions_minutes` late.
    pub late_captions_probability: f64,
    pub late_captions_minutes: f64,
    /// Probability that automatic captions never arrive.
    pub captions_never_probability: f64,
    /// Folders whose caption provider is late by so many minutes.
    pub captions_late_folders: BTreeMap<String, f64>,
    /// Folders whose caption provider never delivers.
    pub captions_never_folders: BTreeSet<String>,
    /// Probability that a lecture is recorded by another room's recorder.
    pub wrong_room_probability: f64,
    /// Probability that a person renames or moves a lecture's session by hand,
    /// `staff_edit_delay_minutes` after its recording ends.
    pub staff_edit_probability: f64,
    pub staff_edit_delay_minutes: f64,
    /// Panopto answers every API request (REST and SOAP, token endpoint included) with 503.
    pub outage: Option<Window>,
}

impl PanoptoFaults {
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            (
                "late_processing_probability",
                self.late_processing_probability,
            ),
            ("late_captions_probability", self.late_captions_probability),
            (
                "captions_never_probability",
                self.captions_never_probability,
            ),
            ("wrong_room_probability", self.wrong_room_probability),
            ("staff_edit_probability", self.staff_edit_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("panopto.{name} = {p} is not a probability (0 … 1)"));
            }
        }
        let minutes = [
            ("late_processing_minutes", self.late_processing_minutes),
            ("late_captions_minutes", self.late_captions_minutes),
            ("staff_edit_delay_minutes", self.staff_edit_delay_minutes),
        ]
        .into_iter()
        .chain(
            self.captions_late_folders
                .values()
                .map(|m| ("captions_late_folders", *m)),
        );
        for (name, m) in minutes {
            if !(m.is_finite() && m >= 0.0) {
                return Err(format!("panopto.{name} = {m} is not a number of minutes"));
            }
        }
        for (i, r) in self.recorders.iter().enumerate() {
            r.window.validate(&format!("panopto.recorders[{i}]"))?;
        }
        if let Some(w) = &self.outage {
            w.validate("panopto.outage")?;
        }
        Ok(())
    }

    /// The recorder problem of `room` at `t`, if any (a broken room is faulted throughout).
    pub fn recorder_problem(&self, room: &str, t: i64) -> Option<(RecorderProblem, &Window)> {
        static FOREVER: Window = Window {
            from: None,
            until: None,
        };
        if self.broken_recorder_rooms.contains(room) {
            return Some((RecorderProblem::Faulted, &FOREVER));
        }
        self.recorders
            .iter()
            .find(|r| r.room_id == room && r.window.contains(t))
            .map(|r| (r.problem, &r.window))
    }

    pub fn outage_at(&self, t: i64) -> bool {
        self.outage.as_ref().is_some_and(|w| w.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_half_open_and_checked() {
        let w = Window {
            from: Some("2025-09-01T13:00:00Z".into()),
            until: Some("2025-09-01T14:00:00Z".into()),
        };
        let at = |s: &str| parse_iso(s).expect("time");
        assert!(!w.contains(at("2025-09-01T12:59:59Z")));
        assert!(w.contains(at("2025-09-01T13:00:00Z")));
        assert!(!w.contains(at("2025-09-01T14:00:00Z")));
        let mut f = PanoptoFaults {
            outage: Some(Window {
                from: Some("tomorrow".into()),
                until: None,
            }),
            ..Default::default()
        };
        assert!(f.validate().unwrap_err().contains("panopto.outage.from"));
        f.outage = None;
        f.wrong_room_probability = 2.0;
        assert!(f.validate().unwrap_err().contains("wrong_room_probability"));
    }
}
