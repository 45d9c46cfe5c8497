//! The durable store: the one place that is both the truth and the queue (DESIGN principle 1).
//!
//! One trait, [`Store`], with two implementations: SQLite (the embedded default, one WAL file)
//! and PostgreSQL (production, shared by several processes). Both run their own migrations and
//! are held to one behaviour test-suite (`tests/store_behaviour.rs`). The store knows rows, not
//! HTTP or Canvas: callers hand it fully formed records.

mod delivery;
mod migrations;
mod postgres;
mod postgres_delivery;
mod postgres_processing;
mod processing;
pub mod reconcile;
mod sqlite;
mod sqlite_delivery;
mod sqlite_processing;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

pub use delivery::{
    AttemptEnd, AttemptRow, AttemptStart, CursorAdvance, CursorEvent, DeadLetter, DeliveryLane,
    DeliveryOp, DeliveryOpResult, DeliveryStore, Handoff, LaneEvent, LaneMove, LaneStatus,
    NewSubscription, OnExhausted, RetryCounts, Subscription,
};
pub use postgres::PostgresStore;
pub use processing::{
    AuditEntry, ChangeEventRow, Lane, LaneLease, PendingRef, PendingRow, ProcessingStore,
    ProcessingTx, ReplayCandidate,
};
pub use sqlite::SqliteStore;

/// What can go wrong talking to the store. Callers either retry later (`Unavailable`) or
/// report a bug/misconfiguration (`Other`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database URL not understood: {0}")]
    BadUrl(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(err.to_string())
            }
            other => StoreError::Other(other.to_string()),
        }
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
#[derive(Debug, Clone, Serialize)]
pub struct InboxRow {
    pub id: i64,
    pub source: String,
    pub dedup_key: String,
    pub received_at_ms: i64,
    pub event_name: Option<String>,
    pub event_time_ms: Option<i64>,
    pub subject: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub headers: String,
    pub verification: String,
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
#[derive(Debug, Clone, Serialize)]
pub struct RejectedRequest {
    pub received_at_ms: i64,
    pub source: String,
    pub reason: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    /// The first bytes of the body, lossily as text, for diagnosis.
    pub body_prefix: String,
}

/// The durable store. Every write that a caller acknowledges to the outside world has been
/// committed when the method returns. The processor's part lives in [`ProcessingStore`].
#[async_trait]
pub trait Store: ProcessingStore + DeliveryStore + Send + Sync + fmt::Debug {
    /// Which backend this is, for logs and metrics ("sqlite" or "postgres").
    fn backend(&self) -> &'static str;

    /// Applies pending migrations. Safe to call on every start and from several processes.
    async fn migrate(&self) -> StoreResult<()>;

    /// Is the database reachable right now?
    async fn ping(&self) -> StoreResult<()>;

    /// Inserts a batch of entries in ONE transaction (group commit) and reports, per entry in
    /// order, whether it was new or a duplicate of a stored (or earlier in-batch) entry.
    async fn insert_inbox_batch(
        &self,
        entries: &[NewInboxEntry],
    ) -> StoreResult<Vec<InsertOutcome>>;

    /// Appends rejected requests and trims the log to its newest `cap` rows.
    async fn record_rejections(&self, rejected: &[RejectedRequest], cap: i64) -> StoreResult<()>;

    async fn inbox_depth(&self) -> StoreResult<InboxDepth>;

    async fn inbox_by_key(&self, source: &str, dedup_key: &str) -> StoreResult<Option<InboxRow>>;

    /// Inbox rows with `id > after_id`, oldest first.
    async fn inbox_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<InboxRow>>;

    /// The newest rejected requests, newest first.
    async fn recent_rejections(&self, limit: i64) -> StoreResult<Vec<RejectedRequest>>;

    /// Closes the connection pool, waiting for connections in use.
    async fn close(&self);
}

/// Opens the store named by a database URL: `sqlite://PATH` (created if missing) or
/// `postgres://…`. Does not migrate.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(
            "expected sqlite://PATH or postgres://USER@HOST/DB".to_string(),
        ))
    }
}

/// Rejected bodies are kept only as a short prefix: enough to recognise a sender, not a copy.
pub const REJECTED_BODY_PREFIX_BYTES: usize = 256;

/// Maps a row of `inbox` to an [`InboxRow`]; the column names and types agree on both backends.
fn inbox_row<'r, R>(r: &'r R) -> StoreResult<InboxRow>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = r.try_get("status")?;
    Ok(InboxRow {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        dedup_key: r.try_get("dedup_key")?,
        received_at_ms: r.try_get("received_at")?,
        event_name: r.try_get("event_name")?,
        event_time_ms: r.try_get("event_time")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        headers: r.try_get("headers")?,
        verification: r.try_get("verification")?,
        status: InboxStatus::parse(&status)?,
        status_reason: r.try_get("status_reason")?,
    })
}

fn rejected_request<'r, R>(r: &'r R) -> StoreResult<RejectedRequest>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RejectedRequest {
        received_at_ms: r.try_get("received_at")?,
        source: r.try_get("source")?,
        reason: r.try_get("reason")?,
        detail: r.try_get("detail")?,
        remote_addr: r.try_get("remote_addr")?,
        body_prefix: r.try_get("body_prefix")?,
    })
}

/// Rows per INSERT statement: 11 parameters each stays far below SQLite's and PostgreSQL's
/// parameter limits.
const INSERT_CHUNK: usize = 512;

/// One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` for a chunk of entries. One
/// statement per batch instead of one per row is what keeps the group commit short.
fn inbox_insert<DB>(entries: &[NewInboxEntry]) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Vec<u8>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::QueryBuilder::new(
        "INSERT INTO inbox (source, dedup_key, received_at, event_name, event_time, subject, \
         body, headers, verification, status, status_reason) ",
    );
    query.push_values(entries, |mut row, e| {
        row.push_bind(e.source.clone())
            .push_bind(e.dedup_key.clone())
            .push_bind(e.received_at_ms)
            .push_bind(e.event_name.clone())
            .push_bind(e.event_time_ms)
            .push_bind(e.subject.clone())
            .push_bind(e.body.clone())
            .push_bind(e.headers.clone())
            .push_bind(e.verification.clone())
            .push_bind(e.status.as_str().to_string())
            .push_bind(e.status_reason.clone());
    });
    query.push(" ON CONFLICT (source, dedup_key) DO NOTHING RETURNING id, source, dedup_key");
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
