//! Store reads of the reconciler: the catalog of one course, catalog entities by id, and when
//! Canvas last delivered a Live Event. Read-only on purpose: the reconciler writes nothing but
//! inbox rows, through [`Store::insert_inbox_batch`], so every repair goes through the processor
//! like a pushed event.
//!
//! It is its own trait (with [`open`]) rather than part of [`Store`], so the reconciler's
//! queries stay next to each other; both backends implement it with the same SQL.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;

use super::processing::stored_entity;
use super::{PostgresStore, SqliteStore, Store, StoreError, StoreResult};
use crate::catalog::{EntityKind, StoredEntity};

/// Ids per `IN (…)` list, well below both backends' parameter limits.
const IDS_PER_QUERY: usize = 500;

#[async_trait]
pub trait ReconcileStore: Store {
    /// Every stored row (tombstones included) whose course is `course_id`, the course itself
    /// among them; users are not per course (see [`ReconcileStore::catalog_by_ids`]).
    async fn catalog_of_course(&self, course_id: i64) -> StoreResult<Vec<StoredEntity>>;

    /// The stored rows (tombstones included) of `kind` with these ids.
    async fn catalog_by_ids(&self, kind: EntityKind, ids: &[i64])
    -> StoreResult<Vec<StoredEntity>>;

    /// Ids of the live (not deleted) catalog courses.
    async fn catalog_course_ids(&self) -> StoreResult<Vec<i64>>;

    /// When the newest inbox row of `source` was received, if there is one.
    async fn last_received_ms(&self, source: &str) -> StoreResult<Option<i64>>;

    /// Publishes the units `owner` holds on the Canvas token `token_key` and returns the sum
    /// the other owners published at or after `fresh_since_ms` (older rows are dead processes'
    /// and are dropped).
    async fn share_quota(
        &self,
        token_key: &str,
        owner: &str,
        units: f64,
        now_ms: i64,
        fresh_since_ms: i64,
    ) -> StoreResult<f64>;
}

/// Opens the store for the reconciler (its own connection pool). Does not migrate.
pub async fn open(url: &str) -> StoreResult<Arc<dyn ReconcileStore>> {
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

// Newest first by id: the scan stops at the first row of the source, which is the newest
// (ids grow with receipt), instead of aggregating over every row of it.
const LAST_RECEIVED_SQLITE: &str =
    "SELECT received_at FROM inbox WHERE source = ? ORDER BY id DESC LIMIT 1";
const LAST_RECEIVED_PG: &str =
    "SELECT received_at FROM inbox WHERE source = $1 ORDER BY id DESC LIMIT 1";
const COURSE_IDS: &str =
    "SELECT id FROM catalog_entities WHERE kind = 'course' AND NOT deleted ORDER BY id";

fn placeholders(n: usize, numbered_from: Option<usize>) -> String {
    (0..n)
        .map(|i| match numbered_from {
            Some(first) => format!("${}", first + i),
            None => "?".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl ReconcileStore for SqliteStore {
    async fn catalog_of_course(&self, course_id: i64) -> StoreResult<Vec<StoredEntity>> {
        let rows =
            sqlx::query("SELECT * FROM catalog_entities WHERE course_id = ? ORDER BY kind, id")
                .bind(course_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(stored_entity).collect()
    }

    async fn catalog_by_ids(
        &self,
        kind: EntityKind,
        ids: &[i64],
    ) -> StoreResult<Vec<StoredEntity>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT * FROM catalog_entities WHERE kind = ? AND id IN ({}) ORDER BY id",
                placeholders(chunk.len(), None)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind.as_str());
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(stored_entity(&row)?);
            }
        }
        Ok(out)
    }

    async fn catalog_course_ids(&self) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(COURSE_IDS).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(StoreError::from))
            .collect()
    }

    async fn last_received_ms(&self, source: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query(LAST_RECEIVED_SQLITE)
            .bind(source)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.try_get::<i64, _>("received_at").map_err(StoreError::from))
            .transpose()
    }

    async fn share_quota(
        &self,
        token_key: &str,
        owner: &str,
        units: f64,
        now_ms: i64,
        fresh_since_ms: i64,
    ) -> StoreResult<f64> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO canvas_quota_peers (token_key, owner, units, updated_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (token_key, owner) \
             DO UPDATE SET units = excluded.units, updated_at = excluded.updated_at",
        )
        .bind(token_key)
        .bind(owner)
        .bind(units)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM canvas_quota_peers WHERE token_key = ? AND updated_at < ?")
            .bind(token_key)
            .bind(fresh_since_ms)
            .execute(&mut *tx)
            .await?;
        let (others,): (f64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(units), 0.0) FROM canvas_quota_peers \
             WHERE token_key = ? AND owner <> ?",
        )
        .bind(token_key)
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(others)
    }
}

#[async_trait]
impl ReconcileStore for PostgresStore {
    async fn catalog_of_course(&self, course_id: i64) -> StoreResult<Vec<StoredEntity>> {
        let rows =
            sqlx::query("SELECT * FROM catalog_entities WHERE course_id = $1 ORDER BY kind, id")
                .bind(course_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(stored_entity).collect()
    }

    async fn catalog_by_ids(
        &self,
        kind: EntityKind,
        ids: &[i64],
    ) -> StoreResult<Vec<StoredEntity>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT * FROM catalog_entities WHERE kind = $1 AND id IN ({}) ORDER BY id",
                placeholders(chunk.len(), Some(2))
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(kind.as_str());
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(stored_entity(&row)?);
            }
        }
        Ok(out)
    }

    async fn catalog_course_ids(&self) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(COURSE_IDS).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(StoreError::from))
            .collect()
    }

    async fn last_received_ms(&self, source: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query(LAST_RECEIVED_PG)
            .bind(source)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.try_get::<i64, _>("received_at").map_err(StoreError::from))
            .transpose()
    }

    async fn share_quota(
        &self,
        token_key: &str,
        owner: &str,
        units: f64,
        now_ms: i64,
        fresh_since_ms: i64,
    ) -> StoreResult<f64> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO canvas_quota_peers (token_key, owner, units, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (token_key, owner) \
             DO UPDATE SET units = excluded.units, updated_at = excluded.updated_at",
        )
        .bind(token_key)
        .bind(owner)
        .bind(units)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM canvas_quota_peers WHERE token_key = $1 AND updated_at < $2")
            .bind(token_key)
            .bind(fresh_since_ms)
            .execute(&mut *tx)
            .await?;
        let (others,): (f64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(units), 0.0)::DOUBLE PRECISION FROM canvas_quota_peers \
             WHERE token_key = $1 AND owner <> $2",
        )
        .bind(token_key)
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(others)
    }
}
