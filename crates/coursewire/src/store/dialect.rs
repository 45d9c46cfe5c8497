//! The two SQL backends behind the one store, and every real difference between them.
//!
//! The store's queries are written once, as text both backends accept: `$1, $2 …` placeholders
//! (SQLite takes them too, by number), portable expressions (`CASE WHEN a > b …` rather than
//! SQLite's scalar `MAX` or PostgreSQL's `GREATEST`, `CAST(… AS DOUBLE PRECISION)`). A query is
//! a [`Sql`]: its text and its bound values, run on a pool or a transaction. Only here does
//! the code look at which backend it is on:
//!
//! * connection options and pool sizes ([`Pool::open`]), and the migrations per backend;
//! * how a write transaction starts ([`Pool::begin_write`]): `BEGIN IMMEDIATE` on SQLite, so a
//!   writer takes the single write lock up front and a read-then-write is never overtaken;
//! * row locks ([`Locking`]): `FOR UPDATE [SKIP LOCKED]` on PostgreSQL, nothing on SQLite
//!   (its write lock already excludes every other writer);
//! * the outbox lock ([`Tx::lock_outbox`]): a transaction-scoped advisory lock on PostgreSQL so
//!   outbox positions are handed out in commit order; SQLite's write lock does that already.
//!
//! Why this mechanism and not sqlx `Any` or code generic over `sqlx::Database`: `Any` converts
//! every row into its own value type (a copy per column on the hot paths) and guesses SQLite's
//! types for expression columns; generic code needs a trait bound per bound type on every
//! function. Here each query runs on the backend's own driver with its own row type, rows are
//! read with `sqlx::FromRow` (derived once, valid for both), and the SQL stays a plain string
//! literal at the place it is used, easy to grep.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, Encode, FromRow, Postgres, Sqlite, Transaction, Type};

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
            let options =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
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

/// A value bound to a query parameter.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    Real(f64),
    Bool(bool),
    Text(Option<String>),
    Bytes(Vec<u8>),
}

macro_rules! value_from {
    ($($ty:ty => |$v:ident| $make:expr;)*) => {
        $(impl From<$ty> for Value {
            fn from($v: $ty) -> Self {
                $make
            }
        })*
    };
}

value_from! {
    i64 => |v| Value::Int(Some(v));
    &i64 => |v| Value::Int(Some(*v));
    Option<i64> => |v| Value::Int(v);
    f64 => |v| Value::Real(v);
    bool => |v| Value::Bool(v);
    &bool => |v| Value::Bool(*v);
    String => |v| Value::Text(Some(v));
    &String => |v| Value::Text(Some(v.clone()));
    &str => |v| Value::Text(Some(v.to_owned()));
    Option<String> => |v| Value::Text(v);
    &Option<String> => |v| Value::Text(v.clone());
    Option<&str> => |v| Value::Text(v.map(str::to_owned));
    Vec<u8> => |v| Value::Bytes(v);
    &[u8] => |v| Value::Bytes(v.to_vec());
}

/// A row type both backends can read: tuples and `#[derive(sqlx::FromRow)]` structs.
pub trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// Where a query runs: on the pool (its own implicit transaction) or inside a transaction.
#[derive(Debug)]
pub enum On<'c> {
    Pool(&'c Pool),
    Tx(&'c mut Tx),
}

impl<'c> From<&'c Pool> for On<'c> {
    fn from(pool: &'c Pool) -> Self {
        On::Pool(pool)
    }
}

impl<'c> From<&'c mut Tx> for On<'c> {
    fn from(tx: &'c mut Tx) -> Self {
        On::Tx(tx)
    }
}

/// A query: its text (valid on both backends) and the values bound to `$1, $2 …`.
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until it is run"]
pub struct Sql {
    text: Cow<'static, str>,
    values: Vec<Value>,
}

/// A query whose text is a literal.
pub fn sql(text: &'static str) -> Sql {
    Sql {
        text: Cow::Borrowed(text),
        values: Vec::new(),
    }
}

/// A query whose text is built at run time (`IN` lists, multi-row inserts, lock clauses).
pub fn sql_built(text: String) -> Sql {
    Sql {
        text: Cow::Owned(text),
        values: Vec::new(),
    }
}

/// `$first, $first+1, …` for `n` values: the placeholders of an `IN` list or a `VALUES` row.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bound values as the backend's own arguments.
fn arguments<A>(values: Vec<Value>) -> Result<A, BoxDynError>
where
    A: Arguments,
    for<'t> Option<i64>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> f64: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> bool: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Option<String>: Encode<'t, A::Database> + Type<A::Database>,
    for<'t> Vec<u8>: Encode<'t, A::Database> + Type<A::Database>,
{
    let mut args = A::default();
    for value in values {
        match value {
            Value::Int(v) => args.add(v)?,
            Value::Real(v) => args.add(v)?,
            Value::Bool(v) => args.add(v)?,
            Value::Text(v) => args.add(v)?,
            Value::Bytes(v) => args.add(v)?,
        }
    }
    Ok(args)
}

/// Runs `$run` (a method of sqlx's `Query` or `QueryAs`) on whichever backend `$on` is, with
/// the query built by `$make` (`sqlx::query_with` or `sqlx::query_as_with`).
macro_rules! run_on {
    ($sql:expr, $on:expr, $make:ident, |$q:ident, $e:ident| $run:expr) => {{
        let Sql { text, values } = $sql;
        let text = AssertSqlSafe(text);
        match $on {
            On::Pool(Pool::Sqlite($e)) => {
                let $q = sqlx::$make(
                    text,
                    arguments::<SqliteArguments>(values).map_err(encode_error)?,
                );
                $run
            }
            On::Pool(Pool::Postgres($e)) => {
                let $q = sqlx::$make(
                    text,
                    arguments::<PgArguments>(values).map_err(encode_error)?,
                );
                $run
            }
            On::Tx(Tx::Sqlite(tx)) => {
                let $e = &mut **tx;
                let $q = sqlx::$make(
                    text,
                    arguments::<SqliteArguments>(values).map_err(encode_error)?,
                );
                $run
            }
            On::Tx(Tx::Postgres(tx)) => {
                let $e = &mut **tx;
                let $q = sqlx::$make(
                    text,
                    arguments::<PgArguments>(values).map_err(encode_error)?,
                );
                $run
            }
        }
    }};
}

fn encode_error(err: BoxDynError) -> StoreError {
    StoreError::Other(format!("a query value could not be encoded: {err}"))
}

impl Sql {
    /// Binds the next parameter (`$1`, then `$2` …).
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Appends text, such as `RETURNING …`.
    pub fn push(mut self, text: &str) -> Self {
        self.text.to_mut().push_str(text);
        self
    }

    /// Runs a statement; returns the number of rows it touched.
    pub async fn execute<'c>(self, on: impl Into<On<'c>>) -> StoreResult<u64> {
        Ok(run_on!(self, on.into(), query_with, |q, e| q
            .execute(e)
            .await?
            .rows_affected()))
    }

    pub async fn fetch_all<'c, T: Record>(self, on: impl Into<On<'c>>) -> StoreResult<Vec<T>> {
        Ok(run_on!(self, on.into(), query_as_with, |q, e| q
            .fetch_all(e)
            .await?))
    }

    pub async fn fetch_optional<'c, T: Record>(
        self,
        on: impl Into<On<'c>>,
    ) -> StoreResult<Option<T>> {
        Ok(run_on!(self, on.into(), query_as_with, |q, e| q
            .fetch_optional(e)
            .await?))
    }

    pub async fn fetch_one<'c, T: Record>(self, on: impl Into<On<'c>>) -> StoreResult<T> {
        Ok(run_on!(self, on.into(), query_as_with, |q, e| q
            .fetch_one(e)
            .await?))
    }
}
