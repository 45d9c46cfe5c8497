//! The durable store: the one place that is both the truth and the queue (DESIGN principle 1).
//!
//! One [`Store`] on either backend: SQLite (the embedded default, one WAL file) or PostgreSQL
//! (production, shared by several processes). Each query is written once, in text both accept;
//! the few real differences between them live in [`dialect`]. One behaviour suite
//! (`tests/store_behaviour.rs`) holds both to the same rules. The store knows rows, not HTTP or
//! Canvas: callers hand it fully formed records, and decide what to write; it only reads and
//! writes.

mod delivery;
mod dialect;
mod lease;
mod migrations;
mod panopto;
mod processing;
mod query;
mod reconcile;
mod rules;
mod tokens;
mod workflow;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use delivery::{
    AttemptEnd, AttemptRow, AttemptStart, CursorAdvance, CursorEvent, DeadLetter, DeliveryLane,
    DeliveryOp, DeliveryOpResult, Handoff, LaneEvent, LaneMove, LaneStatus, NewSubscription,
    OnExhausted, RetryCounts, Subscription,
};
use dialect::Pool;
pub use panopto::{Observed, PollCommit, PollerProgress, WatchFlag};
pub use processing::{
    AuditEntry, ChangeEventRow, Lane, LaneLease, PendingRef, PendingRow, ProcessingTx,
    ReplayCandidate,
};
use query::{placeholders, sql, sql_built};
pub use rules::RuleVersion;
pub use tokens::{ApiToken, NewApiToken};
pub use workflow::{CommandRow, NewCommand, WorkflowRow};

/// What can go wrong talking to the store, by what a caller does about it: retry later
/// (`Unavailable`), tell the client it collides with what is stored (`Conflict`), fix the
/// configuration (`BadUrl`, `Migration`), or report a bug (`Other`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database URL not understood: {0}")]
    BadUrl(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A unique or primary-key constraint refused the write.
    #[error("conflicts with a stored row: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(err.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            sqlx::Error::Database(db) if dialect::is_transient(db.as_ref()) => {
                StoreError::Unavailable(err.to_string())
            }
            _ => StoreError::Other(err.to_string()),
        }
    }
}

impl StoreError {
    /// A failure that says nothing about the data: retrying later may succeed (the database
    /// busy, unreachable, restarting, or a transaction that lost a race). It never counts
    /// against a row.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Processing state of an inbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    Pending,
    Processed,
    Quarantined,
}

impl InboxStatus {
    pub const ALL: [InboxStatus; 3] = [Self::Pending, Self::Processed, Self::Quarantined];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Quarantined => "quarantined",
        }
    }

    pub fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "pending" => Ok(Self::Pending),
            "processed" => Ok(Self::Processed),
            "quarantined" => Ok(Self::Quarantined),
            other => Err(StoreError::Other(format!("unknown inbox status {other:?}"))),
        }
    }
}

impl TryFrom<String> for InboxStatus {
    type Error = StoreError;

    fn try_from(text: String) -> StoreResult<Self> {
        Self::parse(&text)
    }
}

impl fmt::Display for InboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event about to enter the inbox.
#[derive(Debug, Clone)]
pub struct NewInboxEntry {
    pub source: String,
    pub dedup_key: String,
    pub received_at_ms: i64,
    pub event_name: Option<String>,
    pub event_time_ms: Option<i64>,
    pub subject: Option<String>,
    pub body: Vec<u8>,
    /// JSON object text of the request headers that matter.
    pub headers: String,
    pub verification: String,
    pub status: InboxStatus,
    pub status_reason: Option<String>,
}

/// What happened to one entry of a batch insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted {
        id: i64,
    },
    /// The same (source, dedup key) is already in the inbox; nothing was written.
    Duplicate,
}

/// An inbox row as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InboxRow {
    pub id: i64,
    pub source: String,
    pub dedup_key: String,
    #[sqlx(rename = "received_at")]
    pub received_at_ms: i64,
    pub event_name: Option<String>,
    #[sqlx(rename = "event_time")]
    pub event_time_ms: Option<i64>,
    pub subject: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub headers: String,
    pub verification: String,
    #[sqlx(try_from = "String")]
    pub status: InboxStatus,
    pub status_reason: Option<String>,
}

/// Rows per status, for `/metrics` and `/readyz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InboxDepth {
    pub pending: i64,
    pub processed: i64,
    pub quarantined: i64,
}

impl InboxDepth {
    pub fn get(&self, status: InboxStatus) -> i64 {
        match status {
            InboxStatus::Pending => self.pending,
            InboxStatus::Processed => self.processed,
            InboxStatus::Quarantined => self.quarantined,
        }
    }

    fn set(&mut self, status: InboxStatus, count: i64) {
        match status {
            InboxStatus::Pending => self.pending = count,
            InboxStatus::Processed => self.processed = count,
            InboxStatus::Quarantined => self.quarantined = count,
        }
    }

    pub fn total(&self) -> i64 {
        self.pending + self.processed + self.quarantined
    }
}

/// A request that failed verification. It is not an event; it is kept so an on-call engineer
/// can see who is sending what, in a log capped at a fixed number of rows.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RejectedRequest {
    #[sqlx(rename = "received_at")]
    pub received_at_ms: i64,
    pub source: String,
    pub reason: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    /// The first bytes of the body, lossily as text, for diagnosis.
    pub body_prefix: String,
}

/// The durable store. Every write that a caller acknowledges to the outside world has been
/// committed when the method returns. Cloning is cheap: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// Rejected bodies are kept only as a short prefix: enough to recognise a sender, not a copy.
pub const REJECTED_BODY_PREFIX_BYTES: usize = 256;

/// Rows per INSERT statement: 11 parameters each stays far below SQLite's and PostgreSQL's
/// parameter limits.
const INSERT_CHUNK: usize = 512;

/// Opens the store named by a database URL: `sqlite://PATH` (created if missing) or
/// `postgres://…`. Does not migrate.
pub async fn open(url: &str) -> StoreResult<Arc<Store>> {
    Ok(Arc::new(Store::open(url).await?))
}

impl Store {
    pub async fn open(url: &str) -> StoreResult<Self> {
        Ok(Self {
            pool: Pool::open(url).await?,
        })
    }

    /// Which backend this is, for logs and metrics ("sqlite" or "postgres").
    pub fn backend(&self) -> &'static str {
        self.pool.backend().as_str()
    }

    /// Applies pending migrations. Safe to call on every start and from several processes.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.pool.migrate().await
    }

    /// Is the database reachable right now?
    pub async fn ping(&self) -> StoreResult<()> {
        sql("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether a write could start now (readiness: can the inbox take events?).
    pub async fn check_writable(&self) -> StoreResult<()> {
        self.pool.writable().await
    }

    /// Closes the connection pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts a batch of entries in ONE transaction (group commit) and reports, per entry in
    /// order, whether it was new or a duplicate of a stored (or earlier in-batch) entry.
    pub async fn insert_inbox_batch(
        &self,
        entries: &[NewInboxEntry],
    ) -> StoreResult<Vec<InsertOutcome>> {
        let mut tx = self.pool.begin_write().await?;
        let mut outcomes = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(INSERT_CHUNK) {
            let inserted: Vec<(i64, String, String)> =
                inbox_insert(chunk).fetch_all(&mut tx).await?;
            outcomes.extend(insert_outcomes(chunk, inserted));
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Appends rejected requests and trims the log to its newest `cap` rows.
    pub async fn record_rejections(
        &self,
        rejected: &[RejectedRequest],
        cap: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        for r in rejected {
            sql("INSERT INTO rejected_requests \
                 (received_at, source, reason, detail, remote_addr, body_prefix) \
                 VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(r.received_at_ms)
            .bind(&r.source)
            .bind(&r.reason)
            .bind(&r.detail)
            .bind(&r.remote_addr)
            .bind(&r.body_prefix)
            .execute(&mut tx)
            .await?;
        }
        sql("DELETE FROM rejected_requests \
             WHERE id <= (SELECT MAX(id) FROM rejected_requests) - $1")
        .bind(cap)
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// Rows per status, for `/metrics` and `/readyz`.
    pub async fn inbox_depth(&self) -> StoreResult<InboxDepth> {
        let rows: Vec<(String, i64)> =
            sql("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut depth = InboxDepth::default();
        for (status, n) in rows {
            depth.set(InboxStatus::parse(&status)?, n);
        }
        Ok(depth)
    }

    pub async fn inbox_by_key(
        &self,
        source: &str,
        dedup_key: &str,
    ) -> StoreResult<Option<InboxRow>> {
        sql("SELECT * FROM inbox WHERE source = $1 AND dedup_key = $2")
            .bind(source)
            .bind(dedup_key)
            .fetch_optional(&self.pool)
            .await
    }

    /// Inbox rows with `id > after_id`, oldest first.
    pub async fn inbox_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<InboxRow>> {
        sql("SELECT * FROM inbox WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }

    /// The newest rejected requests, newest first.
    pub async fn recent_rejections(&self, limit: i64) -> StoreResult<Vec<RejectedRequest>> {
        sql("SELECT * FROM rejected_requests ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }
}

/// One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` for a chunk of entries. One
/// statement per batch instead of one per row is what keeps the group commit short.
pub(in crate::store) fn inbox_insert(entries: &[NewInboxEntry]) -> query::Sql {
    const COLUMNS: usize = 11;
    let rows: Vec<String> = (0..entries.len())
        .map(|i| format!("({})", placeholders(1 + i * COLUMNS, COLUMNS)))
        .collect();
    let mut query = sql_built(format!(
        "INSERT INTO inbox (source, dedup_key, received_at, event_name, event_time, subject, \
         body, headers, verification, status, status_reason) VALUES {} \
         ON CONFLICT (source, dedup_key) DO NOTHING RETURNING id, source, dedup_key",
        rows.join(", ")
    ));
    for e in entries {
        query = query
            .bind(&e.source)
            .bind(&e.dedup_key)
            .bind(e.received_at_ms)
            .bind(&e.event_name)
            .bind(e.event_time_ms)
            .bind(&e.subject)
            .bind(e.body.as_slice())
            .bind(&e.headers)
            .bind(&e.verification)
            .bind(e.status.as_str())
            .bind(&e.status_reason);
    }
    query
}

/// Matches the rows an insert returned to the entries, in order. The first entry with a
/// returned key is the inserted one; any other entry (stored earlier, or an earlier duplicate
/// in the same batch) is a duplicate.
fn insert_outcomes(
    entries: &[NewInboxEntry],
    inserted: Vec<(i64, String, String)>,
) -> Vec<InsertOutcome> {
    let mut ids: std::collections::HashMap<(String, String), i64> = inserted
        .into_iter()
        .map(|(id, source, key)| ((source, key), id))
        .collect();
    entries
        .iter()
        .map(
            |e| match ids.remove(&(e.source.clone(), e.dedup_key.clone())) {
                Some(id) => InsertOutcome::Inserted { id },
                None => InsertOutcome::Duplicate,
            },
        )
        .collect()
}
