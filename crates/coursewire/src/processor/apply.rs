//! Applying inbox rows: ONE transaction per batch that renews the lanes' leases (the fence),
//! and for each row locks it, merges each of its events into the catalog, appends the change
//! events and audit rows and marks the row processed (or quarantined); a lane left empty is
//! released in the same transaction.

use serde_json::json;

use super::decode::{self, Step};
use crate::bus;
use crate::catalog::{self, EntityId, EntityKind, EntityRef, Outcome};
use crate::store::{
    AuditEntry, InboxRow, InboxStatus, Lane, ProcessingTx, Store, StoreError, StoreResult,
};
use crate::workflow::apply::{self, Cause, Message, MessageInput};
use crate::workflow::steps::Input;

/// What became of an attempt to apply a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Committed. `released`: the lane had nothing left and its lease is gone.
    Done {
        outcomes: Vec<&'static str>,
        change_events: usize,
        quarantined: bool,
        released: bool,
    },
    /// Another worker holds the lane now: nothing was written; leave the lane alone.
    LostLease,
    /// The row is no longer pending or is locked elsewhere: nothing was written.
    NotPending,
}

/// When the rows are applied (audit and catalog timestamps).
#[derive(Debug, Clone, Copy)]
struct Context {
    now_ms: i64,
}

/// One row of a batch: the lane it belongs to, and whether it is to be quarantined instead of
/// applied (a poison row: `Some(reason)`).
#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub lane: &'a Lane,
    pub inbox_id: i64,
    pub received_at_ms: i64,
    pub poison: Option<String>,
}

/// Who is applying, and when.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub owner: &'a str,
    pub now_ms: i64,
    pub lease_until_ms: i64,
}

/// Applies `items` in ONE transaction, in order (a lane's rows must come in lane order), and
/// returns what became of each. The transaction first renews the lease of every lane in the
/// batch (the fence: rows of a lane lost to another worker are left alone), and at the end
/// releases every lane of the batch that has nothing pending any more.
///
/// On SQLite a commit is an fsync under the single write lock: one per batch instead of one
/// per event is what lets the processor keep up with ingest (bench/README.md). A store error
/// rolls the whole batch back; the caller then retries the rows one by one to find the row at
/// fault.
pub async fn apply_batch(
    store: &Store,
    batch: Batch<'_>,
    items: &[Item<'_>],
) -> StoreResult<Vec<Applied>> {
    let mut tx = store.begin_processing().await?;
    let mut lanes: Vec<&Lane> = items.iter().map(|item| item.lane).collect();
    lanes.sort();
    lanes.dedup();
    let held = tx
        .renew_leases(&lanes, batch.owner, batch.lease_until_ms)
        .await?;
    let ctx = Context {
        now_ms: batch.now_ms,
    };
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        if !held.contains(&item.lane.key()) {
            results.push(Applied::LostLease);
            continue;
        }
        results.push(match tx.lock_pending(item.inbox_id).await? {
            None => Applied::NotPending,
            Some(row) => match &item.poison {
                Some(reason) => quarantine_in(&mut tx, ctx, &row, reason).await?,
                None => apply_in(&mut tx, ctx, &row).await?,
            },
        });
    }
    // Every lane of the batch that has nothing pending any more is let go, in one statement;
    // its last row in the batch says so.
    let ours: Vec<&Lane> = lanes
        .into_iter()
        .filter(|lane| held.contains(&lane.key()))
        .collect();
    let released = tx.release_drained(&ours, batch.owner).await?;
    for lane in ours {
        if !released.contains(&lane.key()) {
            continue;
        }
        if let Some(last) = items.iter().rposition(|item| item.lane == lane)
            && let Applied::Done { released, .. } = &mut results[last]
        {
            *released = true;
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// Applies one locked pending row inside `tx`.
async fn apply_in(tx: &mut ProcessingTx, ctx: Context, row: &InboxRow) -> StoreResult<Applied> {
    let steps = match decode::decode(row) {
        Ok(steps) => steps,
        Err(reason) => return quarantine_in(tx, ctx, row, &reason).await,
    };
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut change_events = 0;
    for step in &steps {
        let (label, emitted) = apply_step(tx, ctx, row, step).await?;
        outcomes.push(label);
        change_events += usize::from(emitted);
    }
    tx.finish_inbox(row.id, InboxStatus::Processed, None, ctx.now_ms)
        .await?;
    Ok(Applied::Done {
        outcomes,
        change_events,
        quarantined: false,
        released: false,
    })
}

async fn quarantine_in(
    tx: &mut ProcessingTx,
    ctx: Context,
    row: &InboxRow,
    reason: &str,
) -> StoreResult<Applied> {
    tracing::warn!(inbox_id = row.id, subject = ?row.subject, reason, "inbox row quarantined");
    tx.append_audit(&AuditEntry {
        at_ms: ctx.now_ms,
        inbox_id: Some(row.id),
        subject: row.subject.clone(),
        cause_id: None,
        action: "inbox.quarantined".to_owned(),
        change_event_id: None,
        detail: json!({ "reason": reason, "event_name": row.event_name }),
    })
    .await?;
    tx.finish_inbox(row.id, InboxStatus::Quarantined, Some(reason), ctx.now_ms)
        .await?;
    Ok(Applied::Done {
        outcomes: vec!["quarantined"],
        change_events: 0,
        quarantined: true,
        released: false,
    })
}

/// One event: merge, maybe a change event, always an audit row. Returns the outcome label and
/// whether a change event was appended.
async fn apply_step(
    tx: &mut ProcessingTx,
    ctx: Context,
    row: &InboxRow,
    step: &Step,
) -> StoreResult<(&'static str, bool)> {
    let observed = match step {
        Step::Catalog(observed) => observed,
        Step::Workflow(message) => return workflow_step(tx, ctx, row, message).await,
        Step::Passed {
            event_name,
            subject,
            cause_id,
        } => {
            tx.append_audit(&AuditEntry {
                at_ms: ctx.now_ms,
                inbox_id: Some(row.id),
                subject: Some(subject.clone()),
                cause_id: Some(cause_id.clone()),
                action: "event.not_cataloged".to_owned(),
                change_event_id: None,
                detail: json!({ "event_name": event_name }),
            })
            .await?;
            return Ok(("not_cataloged", false));
        }
    };
    let current = tx.load_entity(&observed.entity).await?;
    let merged = catalog::merge(current.as_ref(), observed);
    let mut detail = json!({
        "event_name": observed.event_name,
        "version": observed.version,
        "time_inferred": observed.time_inferred,
        "previous_version": current.as_ref().map(|c| &c.version),
    });
    if let Some(original) = observed.time_bounded_from {
        // Ordered by its receipt instead: its own time is kept here, flagged.
        detail["event_time_bounded_from"] = json!(original);
    }
    if let Some(sent_as) = &observed.sent_as {
        // The body decided what the event is about; the name it came with is evidence.
        detail["event_name_sent"] = json!(sent_as);
    }
    let mut change_event_id = None;
    if let Some(mut entity) = merged.write {
        if let Outcome::Changed(change) = merged.outcome {
            let sequence = entity.sequence + 1;
            let event = bus::change_event(observed, change, &entity, sequence);
            let outbox = bus::outbox_row(
                &event,
                sequence,
                observed.version.time_ms,
                row.id,
                ctx.now_ms,
            )
            .map_err(|e| StoreError::Other(format!("change event not serializable: {e}")))?;
            // An id already in the outbox means this very change was emitted before (a replay
            // over a rebuilt catalog): keep the sequence where it is, so there is no gap.
            if tx.append_change_event(&outbox).await?.is_some() {
                entity.sequence = sequence;
                change_event_id = Some(event.id);
            }
        }
        tx.save_entity(&entity, ctx.now_ms).await?;
        // What a catalog change sets going in the recording workflow, in this transaction.
        if matches!(merged.outcome, Outcome::Changed(_)) {
            let cause = Cause {
                inbox_id: row.id,
                key: &observed.version.tie,
                cause_id: &observed.cause_id,
                now_ms: ctx.now_ms,
            };
            match entity.entity.kind {
                EntityKind::Recording => {
                    let seen = Input::Seen(apply::seen_of(&entity));
                    apply::advance(tx, &entity, seen, cause, None).await?;
                }
                EntityKind::Enrollment => {
                    apply::roster_changed(tx, &entity, cause).await?;
                }
                _ => {}
            }
        }
    }
    tx.append_audit(&AuditEntry {
        at_ms: ctx.now_ms,
        inbox_id: Some(row.id),
        subject: Some(observed.entity.subject()),
        cause_id: Some(observed.cause_id.clone()),
        action: format!("catalog.{}", merged.outcome.label()),
        change_event_id: change_event_id.clone(),
        detail,
    })
    .await?;
    Ok((merged.outcome.label(), change_event_id.is_some()))
}

/// A `workflow` row: the recording's workflow moved by a command's result or an operator.
async fn workflow_step(
    tx: &mut ProcessingTx,
    ctx: Context,
    row: &InboxRow,
    message: &Message,
) -> StoreResult<(&'static str, bool)> {
    if message.recording_id.is_empty() {
        // A section's roster sync: nothing of a recording moves.
        tx.append_audit(&AuditEntry {
            at_ms: ctx.now_ms,
            inbox_id: Some(row.id),
            subject: row.subject.clone(),
            cause_id: Some(row.dedup_key.clone()),
            action: "workflow.roster_synced".to_owned(),
            change_event_id: None,
            detail: json!({ "input": message.input }),
        })
        .await?;
        return Ok(("roster_synced", false));
    }
    let subject = format!("recording/{}", message.recording_id);
    let recording = match EntityId::parse(&message.recording_id) {
        Ok(id) => {
            tx.load_entity(&EntityRef::new(EntityKind::Recording, id))
                .await?
        }
        Err(_) => None,
    };
    let Some(recording) = recording else {
        tx.append_audit(&AuditEntry {
            at_ms: ctx.now_ms,
            inbox_id: Some(row.id),
            subject: Some(subject),
            cause_id: Some(row.dedup_key.clone()),
            action: "workflow.unknown_recording".to_owned(),
            change_event_id: None,
            detail: json!({ "input": message.input }),
        })
        .await?;
        return Ok(("unknown_recording", false));
    };
    let by = match &message.input {
        MessageInput::Park { by, .. }
        | MessageInput::Unpark { by, .. }
        | MessageInput::Replay { by, .. } => Some(by.as_str()),
        _ => None,
    };
    let cause = Cause {
        inbox_id: row.id,
        key: &row.dedup_key,
        cause_id: &row.dedup_key,
        now_ms: ctx.now_ms,
    };
    let advanced = apply::advance(tx, &recording, message.input.input(), cause, by).await?;
    Ok(("workflow", advanced.change_event_id.is_some()))
}
