//! Store surface of the processor: lane leases over the inbox, the processing transaction
//! (catalog, outbox, audit, inbox status — committed together), and the read side of the
//! catalog, outbox and audit log.
//!
//! The processor owns the transaction: it opens one with [`Store::begin_processing`], calls
//! the small named steps of [`ProcessingTx`] in the order its rules need, and commits.
//! Dropping the transaction rolls it back. Only SQL lives here; what to write is decided by
//! `catalog`, `bus` and `processor`.
//!
//! Several processes share the work on PostgreSQL:
//! * a lane is claimed by a conditional upsert on `processor_lanes` (taken only if absent or
//!   expired); concurrent claims of one lane serialize on its row and exactly one wins;
//! * a processing transaction first renews its lease (a fence: if another process took the
//!   lane over, the renewal matches no row and the transaction is abandoned), then locks the
//!   inbox row (`SKIP LOCKED`) and the catalog row;
//! * appending a change event takes the outbox lock first ([`Tx::lock_outbox`]).

use serde::Serialize;
use serde_json::{Map, Value};

use std::collections::HashSet;

use super::dialect::{Locking, Tx};
use super::lease::PROCESSOR_LANE;
use super::query::{placeholders, sql, sql_built};
use super::{InboxRow, InboxStatus, Store, StoreError, StoreResult};
use crate::bus::NewChangeEvent;
use crate::catalog::{EntityId, EntityKind, EntityRef, StoredEntity, Version};

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

    /// The entity's subject, for a lane of one.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Lane::Subject(subject) => Some(subject),
            Lane::Row(_) => None,
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
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
    #[sqlx(flatten)]
    pub row: InboxRow,
    /// Times a worker abandoned this row (crashed or lost its lease while it was the head of
    /// its lane): see `processor.max_attempts`.
    pub attempts: i64,
}

/// A pending row's place, for picking lanes to claim.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingRef {
    pub id: i64,
    pub subject: Option<String>,
}

/// An inbox row a replay may take.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReplayCandidate {
    pub id: i64,
    pub source: String,
    pub event_name: Option<String>,
}

/// A live lease, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LaneLease {
    pub lane: String,
    #[sqlx(rename = "lease_owner")]
    pub owner: String,
    #[sqlx(rename = "lease_until")]
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

/// Lanes per claim or read statement, well below both backends' parameter limits.
const LANES_PER_STATEMENT: usize = 500;

/// Live entities of a kind under a parent key (its index: `catalog_by_parent_key`).
pub(super) const ENTITIES_UNDER: &str =
    "SELECT * FROM catalog_entities WHERE kind = $1 AND parent_key = $2 AND NOT deleted";

/// The first pending rows of a subject lane, in the order the processor applies events.
const HEAD_OF_SUBJECT: &str = "SELECT * FROM inbox WHERE status = 'pending' AND subject = $1 \
     ORDER BY COALESCE(event_time, received_at), dedup_key LIMIT $2";
const HEAD_OF_ROW: &str = "SELECT * FROM inbox WHERE status = 'pending' AND id = $1";

/// The lane's first `limit` pending rows, on the pool or inside a transaction.
async fn lane_head<'c>(
    on: impl Into<super::query::On<'c>>,
    lane: &Lane,
    limit: i64,
) -> StoreResult<Vec<PendingRow>> {
    match lane {
        Lane::Subject(subject) => {
            sql(HEAD_OF_SUBJECT)
                .bind(subject)
                .bind(limit)
                .fetch_all(on)
                .await
        }
        Lane::Row(id) => sql(HEAD_OF_ROW).bind(*id).fetch_all(on).await,
    }
}

/// What the processor and the readers of its output need from the store.
impl Store {
    /// Up to `limit` pending rows with `id > after_id`, oldest first (lane discovery).
    pub async fn pending_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<PendingRef>> {
        sql(
            "SELECT id, subject FROM inbox WHERE status = 'pending' AND id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Lanes whose lease is live at `now_ms`.
    pub async fn live_leases(&self, now_ms: i64) -> StoreResult<Vec<LaneLease>> {
        sql("SELECT lane, lease_owner, lease_until FROM processor_lanes WHERE lease_until >= $1")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await
    }

    /// In ONE transaction: takes each lane that has no live lease for `owner` until
    /// `until_ms`. A lease left behind past its `lease_until` is taken over, and, when another
    /// owner left it, that counts an attempt against the lane's head row (its owner crashed or
    /// stalled on it); `owner`'s own expired lease was left by a store failure it could not
    /// release through, and counts nothing; a lane that was released has no lease row and is
    /// claimed without counting. Returns the lanes won.
    /// A few statements per chunk of lanes, not two per lane: under a flood every event is a
    /// lane of its own.
    pub async fn claim_lanes(
        &self,
        lanes: &[Lane],
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<Lane>> {
        let mut tx = self.pool.begin_write().await?;
        let mut won: HashSet<String> = HashSet::with_capacity(lanes.len());
        for chunk in lanes.chunks(LANES_PER_STATEMENT) {
            let keys: Vec<String> = chunk.iter().map(Lane::key).collect();
            // Who held the expired leases: one of this process's own was left behind by a
            // transient store failure (it could not release it), not by a crash.
            let mut expired = sql_built(format!(
                "SELECT lane, lease_owner FROM processor_lanes WHERE lane IN ({}) \
                 AND lease_until < $1",
                placeholders(2, keys.len())
            ))
            .bind(now_ms);
            for key in &keys {
                expired = expired.bind(key);
            }
            let expired: Vec<(String, Option<String>)> = expired.fetch_all(&mut tx).await?;
            let left_by_crash: HashSet<String> = expired
                .into_iter()
                .filter(|(_, was)| was.as_deref() != Some(owner))
                .map(|(lane, _)| lane)
                .collect();
            // A lease row left behind expired by another process means that process died or
            // stalled: take it over and count an attempt against the lane's head, the row that
            // owner was likely on.
            let taken_over: Vec<(String,)> = PROCESSOR_LANE
                .take_over_any(
                    keys.iter().map(Into::into).collect(),
                    owner,
                    now_ms,
                    until_ms,
                )
                .push(" RETURNING lane")
                .fetch_all(&mut tx)
                .await?;
            for (key,) in taken_over {
                if left_by_crash.contains(&key)
                    && let Some(lane) = chunk.iter().find(|lane| lane.key() == key)
                    && let Some(head) = lane_head(&mut tx, lane, 1).await?.first()
                {
                    sql("UPDATE inbox SET attempts = attempts + 1 WHERE id = $1")
                        .bind(head.row.id)
                        .execute(&mut tx)
                        .await?;
                }
                won.insert(key);
            }
            // A drained or released lane has no row: claiming it anew counts nothing.
            let fresh: Vec<&String> = keys.iter().filter(|key| !won.contains(*key)).collect();
            if fresh.is_empty() {
                continue;
            }
            let rows: Vec<String> = (0..fresh.len())
                .map(|i| format!("(${}, $1, $2, $3)", 4 + i))
                .collect();
            let mut insert = sql_built(format!(
                "INSERT INTO processor_lanes (lane, lease_owner, lease_until, claimed_at) \
                 VALUES {} ON CONFLICT (lane) DO NOTHING RETURNING lane",
                rows.join(", ")
            ))
            .bind(owner)
            .bind(until_ms)
            .bind(now_ms);
            for key in fresh {
                insert = insert.bind(key);
            }
            let inserted: Vec<(String,)> = insert.fetch_all(&mut tx).await?;
            won.extend(inserted.into_iter().map(|(key,)| key));
        }
        tx.commit().await?;
        Ok(lanes
            .iter()
            .filter(|lane| won.contains(&lane.key()))
            .cloned()
            .collect())
    }

    /// The first `limit` pending rows of each lane, in one read (by lane, then in the order
    /// the processor applies them). See [`Store::lane_rows`].
    pub async fn lanes_rows(&self, lanes: &[Lane], limit: i64) -> StoreResult<Vec<PendingRow>> {
        let mut rows = Vec::new();
        let subjects: Vec<&str> = lanes.iter().filter_map(|lane| lane.subject()).collect();
        for chunk in subjects.chunks(LANES_PER_STATEMENT) {
            let mut query = sql_built(format!(
                "SELECT * FROM (SELECT inbox.*, ROW_NUMBER() OVER (PARTITION BY subject \
                 ORDER BY COALESCE(event_time, received_at), dedup_key) AS lane_rank \
                 FROM inbox WHERE status = 'pending' AND subject IN ({})) AS heads \
                 WHERE lane_rank <= $1 ORDER BY subject, lane_rank",
                placeholders(2, chunk.len())
            ))
            .bind(limit);
            for subject in chunk {
                query = query.bind(*subject);
            }
            rows.extend(query.fetch_all::<PendingRow>(&self.pool).await?);
        }
        for lane in lanes {
            if let Lane::Row(id) = lane {
                rows.extend(self.pending_row(*id).await?);
            }
        }
        Ok(rows)
    }

    /// The lane's first `limit` pending rows by (event time, else receive time; dedup key):
    /// the order the processor applies them in.
    pub async fn lane_rows(&self, lane: &Lane, limit: i64) -> StoreResult<Vec<PendingRow>> {
        lane_head(&self.pool, lane, limit).await
    }

    /// Records that applying a pending row failed with `error` (it stays pending): counts an
    /// attempt and keeps the error as the row's `status_reason` for operators.
    pub async fn note_failure(&self, inbox_id: i64, error: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        sql(
            "UPDATE inbox SET attempts = attempts + 1, status_reason = $1 \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(error)
        .bind(inbox_id)
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// Gives up `owner`'s lease on `lane` (graceful stop, or after an error).
    pub async fn release_lane(&self, lane: &Lane, owner: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        PROCESSOR_LANE
            .release(vec![lane.key().into()], owner)
            .execute(&mut tx)
            .await?;
        tx.commit().await
    }

    /// Opens a processing transaction.
    pub async fn begin_processing(&self) -> StoreResult<ProcessingTx> {
        Ok(ProcessingTx {
            tx: self.pool.begin_write().await?,
            audits: Vec::new(),
            processed: Vec::new(),
        })
    }

    /// A live catalog entity; `None` when absent or deleted (tombstone).
    pub async fn catalog_entity(&self, entity: &EntityRef) -> StoreResult<Option<StoredEntity>> {
        let row: Option<EntityRecord> =
            sql("SELECT * FROM catalog_entities WHERE kind = $1 AND id = $2 AND NOT deleted")
                .bind(entity.kind.as_str())
                .bind(entity.id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(StoredEntity::try_from).transpose()
    }

    /// Every stored row of a kind, tombstones included, by id (for tests and replays).
    pub async fn catalog_rows(&self, kind: EntityKind) -> StoreResult<Vec<StoredEntity>> {
        let rows: Vec<EntityRecord> =
            sql("SELECT * FROM catalog_entities WHERE kind = $1 ORDER BY LENGTH(id), id")
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    /// Change events with `position > after`, in position order.
    pub async fn change_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEventRow>> {
        let rows: Vec<ChangeEventRecord> =
            sql("SELECT * FROM change_events WHERE position > $1 ORDER BY position LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(ChangeEventRow::try_from).collect()
    }

    /// Every change event of one subject, by sequence.
    pub async fn change_events_for(&self, subject: &str) -> StoreResult<Vec<ChangeEventRow>> {
        let rows: Vec<ChangeEventRecord> =
            sql("SELECT * FROM change_events WHERE subject = $1 ORDER BY sequence")
                .bind(subject)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(ChangeEventRow::try_from).collect()
    }

    /// The audit rows of one inbox row, oldest first.
    pub async fn audit_for_inbox(&self, inbox_id: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRecord> = sql("SELECT * FROM audit_log WHERE inbox_id = $1 ORDER BY id")
            .bind(inbox_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Every audit row about `subject`, oldest first.
    pub async fn audit_for_subject(&self, subject: &str) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRecord> = sql("SELECT * FROM audit_log WHERE subject = $1 ORDER BY id")
            .bind(subject)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// Replay: puts the rows received in `[from_ms, to_ms)` that were processed (and, if
    /// asked, quarantined) back to `pending` with no attempts, in one transaction. Returns how
    /// many. Processing them again is idempotent: the catalog's versions make a second run a
    /// no-op.
    pub async fn requeue(
        &self,
        from_ms: i64,
        to_ms: i64,
        include_quarantined: bool,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin_write().await?;
        let requeued = sql(
            "UPDATE inbox SET status = 'pending', status_reason = NULL, attempts = 0 \
             WHERE received_at >= $1 AND received_at < $2 \
               AND (status = 'processed' OR ($3 AND status = 'quarantined'))",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(include_quarantined)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Replay, first step: up to `limit` rows with `id > after_id` received in
    /// `[from_ms, to_ms)` that were processed (and, if asked, quarantined), by id. The caller
    /// filters them (source, event type) and requeues what it keeps with
    /// [`Store::requeue_rows`].
    pub async fn replay_candidates(
        &self,
        from_ms: i64,
        to_ms: i64,
        include_quarantined: bool,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<ReplayCandidate>> {
        sql("SELECT id, source, event_name FROM inbox \
             WHERE received_at >= $1 AND received_at < $2 AND id > $3 \
               AND (status = 'processed' OR ($4 AND status = 'quarantined')) \
             ORDER BY id LIMIT $5")
        .bind(from_ms)
        .bind(to_ms)
        .bind(after_id)
        .bind(include_quarantined)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Puts these rows back to `pending` with no attempts (only rows processed or
    /// quarantined), in one transaction. Returns how many.
    pub async fn requeue_rows(&self, ids: &[i64]) -> StoreResult<u64> {
        let mut tx = self.pool.begin_write().await?;
        let mut requeued = 0;
        for id in ids {
            requeued += sql(
                "UPDATE inbox SET status = 'pending', status_reason = NULL, attempts = 0 \
                 WHERE id = $1 AND status IN ('processed', 'quarantined')",
            )
            .bind(*id)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(requeued)
    }

    /// The pending row by id with its attempt count (for tests and operators).
    pub async fn pending_row(&self, inbox_id: i64) -> StoreResult<Option<PendingRow>> {
        sql(HEAD_OF_ROW)
            .bind(inbox_id)
            .fetch_optional(&self.pool)
            .await
    }
}

/// The processing transaction. Every method runs inside it; nothing is visible to others until
/// [`ProcessingTx::commit`]; dropping it rolls back.
///
/// Audit rows and `processed` marks are the most frequent writes and the ones nothing reads back
/// inside the transaction: they are kept and written as one multi-row statement each when the
/// transaction commits (or before a read that must see them), so a batch of single-event lanes
/// costs a few statements per event instead of ten under SQLite's one write lock.
#[derive(Debug)]
pub struct ProcessingTx {
    pub(super) tx: Tx,
    audits: Vec<AuditEntry>,
    /// Rows to mark processed, with the time.
    processed: Vec<(i64, i64)>,
}

/// Audit rows or inbox ids per statement: 7 values a row keeps far below both backends'
/// parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

impl ProcessingTx {
    /// Extends `owner`'s lease on `lane` to `until_ms`. False when `owner` no longer holds it
    /// (another worker took it over): the caller must roll back and leave the lane.
    pub async fn renew_lease(
        &mut self,
        lane: &Lane,
        owner: &str,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let renewed = PROCESSOR_LANE
            .renew(vec![lane.key().into()], owner, until_ms)
            .execute(&mut self.tx)
            .await?;
        Ok(renewed == 1)
    }

    /// [`ProcessingTx::renew_lease`] for many lanes in one statement per chunk; returns the
    /// keys of the lanes `owner` still holds.
    pub async fn renew_leases(
        &mut self,
        lanes: &[&Lane],
        owner: &str,
        until_ms: i64,
    ) -> StoreResult<HashSet<String>> {
        let mut held = HashSet::with_capacity(lanes.len());
        for chunk in lanes.chunks(LANES_PER_STATEMENT) {
            let keys = chunk.iter().map(|lane| lane.key().into()).collect();
            let renewed: Vec<(String,)> = PROCESSOR_LANE
                .renew_any(keys, owner, until_ms)
                .push(" RETURNING lane")
                .fetch_all(&mut self.tx)
                .await?;
            held.extend(renewed.into_iter().map(|(key,)| key));
        }
        Ok(held)
    }

    /// Locks the inbox row and returns it if it is still pending; `None` if it is not pending
    /// or (PostgreSQL) another transaction holds it.
    pub async fn lock_pending(&mut self, inbox_id: i64) -> StoreResult<Option<InboxRow>> {
        let locking = self.tx.locking(Locking::SkipLocked);
        sql_built(format!("{HEAD_OF_ROW}{locking}"))
            .bind(inbox_id)
            .fetch_optional(&mut self.tx)
            .await
    }

    /// The stored entity (tombstones included), locked for this transaction.
    pub async fn load_entity(&mut self, entity: &EntityRef) -> StoreResult<Option<StoredEntity>> {
        let locking = self.tx.locking(Locking::ForUpdate);
        let row: Option<EntityRecord> = sql_built(format!(
            "SELECT * FROM catalog_entities WHERE kind = $1 AND id = $2{locking}"
        ))
        .bind(entity.kind.as_str())
        .bind(entity.id.as_str())
        .fetch_optional(&mut self.tx)
        .await?;
        row.map(StoredEntity::try_from).transpose()
    }

    /// Live entities of `kind` as this transaction sees them, unlocked (the workflow's reads of
    /// the timetable and the SIS rows around a recording). `id_prefix` narrows them to ids
    /// starting with it (`S1:` for a section's SIS enrollments).
    pub async fn read_entities(&mut self, kind: EntityKind) -> StoreResult<Vec<StoredEntity>> {
        let rows: Vec<EntityRecord> =
            sql("SELECT * FROM catalog_entities WHERE kind = $1 AND NOT deleted")
                .bind(kind.as_str())
                .fetch_all(&mut self.tx)
                .await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    /// Live entities of `kind` under `parent` ([`StoredEntity::parent_key`]), by its index.
    pub async fn read_entities_under(
        &mut self,
        kind: EntityKind,
        parent: &str,
    ) -> StoreResult<Vec<StoredEntity>> {
        let rows: Vec<EntityRecord> = sql(ENTITIES_UNDER)
            .bind(kind.as_str())
            .bind(parent)
            .fetch_all(&mut self.tx)
            .await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    /// One live entity as this transaction sees it, unlocked.
    pub async fn read_entity(&mut self, entity: &EntityRef) -> StoreResult<Option<StoredEntity>> {
        let row: Option<EntityRecord> =
            sql("SELECT * FROM catalog_entities WHERE kind = $1 AND id = $2 AND NOT deleted")
                .bind(entity.kind.as_str())
                .bind(entity.id.as_str())
                .fetch_optional(&mut self.tx)
                .await?;
        row.map(StoredEntity::try_from).transpose()
    }

    /// Inserts or replaces the entity.
    pub async fn save_entity(&mut self, entity: &StoredEntity, now_ms: i64) -> StoreResult<()> {
        sql(
            "INSERT INTO catalog_entities (kind, id, state, deleted, version_time, version_tie, \
               sequence, course_id, section_id, user_id, written_at, parent_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (kind, id) DO UPDATE SET state = excluded.state, \
               deleted = excluded.deleted, version_time = excluded.version_time, \
               version_tie = excluded.version_tie, sequence = excluded.sequence, \
               course_id = excluded.course_id, section_id = excluded.section_id, \
               user_id = excluded.user_id, written_at = excluded.written_at, \
               parent_key = excluded.parent_key",
        )
        .bind(entity.entity.kind.as_str())
        .bind(entity.entity.id.as_str())
        .bind(state_text(entity))
        .bind(entity.deleted)
        .bind(entity.version.time_ms)
        .bind(&entity.version.tie)
        .bind(entity.sequence)
        .bind(entity.course_id())
        .bind(entity.section_id())
        .bind(entity.user_id())
        .bind(now_ms)
        .bind(entity.parent_key())
        .execute(&mut self.tx)
        .await?;
        Ok(())
    }

    /// Appends a change event to the outbox and returns its position, or `None` when an event
    /// with the same id is already there (nothing written).
    pub async fn append_change_event(
        &mut self,
        event: &NewChangeEvent,
    ) -> StoreResult<Option<i64>> {
        self.tx.lock_outbox().await?;
        let position: Option<(i64,)> = sql("INSERT INTO change_events \
             (id, subject, sequence, type, time_ms, inbox_id, created_at, event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING \
             RETURNING position")
        .bind(&event.id)
        .bind(&event.subject)
        .bind(event.sequence)
        .bind(&event.r#type)
        .bind(event.time_ms)
        .bind(event.inbox_id)
        .bind(event.created_at_ms)
        .bind(&event.event)
        .fetch_optional(&mut self.tx)
        .await?;
        Ok(position.map(|(p,)| p))
    }

    /// Adds an audit row (written with the transaction's other audit rows, see the type doc).
    pub async fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        self.audits.push(entry.clone());
        Ok(())
    }

    /// Moves the inbox row out of `pending`.
    pub async fn finish_inbox(
        &mut self,
        inbox_id: i64,
        status: InboxStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        if status == InboxStatus::Processed && reason.is_none() {
            self.processed.push((inbox_id, now_ms));
            return Ok(());
        }
        sql(
            "UPDATE inbox SET status = $1, status_reason = $2, processed_at = $3 \
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(inbox_id)
        .execute(&mut self.tx)
        .await?;
        Ok(())
    }

    /// Writes the audit rows and `processed` marks kept so far.
    async fn flush(&mut self) -> StoreResult<()> {
        let audits = std::mem::take(&mut self.audits);
        for chunk in audits.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(1 + i * 7, 7)))
                .collect();
            let mut insert = sql_built(format!(
                "INSERT INTO audit_log \
                 (at, inbox_id, subject, cause_id, action, change_event_id, detail) VALUES {}",
                rows.join(", ")
            ));
            for entry in chunk {
                insert = insert
                    .bind(entry.at_ms)
                    .bind(entry.inbox_id)
                    .bind(&entry.subject)
                    .bind(&entry.cause_id)
                    .bind(&entry.action)
                    .bind(&entry.change_event_id)
                    .bind(entry.detail.to_string());
            }
            insert.execute(&mut self.tx).await?;
        }
        let mut processed = std::mem::take(&mut self.processed);
        processed.sort_by_key(|(_, at)| *at);
        for same_time in processed.chunk_by(|a, b| a.1 == b.1) {
            for chunk in same_time.chunks(ROWS_PER_STATEMENT) {
                let mut update = sql_built(format!(
                    "UPDATE inbox SET status = 'processed', status_reason = NULL, \
                     processed_at = $1 WHERE status = 'pending' AND id IN ({})",
                    placeholders(2, chunk.len())
                ))
                .bind(chunk[0].1);
                for (id, _) in chunk {
                    update = update.bind(*id);
                }
                update.execute(&mut self.tx).await?;
            }
        }
        Ok(())
    }

    /// Deletes `owner`'s lease on `lane` if the lane has no pending row left; true if
    /// released.
    pub async fn release_if_drained(&mut self, lane: &Lane, owner: &str) -> StoreResult<bool> {
        self.flush().await?;
        if !lane_head(&mut self.tx, lane, 1).await?.is_empty() {
            return Ok(false);
        }
        PROCESSOR_LANE
            .release(vec![lane.key().into()], owner)
            .execute(&mut self.tx)
            .await?;
        Ok(true)
    }

    /// [`ProcessingTx::release_if_drained`] for many lanes: one statement per chunk of subject
    /// lanes. Returns the keys of the lanes released.
    pub async fn release_drained(
        &mut self,
        lanes: &[&Lane],
        owner: &str,
    ) -> StoreResult<HashSet<String>> {
        self.flush().await?;
        let mut released = HashSet::new();
        let subjects: Vec<&str> = lanes.iter().filter_map(|lane| lane.subject()).collect();
        for chunk in subjects.chunks(LANES_PER_STATEMENT) {
            let mut delete = sql_built(format!(
                "DELETE FROM processor_lanes WHERE lane IN ({}) AND lease_owner = $1 \
                 AND NOT EXISTS (SELECT 1 FROM inbox \
                   WHERE inbox.status = 'pending' AND inbox.subject = processor_lanes.lane) \
                 RETURNING lane",
                placeholders(2, chunk.len())
            ))
            .bind(owner);
            for subject in chunk {
                delete = delete.bind(*subject);
            }
            let rows: Vec<(String,)> = delete.fetch_all(&mut self.tx).await?;
            released.extend(rows.into_iter().map(|(key,)| key));
        }
        for lane in lanes {
            if let Lane::Row(_) = lane
                && self.release_if_drained(lane, owner).await?
            {
                released.insert(lane.key());
            }
        }
        Ok(released)
    }

    pub async fn commit(mut self) -> StoreResult<()> {
        self.flush().await?;
        self.tx.commit().await
    }
}

/// A `catalog_entities` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct EntityRecord {
    kind: String,
    id: String,
    state: String,
    deleted: bool,
    version_time: i64,
    version_tie: String,
    sequence: i64,
}

impl TryFrom<EntityRecord> for StoredEntity {
    type Error = StoreError;

    fn try_from(r: EntityRecord) -> StoreResult<Self> {
        let kind = EntityKind::parse(&r.kind)
            .ok_or_else(|| StoreError::Other(format!("unknown catalog kind {:?}", r.kind)))?;
        let state: Map<String, Value> = serde_json::from_str(&r.state)
            .map_err(|e| StoreError::Other(format!("catalog state is not a JSON object: {e}")))?;
        let id = EntityId::parse(&r.id).map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(StoredEntity {
            entity: EntityRef::new(kind, id),
            state,
            deleted: r.deleted,
            version: Version {
                time_ms: r.version_time,
                tie: r.version_tie,
            },
            sequence: r.sequence,
        })
    }
}

/// A `change_events` row as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ChangeEventRecord {
    position: i64,
    id: String,
    subject: String,
    sequence: i64,
    r#type: String,
    time_ms: i64,
    inbox_id: i64,
    created_at: i64,
    event: String,
}

impl TryFrom<ChangeEventRecord> for ChangeEventRow {
    type Error = StoreError;

    fn try_from(r: ChangeEventRecord) -> StoreResult<Self> {
        Ok(ChangeEventRow {
            position: r.position,
            id: r.id,
            subject: r.subject,
            sequence: r.sequence,
            r#type: r.r#type,
            time_ms: r.time_ms,
            inbox_id: r.inbox_id,
            created_at_ms: r.created_at,
            event: serde_json::from_str(&r.event)
                .map_err(|e| StoreError::Other(format!("stored change event is not JSON: {e}")))?,
        })
    }
}

/// An `audit_log` row as stored.
#[derive(Debug, sqlx::FromRow)]
struct AuditRecord {
    at: i64,
    inbox_id: Option<i64>,
    subject: Option<String>,
    cause_id: Option<String>,
    action: String,
    change_event_id: Option<String>,
    detail: String,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        AuditEntry {
            at_ms: r.at,
            inbox_id: r.inbox_id,
            subject: r.subject,
            cause_id: r.cause_id,
            action: r.action,
            change_event_id: r.change_event_id,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail)),
        }
    }
}

fn state_text(entity: &StoredEntity) -> String {
    Value::Object(entity.state.clone()).to_string()
}
