//! PostgreSQL side of [`ProcessingStore`], where several coursewire processes share the work.
//!
//! * A lane is claimed by a conditional upsert on `processor_lanes` (taken only if absent or
//!   expired); concurrent claims of one lane serialize on its row and exactly one wins.
//! * A processing transaction first renews its lease (a fence: if another process took the lane
//!   over, the renewal matches no row and the transaction is abandoned), then locks the inbox row
//!   with `FOR UPDATE SKIP LOCKED` and the catalog row with `FOR UPDATE`.
//! * Appending a change event takes a transaction-scoped advisory lock first, so outbox
//!   positions are handed out in commit order: a reader following `position` can never skip a
//!   row that commits late (the classic outbox pitfall with sequence columns).

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};

use super::processing::{
    AuditEntry, ChangeEventRow, Lane, LaneLease, PendingRef, PendingRow, ProcessingStore,
    ProcessingTx, ReplayCandidate, audit_entry, change_event_row, state_text, stored_entity,
};
use super::{InboxRow, InboxStatus, PostgresStore, StoreResult, inbox_row};
use crate::bus::NewChangeEvent;
use crate::catalog::{EntityKind, EntityRef, StoredEntity};

/// The first pending rows of a subject lane, in the order the processor applies events.
const HEAD_OF_SUBJECT: &str = "SELECT * FROM inbox WHERE status = 'pending' AND subject = $1 \
     ORDER BY COALESCE(event_time, received_at), dedup_key LIMIT $2";
const HEAD_OF_ROW: &str = "SELECT * FROM inbox WHERE status = 'pending' AND id = $1";
const LOCK_ROW: &str =
    "SELECT * FROM inbox WHERE status = 'pending' AND id = $1 FOR UPDATE SKIP LOCKED";
/// Any constant will do, as long as nothing else uses it: see the module documentation.
const OUTBOX_LOCK_KEY: i64 = 0x636f_7572_7365_7769; // "coursewi"

async fn fetch_lane<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    lane: &Lane,
    limit: i64,
) -> StoreResult<Vec<PgRow>> {
    let rows = match lane {
        Lane::Subject(subject) => {
            sqlx::query(HEAD_OF_SUBJECT)
                .bind(subject.clone())
                .bind(limit)
                .fetch_all(executor)
                .await?
        }
        Lane::Row(id) => {
            sqlx::query(HEAD_OF_ROW)
                .bind(*id)
                .fetch_all(executor)
                .await?
        }
    };
    Ok(rows)
}

async fn fetch_head<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    lane: &Lane,
) -> StoreResult<Option<PgRow>> {
    Ok(fetch_lane(executor, lane, 1).await?.into_iter().next())
}

fn pending_row(r: &PgRow) -> StoreResult<PendingRow> {
    use sqlx::Row;
    Ok(PendingRow {
        row: inbox_row(r)?,
        attempts: r.try_get("attempts")?,
    })
}

#[async_trait]
impl ProcessingStore for PostgresStore {
    async fn pending_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<PendingRef>> {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT id, subject FROM inbox WHERE status = 'pending' AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, subject)| PendingRef { id, subject })
            .collect())
    }

    async fn live_leases(&self, now_ms: i64) -> StoreResult<Vec<LaneLease>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT lane, owner, lease_until FROM processor_lanes WHERE lease_until >= $1",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(lane, owner, lease_until_ms)| LaneLease {
                lane,
                owner,
                lease_until_ms,
            })
            .collect())
    }

    async fn claim_lanes(
        &self,
        lanes: &[Lane],
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<Lane>> {
        let mut tx = self.pool().begin().await?;
        let mut won = Vec::with_capacity(lanes.len());
        for lane in lanes {
            // A lease row left behind expired means its owner died or stalled: take it over
            // and count an attempt against the lane's head, the row that owner was likely on.
            // A drained or released lane has no row: claiming it anew counts nothing.
            let taken_over: Option<(String,)> = sqlx::query_as(
                "UPDATE processor_lanes SET owner = $1, lease_until = $2, claimed_at = $3 \
                 WHERE lane = $4 AND lease_until < $5 RETURNING lane",
            )
            .bind(owner)
            .bind(until_ms)
            .bind(now_ms)
            .bind(lane.key())
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if taken_over.is_some() {
                if let Some(head) = fetch_head(&mut *tx, lane).await? {
                    let head = inbox_row(&head)?;
                    sqlx::query("UPDATE inbox SET attempts = attempts + 1 WHERE id = $1")
                        .bind(head.id)
                        .execute(&mut *tx)
                        .await?;
                }
                won.push(lane.clone());
                continue;
            }
            let fresh: Option<(String,)> = sqlx::query_as(
                "INSERT INTO processor_lanes (lane, owner, lease_until, claimed_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (lane) DO NOTHING RETURNING lane",
            )
            .bind(lane.key())
            .bind(owner)
            .bind(until_ms)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if fresh.is_none() {
                continue;
            }
            won.push(lane.clone());
        }
        tx.commit().await?;
        Ok(won)
    }

    async fn lane_rows(&self, lane: &Lane, limit: i64) -> StoreResult<Vec<PendingRow>> {
        let rows = fetch_lane(self.pool(), lane, limit).await?;
        rows.iter().map(pending_row).collect()
    }

    async fn note_failure(&self, inbox_id: i64, error: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE inbox SET attempts = attempts + 1, status_reason = $1 \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(error)
        .bind(inbox_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_lane(&self, lane: &Lane, owner: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM processor_lanes WHERE lane = $1 AND owner = $2")
            .bind(lane.key())
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin_processing(&self) -> StoreResult<Box<dyn ProcessingTx>> {
        let tx = self.pool().begin().await?;
        Ok(Box::new(PostgresProcessingTx { tx }))
    }

    async fn catalog_entity(&self, entity: EntityRef) -> StoreResult<Option<StoredEntity>> {
        let row = sqlx::query(
            "SELECT * FROM catalog_entities WHERE kind = $1 AND id = $2 AND NOT deleted",
        )
        .bind(entity.kind.as_str())
        .bind(entity.id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(stored_entity).transpose()
    }

    async fn catalog_rows(&self, kind: EntityKind) -> StoreResult<Vec<StoredEntity>> {
        let rows = sqlx::query("SELECT * FROM catalog_entities WHERE kind = $1 ORDER BY id")
            .bind(kind.as_str())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(stored_entity).collect()
    }

    async fn change_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEventRow>> {
        let rows = sqlx::query(
            "SELECT * FROM change_events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(change_event_row).collect()
    }

    async fn change_events_for(&self, subject: &str) -> StoreResult<Vec<ChangeEventRow>> {
        let rows = sqlx::query("SELECT * FROM change_events WHERE subject = $1 ORDER BY sequence")
            .bind(subject)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(change_event_row).collect()
    }

    async fn audit_for_inbox(&self, inbox_id: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE inbox_id = $1 ORDER BY id")
            .bind(inbox_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(audit_entry).collect()
    }

    async fn requeue(
        &self,
        from_ms: i64,
        to_ms: i64,
        include_quarantined: bool,
    ) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE inbox SET status = 'pending', status_reason = NULL, attempts = 0 \
             WHERE received_at >= $1 AND received_at < $2 \
               AND (status = 'processed' OR ($3 AND status = 'quarantined'))",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(include_quarantined)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn replay_candidates(
        &self,
        from_ms: i64,
        to_ms: i64,
        include_quarantined: bool,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<ReplayCandidate>> {
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, source, event_name FROM inbox \
             WHERE received_at >= $1 AND received_at < $2 AND id > $3 \
               AND (status = 'processed' OR ($4 AND status = 'quarantined')) \
             ORDER BY id LIMIT $5",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(after_id)
        .bind(include_quarantined)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, source, event_name)| ReplayCandidate {
                id,
                source,
                event_name,
            })
            .collect())
    }

    async fn requeue_rows(&self, ids: &[i64]) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await?;
        let mut requeued = 0;
        for id in ids {
            let done = sqlx::query(
                "UPDATE inbox SET status = 'pending', status_reason = NULL, attempts = 0 \
                 WHERE id = $1 AND status IN ('processed', 'quarantined')",
            )
            .bind(*id)
            .execute(&mut *tx)
            .await?;
            requeued += done.rows_affected();
        }
        tx.commit().await?;
        Ok(requeued)
    }

    async fn pending_row(&self, inbox_id: i64) -> StoreResult<Option<PendingRow>> {
        let row = sqlx::query(HEAD_OF_ROW)
            .bind(inbox_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(pending_row).transpose()
    }
}

struct PostgresProcessingTx {
    tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl ProcessingTx for PostgresProcessingTx {
    async fn renew_lease(&mut self, lane: &Lane, owner: &str, until_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE processor_lanes SET lease_until = $1 WHERE lane = $2 AND owner = $3",
        )
        .bind(until_ms)
        .bind(lane.key())
        .bind(owner)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lock_pending(&mut self, inbox_id: i64) -> StoreResult<Option<InboxRow>> {
        let row = sqlx::query(LOCK_ROW)
            .bind(inbox_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(inbox_row).transpose()
    }

    async fn load_entity(&mut self, entity: EntityRef) -> StoreResult<Option<StoredEntity>> {
        let row =
            sqlx::query("SELECT * FROM catalog_entities WHERE kind = $1 AND id = $2 FOR UPDATE")
                .bind(entity.kind.as_str())
                .bind(entity.id)
                .fetch_optional(&mut *self.tx)
                .await?;
        row.as_ref().map(stored_entity).transpose()
    }

    async fn save_entity(&mut self, entity: &StoredEntity, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO catalog_entities (kind, id, state, deleted, version_time, version_tie, \
               sequence, course_id, section_id, user_id, written_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (kind, id) DO UPDATE SET state = excluded.state, \
               deleted = excluded.deleted, version_time = excluded.version_time, \
               version_tie = excluded.version_tie, sequence = excluded.sequence, \
               course_id = excluded.course_id, section_id = excluded.section_id, \
               user_id = excluded.user_id, written_at = excluded.written_at",
        )
        .bind(entity.entity.kind.as_str())
        .bind(entity.entity.id)
        .bind(state_text(entity))
        .bind(entity.deleted)
        .bind(entity.version.time_ms)
        .bind(&entity.version.tie)
        .bind(entity.sequence)
        .bind(entity.course_id())
        .bind(entity.section_id())
        .bind(entity.user_id())
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn append_change_event(&mut self, event: &NewChangeEvent) -> StoreResult<Option<i64>> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(OUTBOX_LOCK_KEY)
            .execute(&mut *self.tx)
            .await?;
        let position: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO change_events (id, subject, sequence, type, time_ms, inbox_id, created_at, event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING position",
        )
        .bind(&event.id)
        .bind(&event.subject)
        .bind(event.sequence)
        .bind(&event.r#type)
        .bind(event.time_ms)
        .bind(event.inbox_id)
        .bind(event.created_at_ms)
        .bind(&event.event)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(position.map(|(p,)| p))
    }

    async fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, inbox_id, subject, cause_id, action, change_event_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entry.at_ms)
        .bind(entry.inbox_id)
        .bind(&entry.subject)
        .bind(&entry.cause_id)
        .bind(&entry.action)
        .bind(&entry.change_event_id)
        .bind(entry.detail.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn finish_inbox(
        &mut self,
        inbox_id: i64,
        status: InboxStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE inbox SET status = $1, status_reason = $2, processed_at = $3 \
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms)
        .bind(inbox_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn release_if_drained(&mut self, lane: &Lane, owner: &str) -> StoreResult<bool> {
        if fetch_head(&mut *self.tx, lane).await?.is_some() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM processor_lanes WHERE lane = $1 AND owner = $2")
            .bind(lane.key())
            .bind(owner)
            .execute(&mut *self.tx)
            .await?;
        Ok(true)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
