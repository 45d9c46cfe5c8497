//! SQLite side of [`DeliveryStore`]. Write transactions start with `BEGIN IMMEDIATE` (see
//! `sqlite_processing`). `store/postgres_delivery.rs` is the same SQL with `$n` placeholders;
//! keep the two in step.

use async_trait::async_trait;
use sqlx::Row;

use super::delivery::{
    AttemptEnd, AttemptRow, AttemptStart, CursorAdvance, CursorEvent, DeadLetter, DeliveryLane,
    DeliveryOp, DeliveryOpResult, DeliveryStore, LaneAfter, LaneEvent, LaneMove, LaneStatus,
    NewSubscription, RetryCounts, Subscription, attempt_row, dead_letter_row, json_text,
    lane_status_row, subscription_row,
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
             created_at, scan_position) VALUES (?, ?, ?, ?, ?, ?, ?, \
             CASE WHEN ? THEN (SELECT COALESCE(MAX(position), 0) FROM change_events) ELSE 0 END) \
             ON CONFLICT (name) DO NOTHING RETURNING *",
        )
        .bind(&new.name)
        .bind(&new.url)
        .bind(&new.secret)
        .bind(json_text(&new.types)?)
        .bind(json_text(&new.retry_schedule_ms)?)
        .bind(new.on_exhausted.as_str())
        .bind(new.created_at_ms)
        .bind(new.from_now)
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

    async fn subscriptions_behind(&self) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM subscriptions WHERE NOT paused AND disabled_at IS NULL \
             AND url <> '' AND scan_position < (SELECT COALESCE(MAX(position), 0) FROM change_events)",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn take_cursor(
        &self,
        subscription_id: i64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE subscriptions SET cursor_owner = ?, cursor_leased_until = ? \
             WHERE id = ? AND (cursor_owner IS NULL OR cursor_owner = ? \
             OR cursor_leased_until < ?) RETURNING scan_position",
        )
        .bind(owner)
        .bind(until_ms)
        .bind(subscription_id)
        .bind(owner)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(p,)| p))
    }

    async fn acknowledge_pull(&self, subscription_id: i64, position: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE subscriptions SET scan_position = MAX(scan_position, ?) \
             WHERE id = ? AND url = ''",
        )
        .bind(position)
        .bind(subscription_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn release_cursor(&self, subscription_id: i64, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE subscriptions SET cursor_owner = NULL, cursor_leased_until = 0 \
             WHERE id = ? AND cursor_owner = ?",
        )
        .bind(subscription_id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn events_past_cursor(
        &self,
        subscription_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<CursorEvent>> {
        let rows = sqlx::query(
            "SELECT c.*, i.received_at AS inbox_received_at, EXISTS (SELECT 1 FROM \
             delivery_lanes l WHERE l.subscription_id = ? AND l.subject = c.subject) AS on_lane \
             FROM change_events c LEFT JOIN inbox i ON i.id = c.inbox_id \
             WHERE c.position > ? ORDER BY c.position LIMIT ?",
        )
        .bind(subscription_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CursorEvent {
                    event: LaneEvent {
                        row: change_event_row(r)?,
                        received_at_ms: r.try_get("inbox_received_at")?,
                    },
                    on_lane: r.try_get("on_lane")?,
                })
            })
            .collect()
    }

    async fn due_lanes(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<DeliveryLane>> {
        let rows = sqlx::query(
            "SELECT l.subscription_id, l.subject, l.acked_sequence, l.latest_sequence, l.attempts \
             FROM delivery_lanes l JOIN subscriptions s ON s.id = l.subscription_id \
             WHERE NOT s.paused AND s.disabled_at IS NULL AND NOT l.exhausted \
             AND l.latest_sequence > l.acked_sequence AND l.next_attempt_at <= ? \
             ORDER BY l.next_attempt_at LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery_lane).collect()
    }

    async fn claim_delivery_lanes(
        &self,
        lanes: &[DeliveryLane],
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryLane>> {
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mut won = Vec::with_capacity(lanes.len());
        for lane in lanes {
            let row = sqlx::query(
                "UPDATE delivery_lanes SET owner = ?, leased_until = ? \
                 WHERE subscription_id = ? AND subject = ? AND (owner = ? OR leased_until < ?) \
                 RETURNING subscription_id, subject, acked_sequence, latest_sequence, attempts",
            )
            .bind(owner)
            .bind(until_ms)
            .bind(lane.subscription_id)
            .bind(&lane.subject)
            .bind(owner)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                won.push(delivery_lane(&row)?);
            }
        }
        tx.commit().await?;
        Ok(won)
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

    async fn lane(&self, subscription_id: i64, subject: &str) -> StoreResult<Option<DeliveryLane>> {
        let row = sqlx::query(
            "SELECT subscription_id, subject, acked_sequence, latest_sequence, attempts \
             FROM delivery_lanes \
             WHERE subscription_id = ? AND subject = ?",
        )
        .bind(subscription_id)
        .bind(subject)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(delivery_lane).transpose()
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

    async fn record_delivery(&self, ops: &[DeliveryOp]) -> StoreResult<Vec<DeliveryOpResult>> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                DeliveryOp::Begin(start) => {
                    DeliveryOpResult::AttemptId(begin_in(&mut tx, start).await?)
                }
                DeliveryOp::Finish(start, end) => {
                    DeliveryOpResult::Disabled(finish_in(&mut tx, start, end).await?)
                }
                DeliveryOp::Skip {
                    subscription_id,
                    subject,
                    sequence,
                } => {
                    sqlx::query(
                        "UPDATE delivery_lanes SET acked_sequence = ?, attempts = 0, \
                         next_attempt_at = 0 \
                         WHERE subscription_id = ? AND subject = ? AND acked_sequence < ?",
                    )
                    .bind(sequence)
                    .bind(subscription_id)
                    .bind(subject)
                    .bind(sequence)
                    .execute(&mut *tx)
                    .await?;
                    drop_caught_up_lane(&mut tx, *subscription_id, subject).await?;
                    DeliveryOpResult::Done
                }
                DeliveryOp::Advance(advance) => advance_in(&mut tx, advance).await?,
                DeliveryOp::Release {
                    subscription_id,
                    subject,
                    owner,
                } => {
                    sqlx::query(
                        "UPDATE delivery_lanes SET owner = NULL, leased_until = 0 \
                         WHERE subscription_id = ? AND subject = ? AND owner = ?",
                    )
                    .bind(subscription_id)
                    .bind(subject)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                    DeliveryOpResult::Done
                }
            });
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn lanes_of(&self, subscription_id: i64, limit: i64) -> StoreResult<Vec<LaneStatus>> {
        let rows = sqlx::query(
            "SELECT * FROM delivery_lanes WHERE subscription_id = ? \
             ORDER BY latest_sequence - acked_sequence DESC, subject LIMIT ?",
        )
        .bind(subscription_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(lane_status_row).collect()
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

    async fn dead_letters_to_retry(
        &self,
        stale_before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT d.* FROM delivery_dead_letters d JOIN subscriptions s \
             ON s.id = d.subscription_id \
             WHERE (d.state = 'retry' OR (d.state = 'sending' AND d.at < ?)) \
             AND NOT s.paused AND s.disabled_at IS NULL ORDER BY d.event_position LIMIT ?",
        )
        .bind(stale_before_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(dead_letter_row).collect()
    }

    async fn take_dead_letter(
        &self,
        id: i64,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE delivery_dead_letters SET state = 'sending', at = ? WHERE id = ? \
             AND (state = 'retry' OR (state = 'sending' AND at < ?))",
        )
        .bind(now_ms)
        .bind(id)
        .bind(stale_before_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
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

    async fn change_events_created_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEventRow>> {
        let rows = sqlx::query(
            "SELECT * FROM change_events WHERE created_at >= ? AND created_at < ? \
             AND position > ? ORDER BY position LIMIT ?",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(change_event_row).collect()
    }

    async fn queue_redeliveries(
        &self,
        subscription_id: i64,
        events: &[ChangeEventRow],
        reason: &str,
        at_ms: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        for event in events {
            sqlx::query(
                "INSERT INTO delivery_dead_letters (subscription_id, event_position, event_id, \
                 subject, sequence, state, reason, at) VALUES (?, ?, ?, ?, ?, 'retry', ?, ?) \
                 ON CONFLICT (subscription_id, event_id) DO UPDATE SET state = 'retry', \
                 reason = excluded.reason, at = excluded.at",
            )
            .bind(subscription_id)
            .bind(event.position)
            .bind(&event.id)
            .bind(&event.subject)
            .bind(event.sequence)
            .bind(reason)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(events.len() as u64)
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

fn delivery_lane(r: &sqlx::sqlite::SqliteRow) -> StoreResult<DeliveryLane> {
    Ok(DeliveryLane {
        subscription_id: r.try_get("subscription_id")?,
        subject: r.try_get("subject")?,
        acked_sequence: r.try_get("acked_sequence")?,
        latest_sequence: r.try_get("latest_sequence")?,
        attempts: r.try_get("attempts")?,
    })
}

/// [`DeliveryOp::Begin`] inside its transaction.
async fn begin_in(tx: &mut sqlx::SqliteConnection, start: &AttemptStart) -> StoreResult<i64> {
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
    Ok(id)
}

/// [`DeliveryOp::Finish`] inside its transaction.
async fn finish_in(
    tx: &mut sqlx::SqliteConnection,
    start: &AttemptStart,
    end: &AttemptEnd,
) -> StoreResult<bool> {
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
    if let LaneMove::DeadLettered { position } = &end.lane {
        dead_letter_in(tx, start, *position, end).await?;
    }
    let after = end.lane.lane_after(start);
    sqlx::query(
        "UPDATE delivery_lanes SET acked_sequence = MAX(acked_sequence, COALESCE(?1, 0)), \
         attempts = ?2, next_attempt_at = ?3, exhausted = ?4, last_error = ?5, \
         owner = CASE WHEN ?8 THEN NULL ELSE owner END, \
         leased_until = CASE WHEN ?8 THEN 0 ELSE leased_until END \
         WHERE subscription_id = ?6 AND subject = ?7",
    )
    .bind(after.acked)
    .bind(after.attempts)
    .bind(after.next_attempt_at)
    .bind(after.exhausted)
    .bind(&end.error)
    .bind(start.subscription_id)
    .bind(&start.subject)
    .bind(end.release)
    .execute(&mut *tx)
    .await?;
    if after.acked.is_some() {
        drop_caught_up_lane(tx, start.subscription_id, &start.subject).await?;
    }
    note_answer_in(tx, start.subscription_id, delivered, end).await
}

/// Dead-letters an event whose retry schedule is used up (`skip`).
async fn dead_letter_in(
    tx: &mut sqlx::SqliteConnection,
    start: &AttemptStart,
    position: i64,
    end: &AttemptEnd,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO delivery_dead_letters (subscription_id, event_position, \
         event_id, subject, sequence, state, reason, at) \
         VALUES (?, ?, ?, ?, ?, 'dead', ?, ?) \
         ON CONFLICT (subscription_id, event_id) DO UPDATE SET state = 'dead', \
         reason = excluded.reason, at = excluded.at",
    )
    .bind(start.subscription_id)
    .bind(position)
    .bind(&start.event_id)
    .bind(&start.subject)
    .bind(start.sequence)
    .bind(end.error.clone().unwrap_or_default())
    .bind(end.finished_at_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A lane that has acknowledged every event handed to it is deleted: the subject goes back
/// to the cursor's fast path, and the cursor says what the lane row would have.
async fn drop_caught_up_lane(
    tx: &mut sqlx::SqliteConnection,
    subscription_id: i64,
    subject: &str,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM delivery_lanes WHERE subscription_id = ? AND subject = ? \
         AND acked_sequence >= latest_sequence AND NOT exhausted",
    )
    .bind(subscription_id)
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An answer's mark on the subscription: a success clears `failing_since` (when asked), a
/// failure sets it and disables the endpoint past the window. True if this disabled it.
async fn note_answer_in(
    tx: &mut sqlx::SqliteConnection,
    subscription_id: i64,
    delivered: bool,
    end: &AttemptEnd,
) -> StoreResult<bool> {
    let disabled = if delivered {
        if end.clear_failing {
            sqlx::query(
                "UPDATE subscriptions SET failing_since = NULL \
                 WHERE id = ? AND failing_since IS NOT NULL",
            )
            .bind(subscription_id)
            .execute(&mut *tx)
            .await?;
        }
        false
    } else {
        sqlx::query(
            "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
        )
        .bind(end.finished_at_ms)
        .bind(subscription_id)
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
        .bind(subscription_id)
        .bind(end.disable_now.is_some())
        .bind(end.disable_if_failing_since_before_ms)
        .execute(&mut *tx)
        .await?;
        done.rows_affected() > 0
    };
    Ok(disabled)
}

/// [`DeliveryOp::Advance`] inside its transaction.
async fn advance_in(
    tx: &mut sqlx::SqliteConnection,
    advance: &CursorAdvance,
) -> StoreResult<DeliveryOpResult> {
    let held = sqlx::query(
        "UPDATE subscriptions SET scan_position = MAX(scan_position, ?), \
         cursor_leased_until = ? WHERE id = ? AND cursor_owner = ?",
    )
    .bind(advance.position)
    .bind(advance.lease_until_ms)
    .bind(advance.subscription_id)
    .bind(&advance.owner)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if !held {
        // Another process took the cursor over; it sends again from where it was.
        return Ok(DeliveryOpResult::Advanced {
            held: false,
            disabled: false,
        });
    }
    let sub = advance.subscription_id;
    let mut disabled = false;
    for handoff in &advance.handoffs {
        // A new lane starts acknowledged up to the first event handed to it.
        let mut after = LaneAfter {
            acked: Some(handoff.first_sequence - 1),
            attempts: 0,
            next_attempt_at: 0,
            exhausted: false,
        };
        let mut last_error = None;
        if let Some((start, end)) = &handoff.failure {
            sqlx::query(
                "INSERT INTO delivery_attempts (subscription_id, subject, event_id, sequence, \
                 attempt, started_at, finished_at, status, outcome, error) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'failed', ?)",
            )
            .bind(sub)
            .bind(&start.subject)
            .bind(&start.event_id)
            .bind(start.sequence)
            .bind(start.attempt)
            .bind(start.started_at_ms)
            .bind(end.finished_at_ms)
            .bind(end.status)
            .bind(&end.error)
            .execute(&mut *tx)
            .await?;
            if let LaneMove::DeadLettered { position } = &end.lane {
                dead_letter_in(tx, start, *position, end).await?;
            }
            let failed = end.lane.lane_after(start);
            after = LaneAfter {
                acked: failed.acked.or(after.acked),
                ..failed
            };
            last_error = end.error.clone();
            disabled |= note_answer_in(tx, sub, false, end).await?;
        }
        sqlx::query(
            "INSERT INTO delivery_lanes (subscription_id, subject, acked_sequence, \
             latest_sequence, attempts, next_attempt_at, exhausted, last_error) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (subscription_id, subject) DO UPDATE \
             SET latest_sequence = MAX(delivery_lanes.latest_sequence, excluded.latest_sequence)",
        )
        .bind(sub)
        .bind(&handoff.subject)
        .bind(after.acked)
        .bind(handoff.last_sequence)
        .bind(after.attempts)
        .bind(after.next_attempt_at)
        .bind(after.exhausted)
        .bind(&last_error)
        .execute(&mut *tx)
        .await?;
        drop_caught_up_lane(tx, sub, &handoff.subject).await?;
    }
    if advance.clear_failing {
        sqlx::query(
            "UPDATE subscriptions SET failing_since = NULL \
             WHERE id = ? AND failing_since IS NOT NULL",
        )
        .bind(sub)
        .execute(&mut *tx)
        .await?;
    }
    Ok(DeliveryOpResult::Advanced { held, disabled })
}
