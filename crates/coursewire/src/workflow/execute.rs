//! The command executor: takes due command rows under a lease (any number of processes share
//! them), performs each through [`effects`], and writes the result into the inbox in the
//! transaction that finishes the row, fenced by the lease, so the workflow learns of every
//! result exactly once and through the processor like every other input. A failure is retried
//! with doubling waits; a command out of tries is finished as given up, which fails the
//! recording until a person replays it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::apply::{Message, MessageInput, SOURCE};
use super::effects::{Failure, Targets};
use super::steps::Command;
use crate::config::WorkflowConfig;
use crate::store::{CommandRow, InboxStatus, NewInboxEntry};

/// How the executor runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub batch: i64,
    pub lease: Duration,
    pub retry: Duration,
    pub max_attempts: i64,
    pub idle: Duration,
}

impl From<&WorkflowConfig> for Settings {
    fn from(c: &WorkflowConfig) -> Self {
        Settings {
            batch: i64::from(c.batch.max(1)),
            lease: Duration::from_secs(c.lease_seconds.max(1)),
            retry: Duration::from_secs(c.retry_seconds.max(1)),
            max_attempts: i64::from(c.max_attempts.max(1)),
            idle: Duration::from_secs(c.idle_seconds.max(1)),
        }
    }
}

/// Refusals are tried this many times at most: enough for a person to fix a missing folder
/// or a race with another writer, not enough to hammer an API that said no.
const REFUSED_ATTEMPTS: i64 = 3;

#[derive(Debug)]
pub struct Executor {
    targets: Targets,
    settings: Settings,
    owner: String,
}

impl Executor {
    pub fn new(targets: Targets, settings: Settings, owner: String) -> Self {
        Executor {
            targets,
            settings,
            owner,
        }
    }

    /// Runs until `stop`: claims due commands, performs them one after another (the clients
    /// pace them), and waits `idle` when there are none.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let clock = self.targets.clock.clone();
        loop {
            let worked = tokio::select! {
                _ = stop.cancelled() => return,
                n = self.run_once() => n,
            };
            if worked == 0 {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = clock.sleep(self.settings.idle) => {}
                }
            }
        }
    }

    /// One claim's commands performed; how many were taken.
    pub async fn run_once(&self) -> usize {
        let clock = &self.targets.clock;
        let now = clock.now_ms();
        let until = now.saturating_add(clock.span_ms(self.settings.lease));
        let rows = match self
            .targets
            .store
            .claim_due_commands(&self.owner, now, until, self.settings.batch)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "workflow commands could not be claimed");
                return 0;
            }
        };
        for row in &rows {
            // A row of the batch may have waited past its lease behind the others (and been
            // taken over): it runs only while it is still this executor's.
            match self.renew(row.id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(command = row.id, "command taken over before it ran");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(command = row.id, error = %e, "command lease not renewed");
                    continue;
                }
            }
            if let Err(e) = self.execute(row).await {
                tracing::warn!(command = row.id, error = %e, "command result not recorded");
            }
        }
        rows.len()
    }

    async fn execute(&self, row: &CommandRow) -> crate::store::StoreResult<()> {
        let store = &self.targets.store;
        let command: Command = match serde_json::from_str(&row.command) {
            Ok(c) => c,
            Err(e) => {
                let failure = Failure::Refused(format!("unreadable command: {e}"));
                return self.give_up(row, &failure).await;
            }
        };
        // The lease is renewed while the command runs (a large section's roster can take
        // minutes at Panopto's pace); once it cannot be, the command stops where it is and is
        // left to its new holder, which re-reads before writing.
        let performed = tokio::select! {
            performed = self.targets.perform(&command) => performed,
            () = self.hold(row.id) => {
                tracing::info!(command = row.id, "command lease lost while running; stopped");
                return Ok(());
            }
        };
        match performed {
            Ok(outcome) => {
                let result = serde_json::to_string(&outcome).unwrap_or_default();
                let message = MessageInput::Done {
                    command_id: row.id,
                    outcome,
                };
                let report = self.report(row, message);
                let now = self.targets.clock.now_ms();
                if !store
                    .finish_command(row.id, &self.owner, "done", &result, &report, now)
                    .await?
                {
                    tracing::info!(command = row.id, "command taken over; result dropped");
                }
                Ok(())
            }
            Err(failure) => {
                let limit = match failure {
                    Failure::Transient(_) => self.settings.max_attempts,
                    Failure::Refused(_) => REFUSED_ATTEMPTS.min(self.settings.max_attempts),
                };
                if row.attempts >= limit {
                    return self.give_up(row, &failure).await;
                }
                tracing::info!(
                    command = row.id,
                    step = %row.step,
                    attempt = row.attempts,
                    error = failure.message(),
                    "command failed; retried later"
                );
                let wait =
                    self.settings.retry * 2u32.saturating_pow(row.attempts.max(1) as u32 - 1);
                let clock = &self.targets.clock;
                let next = clock.now_ms().saturating_add(clock.span_ms(wait));
                store
                    .retry_command(row.id, &self.owner, failure.message(), next)
                    .await?;
                Ok(())
            }
        }
    }

    /// Renews command `id`'s lease to a full lease from now; `false` when it is not ours.
    async fn renew(&self, id: i64) -> crate::store::StoreResult<bool> {
        let clock = &self.targets.clock;
        let until = clock
            .now_ms()
            .saturating_add(clock.span_ms(self.settings.lease));
        self.targets
            .store
            .renew_command(id, &self.owner, until)
            .await
    }

    /// Resolves once command `id`'s lease can no longer be renewed (taken over, re-armed, or
    /// the store unreachable: not provably ours); renews it every third of a lease.
    async fn hold(&self, id: i64) {
        loop {
            tokio::time::sleep(self.settings.lease / 3).await;
            match self.renew(id).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(command = id, error = %e, "command lease not renewed");
                    return;
                }
            }
        }
    }

    async fn give_up(&self, row: &CommandRow, failure: &Failure) -> crate::store::StoreResult<()> {
        tracing::warn!(
            command = row.id,
            step = %row.step,
            attempts = row.attempts,
            error = failure.message(),
            "command gave up"
        );
        let message = MessageInput::GaveUp {
            command_id: row.id,
            step: row.step.clone(),
            error: failure.message().to_owned(),
        };
        let report = self.report(row, message);
        let result = serde_json::json!({ "gave_up": failure.message() }).to_string();
        let now = self.targets.clock.now_ms();
        self.targets
            .store
            .finish_command(row.id, &self.owner, "failed", &result, &report, now)
            .await?;
        Ok(())
    }

    /// The inbox row that tells the workflow: one per finished run of the command (the key
    /// names the command, its attempt and the time, so a replay's result is a new row).
    fn report(&self, row: &CommandRow, input: MessageInput) -> NewInboxEntry {
        let message = Message {
            recording_id: row.recording_id.clone(),
            input,
        };
        let now = self.targets.clock.now_ms();
        NewInboxEntry {
            source: SOURCE.to_owned(),
            dedup_key: format!("command:{}:{}:{now}", row.id, row.attempts),
            received_at_ms: now,
            event_name: Some(format!("workflow.{}", row.step)),
            event_time_ms: Some(now),
            subject: Some(match &row.section_id {
                Some(section) if row.recording_id.is_empty() => format!("section/{section}"),
                _ => format!("recording/{}", row.recording_id),
            }),
            body: serde_json::to_vec(&message).unwrap_or_default(),
            headers: "{}".to_owned(),
            verification: "internal".to_owned(),
            status: InboxStatus::Pending,
            status_reason: None,
        }
    }
}
