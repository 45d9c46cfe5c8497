//! A query written once for both backends: [`Sql`], its text and its bound values, run on the
//! pool or inside a transaction ([`On`]), with rows read into any type both backends can decode
//! ([`Record`]: tuples and `#[derive(sqlx::FromRow)]` structs).
//!
//! The text is one both accept: `$1, $2 …` placeholders (SQLite takes them too, by number),
//! portable expressions (`CASE WHEN a > b …` rather than SQLite's scalar `MAX` or PostgreSQL's
//! `GREATEST`, `CAST(… AS DOUBLE PRECISION)`). What truly differs is in [`super::dialect`].
//!
//! Why this mechanism and not sqlx `Any` or code generic over `sqlx::Database`: `Any` converts
//! every row into its own value type (a copy per column on the hot paths) and guesses SQLite's
//! types for expression columns; generic code needs a trait bound per bound type on every
//! function. Here each query runs on the backend's own driver with its own row type (bound
//! values go through one small enum, [`Value`]), and the SQL stays a plain string literal at
//! the place it is used, easy to grep.

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Encode, FromRow, Type};

use super::dialect::{Pool, Tx};
use super::{StoreError, StoreResult};

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
