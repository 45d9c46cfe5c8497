//! The Panopto poller: Panopto has no webhooks, so every interval (60 s by default) it reads
//! what changed and writes each changed session and recorder into the inbox as a `panopto`
//! row ([`event`]), the same path pushed events take.
//!
//! **Which calls, and why these.** One poll costs a handful of requests whatever the size of
//! the site:
//! 1. the search-index change feed (`searchIndexSync/updates`) from the stored cursor: every
//!    session created, recorded, processed, captioned, moved, renamed or deleted since;
//! 2. `GetSessionsById` (SOAP, 100 ids a call) for those sessions **and** for the watched
//!    ones — sessions last seen scheduled, recording or processing whose start is near — because
//!    only SOAP reports `State`, and whether Panopto's feed is bumped by a processing-state
//!    change is not documented (panopto.md c, UNVERIFIED): a state change is seen within one
//!    interval either way. A session the feed or the watch names that SOAP no longer returns
//!    was deleted;
//! 3. `GET /sessions/{id}` only for a complete session the feed names with a change newer
//!    than its last report and whose captions were not yet seen (its `CaptionDownloadUrl` appears with captions), and `GetFoldersById` (one
//!    call) for the folders those sessions are in, with the external ids that say which course
//!    or section each folder is;
//! 4. `ListRecorders` (100 a page) for every recorder's state, for room health, every
//!    `recorders_every_seconds` (300 by default) rather than every poll. Its lists of
//!    upcoming scheduled sessions say which recorder each session was scheduled on: kept on
//!    the recording as `scheduled_recorder_id`, so a session recorded in the wrong room still
//!    goes with its lecture.
//!
//! **Exactly once into the inbox.** The poll's rows, what it last reported per subject and
//! the next cursor commit in one transaction, fenced by the poller's lease (one poller across
//! processes). A poll that fails, or a process killed mid-poll, commits nothing: the next poll
//! starts from the same cursor, and the chained dedup keys make any row written twice one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use panopto::client::{ClientError, PanoptoClient, Priority};
use panopto::{SessionState, SoapSession};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::event::{Change, SourceEvent, chain_key};
use crate::clock::Clock;
use crate::config::PanoptoPollConfig;
use crate::store::{
    InboxStatus, InsertOutcome, NewInboxEntry, Observed, PollCommit, PollerProgress, Store,
    StoreError, WatchFlag,
};

/// The inbox `source` of the poller's rows.
pub const SOURCE: &str = "panopto";

/// The kinds the poller writes (the `panopto` decoder accepts these only).
pub fn writes(kind: crate::catalog::EntityKind) -> bool {
    use crate::catalog::EntityKind;
    matches!(
        kind,
        EntityKind::Recording | EntityKind::Recorder | EntityKind::Folder
    )
}

/// The poller's row in `panopto_pollers`.
pub const POLLER: &str = "sessions";

/// How long a session stays watched after its start: a recorder that was offline may upload
/// hours later.
const WATCH_HORIZON_MS: i64 = 24 * 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Panopto(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another process holds the Panopto poller")]
    NotHeld,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    pub feed_updates: usize,
    pub sessions_read: usize,
    pub recorders_read: usize,
    pub rows_written: usize,
    pub duplicates: usize,
    pub cursor: Option<String>,
}

/// Settings in clock milliseconds.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval_ms: i64,
    pub lease_ms: i64,
    pub first_lookback_ms: i64,
    /// How often recorder states are sampled (clock ms).
    pub recorders_every_ms: i64,
}

impl Settings {
    pub fn from_config(c: &PanoptoPollConfig, clock: &dyn Clock) -> Settings {
        Settings {
            // The interval is Panopto's time (simulated in the demo); the lease guards a real
            // process, so it is real time turned into the clock's.
            interval_ms: c.interval_seconds as i64 * 1000,
            lease_ms: clock
                .span_ms(Duration::from_secs(c.lease_seconds))
                .max(c.interval_seconds as i64 * 2000),
            first_lookback_ms: c.first_lookback_hours as i64 * 3_600_000,
            recorders_every_ms: c.recorders_every_seconds as i64 * 1000,
        }
    }
}

#[derive(Debug)]
pub struct Poller {
    client: PanoptoClient,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    owner: String,
    source: String,
    /// When recorders were last sampled (`i64::MIN`: never, so the first poll does).
    recorders_sampled_at: AtomicI64,
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A session as the catalog keeps it.
fn session_state(s: &SoapSession, captions: bool) -> Map<String, Value> {
    object(json!({
        "id": s.id,
        "name": s.name,
        "folder_id": s.folder_id,
        "folder_name": s.folder_name,
        "state": s.state.as_str(),
        "start_time": s.start_time,
        "duration_seconds": s.duration,
        "recorder_ids": s.remote_recorder_ids,
        "external_id": s.external_id,
        "is_broadcast": s.is_broadcast,
        "captions": captions,
    }))
}

/// Whether a session may change state without a feed entry.
fn watched(state: SessionState) -> bool {
    !matches!(state, SessionState::Complete)
}

fn parse_ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp_millis())
}

fn start_ms(s: &SoapSession) -> Option<i64> {
    parse_ms(s.start_time.as_deref()?)
}

/// The rows and observations of one poll, built subject by subject.
struct Batch<'a> {
    previous: &'a BTreeMap<String, Observed>,
    source: &'a str,
    /// When the poll started, and when its answers were in.
    started: i64,
    now: i64,
    entries: Vec<NewInboxEntry>,
    observed: Vec<Observed>,
}

impl Batch<'_> {
    /// Adds `state` for `subject` unless it is what was last reported.
    fn report(
        &mut self,
        kind: &str,
        id: &str,
        state: Map<String, Value>,
        watch: bool,
        starts_at: Option<i64>,
        deleted: bool,
    ) {
        let subject = format!("{kind}/{id}");
        let before = self.previous.get(&subject);
        let snapshot = Value::Object(state.clone()).to_string();
        if before.is_some_and(|b| b.snapshot == snapshot) {
            return;
        }
        let key = chain_key(&subject, before.map(|b| b.last_key.as_str()), &state);
        let change = match (before, deleted) {
            (_, true) => Change::Deleted,
            (None, false) => Change::Observed,
            (Some(_), false) => Change::Updated,
        };
        let event = SourceEvent {
            id: key.clone(),
            source: self.source.to_owned(),
            kind: kind.to_owned(),
            entity_id: id.to_owned(),
            change,
            observed_at_ms: self.now,
            poll_started_at_ms: Some(self.started),
            state,
        };
        let event_name = event
            .entity(writes)
            .map(|e| event.event_name(e.kind))
            .unwrap_or_default();
        self.entries.push(NewInboxEntry {
            source: SOURCE.to_owned(),
            dedup_key: key.clone(),
            received_at_ms: self.now,
            event_name: Some(event_name),
            event_time_ms: Some(self.now),
            subject: Some(subject.clone()),
            body: serde_json::to_vec(&event).unwrap_or_default(),
            headers: "{}".to_owned(),
            verification: "polled".to_owned(),
            status: InboxStatus::Pending,
            status_reason: None,
        });
        self.observed.push(Observed {
            subject,
            last_key: key,
            snapshot,
            watch: WatchFlag(watch),
            starts_at_ms: starts_at,
            observed_at_ms: self.now,
        });
    }
}

impl Poller {
    pub fn new(
        client: PanoptoClient,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Poller {
        let host = client
            .config()
            .base_url
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        Poller {
            client,
            store,
            clock,
            settings,
            owner: format!(
                "pid{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            source: format!("panopto://{host}"),
            recorders_sampled_at: AtomicI64::new(i64::MIN / 2),
        }
    }

    pub fn client(&self) -> &PanoptoClient {
        &self.client
    }

    /// The poller's durable progress (cursor, last success), if it ever ran.
    pub async fn progress(&self) -> Result<Option<PollerProgress>, StoreError> {
        self.store.panopto_poller(POLLER).await
    }

    /// Polls every interval until `cancel`, while this process holds the poller's lease.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let started = self.clock.now_ms();
            // A poll is one transaction: stopping mid-way (a pacer waiting on a paused
            // simulator, a slow Panopto) rolls it back and the next process starts from the
            // same cursor, so shutdown never waits on Panopto.
            let polled = tokio::select! {
                _ = cancel.cancelled() => break,
                polled = self.poll_once() => polled,
            };
            match polled {
                Ok(report) => tracing::debug!(?report, "Panopto poll"),
                Err(PollError::NotHeld) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "Panopto poll failed; the next one starts from the same cursor");
                    let now = self.clock.now_ms();
                    let _ = self
                        .store
                        .panopto_poll_failed(
                            POLLER,
                            &self.owner,
                            now + self.settings.lease_ms,
                            now,
                            &err.to_string(),
                        )
                        .await;
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.clock.sleep_until(started + self.settings.interval_ms) => {}
            }
        }
        let _ = self.store.release_panopto_poller(POLLER, &self.owner).await;
    }

    /// One poll, committed at once (see the module doc).
    pub async fn poll_once(&self) -> Result<PollReport, PollError> {
        let now = self.clock.now_ms();
        let until = now + self.settings.lease_ms;
        if !self
            .store
            .claim_panopto_poller(POLLER, &self.owner, now, until)
            .await?
        {
            return Err(PollError::NotHeld);
        }
        let progress = self.store.panopto_poller(POLLER).await?;
        let from = progress
            .and_then(|p| p.cursor)
            .unwrap_or_else(|| iso(now - self.settings.first_lookback_ms));
        let mut report = PollReport::default();

        // 1. The change feed.
        // Each video the feed names, with the newest change time it gives.
        let mut in_feed: BTreeMap<String, i64> = BTreeMap::new();
        let mut cursor = from.clone();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .search_index_updates(&from, token.as_deref(), Priority::Poll)
                .await?;
            report.feed_updates += page.updates.len();
            for u in page.updates {
                if u.update_time > cursor {
                    cursor = u.update_time.clone();
                }
                let at = parse_ms(&u.update_time).unwrap_or(now);
                let e = in_feed.entry(u.video_id).or_insert(at);
                *e = (*e).max(at);
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                _ => break,
            }
        }

        // 2. States of what the feed names and of what is watched.
        let watched_subjects = self
            .store
            .panopto_watched(now - WATCH_HORIZON_MS, now + self.settings.interval_ms)
            .await?;
        let mut ids: BTreeSet<String> = in_feed.keys().cloned().collect();
        ids.extend(
            watched_subjects
                .iter()
                .filter_map(|s| s.strip_prefix("recording/").map(str::to_owned)),
        );
        let ids: Vec<String> = ids.into_iter().collect();
        let sessions = self.client.sessions_by_id(&ids, Priority::Poll).await?;
        report.sessions_read = sessions.len();

        // The folders those sessions are in (one call): which course or section each is.
        let folder_ids: Vec<String> = sessions
            .iter()
            .filter_map(|s| s.folder_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let folders = if folder_ids.is_empty() {
            Vec::new()
        } else {
            self.client
                .folders_by_id(&folder_ids, Priority::Poll)
                .await?
        };

        // Recorder states are sampled every `recorders_every_ms`, not every poll: a few pages
        // at a large site, and room health needs minutes, not seconds.
        let sample_recorders = now - self.recorders_sampled_at.load(Ordering::Acquire)
            >= self.settings.recorders_every_ms;
        let recorders = if sample_recorders {
            self.client.recorders(Priority::Poll).await?
        } else {
            Vec::new()
        };
        report.recorders_read = recorders.len();

        // Which recorder each upcoming session is scheduled on (the recorder list names
        // them): the workflow files a session another room's recorder recorded with the
        // lecture it was scheduled for. Kept on the recording once learnt; Panopto's list
        // forgets a session once it starts.
        let scheduled_on: BTreeMap<&str, &str> = recorders
            .iter()
            .flat_map(|r| {
                r.scheduled_recordings
                    .iter()
                    .map(move |s| (s.as_str(), r.id.as_str()))
            })
            .collect();
        let mut subjects: Vec<String> = ids.iter().map(|id| format!("recording/{id}")).collect();
        subjects.extend(
            scheduled_on
                .keys()
                .filter(|id| !ids.iter().any(|i| i == *id))
                .map(|id| format!("recording/{id}")),
        );
        subjects.extend(recorders.iter().map(|r| format!("recorder/{}", r.id)));
        subjects.extend(folders.iter().map(|f| format!("folder/{}", f.id)));
        let previous: BTreeMap<String, Observed> = self
            .store
            .panopto_observed(&subjects)
            .await?
            .into_iter()
            .map(|o| (o.subject.clone(), o))
            .collect();
        let had_captions = |id: &str| {
            previous
                .get(&format!("recording/{id}"))
                .and_then(|o| serde_json::from_str::<Value>(&o.snapshot).ok())
                .and_then(|v| v.get("captions").and_then(Value::as_bool))
                .unwrap_or(false)
        };

        // 3. Captions, only where they may just have arrived.
        let mut captions = BTreeMap::new();
        for s in &sessions {
            let mut has = had_captions(&s.id);
            // Only for a change the feed shows that is newer than what was last reported (the
            // cursor's overlap names recent videos again).
            let newer = in_feed.get(&s.id).is_some_and(|at| {
                previous
                    .get(&format!("recording/{}", s.id))
                    .is_none_or(|o| *at > o.observed_at_ms)
            });
            if !has && s.state == SessionState::Complete && newer {
                has = self
                    .client
                    .session(&s.id, Priority::Poll)
                    .await?
                    .is_some_and(|r| r.urls.caption_download_url.flatten().is_some());
            }
            captions.insert(s.id.clone(), has);
        }
        let mut batch = Batch {
            previous: &previous,
            source: &self.source,
            started: now,
            // Known by the time the answers arrived (a state read mid-poll may be newer than
            // the poll's start).
            now: self.clock.now_ms(),
            entries: Vec::new(),
            observed: Vec::new(),
        };
        let snapshot = |id: &str| -> Option<Map<String, Value>> {
            serde_json::from_str(&previous.get(&format!("recording/{id}"))?.snapshot).ok()
        };
        let scheduled_recorder = |id: &str| -> Value {
            match scheduled_on.get(id) {
                Some(r) => Value::from(*r),
                None => snapshot(id)
                    .and_then(|mut m| m.remove("scheduled_recorder_id"))
                    .unwrap_or(Value::Null),
            }
        };
        let mut found = BTreeSet::new();
        for s in &sessions {
            found.insert(s.id.clone());
            let mut state = session_state(s, captions.get(&s.id).copied().unwrap_or(false));
            state.insert("scheduled_recorder_id".into(), scheduled_recorder(&s.id));
            batch.report(
                "recording",
                &s.id,
                state,
                watched(s.state),
                start_ms(s),
                false,
            );
        }
        // Sessions not read this poll whose scheduled recorder was just learnt: their last
        // state with it.
        for (id, recorder) in &scheduled_on {
            if found.contains(*id) {
                continue;
            }
            let Some(mut state) = snapshot(id) else {
                continue;
            };
            if state.get("workflow_state").and_then(Value::as_str) == Some("deleted")
                || state.get("scheduled_recorder_id").and_then(Value::as_str) == Some(*recorder)
            {
                continue;
            }
            state.insert("scheduled_recorder_id".into(), Value::from(*recorder));
            let before = &previous[&format!("recording/{id}")];
            let watch = before.watch.0;
            batch.report("recording", id, state, watch, before.starts_at_ms, false);
        }
        // Named by the feed or the watch, known to us, and gone: deleted.
        for id in &ids {
            let subject = format!("recording/{id}");
            if found.contains(id) {
                continue;
            }
            let Some(before) = previous.get(&subject) else {
                continue;
            };
            let mut state: Map<String, Value> =
                serde_json::from_str(&before.snapshot).unwrap_or_default();
            if state.get("workflow_state").and_then(Value::as_str) == Some("deleted") {
                continue;
            }
            state.insert("workflow_state".into(), "deleted".into());
            batch.report("recording", id, state, false, before.starts_at_ms, true);
        }
        for f in &folders {
            let state = object(json!({
                "id": f.id,
                "name": f.name,
                "parent_folder_id": f.parent_folder,
                "external_id": f.external_id,
                "is_public": f.is_public,
            }));
            batch.report("folder", &f.id, state, false, None, false);
        }
        // 4. Recorders.
        for r in &recorders {
            let state = object(json!({
                "id": r.id,
                "name": r.name,
                "external_id": r.external_id,
                "state": r.state,
            }));
            batch.report("recorder", &r.id, state, false, None, false);
        }

        // The next poll reads again from a little before the newest change seen: an entry
        // the index publishes late with an earlier time is not skipped (rows it repeats are
        // the same rows).
        let overlap = 2 * self.settings.interval_ms;
        let from_ms = parse_ms(&from).unwrap_or(now);
        let cursor =
            parse_ms(&cursor).map_or(cursor, |newest| iso((newest - overlap).max(from_ms)));
        let commit = PollCommit {
            entries: batch.entries,
            observed: batch.observed,
            cursor: Some(cursor.clone()),
            now_ms: now,
        };
        let Some(outcomes) = self
            .store
            .commit_panopto_poll(POLLER, &self.owner, now + self.settings.lease_ms, &commit)
            .await?
        else {
            return Err(PollError::NotHeld);
        };
        if sample_recorders {
            self.recorders_sampled_at.store(now, Ordering::Release);
        }
        report.rows_written = outcomes
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
            .count();
        report.duplicates = outcomes.len() - report.rows_written;
        report.cursor = Some(cursor);
        Ok(report)
    }
}

/// Builds the poller of `[panopto.poll]` on the process's Panopto client and starts it as a
/// task.
pub fn spawn(
    config: &PanoptoPollConfig,
    client: PanoptoClient,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    tasks: &mut crate::tasks::Tasks,
    cancel: &CancellationToken,
) -> Arc<Poller> {
    let settings = Settings::from_config(config, clock.as_ref());
    let poller = Arc::new(Poller::new(client, store, clock, settings));
    tasks.spawn("panopto poller", poller.clone().run(cancel.child_token()));
    poller
}
