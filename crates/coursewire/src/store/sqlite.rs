//! SQLite store: the zero-set-up default. One file in WAL mode with `synchronous = FULL`, so a
//! commit that returned survives a killed process and a power cut. Writers take the write lock
//! up front (`BEGIN IMMEDIATE`) so that two writers queue on the busy timeout instead of failing
//! half-way through a transaction.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    INSERT_CHUNK, InboxDepth, InboxRow, InboxStatus, InsertOutcome, NewInboxEntry, RejectedRequest,
    Store, StoreError, StoreResult, inbox_insert, inbox_row, insert_outcomes, migrations,
    rejected_request,
};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // Writers take turns on the write lock anyway; more connections (8 was tried) only
            // added threads competing for 2 cores and made ingest slower beside the processor.
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        migrations::sqlite().run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_inbox_batch(
        &self,
        entries: &[NewInboxEntry],
    ) -> StoreResult<Vec<InsertOutcome>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcomes = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(INSERT_CHUNK) {
            let inserted: Vec<(i64, String, String)> = inbox_insert(chunk)
                .build_query_as()
                .fetch_all(&mut *tx)
                .await?;
            outcomes.extend(insert_outcomes(chunk, inserted));
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn record_rejections(&self, rejected: &[RejectedRequest], cap: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for r in rejected {
            sqlx::query(
                "INSERT INTO rejected_requests \
                 (received_at, source, reason, detail, remote_addr, body_prefix) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(r.received_at_ms)
            .bind(&r.source)
            .bind(&r.reason)
            .bind(&r.detail)
            .bind(&r.remote_addr)
            .bind(&r.body_prefix)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM rejected_requests WHERE id <= (SELECT MAX(id) FROM rejected_requests) - ?",
        )
        .bind(cap)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn inbox_depth(&self) -> StoreResult<InboxDepth> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut depth = InboxDepth::default();
        for row in rows {
            let status: String = row.try_get("status")?;
            depth.set(InboxStatus::parse(&status)?, row.try_get("n")?);
        }
        Ok(depth)
    }

    async fn inbox_by_key(&self, source: &str, dedup_key: &str) -> StoreResult<Option<InboxRow>> {
        let row = sqlx::query("SELECT * FROM inbox WHERE source = ? AND dedup_key = ?")
            .bind(source)
            .bind(dedup_key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| inbox_row(&r)).transpose()
    }

    async fn inbox_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<InboxRow>> {
        let rows = sqlx::query("SELECT * FROM inbox WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(inbox_row).collect()
    }

    async fn recent_rejections(&self, limit: i64) -> StoreResult<Vec<RejectedRequest>> {
        let rows = sqlx::query("SELECT * FROM rejected_requests ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rejected_request).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
