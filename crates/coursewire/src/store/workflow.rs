//! The recording workflow's rows: each recording's progress (`recording_workflows`), written
//! in the processor's transaction with the observation that moved it, and the side-effect
//! commands (`workflow_commands`), added in that same transaction and run by the executor
//! under a lease ([`super::lease`]). A finished command's result goes into the inbox in the
//! transaction that marks it done, fenced by its lease: the workflow learns of each result
//! once, through the processor like every other input.

use super::dialect::Locking;
use super::lease::WORKFLOW_COMMAND;
use super::processing::EntityRecord;
use super::query::{sql, sql_built};
use super::{NewInboxEntry, ProcessingTx, Store, StoreResult, inbox_insert};
use crate::catalog::{EntityKind, StoredEntity};

/// A recording's workflow row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkflowRow {
    pub recording_id: String,
    pub state: String,
    /// `workflow::steps::Progress` as JSON.
    pub progress: String,
    pub meeting_id: Option<String>,
    pub lecture_date: Option<String>,
    #[sqlx(rename = "updated_at")]
    pub updated_at_ms: i64,
    /// First ready to post (complete, captioned if the rule waits), first posted.
    #[sqlx(rename = "ready_at")]
    pub ready_at_ms: Option<i64>,
    #[sqlx(rename = "posted_at")]
    pub posted_at_ms: Option<i64>,
    /// Audits that found drift.
    pub drift_found: i64,
}

/// A command the workflow asked for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommandRow {
    pub id: i64,
    pub idempotency_key: String,
    /// The SIS section of a grant or a roster sync.
    pub section_id: Option<String>,
    pub recording_id: String,
    pub step: String,
    /// `workflow::steps::Command` as JSON.
    pub command: String,
    /// `pending`, `done` or `failed`.
    pub status: String,
    pub attempts: i64,
    #[sqlx(rename = "next_try_at")]
    pub next_try_at_ms: i64,
    pub result: Option<String>,
    pub last_error: Option<String>,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
    #[sqlx(rename = "finished_at")]
    pub finished_at_ms: Option<i64>,
    pub lease_owner: Option<String>,
    #[sqlx(rename = "lease_until")]
    pub lease_until_ms: i64,
}

/// A command to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCommand {
    pub idempotency_key: String,
    /// Empty for a section's roster sync (no one recording).
    pub recording_id: String,
    pub section_id: Option<String>,
    pub step: String,
    pub command: String,
    /// Run it again if a row with its key exists: one finished is set to run again, one
    /// pending is left to run (once), one running loses its lease (its result is dropped) and
    /// runs again (a roster sync must read the roster after the change). Otherwise a row with
    /// the key, in any status, makes this a no-op.
    pub rerun: bool,
}

impl ProcessingTx {
    /// The recording's workflow row, locked for this transaction.
    pub async fn load_workflow(&mut self, recording_id: &str) -> StoreResult<Option<WorkflowRow>> {
        let locking = self.tx.locking(Locking::ForUpdate);
        sql_built(format!(
            "SELECT * FROM recording_workflows WHERE recording_id = $1{locking}"
        ))
        .bind(recording_id)
        .fetch_optional(&mut self.tx)
        .await
    }

    pub async fn save_workflow(&mut self, row: &WorkflowRow) -> StoreResult<()> {
        sql("INSERT INTO recording_workflows \
             (recording_id, state, progress, meeting_id, lecture_date, updated_at, \
              ready_at, posted_at, drift_found) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (recording_id) DO UPDATE SET \
             state = excluded.state, progress = excluded.progress, \
             meeting_id = excluded.meeting_id, lecture_date = excluded.lecture_date, \
             updated_at = excluded.updated_at, ready_at = excluded.ready_at, \
             posted_at = excluded.posted_at, drift_found = excluded.drift_found")
        .bind(&row.recording_id)
        .bind(&row.state)
        .bind(&row.progress)
        .bind(&row.meeting_id)
        .bind(&row.lecture_date)
        .bind(row.updated_at_ms)
        .bind(row.ready_at_ms)
        .bind(row.posted_at_ms)
        .bind(row.drift_found)
        .execute(&mut self.tx)
        .await?;
        Ok(())
    }

    /// Adds `commands`, due at `now_ms`; returns how many rows were added or set to run again.
    pub async fn add_commands(&mut self, commands: &[NewCommand], now_ms: i64) -> StoreResult<u64> {
        let mut touched = 0;
        for c in commands {
            let on_conflict = if c.rerun {
                "DO UPDATE SET status = 'pending', attempts = 0, next_try_at = excluded.next_try_at, \
                 last_error = NULL, command = excluded.command, lease_owner = NULL, \
                 lease_until = 0 \
                 WHERE workflow_commands.status <> 'pending' \
                   OR workflow_commands.lease_owner IS NOT NULL"
            } else {
                "DO NOTHING"
            };
            touched += sql_built(format!(
                "INSERT INTO workflow_commands \
                 (idempotency_key, recording_id, section_id, step, command, status, next_try_at, \
                  created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) \
                 ON CONFLICT (idempotency_key) {on_conflict}"
            ))
            .bind(&c.idempotency_key)
            .bind(&c.recording_id)
            .bind(c.section_id.as_deref())
            .bind(&c.step)
            .bind(&c.command)
            .bind(now_ms)
            .execute(&mut self.tx)
            .await?;
        }
        Ok(touched)
    }
}

impl ProcessingTx {
    /// Whether any recording's section group exists or is being made for `section_id` (a
    /// roster change then needs a sync).
    pub async fn section_has_grants(&mut self, section_id: &str) -> StoreResult<bool> {
        let row: Option<(i64,)> = sql(
            "SELECT id FROM workflow_commands WHERE section_id = $1 AND step = 'grant' LIMIT 1",
        )
        .bind(section_id)
        .fetch_optional(&mut self.tx)
        .await?;
        Ok(row.is_some())
    }
}

impl Store {
    /// Takes up to `limit` due commands (pending, next try reached, lease free or expired) for
    /// `owner` until `until_ms`, counting the attempt; other processes skip the rows this
    /// claim holds (PostgreSQL), so several executors share the queue.
    pub async fn claim_due_commands(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<CommandRow>> {
        let mut tx = self.pool.begin_write().await?;
        let skip = tx.locking(Locking::SkipLocked);
        let rows: Vec<CommandRow> = sql_built(format!(
            "UPDATE workflow_commands SET lease_owner = $1, lease_until = $2, \
               attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM workflow_commands \
               WHERE status = 'pending' AND next_try_at <= $3 AND lease_until < $3 \
               ORDER BY next_try_at, id LIMIT $4{skip}) \
             RETURNING *"
        ))
        .bind(owner)
        .bind(until_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        let mut rows = rows;
        rows.sort_by_key(|r| (r.next_try_at_ms, r.id));
        Ok(rows)
    }

    /// Extends `owner`'s lease on command `id` to `until_ms`; `false` once another process
    /// holds it (it took the command over) or a re-arm took it back.
    pub async fn renew_command(&self, id: i64, owner: &str, until_ms: i64) -> StoreResult<bool> {
        let held = WORKFLOW_COMMAND
            .renew(vec![id.into()], owner, until_ms)
            .execute(&self.pool)
            .await?;
        Ok(held == 1)
    }

    /// Marks command `id` done with `result` (JSON) and writes `report` (the result as the
    /// workflow's input) into the inbox, in one transaction, while `owner` holds it. `false`:
    /// the lease was lost (another process took the command over) and nothing was written.
    pub async fn finish_command(
        &self,
        id: i64,
        owner: &str,
        status: &str,
        result: &str,
        report: &NewInboxEntry,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin_write().await?;
        let held = WORKFLOW_COMMAND
            .renew_setting(
                vec![id.into()],
                owner,
                0,
                ", status = $4, result = $5, finished_at = $6, lease_owner = NULL",
            )
            .bind(status)
            .bind(result)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
        if held != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let _: Vec<(i64, String, String)> = inbox_insert(std::slice::from_ref(report))
            .fetch_all(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Command `id` failed this attempt: it is tried again at `next_try_at_ms`.
    pub async fn retry_command(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        next_try_at_ms: i64,
    ) -> StoreResult<bool> {
        let held = WORKFLOW_COMMAND
            .renew_setting(
                vec![id.into()],
                owner,
                0,
                ", last_error = $4, next_try_at = $5, lease_owner = NULL",
            )
            .bind(error)
            .bind(next_try_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(held == 1)
    }

    pub async fn workflow(&self, recording_id: &str) -> StoreResult<Option<WorkflowRow>> {
        sql("SELECT * FROM recording_workflows WHERE recording_id = $1")
            .bind(recording_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Every recording's workflow, or those in `state`, newest first.
    pub async fn workflows(&self, state: Option<&str>) -> StoreResult<Vec<WorkflowRow>> {
        Ok(match state {
            Some(s) => {
                sql("SELECT * FROM recording_workflows WHERE state = $1 \
                     ORDER BY updated_at DESC, recording_id")
                .bind(s)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sql("SELECT * FROM recording_workflows ORDER BY updated_at DESC, recording_id")
                    .fetch_all(&self.pool)
                    .await?
            }
        })
    }

    /// A recording's commands, in the order they were asked for.
    pub async fn commands_of(&self, recording_id: &str) -> StoreResult<Vec<CommandRow>> {
        sql("SELECT * FROM workflow_commands WHERE recording_id = $1 ORDER BY id")
            .bind(recording_id)
            .fetch_all(&self.pool)
            .await
    }

    /// Commands by status (`pending`, `done`, `failed`): for metrics and `/api/v1/status`.
    /// Recordings per workflow state.
    pub async fn workflow_state_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        sql("SELECT state, COUNT(*) FROM recording_workflows GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
    }

    /// Milliseconds from ready to posted of the recordings first posted at or after
    /// `since_ms`, shortest first.
    pub async fn post_latencies(&self, since_ms: i64) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sql("SELECT posted_at - ready_at FROM recording_workflows \
             WHERE posted_at >= $1 AND ready_at IS NOT NULL ORDER BY 1")
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(ms,)| ms).collect())
    }

    /// Audits that found drift, over every recording.
    pub async fn drift_found(&self) -> StoreResult<i64> {
        let (n,): (i64,) =
            sql("SELECT CAST(COALESCE(SUM(drift_found), 0) AS BIGINT) FROM recording_workflows")
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    pub async fn command_counts(&self) -> StoreResult<Vec<(String, String, i64)>> {
        sql(
            "SELECT step, status, COUNT(*) FROM workflow_commands GROUP BY step, status \
             ORDER BY step, status",
        )
        .fetch_all(&self.pool)
        .await
    }
}

/// The executor's reads of the catalog and its Panopto user cache.
impl Store {
    /// Live entities of `kind` under `parent` (a section's SIS enrollments).
    pub async fn catalog_under(
        &self,
        kind: EntityKind,
        parent: &str,
    ) -> StoreResult<Vec<StoredEntity>> {
        let rows: Vec<EntityRecord> = sql(super::processing::ENTITIES_UNDER)
            .bind(kind.as_str())
            .bind(parent)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    /// Live Canvas enrollments of a Canvas section (by the indexed `section_id`).
    pub async fn section_enrollments(&self, section_id: i64) -> StoreResult<Vec<StoredEntity>> {
        let rows: Vec<EntityRecord> = sql("SELECT * FROM catalog_entities WHERE section_id = $1 \
             AND kind = 'enrollment' AND NOT deleted")
        .bind(section_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    /// The Panopto user GUIDs known for `keys`.
    pub async fn panopto_user_ids(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut query = sql_built(format!(
                "SELECT user_key, user_id FROM panopto_users WHERE user_key IN ({})",
                super::placeholders(1, chunk.len())
            ));
            for key in chunk {
                query = query.bind(key.as_str());
            }
            let rows: Vec<(String, String)> = query.fetch_all(&self.pool).await?;
            found.extend(rows);
        }
        Ok(found)
    }

    pub async fn remember_panopto_user(
        &self,
        key: &str,
        user_id: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        sql(
            "INSERT INTO panopto_users (user_key, user_id, looked_up_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_key) DO UPDATE SET user_id = excluded.user_id, \
             looked_up_at = excluded.looked_up_at",
        )
        .bind(key)
        .bind(user_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
