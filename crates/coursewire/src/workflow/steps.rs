//! The recording workflow's transitions. Pure: a recording's progress, one input (what Panopto
//! was last seen to say about the session, a command's result, an operator's action) and the
//! plan its rules give → the next progress and the commands to run. The processor applies the
//! answer in its one transaction (progress, command rows, change event, audit row); the
//! commands' executor feeds each result back as an input. Nothing here reads a clock or a
//! database, so the same input gives the same answer on first run, on replay and in tests.
//!
//! ```text
//! detected ──file──▶ filed ──captions seen──▶ captioned ──post──▶ posted ──audit──▶ audited
//!     │                │  └─ complete, rule does not wait for captions ──post──▲       │
//!     ▼                ▼                                                     drift ◀──┘
//!  parked           failed (a command gave up)          withdrawn (session deleted)
//! ```
//!
//! Each step's command carries an idempotency key made of the recording and the step, so a
//! step asked for twice (a replay, the same observation twice) is one row, and its executor
//! re-reads its target before writing (nothing is done twice after a crash).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::matching::{Lecture, Match, ParkReason};

/// Where a recording is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Detected,
    Filed,
    Captioned,
    Posted,
    Audited,
    Parked,
    Failed,
    Withdrawn,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Detected,
        State::Filed,
        State::Captioned,
        State::Posted,
        State::Audited,
        State::Parked,
        State::Failed,
        State::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Detected => "detected",
            State::Filed => "filed",
            State::Captioned => "captioned",
            State::Posted => "posted",
            State::Audited => "audited",
            State::Parked => "parked",
            State::Failed => "failed",
            State::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What Panopto was last seen to say about the session (the catalog's recording).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seen {
    /// SOAP `State`: Created, Scheduled, Recording, Broadcasting, Processing, Complete.
    pub panopto_state: String,
    pub folder_id: Option<String>,
    pub name: String,
    pub captions: bool,
    pub deleted: bool,
}

impl Seen {
    fn complete(&self) -> bool {
        self.panopto_state == "Complete"
    }
}

/// Where and how a matched recording is published, rendered from its rules by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The section folder's path (the folder template, rendered), top level first.
    pub folder_path: Vec<String>,
    /// The section folder's Panopto external id (`coursewire:section:<sis id>`): how it is
    /// found again, whatever a person renamed it to.
    pub folder_external_id: String,
    pub session_name: String,
    pub module_name: String,
    pub module_at_top: bool,
    pub post_waits_for_captions: bool,
    /// Repair a difference a person made (moved, renamed), or only report it.
    pub repair_drift: bool,
    /// The rule version the plan came from, named in the audit.
    pub rule_version: String,
}

/// A recording's workflow, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: State,
    pub lecture: Option<Lecture>,
    pub parked: Option<ParkReason>,
    /// The plan the recording was last filed under.
    pub plan: Option<Plan>,
    /// The section folder it was filed in.
    pub folder_id: Option<String>,
    /// Sections whose group was granted on the folder.
    pub access: BTreeSet<String>,
    pub captions: bool,
    pub complete: bool,
    /// The Canvas module item linking it.
    pub item: Option<Item>,
    /// What the last audit found different, if anything.
    pub drift: Vec<String>,
    /// Why it failed: the command that gave up and its last error.
    pub failure: Option<String>,
    /// Bumped by every replay, unpark and drift repair: commands of a new generation are new
    /// rows (their keys name it), so they run again and re-read their targets.
    #[serde(default)]
    pub generation: u32,
    /// Drift repairs in a row; an audit that still finds drift after two is only reported.
    #[serde(default)]
    pub repairs: u32,
    /// Audits that found drift, over the recording's life.
    #[serde(default)]
    pub drift_found: u32,
    /// When it was first ready to post (complete, and captioned if the rule waits), and when
    /// its item was first posted: set by the caller, which knows the time (unix ms).
    #[serde(default)]
    pub ready_at_ms: Option<i64>,
    #[serde(default)]
    pub posted_at_ms: Option<i64>,
}

impl Progress {
    /// Complete, and captioned when its plan waits for captions.
    pub fn ready_to_post(&self) -> bool {
        self.complete
            && (self.captions
                || !self
                    .plan
                    .as_ref()
                    .is_some_and(|plan| plan.post_waits_for_captions))
    }

    /// What a person changed by hand since the recording was audited: it is in another
    /// folder, or has another name, than its plan says.
    fn edited_since_audit(&self, seen: &Seen) -> bool {
        let moved = seen.folder_id.is_some() && seen.folder_id != self.folder_id;
        let renamed = self
            .plan
            .as_ref()
            .is_some_and(|plan| plan.session_name != seen.name);
        self.state == State::Audited && self.drift.is_empty() && (moved || renamed)
    }
}

/// Drift repairs tried in a row before the difference is only reported (something keeps
/// undoing the repair: a person, another tool).
pub const MAX_REPAIRS: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub course_id: String,
    pub module_id: u64,
    pub item_id: u64,
}

/// An external write (or a check) the workflow asks for; one durable row each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Ensure the section folder (by external id; created under the course folder if
    /// missing), move the session into it and give it its name.
    File {
        session_id: String,
        /// The SIS course whose Panopto folder holds the section folder.
        course_id: String,
        folder_path: Vec<String>,
        folder_external_id: String,
        name: String,
    },
    /// Ensure the section's external group (members: its current roster) and grant it
    /// Viewer on the folder.
    Grant {
        section_id: String,
        folder_id: String,
    },
    /// Ensure the course's module and exactly one published item linking the session.
    Post {
        session_id: String,
        course_id: String,
        module_name: String,
        module_at_top: bool,
        title: String,
    },
    /// Check every step against Panopto and Canvas.
    Audit {
        session_id: String,
        folder_id: String,
        name: String,
        sections: Vec<String>,
        item: Item,
    },
    /// The session is gone: take its item out of the module.
    Withdraw { session_id: String, item: Item },
    /// A section's roster changed: its group's members made its roster again. Not a step of
    /// one recording: one row per section, re-armed by each change.
    SyncRoster { section_id: String },
}

impl Command {
    /// The step it performs, as named in command rows, metrics and the audit.
    pub fn step(&self) -> &'static str {
        match self {
            Command::File { .. } => "file",
            Command::Grant { .. } => "grant",
            Command::Post { .. } => "post",
            Command::Audit { .. } => "audit",
            Command::Withdraw { .. } => "withdraw",
            Command::SyncRoster { .. } => "roster",
        }
    }

    /// One row per recording, generation and step (and section, for grants): asking again
    /// is the same row. A re-file under a new plan is a new row: its key names the name and
    /// folder.
    pub fn idempotency_key(&self, recording_id: &str, generation: u32) -> String {
        let recording_id = if generation == 0 {
            recording_id.to_owned()
        } else {
            format!("{recording_id}#{generation}")
        };
        match self {
            Command::File {
                folder_external_id,
                name,
                ..
            } => format!("{recording_id}:file:{folder_external_id}:{name}"),
            Command::Grant {
                section_id,
                folder_id,
            } => format!("{recording_id}:grant:{section_id}:{folder_id}"),
            Command::Post { module_name, .. } => format!("{recording_id}:post:{module_name}"),
            Command::Audit { .. } => format!("{recording_id}:audit"),
            Command::Withdraw { .. } => format!("{recording_id}:withdraw"),
            Command::SyncRoster { section_id } => format!("roster:{section_id}"),
        }
    }
}

/// What a finished command reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Outcome {
    Filed {
        folder_id: String,
    },
    Granted {
        section_id: String,
    },
    Posted {
        item: Item,
    },
    /// `drift` empty: everything as planned.
    Audited {
        drift: Vec<String>,
    },
    Withdrawn,
    /// A section's group has its roster's `members`.
    RosterSynced {
        section_id: String,
        members: usize,
    },
}

/// One input to the workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The catalog's recording changed (or was seen for the first time).
    Seen(Seen),
    /// A command succeeded.
    Done(Outcome),
    /// A command exhausted its retries.
    GaveUp {
        step: String,
        error: String,
    },
    /// An operator parks the recording (it is left alone) or unparks it (matched again).
    Park,
    Unpark,
    /// Run every step again (idempotent: commands re-read their targets).
    Replay,
}

/// The answer: the next progress and the commands to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub progress: Progress,
    pub commands: Vec<Command>,
}

/// Whether `input` needs a fresh [`Match`] (so the caller reads the timetable only then).
pub fn needs_match(progress: Option<&Progress>, input: &Input) -> bool {
    match (progress, input) {
        (None, _) => true,
        (Some(p), Input::Seen(_)) => {
            p.state == State::Parked && p.parked.is_some() && p.lecture.is_none()
        }
        (Some(_), Input::Unpark | Input::Replay) => true,
        _ => false,
    }
}

/// The next step of recording `session_id`. `matched` is the timetable's answer when
/// [`needs_match`] said so; `plan` is the matched lecture's rules, rendered; `seen` is the
/// catalog's latest recording.
pub fn next(
    session_id: &str,
    progress: Option<&Progress>,
    input: &Input,
    matched: Option<&Match>,
    plan: Option<&Plan>,
    seen: &Seen,
) -> Next {
    let mut p = progress.cloned().unwrap_or(Progress {
        state: State::Detected,
        lecture: None,
        parked: None,
        plan: None,
        folder_id: None,
        access: BTreeSet::new(),
        captions: false,
        complete: false,
        item: None,
        drift: Vec::new(),
        failure: None,
        generation: 0,
        repairs: 0,
        drift_found: 0,
        ready_at_ms: None,
        posted_at_ms: None,
    });
    p.captions |= seen.captions;
    p.complete |= seen.complete();
    let mut commands = Vec::new();

    if seen.deleted {
        if p.state != State::Withdrawn {
            if let Some(item) = p.item.clone() {
                commands.push(Command::Withdraw {
                    session_id: session_id.to_owned(),
                    item,
                });
            }
            p.state = State::Withdrawn;
        }
        return Next {
            progress: p,
            commands,
        };
    }
    if p.state == State::Withdrawn {
        return Next {
            progress: p,
            commands,
        };
    }

    match input {
        Input::Park => {
            p.state = State::Parked;
            p.parked = None;
            return Next {
                progress: p,
                commands,
            };
        }
        Input::GaveUp { step, error } => {
            p.state = State::Failed;
            p.failure = Some(format!("{step}: {error}"));
            return Next {
                progress: p,
                commands,
            };
        }
        Input::Unpark | Input::Replay => {
            // Start again from the match; what was done stays known, and the commands
            // re-read their targets, so nothing already right is written again.
            p.failure = None;
            p.state = State::Detected;
            p.folder_id = None;
            p.access.clear();
            p.drift.clear();
            p.item = None;
            p.generation += 1;
            p.repairs = 0;
        }
        Input::Done(outcome) => apply(&mut p, outcome),
        // Moved or renamed by a person after its audit (the poller saw it): audited again, as
        // a new generation (a new audit row), which records the drift and repairs or
        // reports it per rule. Drift already reported is not audited again on every change.
        Input::Seen(_) if p.edited_since_audit(seen) => {
            p.state = State::Posted;
            p.generation += 1;
        }
        Input::Seen(_) => {}
    }
    if p.state == State::Parked && progress.is_some() && !needs_match(progress, input) {
        // Parked by an operator, or waiting for an unpark: left alone.
        return Next {
            progress: p,
            commands,
        };
    }
    if let Some(m) = matched {
        match m {
            Match::Matched(lecture) => {
                p.lecture = Some(lecture.clone());
                p.parked = None;
                if p.state == State::Parked {
                    p.state = State::Detected;
                }
            }
            Match::Parked { reason, .. } => {
                p.lecture = None;
                p.parked = Some(*reason);
                p.state = State::Parked;
                return Next {
                    progress: p,
                    commands,
                };
            }
        }
    }
    let (Some(lecture), Some(plan)) = (p.lecture.clone(), plan) else {
        return Next {
            progress: p,
            commands,
        };
    };
    if p.state == State::Failed {
        return Next {
            progress: p,
            commands,
        };
    }

    // A posted recording keeps the plan it was posted under (students have seen its name and
    // link): a rule change applies to every recording not posted yet, and a replay (which
    // forgets the item) files a posted one again under the rules of the day.
    let plan = match &p.plan {
        Some(posted) if p.item.is_some() => posted.clone(),
        _ => plan.clone(),
    };
    let plan = &plan;
    // Filing: wanted until the recording is in its folder under the current plan.
    let refile = p.plan.as_ref() != Some(plan)
        && p.plan.as_ref().is_some_and(|old| {
            old.session_name != plan.session_name || old.folder_path != plan.folder_path
        });
    if p.folder_id.is_none() || refile {
        if refile {
            // A new generation: its grants are new rows, run again on the folder it ends in
            // (a grant row of the old one is done and would not run).
            p.generation += 1;
            p.folder_id = None;
            p.access.clear();
            if p.state > State::Detected && p.state < State::Parked {
                p.state = State::Detected;
            }
        }
        p.plan = Some(plan.clone());
        commands.push(Command::File {
            session_id: session_id.to_owned(),
            course_id: lecture.course_id.clone(),
            folder_path: plan.folder_path.clone(),
            folder_external_id: plan.folder_external_id.clone(),
            name: plan.session_name.clone(),
        });
        return Next {
            progress: p,
            commands,
        };
    }
    p.plan = Some(plan.clone());
    let folder_id = p.folder_id.clone().expect("filed");
    if p.state == State::Detected {
        p.state = State::Filed;
    }
    let missing: Vec<&String> = lecture
        .sections
        .iter()
        .filter(|s| !p.access.contains(*s))
        .collect();
    if !missing.is_empty() {
        for section in missing {
            commands.push(Command::Grant {
                section_id: section.clone(),
                folder_id: folder_id.clone(),
            });
        }
        return Next {
            progress: p,
            commands,
        };
    }
    if p.captions && p.state == State::Filed {
        p.state = State::Captioned;
    }
    let ready = p.complete && (p.captions || !plan.post_waits_for_captions);
    match p.item.clone() {
        None if ready => commands.push(Command::Post {
            session_id: session_id.to_owned(),
            course_id: lecture.course_id.clone(),
            module_name: plan.module_name.clone(),
            module_at_top: plan.module_at_top,
            title: plan.session_name.clone(),
        }),
        None => {}
        Some(item) => {
            if p.state < State::Posted {
                p.state = State::Posted;
            }
            if p.state == State::Posted {
                commands.push(Command::Audit {
                    session_id: session_id.to_owned(),
                    folder_id,
                    name: plan.session_name.clone(),
                    sections: lecture.sections.clone(),
                    item,
                });
            }
        }
    }
    Next {
        progress: p,
        commands,
    }
}

/// A command's result folded into the progress.
fn apply(p: &mut Progress, outcome: &Outcome) {
    match outcome {
        Outcome::Filed { folder_id } => p.folder_id = Some(folder_id.clone()),
        Outcome::Granted { section_id } => {
            p.access.insert(section_id.clone());
        }
        Outcome::Posted { item } => p.item = Some(item.clone()),
        Outcome::Audited { drift } => {
            p.drift = drift.clone();
            if !drift.is_empty() {
                p.drift_found += 1;
            }
            if drift.is_empty() {
                p.repairs = 0;
                p.state = State::Audited;
            } else if p.plan.as_ref().is_some_and(|plan| plan.repair_drift)
                && p.repairs < MAX_REPAIRS
            {
                // Repair: every step again, as a new generation (each command re-reads its
                // target and fixes only what differs; the post finds its item).
                p.repairs += 1;
                p.generation += 1;
                p.folder_id = None;
                p.access.clear();
                p.item = None;
                p.state = State::Detected;
            } else {
                p.state = State::Audited;
            }
        }
        Outcome::Withdrawn => p.state = State::Withdrawn,
        Outcome::RosterSynced { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lecture(sections: &[&str]) -> Lecture {
        Lecture {
            meeting_id: "1".into(),
            date: "2025-11-03".into(),
            room_id: "KNE-120".into(),
            course_id: "C1".into(),
            sections: sections.iter().map(|s| (*s).to_owned()).collect(),
            starts_at_ms: 0,
            ends_at_ms: 3_000_000,
            recorded_in: None,
        }
    }

    fn plan() -> Plan {
        Plan {
            folder_path: vec!["Fall 2025".into(), "BIO 101".into(), "S1".into()],
            folder_external_id: "coursewire:section:S1".into(),
            session_name: "BIO 101 S1 — Mon 03 Nov".into(),
            module_name: "Lecture recordings".into(),
            module_at_top: true,
            post_waits_for_captions: false,
            repair_drift: true,
            rule_version: "root@1".into(),
        }
    }

    fn seen(state: &str, captions: bool) -> Seen {
        Seen {
            panopto_state: state.into(),
            folder_id: Some("inbox".into()),
            name: "S1 - 2025-11-03".into(),
            captions,
            deleted: false,
        }
    }

    fn item() -> Item {
        Item {
            course_id: "C1".into(),
            module_id: 7,
            item_id: 70,
        }
    }

    /// Runs inputs in order from nothing, matching each time the workflow asks.
    fn run(inputs: &[(Input, Seen)], plan: &Plan, m: &Match) -> (Progress, Vec<Vec<Command>>) {
        let mut p: Option<Progress> = None;
        let mut all = Vec::new();
        for (input, s) in inputs {
            let matched = needs_match(p.as_ref(), input).then_some(m);
            let n = next("sess", p.as_ref(), input, matched, Some(plan), s);
            all.push(n.commands);
            p = Some(n.progress);
        }
        (p.unwrap(), all)
    }

    /// Panopto showing `state`.
    fn saw(state: &str, captions: bool) -> (Input, Seen) {
        (Input::Seen(seen(state, captions)), seen(state, captions))
    }

    /// The file command done, Panopto showing `state`.
    fn filed(state: &str) -> (Input, Seen) {
        let done = Outcome::Filed {
            folder_id: "f1".into(),
        };
        (Input::Done(done), seen(state, false))
    }

    fn granted(section: &str, state: &str) -> (Input, Seen) {
        let done = Outcome::Granted {
            section_id: section.into(),
        };
        (Input::Done(done), seen(state, false))
    }

    /// A recording of S1 filed, shared, posted and audited under [`plan`].
    fn audited() -> Progress {
        Progress {
            state: State::Audited,
            lecture: Some(lecture(&["S1"])),
            parked: None,
            plan: Some(plan()),
            folder_id: Some("f1".into()),
            access: ["S1".to_owned()].into(),
            captions: true,
            complete: true,
            item: Some(item()),
            drift: vec![],
            failure: None,
            generation: 0,
            repairs: 0,
            drift_found: 0,
            ready_at_ms: None,
            posted_at_ms: None,
        }
    }

    fn steps(commands: &[Command]) -> Vec<&'static str> {
        commands.iter().map(Command::step).collect()
    }

    #[test]
    fn a_recording_goes_from_detected_to_audited_one_command_at_a_time() {
        let m = Match::Matched(lecture(&["S1"]));
        let (p, cmds) = run(
            &[
                saw("Scheduled", false),
                filed("Recording"),
                granted("S1", "Recording"),
                saw("Complete", false),
                (
                    Input::Done(Outcome::Posted { item: item() }),
                    seen("Complete", false),
                ),
                (
                    Input::Done(Outcome::Audited { drift: vec![] }),
                    seen("Complete", false),
                ),
            ],
            &plan(),
            &m,
        );
        let got: Vec<Vec<&str>> = cmds.iter().map(|c| steps(c)).collect();
        assert_eq!(
            got,
            vec![
                vec!["file"],
                vec!["grant"],
                vec![],
                vec!["post"],
                vec!["audit"],
                vec![]
            ]
        );
        assert_eq!(p.state, State::Audited);
        assert_eq!(p.item, Some(item()));
    }

    #[test]
    fn posting_waits_for_captions_when_the_rule_says_so() {
        let m = Match::Matched(lecture(&["S1"]));
        let mut waiting = plan();
        waiting.post_waits_for_captions = true;
        let filed = [
            saw("Complete", false),
            filed("Complete"),
            granted("S1", "Complete"),
        ];
        let (p, cmds) = run(&filed, &waiting, &m);
        assert_eq!(p.state, State::Filed);
        assert!(cmds.last().unwrap().is_empty(), "no post without captions");
        let n = next(
            "sess",
            Some(&p),
            &Input::Seen(seen("Complete", true)),
            None,
            Some(&waiting),
            &seen("Complete", true),
        );
        assert_eq!(n.progress.state, State::Captioned);
        assert_eq!(steps(&n.commands), vec!["post"]);
    }

    #[test]
    fn cross_listed_sections_each_get_a_grant_and_post_waits_for_all() {
        let m = Match::Matched(lecture(&["S1", "S7"]));
        let (p, cmds) = run(
            &[
                saw("Complete", false),
                filed("Complete"),
                granted("S1", "Complete"),
            ],
            &plan(),
            &m,
        );
        assert_eq!(steps(&cmds[1]), vec!["grant", "grant"]);
        assert_eq!(
            steps(&cmds[2]),
            vec!["grant"],
            "S7 still missing: no post yet"
        );
        let Command::Grant { section_id, .. } = &cmds[2][0] else {
            unreachable!()
        };
        assert_eq!(section_id, "S7");
        assert!(p.item.is_none());
    }

    #[test]
    fn unmatched_is_parked_and_a_later_unpark_matches_again() {
        let parked = Match::Parked {
            reason: ParkReason::NoLecture,
            room_id: Some("KNE-120".into()),
            candidates: vec![],
        };
        let (p, cmds) = run(&[saw("Complete", false)], &plan(), &parked);
        assert_eq!(
            (p.state, p.parked),
            (State::Parked, Some(ParkReason::NoLecture))
        );
        assert!(cmds[0].is_empty());
        let m = Match::Matched(lecture(&["S1"]));
        let n = next(
            "sess",
            Some(&p),
            &Input::Unpark,
            Some(&m),
            Some(&plan()),
            &seen("Complete", false),
        );
        assert_eq!(n.progress.state, State::Detected);
        assert_eq!(steps(&n.commands), vec!["file"]);
        // Parked by an operator: new observations leave it alone.
        let held = next(
            "sess",
            Some(&n.progress),
            &Input::Park,
            None,
            Some(&plan()),
            &seen("Complete", false),
        );
        assert_eq!(held.progress.state, State::Parked);
        let later = next(
            "sess",
            Some(&held.progress),
            &Input::Seen(seen("Complete", true)),
            None,
            Some(&plan()),
            &seen("Complete", true),
        );
        assert_eq!(later.progress.state, State::Parked);
        assert!(later.commands.is_empty());
    }

    #[test]
    fn drift_is_repaired_or_only_reported_per_rule() {
        let mut p = Progress {
            state: State::Posted,
            captions: false,
            ..audited()
        };
        let drift = Input::Done(Outcome::Audited {
            drift: vec!["moved to folder x by a person".into()],
        });
        let n = next(
            "sess",
            Some(&p),
            &drift,
            None,
            Some(&plan()),
            &seen("Complete", false),
        );
        assert_eq!(steps(&n.commands), vec!["file"], "repaired");
        assert_eq!(n.progress.drift.len(), 1);
        let mut report_only = plan();
        report_only.repair_drift = false;
        p.plan = Some(report_only.clone());
        let n = next(
            "sess",
            Some(&p),
            &drift,
            None,
            Some(&report_only),
            &seen("Complete", false),
        );
        assert_eq!(n.progress.state, State::Audited);
        assert!(n.commands.is_empty());
    }

    #[test]
    fn a_rule_change_before_posting_refiles_and_grants_again() {
        let m = Match::Matched(lecture(&["S1"]));
        let (p, cmds) = run(
            &[
                saw("Recording", false),
                filed("Recording"),
                granted("S1", "Recording"),
            ],
            &plan(),
            &m,
        );
        assert_eq!(p.state, State::Filed);
        let first_grant = cmds
            .iter()
            .flatten()
            .find(|c| c.step() == "grant")
            .unwrap()
            .idempotency_key("sess", 0);
        let mut renamed = plan();
        renamed.session_name = "BIO 101 S1 2025-11-03".into();
        let n = next(
            "sess",
            Some(&p),
            &Input::Seen(seen("Complete", false)),
            None,
            Some(&renamed),
            &seen("Complete", false),
        );
        assert_eq!(steps(&n.commands), vec!["file"]);
        let n = next(
            "sess",
            Some(&n.progress),
            &Input::Done(Outcome::Filed {
                folder_id: "f1".into(),
            }),
            None,
            Some(&renamed),
            &seen("Complete", false),
        );
        assert_eq!(steps(&n.commands), vec!["grant"]);
        assert_ne!(
            n.commands[0].idempotency_key("sess", n.progress.generation),
            first_grant,
            "a new row, so it runs"
        );
    }

    #[test]
    fn a_session_moved_by_hand_after_its_audit_is_audited_again_once() {
        let p = audited();
        let mut as_filed = seen("Complete", true);
        as_filed.folder_id = Some("f1".into());
        as_filed.name = plan().session_name;
        let n = next(
            "sess",
            Some(&p),
            &Input::Seen(as_filed.clone()),
            None,
            Some(&plan()),
            &as_filed,
        );
        assert!(n.commands.is_empty(), "as it was filed: nothing to do");
        let mut moved = as_filed.clone();
        moved.folder_id = Some("another course".into());
        let n = next(
            "sess",
            Some(&p),
            &Input::Seen(moved.clone()),
            None,
            Some(&plan()),
            &moved,
        );
        assert_eq!(steps(&n.commands), vec!["audit"]);
        assert_eq!(n.progress.generation, 1, "a new audit row");
        let n = next(
            "sess",
            Some(&n.progress),
            &Input::Done(Outcome::Audited {
                drift: vec!["moved by a person".into()],
            }),
            None,
            Some(&plan()),
            &moved,
        );
        assert_eq!(n.progress.drift_found, 1);
        assert_eq!(steps(&n.commands), vec!["file"], "repaired per rule");
        // Drift only reported stays reported: the next change is not audited again.
        let mut reported = p.clone();
        reported.drift = vec!["moved by a person".into()];
        let n = next(
            "sess",
            Some(&reported),
            &Input::Seen(moved.clone()),
            None,
            Some(&plan()),
            &moved,
        );
        assert!(n.commands.is_empty());
    }

    #[test]
    fn a_new_name_template_refiles_a_posted_recording_on_replay_only_and_a_deleted_one_is_withdrawn()
     {
        let p = audited();
        let mut renamed = plan();
        renamed.session_name = "BIO 101 S1 2025-11-03".into();
        renamed.rule_version = "root@2".into();
        let n = next(
            "sess",
            Some(&p),
            &Input::Replay,
            Some(&Match::Matched(lecture(&["S1"]))),
            Some(&renamed),
            &seen("Complete", true),
        );
        assert_eq!(steps(&n.commands), vec!["file"]);
        let Command::File { name, .. } = &n.commands[0] else {
            unreachable!()
        };
        assert_eq!(name, "BIO 101 S1 2025-11-03");
        // Without a replay, a posted recording keeps the plan it was posted under.
        let mut as_filed = seen("Complete", true);
        as_filed.folder_id = Some("f1".into());
        as_filed.name = plan().session_name;
        let n = next(
            "sess",
            Some(&p),
            &Input::Seen(as_filed.clone()),
            None,
            Some(&renamed),
            &as_filed,
        );
        assert!(n.commands.is_empty());
        assert_eq!(n.progress.plan, Some(plan()));
        let mut gone = seen("Complete", true);
        gone.deleted = true;
        let n = next(
            "sess",
            Some(&p),
            &Input::Seen(gone.clone()),
            None,
            Some(&plan()),
            &gone,
        );
        assert_eq!(n.progress.state, State::Withdrawn);
        assert_eq!(steps(&n.commands), vec!["withdraw"]);
    }

    #[test]
    fn a_command_that_gives_up_fails_the_recording_until_replayed() {
        let m = Match::Matched(lecture(&["S1"]));
        let (p, _) = run(
            &[
                saw("Complete", false),
                (
                    Input::GaveUp {
                        step: "file".into(),
                        error: "Panopto 500 six times".into(),
                    },
                    seen("Complete", false),
                ),
                saw("Complete", true),
            ],
            &plan(),
            &m,
        );
        assert_eq!(p.state, State::Failed);
        assert!(p.failure.as_deref().unwrap().starts_with("file:"));
        let n = next(
            "sess",
            Some(&p),
            &Input::Replay,
            Some(&m),
            Some(&plan()),
            &seen("Complete", true),
        );
        assert_eq!(steps(&n.commands), vec!["file"]);
    }
}
