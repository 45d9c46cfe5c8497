//! Applying one inbox row: ONE transaction that renews the lane lease (the fence), locks the
//! row, merges each of its events into the catalog, appends the change events and audit rows,
//! marks the row processed (or quarantined) and, when the lane is empty, releases it.

use serde_json::json;

use super::body::decode_inbox_body;
use crate::bus;
use crate::catalog::{self, Observation, Outcome};
use crate::store::{
    AuditEntry, InboxRow, InboxStatus, Lane, ProcessingTx, Store, StoreError, StoreResult,
};

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

/// One event of a row, as the processor will treat it.
enum Step {
    Catalog(Observation),
    /// Not a catalog event: processed with an audit row and nothing else.
    Passed {
        event_name: String,
        subject: Option<String>,
        cause_id: String,
    },
}

/// Who is applying, and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub lane: &'a Lane,
    pub owner: &'a str,
    pub now_ms: i64,
    pub lease_until_ms: i64,
}

/// Applies the pending row `inbox_id` of `ctx.lane`.
pub async fn apply_row(store: &dyn Store, ctx: Context<'_>, inbox_id: i64) -> StoreResult<Applied> {
    let mut tx = store.begin_processing().await?;
    if !tx
        .renew_lease(ctx.lane, ctx.owner, ctx.lease_until_ms)
        .await?
    {
        return Ok(Applied::LostLease);
    }
    let Some(row) = tx.lock_pending(inbox_id).await? else {
        return Ok(Applied::NotPending);
    };
    let steps = decode_inbox_body(&row.body).and_then(|events| {
        events
            .iter()
            .map(|event| match catalog::observe(event, row.received_at_ms) {
                Ok(Some(observed)) => Ok(Step::Catalog(observed)),
                Ok(None) => Ok(Step::Passed {
                    event_name: event.event_name.clone(),
                    subject: event.cloud.subject.clone(),
                    cause_id: event.cloud.id.clone(),
                }),
                Err(err) => Err(err.to_string()),
            })
            .collect::<Result<Vec<Step>, String>>()
    });
    let steps = match steps {
        Ok(steps) => steps,
        Err(reason) => return quarantine_in(tx, ctx, &row, &reason).await,
    };
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut change_events = 0;
    for step in &steps {
        let (label, emitted) = apply_step(tx.as_mut(), ctx, &row, step).await?;
        outcomes.push(label);
        change_events += usize::from(emitted);
    }
    tx.finish_inbox(row.id, InboxStatus::Processed, None, ctx.now_ms)
        .await?;
    let released = tx.release_if_drained(ctx.lane, ctx.owner).await?;
    tx.commit().await?;
    Ok(Applied::Done {
        outcomes,
        change_events,
        quarantined: false,
        released,
    })
}

/// Quarantines the pending row `inbox_id` with `reason` (poison rows), fenced by the lease.
pub async fn quarantine_row(
    store: &dyn Store,
    ctx: Context<'_>,
    inbox_id: i64,
    reason: &str,
) -> StoreResult<Applied> {
    let mut tx = store.begin_processing().await?;
    if !tx
        .renew_lease(ctx.lane, ctx.owner, ctx.lease_until_ms)
        .await?
    {
        return Ok(Applied::LostLease);
    }
    let Some(row) = tx.lock_pending(inbox_id).await? else {
        return Ok(Applied::NotPending);
    };
    quarantine_in(tx, ctx, &row, reason).await
}

async fn quarantine_in(
    mut tx: Box<dyn ProcessingTx>,
    ctx: Context<'_>,
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
    let released = tx.release_if_drained(ctx.lane, ctx.owner).await?;
    tx.commit().await?;
    Ok(Applied::Done {
        outcomes: vec!["quarantined"],
        change_events: 0,
        quarantined: true,
        released,
    })
}

/// One event: merge, maybe a change event, always an audit row. Returns the outcome label and
/// whether a change event was appended.
async fn apply_step(
    tx: &mut dyn ProcessingTx,
    ctx: Context<'_>,
    row: &InboxRow,
    step: &Step,
) -> StoreResult<(&'static str, bool)> {
    let observed = match step {
        Step::Catalog(observed) => observed,
        Step::Passed {
            event_name,
            subject,
            cause_id,
        } => {
            tx.append_audit(&AuditEntry {
                at_ms: ctx.now_ms,
                inbox_id: Some(row.id),
                subject: subject.clone(),
                cause_id: Some(cause_id.clone()),
                action: "event.not_cataloged".to_owned(),
                change_event_id: None,
                detail: json!({ "event_name": event_name }),
            })
            .await?;
            return Ok(("not_cataloged", false));
        }
    };
    let current = tx.load_entity(observed.entity).await?;
    let merged = catalog::merge(current.as_ref(), observed);
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
    }
    tx.append_audit(&AuditEntry {
        at_ms: ctx.now_ms,
        inbox_id: Some(row.id),
        subject: Some(observed.entity.subject()),
        cause_id: Some(observed.cause_id.clone()),
        action: format!("catalog.{}", merged.outcome.label()),
        change_event_id: change_event_id.clone(),
        detail: json!({
            "event_name": observed.event_name,
            "version": observed.version,
            "time_inferred": observed.time_inferred,
            "previous_version": current.as_ref().map(|c| &c.version),
        }),
    })
    .await?;
    Ok((merged.outcome.label(), change_event_id.is_some()))
}
