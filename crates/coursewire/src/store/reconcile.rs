//! Store reads of the reconciler: the catalog of one course, catalog entities by id, and when
//! Canvas last delivered a Live Event, plus the quota shared between processes. Read-only on
//! the catalog on purpose: the reconciler writes nothing but inbox rows, through
//! [`Store::insert_inbox_batch`], so every repair goes through the processor like a pushed
//! event.

use super::processing::EntityRecord;
use super::query::{placeholders, sql, sql_built};
use super::{Store, StoreResult};
use crate::catalog::{EntityKind, StoredEntity};

/// Ids per `IN (…)` list, well below both backends' parameter limits.
const IDS_PER_QUERY: usize = 500;

impl Store {
    /// Every stored row (tombstones included) whose course is `course_id`, the course itself
    /// among them; users are not per course (see [`Store::catalog_by_ids`]).
    pub async fn catalog_of_course(&self, course_id: i64) -> StoreResult<Vec<StoredEntity>> {
        let rows: Vec<EntityRecord> = sql(
            "SELECT * FROM catalog_entities WHERE course_id = $1 ORDER BY kind, LENGTH(id), id",
        )
        .bind(course_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    /// The stored rows (tombstones included) of `kind` with these ids.
    pub async fn catalog_by_ids(
        &self,
        kind: EntityKind,
        ids: &[i64],
    ) -> StoreResult<Vec<StoredEntity>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut query = sql_built(format!(
                "SELECT * FROM catalog_entities WHERE kind = $1 AND id IN ({}) ORDER BY LENGTH(id), id",
                placeholders(2, chunk.len())
            ))
            .bind(kind.as_str());
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let rows: Vec<EntityRecord> = query.fetch_all(&self.pool).await?;
            for row in rows {
                out.push(row.try_into()?);
            }
        }
        Ok(out)
    }

    /// Ids of the live (not deleted) catalog courses.
    pub async fn catalog_course_ids(&self) -> StoreResult<Vec<i64>> {
        let rows: Vec<(String,)> = sql("SELECT id FROM catalog_entities \
             WHERE kind = 'course' AND NOT deleted ORDER BY LENGTH(id), id")
        .fetch_all(&self.pool)
        .await?;
        // Canvas courses have numeric ids; a row that has not is not a Canvas course.
        Ok(rows
            .into_iter()
            .filter_map(|(id,)| id.parse().ok())
            .collect())
    }

    /// When the newest inbox row of `source` was received, if there is one.
    pub async fn last_received_ms(&self, source: &str) -> StoreResult<Option<i64>> {
        // Newest first by id: the scan stops at the first row of the source, which is the
        // newest (ids grow with receipt), instead of aggregating over every row of it.
        let row: Option<(i64,)> =
            sql("SELECT received_at FROM inbox WHERE source = $1 ORDER BY id DESC LIMIT 1")
                .bind(source)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(at,)| at))
    }

    /// Publishes the units `owner` holds on the Canvas token `token_key` and returns the sum
    /// the other owners published at or after `fresh_since_ms` (older rows are dead processes'
    /// and are dropped).
    pub async fn share_quota(
        &self,
        token_key: &str,
        owner: &str,
        units: f64,
        now_ms: i64,
        fresh_since_ms: i64,
    ) -> StoreResult<f64> {
        let mut tx = self.pool.begin_write().await?;
        sql(
            "INSERT INTO canvas_quota_peers (token_key, owner, units, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (token_key, owner) \
             DO UPDATE SET units = excluded.units, updated_at = excluded.updated_at",
        )
        .bind(token_key)
        .bind(owner)
        .bind(units)
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        sql("DELETE FROM canvas_quota_peers WHERE token_key = $1 AND updated_at < $2")
            .bind(token_key)
            .bind(fresh_since_ms)
            .execute(&mut tx)
            .await?;
        let (others,): (f64,) = sql(
            "SELECT CAST(COALESCE(SUM(units), 0) AS DOUBLE PRECISION) FROM canvas_quota_peers \
             WHERE token_key = $1 AND owner <> $2",
        )
        .bind(token_key)
        .bind(owner)
        .fetch_one(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(others)
    }
}
