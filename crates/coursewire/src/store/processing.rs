//! Store surface of the processor: lane leases over the inbox, the processing transaction
//! (catalog, outbox, audit, inbox status — committed together), and the read side of the
//! catalog, outbox and audit log.
//!
//! The processor owns the transaction: it opens one with [`ProcessingStore::begin_processing`],
//! calls the small named steps of [`ProcessingTx`] in the order its rules need, and commits.
//! Dropping the transaction rolls it back. Only SQL lives behind these traits; what to write is
//! decided by `catalog`, `bus` and `processor`.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{InboxRow, InboxStatus, StoreError, StoreResult};
use crate::bus::NewChangeEvent;
use crate::catalog::{EntityKind, EntityRef, StoredEntity, Version};

/// A processing lane: the events of one entity (by the inbox row's subject), applied one at a
/// time in event order; an event without a subject is a lane of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Subject(String),
    Row(i64),
}

impl Lane {
    pub fn of(subject: Option<&str>, inbox_id: i64) -> Self {
        match subject {
            Some(subject) => Lane::Subject(subject.to_owned()),
            None => Lane::Row(inbox_id),
        }
    }

    /// The key stored in `processor_lanes`.
    pub fn key(&self) -> String {
        match self {
            Lane::Subject(subject) => subject.clone(),
            Lane::Row(id) => format!("inbox/{id}"),
        }
    }
}

/// A pending inbox row with its attempt count.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub row: InboxRow,
    /// Times a worker abandoned this row (crashed or lost its lease while it was the head of
    /// its lane): see `processor.max_attempts`.
    pub attempts: i64,
}

/// A pending row's place, for picking lanes to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRef {
    pub id: i64,
    pub subject: Option<String>,
}

/// An inbox row a replay may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayCandidate {
    pub id: i64,
    pub source: String,
    pub event_name: Option<String>,
}

/// A live lease, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneLease {
    pub lane: String,
    pub owner: String,
    pub lease_until_ms: i64,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub inbox_id: Option<i64>,
    pub subject: Option<String>,
    /// The upstream CloudEvent id.
    pub cause_id: Option<String>,
    /// What happened: `catalog.created`, `catalog.stale`, `inbox.quarantined` …
    pub action: String,
    pub change_event_id: Option<String>,
    pub detail: Value,
}

/// A stored change event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEventRow {
    pub position: i64,
    pub id: String,
    pub subject: String,
    pub sequence: i64,
    pub r#type: String,
    pub time_ms: i64,
    pub inbox_id: i64,
    pub created_at_ms: i64,
    /// The CloudEvent (structured JSON).
    pub event: Value,
}

/// The processing transaction. Every method runs inside it; nothing is visible to others until
/// [`ProcessingTx::commit`]; dropping it rolls back.
#[async_trait]
pub trait ProcessingTx: Send {
    /// Extends `owner`'s lease on `lane` to `until_ms`. False when `owner` no longer holds it
    /// (another worker took it over): the caller must roll back and leave the lane.
    async fn renew_lease(&mut self, lane: &Lane, owner: &str, until_ms: i64) -> StoreResult<bool>;

    /// Locks the inbox row and returns it if it is still pending; `None` if it is not pending
    /// or (PostgreSQL) another transaction holds it.
    async fn lock_pending(&mut self, inbox_id: i64) -> StoreResult<Option<InboxRow>>;

    /// The stored entity (tombstones included), locked for this transaction.
    async fn load_entity(&mut self, entity: EntityRef) -> StoreResult<Option<StoredEntity>>;

    /// Inserts or replaces the entity.
    async fn save_entity(&mut self, entity: &StoredEntity, now_ms: i64) -> StoreResult<()>;

    /// Appends a change event to the outbox and returns its position, or `None` when an event
    /// with the same id is already there (nothing written).
    async fn append_change_event(&mut self, event: &NewChangeEvent) -> StoreResult<Option<i64>>;

    async fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()>;

    /// Moves the inbox row out of `pending`.
    async fn finish_inbox(
        &mut self,
        inbox_id: i64,
        status: InboxStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Deletes `owner`'s lease on `lane` if the lane has no pending row left; true if released.
    async fn release_if_drained(&mut self, lane: &Lane, owner: &str) -> StoreResult<bool>;

    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// What the processor and the readers of its output need from the store.
#[async_trait]
pub trait ProcessingStore: Send + Sync {
    /// Up to `limit` pending rows with `id > after_id`, oldest first (lane discovery).
    async fn pending_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<PendingRef>>;

    /// Lanes whose lease is live at `now_ms`.
    async fn live_leases(&self, now_ms: i64) -> StoreResult<Vec<LaneLease>>;

    /// In ONE transaction: takes each lane that has no live lease for `owner` until
    /// `until_ms`. A lease left behind past its `lease_until` is taken over, and that counts an
    /// attempt against the lane's head row (its owner crashed or stalled on it); a lane that was
    /// released has no lease row and is claimed without counting. Returns the lanes won.
    async fn claim_lanes(
        &self,
        lanes: &[Lane],
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<Lane>>;

    /// The lane's first `limit` pending rows by (event time, else receive time; dedup key):
    /// the order the processor applies them in.
    async fn lane_rows(&self, lane: &Lane, limit: i64) -> StoreResult<Vec<PendingRow>>;

    /// Records that applying a pending row failed with `error` (it stays pending): counts an
    /// attempt and keeps the error as the row's `status_reason` for operators.
    async fn note_failure(&self, inbox_id: i64, error: &str) -> StoreResult<()>;

    /// Gives up `owner`'s lease on `lane` (graceful stop, or after an error).
    async fn release_lane(&self, lane: &Lane, owner: &str) -> StoreResult<()>;

    /// Opens a processing transaction (SQLite: `BEGIN IMMEDIATE`).
    async fn begin_processing(&self) -> StoreResult<Box<dyn ProcessingTx>>;

    /// A live catalog entity; `None` when absent or deleted (tombstone).
    async fn catalog_entity(&self, entity: EntityRef) -> StoreResult<Option<StoredEntity>>;

    /// Every stored row of a kind, tombstones included, by id (for tests and replays).
    async fn catalog_rows(&self, kind: EntityKind) -> StoreResult<Vec<StoredEntity>>;

    /// Change events with `position > after`, in position order.
    async fn change_events_after(&self, after: i64, limit: i64)
    -> StoreResult<Vec<ChangeEventRow>>;

    /// Every change event of one subject, by sequence.
    async fn change_events_for(&self, subject: &str) -> StoreResult<Vec<ChangeEventRow>>;

    /// The audit rows of one inbox row, oldest first.
    async fn audit_for_inbox(&self, inbox_id: i64) -> StoreResult<Vec<AuditEntry>>;

    /// Replay: puts the rows received in `[from_ms, to_ms)` that were processed (and, if asked,
    /// quarantined) back to `pending` with no attempts, in one transaction. Returns how many.
    /// Processing them again is idempotent: the catalog's versions make a second run a no-op.
    async fn requeue(
        &self,
        from_ms: i64,
        to_ms: i64,
        include_quarantined: bool,
    ) -> StoreResult<u64>;

    /// Replay, first step: up to `limit` rows with `id > after_id` received in `[from_ms, to_ms)`
    /// that were processed (and, if asked, quarantined), by id. The caller filters them (source,
    /// event type) and requeues what it keeps with [`ProcessingStore::requeue_rows`].
    async fn replay_candidates(
        &self,
        from_ms: i64,
        to_ms: i64,
        include_quarantined: bool,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<ReplayCandidate>>;

    /// Puts these rows back to `pending` with no attempts (only rows processed or quarantined),
    /// in one transaction. Returns how many.
    async fn requeue_rows(&self, ids: &[i64]) -> StoreResult<u64>;

    /// The pending row by id with its attempt count (for tests and operators).
    async fn pending_row(&self, inbox_id: i64) -> StoreResult<Option<PendingRow>>;
}

/// Maps a `catalog_entities` row; the columns agree on both backends.
pub(super) fn stored_entity<'r, R>(r: &'r R) -> StoreResult<StoredEntity>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = r.try_get("kind")?;
    let kind = EntityKind::parse(&kind)
        .ok_or_else(|| StoreError::Other(format!("unknown catalog kind {kind:?}")))?;
    let state: String = r.try_get("state")?;
    let state: Map<String, Value> = serde_json::from_str(&state)
        .map_err(|e| StoreError::Other(format!("catalog state is not a JSON object: {e}")))?;
    Ok(StoredEntity {
        entity: EntityRef::new(kind, r.try_get("id")?),
        state,
        deleted: r.try_get("deleted")?,
        version: Version {
            time_ms: r.try_get("version_time")?,
            tie: r.try_get("version_tie")?,
        },
        sequence: r.try_get("sequence")?,
    })
}

pub(super) fn change_event_row<'r, R>(r: &'r R) -> StoreResult<ChangeEventRow>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let event: String = r.try_get("event")?;
    Ok(ChangeEventRow {
        position: r.try_get("position")?,
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        sequence: r.try_get("sequence")?,
        r#type: r.try_get("type")?,
        time_ms: r.try_get("time_ms")?,
        inbox_id: r.try_get("inbox_id")?,
        created_at_ms: r.try_get("created_at")?,
        event: serde_json::from_str(&event)
            .map_err(|e| StoreError::Other(format!("stored change event is not JSON: {e}")))?,
    })
}

pub(super) fn audit_entry<'r, R>(r: &'r R) -> StoreResult<AuditEntry>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let detail: String = r.try_get("detail")?;
    Ok(AuditEntry {
        at_ms: r.try_get("at")?,
        inbox_id: r.try_get("inbox_id")?,
        subject: r.try_get("subject")?,
        cause_id: r.try_get("cause_id")?,
        action: r.try_get("action")?,
        change_event_id: r.try_get("change_event_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
    })
}

pub(super) fn state_text(entity: &StoredEntity) -> String {
    Value::Object(entity.state.clone()).to_string()
}
