//! SQLite side of [`DeliveryStore`]. Write transactions start with `BEGIN IMMEDIATE` (see
//! `sqlite_processing`). `store/postgres_delivery.rs` is the same SQL with `$n` placeholders;
//! keep the two in step.

use async_trait::async_trait;
use sqlx::Row;

use super::delivery::{
    AttemptEnd, AttemptRow, AttemptStart, DeadLetter, DeliveryLane, DeliveryStore, LaneEvent,
    LaneMove, NewSubscription, RetryCounts, Subscription, attempt_row, dead_letter_row, json_text,
    subscription_row,
};
use super::processing::change_event_row;
use super::{ChangeEventRow, SqliteStore, StoreResult};

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn create_subscription(
        &self,
        new: &NewSubscription,
    ) -> StoreResult<Option<Subscription>> {
        let row = sqlx::query(
            "INSERT INTO subscriptions (name, url, secret, types, retry_schedule_ms, on_exhausted, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING *",
        )
        .bind(&new.name)
        .bind(&new.url)
        .bind(&new.secret)
        .bind(json_text(&new.types)?)
        .bind(json_text(&new.retry_schedule_ms)?)
        .bind(new.on_exhausted.as_str())
        .bind(new.created_at_ms)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(subscription_row).transpose()
    }

    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query("SELECT * FROM subscriptions ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(subscription_row).collect()
    }

    async fn subscription(&self, name: &str) -> StoreResult<Option<Subscription>> {
        let row = sqlx::query("SELECT * FROM subscriptions WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(subscription_row).transpose()
    }

    async fn set_paused(&self, name: &str, paused: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE subscriptions SET paused = ? WHERE name = ?")
            .bind(paused)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_subscription(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let id: Option<(i64,)> = sqlx::query_as("SELECT id FROM subscriptions WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((id,)) = id else {
            return Ok(false);
        };
        for table in [
            "DELETE FROM delivery_lanes WHERE subscription_id = ?",
            "DELETE FROM delivery_attempts WHERE subscription_id = ?",
            "DELETE FROM delivery_dead_letters WHERE subscription_id = ?",
            "DELETE FROM subscriptions WHERE id = ?",
        ] {
            sqlx::query(table).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn retry_subscription(&self, name: &str) -> StoreResult<Option<RetryCounts>> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT id, disabled_at FROM subscriptions WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id, disabled_at)) = row else {
            return Ok(None);
        };
        let lanes = sqlx::query(
            "UPDATE delivery_lanes SET exhausted = FALSE, attempts = 0, next_attempt_at = 0 \
             WHERE subscription_id = ? AND exhausted",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let dead_letters = sqlx::query(
            "UPDATE delivery_dead_letters SET state = 'retry' \
             WHERE subscription_id = ? AND state = 'dead'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE subscriptions SET disabled_at = NULL, disabled_reason = NULL, \
             failing_since = NULL WHERE id = ?",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(RetryCounts {
            lanes,
            dead_letters,
            re_enabled: disabled_at.is_some(),
        }))
    }

    async fn discover_lanes(&self, subscription_id: i64, limit: i64) -> StoreResult<usize> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT c.position, c.subject, c.sequence FROM change_events c, subscriptions s \
             WHERE s.id = ? AND c.position > s.scan_position ORDER BY c.position LIMIT ?",
        )
        .bind(subscription_id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let Some((last, _, _)) = rows.last() else {
            return Ok(0);
        };
        let last = *last;
        let mut latest: std::collections::BTreeMap<&str, i64> = Default::default();
        for (_, subject, sequence) in &rows {
            let entry = latest.entry(subject.as_str()).or_default();
            *entry = (*entry).max(*sequence);
        }
        for (subject, sequence) in latest {
            sqlx::query(
                "INSERT INTO delivery_lanes (subscription_id, subject, latest_sequence) \
                 VALUES (?, ?, ?) ON CONFLICT (subscription_id, subject) DO UPDATE SET \
                 latest_sequence = MAX(delivery_lanes.latest_sequence, excluded.latest_sequence)",
            )
            .bind(subscription_id)
            .bind(subject)
            .bind(sequence)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE subscriptions SET scan_position = MAX(scan_position, ?) WHERE id = ?")
            .bind(last)
            .bind(subscription_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    async fn due_lanes(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<DeliveryLane>> {
        let rows = sqlx::query(
            "SELECT l.subscription_id, l.subject, l.acked_sequence, l.attempts \
             FROM delivery_lanes l JOIN subscriptions s ON s.id = l.subscription_id \
             WHERE NOT s.paused AND s.disabled_at IS NULL AND NOT l.exhausted \
             AND l.latest_sequence > l.acked_sequence AND l.next_attempt_at <= ? \
             ORDER BY l.next_attempt_at LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryLane {
                    subscription_id: r.try_get("subscription_id")?,
                    subject: r.try_get("subject")?,
                    acked_sequence: r.try_get("acked_sequence")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    async fn lease_lane(
        &self,
        subscription_id: i64,
        subject: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE delivery_lanes SET owner = ?, leased_until = ? \
             WHERE subscription_id = ? AND subject = ? AND (owner = ? OR leased_until < ?)",
        )
        .bind(owner)
        .bind(until_ms)
        .bind(subscription_id)
        .bind(subject)
        .bind(owner)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_delivery_lane(
        &self,
        subscription_id: i64,
        subject: &str,
        owner: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE delivery_lanes SET owner = NULL, leased_until = 0 \
             WHERE subscription_id = ? AND subject = ? AND owner = ?",
        )
        .bind(subscription_id)
        .bind(subject)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn lane(&self, subscription_id: i64, subject: &str) -> StoreResult<Option<DeliveryLane>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT acked_sequence, attempts FROM delivery_lanes \
             WHERE subscription_id = ? AND subject = ?",
        )
        .bind(subscription_id)
        .bind(subject)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(acked_sequence, attempts)| DeliveryLane {
            subscription_id,
            subject: subject.to_owned(),
            acked_sequence,
            attempts,
        }))
    }

    async fn next_lane_event(
        &self,
        subject: &str,
        after_sequence: i64,
    ) -> StoreResult<Option<LaneEvent>> {
        let row = sqlx::query(
            "SELECT c.*, i.received_at AS inbox_received_at FROM change_events c \
             LEFT JOIN inbox i ON i.id = c.inbox_id \
             WHERE c.subject = ? AND c.sequence > ? ORDER BY c.position LIMIT 1",
        )
        .bind(subject)
        .bind(after_sequence)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(Some(LaneEvent {
                row: change_event_row(&r)?,
                received_at_ms: r.try_get("inbox_received_at")?,
            })),
            None => Ok(None),
        }
    }

    async fn skip_event(
        &self,
        subscription_id: i64,
        subject: &str,
        sequence: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE delivery_lanes SET acked_sequence = ?, attempts = 0, next_attempt_at = 0 \
             WHERE subscription_id = ? AND subject = ? AND acked_sequence < ?",
        )
        .bind(sequence)
        .bind(subscription_id)
        .bind(subject)
        .bind(sequence)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn begin_attempt(&self, start: &AttemptStart) -> StoreResult<i64> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO delivery_attempts (subscription_id, subject, event_id, sequence, \
             attempt, started_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(start.subscription_id)
        .bind(&start.subject)
        .bind(&start.event_id)
        .bind(start.sequence)
        .bind(start.attempt)
        .bind(start.started_at_ms)
        .fetch_one(&mut *tx)
        .await?;
        if start.dead_letter.is_none() {
            sqlx::query(
                "UPDATE delivery_lanes SET attempts = ? WHERE subscription_id = ? AND subject = ?",
            )
            .bind(start.attempt)
            .bind(start.subscription_id)
            .bind(&start.subject)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    async fn finish_attempt(&self, start: &AttemptStart, end: &AttemptEnd) -> StoreResult<bool> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let delivered = end.lane == LaneMove::Acked;
        sqlx::query(
            "UPDATE delivery_attempts SET finished_at = ?, status = ?, outcome = ?, error = ? \
             WHERE id = ?",
        )
        .bind(end.finished_at_ms)
        .bind(end.status)
        .bind(if delivered { "delivered" } else { "failed" })
        .bind(&end.error)
        .bind(end.attempt_id)
        .execute(&mut *tx)
        .await?;
        let (acked, attempts, next_at, exhausted) = match &end.lane {
            LaneMove::Acked => (Some(start.sequence), 0, 0, false),
            LaneMove::RetryAt(at) => (None, start.attempt, *at, false),
            LaneMove::Exhausted => (None, start.attempt, 0, true),
            LaneMove::DeadLettered { position } => {
                sqlx::query(
                    "INSERT INTO delivery_dead_letters (subscription_id, event_position, \
                     event_id, subject, sequence, state, reason, at) \
                     VALUES (?, ?, ?, ?, ?, 'dead', ?, ?) \
                     ON CONFLICT (subscription_id, event_id) DO UPDATE SET state = 'dead', \
                     reason = excluded.reason, at = excluded.at",
                )
                .bind(start.subscription_id)
                .bind(*position)
                .bind(&start.event_id)
                .bind(&start.subject)
                .bind(start.sequence)
                .bind(end.error.clone().unwrap_or_default())
                .bind(end.finished_at_ms)
                .execute(&mut *tx)
                .await?;
                (Some(start.sequence), 0, 0, false)
            }
        };
        sqlx::query(
            "UPDATE delivery_lanes SET acked_sequence = MAX(acked_sequence, COALESCE(?, 0)), \
             attempts = ?, next_attempt_at = ?, exhausted = ?, last_error = ? \
             WHERE subscription_id = ? AND subject = ?",
        )
        .bind(acked)
        .bind(attempts)
        .bind(next_at)
        .bind(exhausted)
        .bind(&end.error)
        .bind(start.subscription_id)
        .bind(&start.subject)
        .execute(&mut *tx)
        .await?;
        let disabled = if delivered {
            sqlx::query("UPDATE subscriptions SET failing_since = NULL WHERE id = ?")
                .bind(start.subscription_id)
                .execute(&mut *tx)
                .await?;
            false
        } else {
            sqlx::query(
                "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
            )
            .bind(end.finished_at_ms)
            .bind(start.subscription_id)
            .execute(&mut *tx)
            .await?;
            let reason = end.disable_now.clone().unwrap_or_else(|| {
                format!(
                    "failing since before {} (disable window passed)",
                    end.disable_if_failing_since_before_ms
                )
            });
            let done = sqlx::query(
                "UPDATE subscriptions SET disabled_at = ?, disabled_reason = ? \
                 WHERE id = ? AND disabled_at IS NULL AND (? OR failing_since < ?)",
            )
            .bind(end.finished_at_ms)
            .bind(reason)
            .bind(start.subscription_id)
            .bind(end.disable_now.is_some())
            .bind(end.disable_if_failing_since_before_ms)
            .execute(&mut *tx)
            .await?;
            done.rows_affected() > 0
        };
        tx.commit().await?;
        Ok(disabled)
    }

    async fn attempts(&self, subscription_id: i64) -> StoreResult<Vec<AttemptRow>> {
        let rows =
            sqlx::query("SELECT * FROM delivery_attempts WHERE subscription_id = ? ORDER BY id")
                .bind(subscription_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(attempt_row).collect()
    }

    async fn dead_letters(&self, subscription_id: i64) -> StoreResult<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT * FROM delivery_dead_letters WHERE subscription_id = ? ORDER BY id",
        )
        .bind(subscription_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(dead_letter_row).collect()
    }

    async fn dead_letters_to_retry(&self, limit: i64) -> StoreResult<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT d.* FROM delivery_dead_letters d JOIN subscriptions s \
             ON s.id = d.subscription_id WHERE d.state = 'retry' AND NOT s.paused \
             AND s.disabled_at IS NULL ORDER BY d.id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(dead_letter_row).collect()
    }

    async fn change_event_at(&self, position: i64) -> StoreResult<Option<ChangeEventRow>> {
        let row = sqlx::query("SELECT * FROM change_events WHERE position = ?")
            .bind(position)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(change_event_row).transpose()
    }

    async fn finish_dead_letter(
        &self,
        id: i64,
        delivered: bool,
        end: Option<&AttemptEnd>,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        if let Some(end) = end {
            sqlx::query(
                "UPDATE delivery_attempts SET finished_at = ?, status = ?, outcome = ?, \
                 error = ? WHERE id = ?",
            )
            .bind(end.finished_at_ms)
            .bind(end.status)
            .bind(if delivered { "delivered" } else { "failed" })
            .bind(&end.error)
            .bind(end.attempt_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE delivery_dead_letters SET state = ? WHERE id = ?")
            .bind(if delivered { "delivered" } else { "dead" })
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sink_cursor(&self, name: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM sink_cursors WHERE name = ?")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map_or(0, |(p,)| p))
    }

    async fn set_sink_cursor(&self, name: &str, position: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sink_cursors (name, position) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(name)
        .bind(position)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn delivery_backlog(&self) -> StoreResult<Vec<(String, Option<i64>)>> {
        let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT s.name, \
             (SELECT MIN(c.created_at) FROM delivery_lanes l JOIN change_events c \
              ON c.subject = l.subject AND c.sequence = l.acked_sequence + 1 \
              WHERE l.subscription_id = s.id), \
             (SELECT MIN(c.created_at) FROM change_events c WHERE c.position > s.scan_position) \
             FROM subscriptions s ORDER BY s.name",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, a, b)| {
                let oldest = match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (name, oldest)
            })
            .collect())
    }
}
