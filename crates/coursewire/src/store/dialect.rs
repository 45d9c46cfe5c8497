//! The two SQL backends behind the one store, and every real difference between them.
//!
//! The store's queries are written once, as text both backends accept (see [`super::query`]).
//! Only here, and in the one `match` of `query.rs` that hands a query to the backend's driver,
//! does the code look at which backend it is on:
//!
//! * connection options and pool sizes ([`Pool::open`]), and the migrations per backend;
//! * how a write transaction starts ([`Pool::begin_write`]): `BEGIN IMMEDIATE` on SQLite, so a
//!   writer takes the single write lock up front and a read-then-write is never overtaken;
//! * row locks ([`Locking`]): `FOR UPDATE [SKIP LOCKED]` on PostgreSQL, nothing on SQLite
//!   (its write lock already excludes every other writer);
//! * the outbox lock ([`Tx::lock_outbox`]): a transaction-scoped advisory lock on PostgreSQL so
//!   outbox positions are handed out in commit order; SQLite's write lock does that already.
//!

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

use super::query::sql;
use super::{StoreError, StoreResult, migrations};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A connection pool on one of the backends.
#[derive(Debug, Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Opens the pool a database URL names: `sqlite://PATH` (created if missing) or
    /// `postgres://…`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            // One file in WAL mode with `synchronous = FULL`: a commit that returned survives
            // a killed process and a power cut.
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                // Writers take turns on the write lock anyway; more connections (8 was tried)
                // only added threads competing for 2 cores and made ingest slower beside the
                // processor.
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // No statement may run, and no transaction stay open idle, without end: a stuck
            // query or a client that went away mid-transaction would hold locks (and a pool
            // slot) for ever. Both are transient failures to the caller (57014, 25P03).
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(e.to_string()))?
                .options([
                    ("statement_timeout", "120s"),
                    ("idle_in_transaction_session_timeout", "60s"),
                ]);
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Ok(Self::Postgres(pool))
        } else {
            Err(StoreError::BadUrl(
                "expected sqlite://PATH or postgres://USER@HOST/DB".to_string(),
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the backend's pending migrations (each backend has its own SQL files).
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite(pool) => migrations::sqlite().run(pool).await?,
            Self::Postgres(pool) => migrations::postgres().run(pool).await?,
        }
        Ok(())
    }

    /// Whether a write could start now: SQLite takes the write lock (and gives it back);
    /// PostgreSQL also refuses a session that is read-only (a standby, or a read-only default).
    pub async fn writable(&self) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        if let Tx::Postgres(conn) = &mut tx {
            let (read_only,): (String,) = sqlx::query_as("SHOW transaction_read_only")
                .fetch_one(&mut **conn)
                .await?;
            if read_only != "off" {
                return Err(StoreError::Unavailable("the database is read-only".into()));
            }
        }
        tx.rollback().await
    }

    /// Opens a transaction that will write (SQLite: `BEGIN IMMEDIATE`, see the module doc).
    pub async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// An open transaction; dropping it rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Any constant will do, as long as nothing else uses it: see [`Tx::lock_outbox`].
const OUTBOX_LOCK_KEY: i64 = 0x636f_7572_7365_7769; // "coursewi"

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await?,
            Self::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// Taken before appending to the outbox, so outbox positions are handed out in commit
    /// order: a reader following `position` can never skip a row that commits late (the
    /// classic outbox pitfall with sequence columns). On PostgreSQL a transaction-scoped
    /// advisory lock; on SQLite the write lock the transaction holds already.
    pub async fn lock_outbox(&mut self) -> StoreResult<()> {
        if let Self::Postgres(_) = self {
            sql("SELECT pg_advisory_xact_lock($1)")
                .bind(OUTBOX_LOCK_KEY)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    pub fn locking(&self, locking: Locking) -> &'static str {
        match self {
            Self::Sqlite(_) => "",
            Self::Postgres(_) => locking.postgres(),
        }
    }
}

/// How a `SELECT` inside a write transaction locks the rows it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// Wait for other transactions holding the row.
    ForUpdate,
    /// Skip rows another transaction holds (a work queue's claim).
    SkipLocked,
}

impl Locking {
    fn postgres(self) -> &'static str {
        match self {
            Self::ForUpdate => " FOR UPDATE",
            Self::SkipLocked => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Whether a database error code means "try again later", not "this write is wrong": SQLite
/// busy or locked (5, 6, and their extended codes); PostgreSQL serialization failure and
/// deadlock (40001, 40P01), lock not available (55P03), statement timeout or cancel (57014),
/// the server shutting down or the backend killed (57P01–57P03), too many connections (53300),
/// an idle transaction timed out (25P03), and connection exceptions (08…).
pub fn is_transient(error: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // Extended result codes keep the primary code in the low byte.
        return code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    }
    code.starts_with("08")
        || matches!(
            code.as_ref(),
            "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "53300" | "25P03"
        )
}
