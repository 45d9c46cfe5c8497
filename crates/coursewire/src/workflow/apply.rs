//! The workflow inside the processor's transaction: after a recording's catalog change, or on
//! a `workflow` inbox row (a command's result, an operator's action), the recording's progress
//! is loaded, matched against the timetable when [`steps::needs_match`] asks, its plan
//! rendered from the current rules, and [`steps::next`]'s answer written with the same
//! transaction: the progress row, the command rows, a change event when the state moved
//! (`edu.coursewire.recording.<state>` on `recording/<id>`, the recording's next sequence) and
//! one audit row saying what moved it and why.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::matching::{Lecture, Match, Session, Timetable, match_session};
use super::plan::{Facts, render_plan};
use super::steps::{self, Command, Input, Outcome, Plan, Progress, Seen, State};
use crate::bus::{self, EventParts};
use crate::catalog::lectures::{TimetableRows, lectures};
use crate::catalog::{EntityId, EntityKind, EntityRef, StoredEntity};
use crate::rules::Scope;
use crate::rules::stored::{chain, effective_from};
use crate::store::{AuditEntry, NewCommand, ProcessingTx, StoreError, StoreResult, WorkflowRow};

/// The inbox source of command results and operator actions.
pub const SOURCE: &str = "workflow";
/// The change events' `source`.
pub const EVENT_SOURCE: &str = "coursewire://workflow";

/// A `workflow` inbox row's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub recording_id: String,
    #[serde(flatten)]
    pub input: MessageInput,
}

/// What a `workflow` row says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum MessageInput {
    Done {
        command_id: i64,
        outcome: Outcome,
    },
    GaveUp {
        command_id: i64,
        step: String,
        error: String,
    },
    Park {
        by: String,
        reason: String,
    },
    Unpark {
        by: String,
        reason: String,
    },
    Replay {
        by: String,
        reason: Option<String>,
    },
}

impl MessageInput {
    pub fn input(&self) -> Input {
        match self {
            MessageInput::Done { outcome, .. } => Input::Done(outcome.clone()),
            MessageInput::GaveUp { step, error, .. } => Input::GaveUp {
                step: step.clone(),
                error: error.clone(),
            },
            MessageInput::Park { .. } => Input::Park,
            MessageInput::Unpark { .. } => Input::Unpark,
            MessageInput::Replay { .. } => Input::Replay,
        }
    }
}

/// The upstream event that moves the workflow.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub inbox_id: i64,
    /// The inbox row's dedup key: with the subject, it makes the change event's id.
    pub key: &'a str,
    pub cause_id: &'a str,
    pub now_ms: i64,
}

/// What the workflow did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    pub state: Option<State>,
    pub commands: usize,
    pub change_event_id: Option<String>,
}

/// What Panopto last said about the session, from its catalog row.
pub fn seen_of(recording: &StoredEntity) -> Seen {
    let text = |k: &str| recording.state.get(k).and_then(Value::as_str);
    Seen {
        panopto_state: text("state").unwrap_or_default().to_owned(),
        folder_id: text("folder_id").map(str::to_owned),
        name: text("name").unwrap_or_default().to_owned(),
        captions: recording.state.get("captions").and_then(Value::as_bool) == Some(true),
        deleted: recording.deleted || text("workflow_state") == Some("deleted"),
    }
}

/// The session as matching sees it.
pub fn session_of(recording: &StoredEntity) -> Session {
    let start_ms = recording
        .state
        .get("start_time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp_millis());
    let duration_ms = recording
        .state
        .get("duration_seconds")
        .and_then(Value::as_f64)
        .map_or(0, |s| (s * 1000.0) as i64);
    Session {
        id: recording.entity.id.as_str().to_owned(),
        start_ms,
        end_ms: start_ms + duration_ms.max(1),
        recorder_id: recording
            .state
            .get("recorder_ids")
            .and_then(Value::as_array)
            .and_then(|ids| ids.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        scheduled_recorder_id: recording
            .state
            .get("scheduled_recorder_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn text(e: &StoredEntity, k: &str) -> String {
    e.state
        .get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn sis_ref(kind: EntityKind, id: &str) -> Option<EntityRef> {
    EntityId::parse(id).ok().map(|id| EntityRef::new(kind, id))
}

async fn read_sis(
    tx: &mut ProcessingTx,
    kind: EntityKind,
    id: &str,
) -> StoreResult<Option<StoredEntity>> {
    match sis_ref(kind, id) {
        Some(r) => tx.read_entity(&r).await,
        None => Ok(None),
    }
}

fn utc_date(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// The timetable around `session` as matching needs it: the rooms of its recorder and of
/// the recorder it was scheduled on, those rooms' meetings (by the catalog's room index),
/// their sections, on the days it touches and a day either side (local dates differ from
/// UTC's by less than one).
pub async fn timetable(tx: &mut ProcessingTx, session: &Session) -> StoreResult<Timetable> {
    let mut room_of_recorder = BTreeMap::new();
    for recorder in [&session.recorder_id, &session.scheduled_recorder_id]
        .into_iter()
        .flatten()
    {
        if let Some(r) = read_sis(tx, EntityKind::RoomRecorder, recorder).await? {
            room_of_recorder.insert(recorder.clone(), text(&r, "external_id"));
        }
    }
    let rooms: BTreeSet<String> = room_of_recorder.values().cloned().collect();
    let mut meetings = Vec::new();
    for room in &rooms {
        meetings.extend(tx.read_entities_under(EntityKind::Meeting, room).await?);
    }
    let section_ids: BTreeSet<String> = meetings.iter().map(|m| text(m, "section_id")).collect();
    let mut sections = Vec::new();
    for id in &section_ids {
        sections.extend(read_sis(tx, EntityKind::SisSection, id).await?);
    }
    let cancellations = tx.read_entities(EntityKind::Cancellation).await?;
    let rows = TimetableRows {
        meetings: &meetings,
        cancellations: &cancellations,
        sections: &sections,
    };
    let from = utc_date(session.start_ms) - Duration::days(1);
    let to = utc_date(session.end_ms) + Duration::days(1);
    let cross_listed_into = tx
        .read_entities(EntityKind::SisCrossListing)
        .await?
        .iter()
        .filter(|x| text(x, "status") == "active")
        .map(|x| (x.entity.id.as_str().to_owned(), text(x, "xlist_course_id")))
        .collect();
    Ok(Timetable {
        room_of_recorder,
        occurrences: lectures(rows, None, from, to),
        cross_listed_into,
    })
}

/// The catalog's facts about `lecture`'s course and (first) section.
async fn facts(tx: &mut ProcessingTx, lecture: &Lecture) -> StoreResult<(Facts, Option<String>)> {
    let section_id = lecture.sections.first().cloned().unwrap_or_default();
    let section = read_sis(tx, EntityKind::SisSection, &section_id).await?;
    let course = read_sis(tx, EntityKind::SisCourse, &lecture.course_id).await?;
    let department_id = course.as_ref().map(|c| text(c, "account_id"));
    let term = match &course {
        Some(c) => read_sis(tx, EntityKind::SisTerm, &text(c, "term_id")).await?,
        None => None,
    };
    let department = match &department_id {
        Some(d) => read_sis(tx, EntityKind::SisAccount, d).await?,
        None => None,
    };
    let mut instructor = String::new();
    for e in tx
        .read_entities_under(EntityKind::SisEnrollment, &section_id)
        .await?
    {
        if text(&e, "role") == "teacher"
            && text(&e, "status") == "active"
            && let Some(u) = read_sis(tx, EntityKind::SisUser, &text(&e, "user_id")).await?
        {
            instructor = text(&u, "full_name");
            break;
        }
    }
    // The meeting's local start time, as the timetable gives it.
    let meeting = read_sis(tx, EntityKind::Meeting, &lecture.meeting_id).await?;
    let facts = Facts {
        term: term.as_ref().map(|t| text(t, "name")).unwrap_or_default(),
        term_year: term
            .as_ref()
            .and_then(|t| t.state.get("start_date").and_then(Value::as_str))
            .and_then(|d| d.get(..4))
            .and_then(|y| y.parse().ok()),
        department: department
            .as_ref()
            .map(|d| text(d, "name"))
            .or(department_id.clone())
            .unwrap_or_default(),
        course_code: course
            .as_ref()
            .map(|c| text(c, "short_name"))
            .unwrap_or_else(|| lecture.course_id.clone()),
        course_name: course
            .as_ref()
            .map(|c| text(c, "long_name"))
            .unwrap_or_default(),
        section: section_id,
        section_name: section
            .as_ref()
            .map(|s| text(s, "name"))
            .unwrap_or_default(),
        instructor,
        start_time: meeting
            .as_ref()
            .map(|m| text(m, "start_time"))
            .unwrap_or_default(),
    };
    Ok((facts, department_id.filter(|d| !d.is_empty())))
}

/// The plan `lecture` is published under, from the rules current in this transaction.
pub async fn plan_for(tx: &mut ProcessingTx, lecture: &Lecture) -> Result<Plan, StoreError> {
    let (facts, department) = facts(tx, lecture).await?;
    let chain = chain(
        &Scope::Course(lecture.course_id.clone()),
        department.as_deref(),
    );
    let keys: Vec<String> = chain.iter().map(Scope::key).collect();
    let current = tx.current_rules_of(&keys).await?;
    let (rules, version) =
        effective_from(&chain, current).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(render_plan(lecture, &facts, &rules, &version))
}

fn progress_of(row: &WorkflowRow) -> StoreResult<Progress> {
    serde_json::from_str(&row.progress).map_err(|e| {
        StoreError::Other(format!(
            "workflow of recording {} unreadable: {e}",
            row.recording_id
        ))
    })
}

/// Advances `recording`'s workflow by `input` (a catalog change is `Input::Seen`).
pub async fn advance(
    tx: &mut ProcessingTx,
    recording: &StoredEntity,
    input: Input,
    cause: Cause<'_>,
    by: Option<&str>,
) -> StoreResult<Advanced> {
    let id = recording.entity.id.as_str().to_owned();
    let subject = recording.entity.subject();
    let row = tx.load_workflow(&id).await?;
    let before = row.as_ref().map(progress_of).transpose()?;
    let seen = seen_of(recording);
    let matched = if steps::needs_match(before.as_ref(), &input) && !seen.deleted {
        let session = session_of(recording);
        let timetable = timetable(tx, &session).await?;
        Some(match_session(&session, &timetable))
    } else {
        None
    };
    let lecture = match &matched {
        Some(Match::Matched(l)) => Some(l.clone()),
        Some(Match::Parked { .. }) => None,
        None => before.as_ref().and_then(|p| p.lecture.clone()),
    };
    let plan = match &lecture {
        Some(l) => Some(plan_for(tx, l).await?),
        None => None,
    };
    let mut next = steps::next(
        &id,
        before.as_ref(),
        &input,
        matched.as_ref(),
        plan.as_ref(),
        &seen,
    );
    stamp(&mut next.progress, cause.now_ms);
    let moved = before.as_ref().map(|p| p.state) != Some(next.progress.state);
    if before.as_ref() == Some(&next.progress) && next.commands.is_empty() {
        return Ok(Advanced {
            state: None,
            commands: 0,
            change_event_id: None,
        });
    }
    let p = &next.progress;
    let progress = serde_json::to_string(p)
        .map_err(|e| StoreError::Other(format!("workflow not serializable: {e}")))?;
    tx.save_workflow(&WorkflowRow {
        recording_id: id.clone(),
        state: p.state.as_str().to_owned(),
        progress,
        meeting_id: p.lecture.as_ref().map(|l| l.meeting_id.clone()),
        lecture_date: p.lecture.as_ref().map(|l| l.date.clone()),
        updated_at_ms: cause.now_ms,
        ready_at_ms: p.ready_at_ms,
        posted_at_ms: p.posted_at_ms,
        drift_found: i64::from(p.drift_found),
    })
    .await?;
    let commands: Vec<NewCommand> = next
        .commands
        .iter()
        .map(|c| {
            let section_id = match c {
                Command::Grant { section_id, .. } => Some(section_id.clone()),
                _ => None,
            };
            Ok(NewCommand {
                idempotency_key: c.idempotency_key(&id, p.generation),
                recording_id: id.clone(),
                section_id,
                step: c.step().to_owned(),
                command: serde_json::to_string(c)
                    .map_err(|e| StoreError::Other(format!("command not serializable: {e}")))?,
                rerun: false,
            })
        })
        .collect::<StoreResult<_>>()?;
    tx.add_commands(&commands, cause.now_ms).await?;

    let mut change_event_id = None;
    if moved {
        let mut entity = tx.load_entity(&recording.entity).await?.ok_or_else(|| {
            StoreError::Other(format!("recording {id} vanished inside its transaction"))
        })?;
        let sequence = entity.sequence + 1;
        let event = bus::event(EventParts {
            id: bus::change_event_id(&format!("{}#workflow", cause.key), &subject),
            source: EVENT_SOURCE.to_owned(),
            r#type: format!("edu.coursewire.recording.{}", p.state.as_str()),
            subject: subject.clone(),
            time_ms: cause.now_ms,
            data: event_data(&id, before.as_ref(), p),
            sequence,
            cause_id: cause.cause_id.to_owned(),
        });
        let outbox = bus::outbox_row(&event, sequence, cause.now_ms, cause.inbox_id, cause.now_ms)
            .map_err(|e| StoreError::Other(format!("change event not serializable: {e}")))?;
        if tx.append_change_event(&outbox).await?.is_some() {
            entity.sequence = sequence;
            tx.save_entity(&entity, cause.now_ms).await?;
            change_event_id = Some(event.id);
        }
    }
    let mut detail = json!({
        "from": before.as_ref().map(|b| b.state.as_str()),
        "to": p.state.as_str(),
        "input": input_label(&input),
        "commands": commands.iter().map(|c| &c.idempotency_key).collect::<Vec<_>>(),
        // The rules it is published under (a posted recording keeps its own).
        "rule_version": p.plan.as_ref().map(|pl| &pl.rule_version),
    });
    if let Some(m) = &matched {
        detail["match"] = serde_json::to_value(m).unwrap_or(Value::Null);
    }
    if let Some(by) = by {
        detail["by"] = json!(by);
    }
    if let Some(f) = &p.failure {
        detail["failure"] = json!(f);
    }
    if !p.drift.is_empty() {
        detail["drift"] = json!(p.drift);
    }
    tx.append_audit(&AuditEntry {
        at_ms: cause.now_ms,
        inbox_id: Some(cause.inbox_id),
        subject: Some(subject),
        cause_id: Some(cause.cause_id.to_owned()),
        action: if moved {
            format!("workflow.{}", p.state.as_str())
        } else {
            "workflow.progress".to_owned()
        },
        change_event_id: change_event_id.clone(),
        detail,
    })
    .await?;
    Ok(Advanced {
        state: moved.then_some(p.state),
        commands: commands.len(),
        change_event_id,
    })
}

/// The first time the recording was ready to post and was posted (the step-latency metric
/// and the term report read them); later replays keep the first.
fn stamp(p: &mut steps::Progress, now_ms: i64) {
    if p.ready_at_ms.is_none() && p.ready_to_post() {
        p.ready_at_ms = Some(now_ms);
    }
    if p.posted_at_ms.is_none() && p.item.is_some() {
        p.posted_at_ms = Some(now_ms);
    }
}

fn input_label(input: &Input) -> Value {
    match input {
        Input::Seen(_) => json!("seen"),
        Input::Done(outcome) => json!({ "done": outcome }),
        Input::GaveUp { step, error } => json!({ "gave_up": step, "error": error }),
        Input::Park => json!("park"),
        Input::Unpark => json!("unpark"),
        Input::Replay => json!("replay"),
    }
}

/// A recording event's data: where the recording is and what it is for.
fn event_data(id: &str, before: Option<&Progress>, p: &Progress) -> Value {
    let mut data = BTreeMap::new();
    data.insert("recording_id", json!(id));
    data.insert("state", json!(p.state.as_str()));
    data.insert("previous_state", json!(before.map(|b| b.state.as_str())));
    data.insert("lecture", json!(p.lecture));
    data.insert("parked", json!(p.parked));
    data.insert("folder_id", json!(p.folder_id));
    data.insert("item", json!(p.item));
    data.insert("captions", json!(p.captions));
    data.insert("drift", json!(p.drift));
    data.insert("failure", json!(p.failure));
    json!(data)
}

/// A Canvas enrollment changed: when its section has a group, the group's members are made
/// the roster again (one command row per section, re-armed by every change: a burst of
/// changes is one sync that reads the roster after them).
pub async fn roster_changed(
    tx: &mut ProcessingTx,
    enrollment: &StoredEntity,
    cause: Cause<'_>,
) -> StoreResult<bool> {
    let section = match enrollment.state.get("section_id") {
        Some(Value::String(s)) => EntityId::parse(s).ok(),
        Some(Value::Number(n)) => EntityId::parse(&n.to_string()).ok(),
        _ => None,
    };
    let Some(section) = section else {
        return Ok(false);
    };
    let Some(section) = tx
        .read_entity(&EntityRef::new(EntityKind::Section, section))
        .await?
    else {
        return Ok(false);
    };
    let sis = text(&section, "sis_source_id");
    if sis.is_empty() || !tx.section_has_grants(&sis).await? {
        return Ok(false);
    }
    let command = Command::SyncRoster {
        section_id: sis.clone(),
    };
    let row = NewCommand {
        idempotency_key: command.idempotency_key("", 0),
        recording_id: String::new(),
        section_id: Some(sis.clone()),
        step: command.step().to_owned(),
        command: serde_json::to_string(&command)
            .map_err(|e| StoreError::Other(format!("command not serializable: {e}")))?,
        rerun: true,
    };
    tx.add_commands(std::slice::from_ref(&row), cause.now_ms)
        .await?;
    tx.append_audit(&AuditEntry {
        at_ms: cause.now_ms,
        inbox_id: Some(cause.inbox_id),
        subject: Some(format!("section/{sis}")),
        cause_id: Some(cause.cause_id.to_owned()),
        action: "workflow.roster_changed".to_owned(),
        change_event_id: None,
        detail: json!({ "enrollment": enrollment.entity.subject(), "command": row.idempotency_key }),
    })
    .await?;
    Ok(true)
}
