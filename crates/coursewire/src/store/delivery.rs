//! Store surface of push delivery: subscriptions, per-(subscription, subject) delivery lanes,
//! attempts and dead letters. Only SQL lives behind [`DeliveryStore`]; what to send, when to
//! retry and when to give up is decided by `bus::delivery`.
//!
//! Durability rule: an attempt row is committed before its request is sent
//! ([`DeliveryStore::begin_attempt`]) and the answer is recorded, together with the lane's
//! move (ack, retry time, exhausted or dead-lettered), in one transaction
//! ([`DeliveryStore::finish_attempt`]). A process killed in between leaves an unfinished
//! attempt and an unacknowledged lane: the event is sent again, with the same `webhook-id`.

use serde::Serialize;

use super::dialect::Tx;
use super::lease::{CURSOR, DELIVERY_LANE};
use super::processing::ChangeEventRecord;
use super::query::sql;
use super::{ChangeEventRow, Store, StoreError, StoreResult};

/// What happens to an event whose retry schedule is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    /// The lane stops at the event until an operator retries it (order is kept).
    Block,
    /// The event is dead-lettered and the lane moves on.
    Skip,
}

impl OnExhausted {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Skip => "skip",
        }
    }

    pub fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "block" => Ok(Self::Block),
            "skip" => Ok(Self::Skip),
            other => Err(StoreError::Other(format!(
                "on_exhausted must be block or skip, not {other:?}"
            ))),
        }
    }
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub id: i64,
    pub name: String,
    /// Shown (API, CLI) with its credentials masked; delivery uses it as stored.
    #[serde(serialize_with = "crate::secrets::serialize_redacted")]
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    pub types: Vec<String>,
    pub paused: bool,
    pub retry_schedule_ms: Vec<u64>,
    pub on_exhausted: OnExhausted,
    pub failing_since_ms: Option<i64>,
    pub disabled_at_ms: Option<i64>,
    pub disabled_reason: Option<String>,
    pub created_at_ms: i64,
    /// Who created it: a token's name, `api.token`, or `cli`.
    pub created_by: Option<String>,
    /// The outbox position every change event up to which was delivered, filtered out,
    /// dead-lettered or handed to a lane (for push), or read (for pull).
    pub cursor: i64,
}

impl Subscription {
    /// A subscription without a URL is read through the pull API only.
    pub fn pushes(&self) -> bool {
        !self.url.is_empty()
    }
}

/// A subscription to create.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub name: String,
    pub url: String,
    pub secret: String,
    pub types: Vec<String>,
    pub retry_schedule_ms: Vec<u64>,
    pub on_exhausted: OnExhausted,
    /// Start the cursor at the outbox's newest event instead of its start.
    pub from_now: bool,
    pub created_at_ms: i64,
    pub created_by: String,
}

/// A lane ready for its next attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryLane {
    pub subscription_id: i64,
    pub subject: String,
    pub acked_sequence: i64,
    /// The newest sequence of the subject that discovery has seen.
    pub latest_sequence: i64,
    /// Attempts already made at the head event.
    pub attempts: i64,
}

/// The next event of a lane, with the time its cause reached the inbox.
#[derive(Debug, Clone)]
pub struct LaneEvent {
    pub row: ChangeEventRow,
    pub received_at_ms: Option<i64>,
}

/// A failing subject of a subscription, for operators: where its lane stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LaneStatus {
    pub subject: String,
    pub acked_sequence: i64,
    pub latest_sequence: i64,
    pub attempts: i64,
    #[sqlx(rename = "next_attempt_at")]
    pub next_attempt_at_ms: i64,
    /// `block` stopped it: `subscriptions retry` starts it again.
    pub exhausted: bool,
    pub last_error: Option<String>,
}

/// A change event past a subscription's cursor (see [`DeliveryStore::events_past_cursor`]).
#[derive(Debug, Clone)]
pub struct CursorEvent {
    pub event: LaneEvent,
    /// Its subject has a lane for this subscription (it failed earlier and is on the slow
    /// path): the event must go to the lane, behind the subject's earlier events.
    pub on_lane: bool,
}

/// Events of one subject the cursor hands to the subject's lane: the lane is created if it
/// does not exist (acknowledged up to `first_sequence − 1`), else it learns the newer events.
#[derive(Debug, Clone)]
pub struct Handoff {
    pub subject: String,
    pub first_sequence: i64,
    pub last_sequence: i64,
    /// The fast-path attempt at `first_sequence` that failed and its answer, which set the
    /// new lane's retry time (or exhaust it, or dead-letter the event). Its `attempt_id` is
    /// unused: the attempt row is written with the answer.
    pub failure: Option<(AttemptStart, AttemptEnd)>,
}

/// A subscription's cursor moved forward by its pump (see [`DeliveryOp::Advance`]).
#[derive(Debug, Clone)]
pub struct CursorAdvance {
    pub subscription_id: i64,
    pub owner: String,
    /// Every event up to here is delivered, filtered out or in `handoffs`.
    pub position: i64,
    pub lease_until_ms: i64,
    pub handoffs: Vec<Handoff>,
    /// A delivery succeeded while the subscription may be marked failing: clear the mark.
    pub clear_failing: bool,
}

/// An attempt about to be sent.
#[derive(Debug, Clone)]
pub struct AttemptStart {
    pub subscription_id: i64,
    pub subject: String,
    pub event_id: String,
    pub sequence: i64,
    pub attempt: i64,
    pub started_at_ms: i64,
    /// Set when this re-sends a dead letter (by id): the lane is left alone.
    pub dead_letter: Option<i64>,
}

/// How the lane moves after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneMove {
    /// Delivered: the lane's acknowledged sequence becomes `sequence`.
    Acked,
    /// Failed: try again at this time.
    RetryAt(i64),
    /// Failed for the last time; the lane stops (`block`).
    Exhausted,
    /// Failed for the last time; dead-lettered and the lane moves on (`skip`).
    DeadLettered { position: i64 },
}

/// Where a lane stands after an answer: what finishing an attempt, or handing a failed one
/// to a new lane, writes to the lane row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LaneAfter {
    /// The acknowledged sequence, when the answer moved it.
    pub acked: Option<i64>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub exhausted: bool,
}

impl LaneMove {
    /// The lane after attempt `start` at its head got this move.
    pub(super) fn lane_after(&self, start: &AttemptStart) -> LaneAfter {
        let (acked, attempts, next_attempt_at, exhausted) = match self {
            Self::Acked | Self::DeadLettered { .. } => (Some(start.sequence), 0, 0, false),
            Self::RetryAt(at) => (None, start.attempt, *at, false),
            Self::Exhausted => (None, start.attempt, 0, true),
        };
        LaneAfter {
            acked,
            attempts,
            next_attempt_at,
            exhausted,
        }
    }
}

/// The answer to an attempt.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub attempt_id: i64,
    pub finished_at_ms: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub lane: LaneMove,
    /// Disable the endpoint if it has been failing since before this time.
    pub disable_if_failing_since_before_ms: i64,
    /// Disable the endpoint now (e.g. it answered 410 Gone).
    pub disable_now: bool,
    /// What an operator reads if this answer disables the endpoint.
    pub disable_reason: String,
    /// Give the lane's lease up in the same write (the lane has nothing left to send).
    pub release: bool,
    /// A success clears the subscription's `failing_since` (skipped when it is known clear:
    /// one statement less per delivery).
    pub clear_failing: bool,
}

/// One attempt as stored, for operators and tests.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub subject: String,
    pub event_id: String,
    pub sequence: i64,
    pub attempt: i64,
    #[sqlx(rename = "started_at")]
    pub started_at_ms: i64,
    #[sqlx(rename = "finished_at")]
    pub finished_at_ms: Option<i64>,
    pub status: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// A dead-lettered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub subscription_id: i64,
    pub event_position: i64,
    pub event_id: String,
    pub subject: String,
    pub sequence: i64,
    pub state: String,
    pub reason: String,
}

/// What `retry` reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetryCounts {
    pub lanes: u64,
    pub dead_letters: u64,
    pub re_enabled: bool,
}

/// One write of the deliverer (see [`DeliveryStore::record_delivery`]).
#[derive(Debug, Clone)]
pub enum DeliveryOp {
    /// The attempt row, before the request goes out.
    Begin(AttemptStart),
    /// The answer, with the lane's move.
    Finish(AttemptStart, AttemptEnd),
    /// Past an event the subscription does not want.
    Skip {
        subscription_id: i64,
        subject: String,
        sequence: i64,
    },
    /// A subscription's cursor moved (and its lease renewed), with the subjects handed to
    /// lanes on the way. Nothing is written if another process holds the cursor now.
    Advance(CursorAdvance),
    /// The lane's lease, given up.
    Release {
        subscription_id: i64,
        subject: String,
        owner: String,
    },
}

/// What one [`DeliveryOp`] gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOpResult {
    /// `Begin`: the attempt row's id.
    AttemptId(i64),
    /// `Finish`: whether it disabled the endpoint.
    Disabled(bool),
    /// `Advance`: whether this process still held the cursor, and whether a handed-off
    /// failure disabled the endpoint.
    Advanced { held: bool, disabled: bool },
    /// `Skip`, `Release`.
    Done,
}

/// A `subscriptions` row as stored.
#[derive(Debug, sqlx::FromRow)]
struct SubscriptionRecord {
    id: i64,
    name: String,
    url: String,
    secret: String,
    types: String,
    paused: bool,
    retry_schedule_ms: String,
    on_exhausted: String,
    failing_since: Option<i64>,
    disabled_at: Option<i64>,
    disabled_reason: Option<String>,
    created_at: i64,
    created_by: Option<String>,
    scan_position: i64,
}

impl TryFrom<SubscriptionRecord> for Subscription {
    type Error = StoreError;

    fn try_from(r: SubscriptionRecord) -> StoreResult<Self> {
        Ok(Subscription {
            id: r.id,
            name: r.name,
            url: r.url,
            secret: r.secret,
            types: serde_json::from_str(&r.types)
                .map_err(|e| StoreError::Other(format!("subscription types: {e}")))?,
            paused: r.paused,
            retry_schedule_ms: serde_json::from_str(&r.retry_schedule_ms)
                .map_err(|e| StoreError::Other(format!("subscription retry schedule: {e}")))?,
            on_exhausted: OnExhausted::parse(&r.on_exhausted)?,
            failing_since_ms: r.failing_since,
            disabled_at_ms: r.disabled_at,
            disabled_reason: r.disabled_reason,
            created_at_ms: r.created_at,
            created_by: r.created_by,
            cursor: r.scan_position,
        })
    }
}

/// A change event with the time its cause reached the inbox.
#[derive(Debug, sqlx::FromRow)]
struct LaneEventRecord {
    #[sqlx(flatten)]
    event: ChangeEventRecord,
    inbox_received_at: Option<i64>,
}

impl TryFrom<LaneEventRecord> for LaneEvent {
    type Error = StoreError;

    fn try_from(r: LaneEventRecord) -> StoreResult<Self> {
        Ok(LaneEvent {
            row: r.event.try_into()?,
            received_at_ms: r.inbox_received_at,
        })
    }
}

/// A change event past a cursor, with whether its subject has a lane.
#[derive(Debug, sqlx::FromRow)]
struct CursorEventRecord {
    #[sqlx(flatten)]
    event: LaneEventRecord,
    on_lane: bool,
}

fn json_text<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}

impl Store {
    /// Creates a subscription; `None` when the name is taken.
    pub async fn create_subscription(
        &self,
        new: &NewSubscription,
    ) -> StoreResult<Option<Subscription>> {
        let row: Option<SubscriptionRecord> = sql(
            "INSERT INTO subscriptions (name, url, secret, types, retry_schedule_ms, on_exhausted, \
             created_at, created_by, scan_position) VALUES ($1, $2, $3, $4, $5, $6, $7, $9, \
             CASE WHEN $8 THEN (SELECT COALESCE(MAX(position), 0) FROM change_events) ELSE 0 END) \
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
        .bind(&new.created_by)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Subscription::try_from).transpose()
    }

    /// Every subscription, by name.
    pub async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let rows: Vec<SubscriptionRecord> = sql("SELECT * FROM subscriptions ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Subscription::try_from).collect()
    }

    pub async fn subscription(&self, name: &str) -> StoreResult<Option<Subscription>> {
        let row: Option<SubscriptionRecord> = sql("SELECT * FROM subscriptions WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Subscription::try_from).transpose()
    }

    /// Every subscription's id and stored signing secret (to seal those still in the clear).
    pub async fn subscription_secrets(&self) -> StoreResult<Vec<(i64, String)>> {
        sql("SELECT id, secret FROM subscriptions ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }

    pub async fn set_subscription_secret(&self, id: i64, secret: &str) -> StoreResult<()> {
        sql("UPDATE subscriptions SET secret = $1 WHERE id = $2")
            .bind(secret)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pauses or resumes; false when there is no such subscription.
    pub async fn set_paused(&self, name: &str, paused: bool) -> StoreResult<bool> {
        let done = sql("UPDATE subscriptions SET paused = $1 WHERE name = $2")
            .bind(paused)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done > 0)
    }

    /// Removes a subscription with its lanes, attempts and dead letters.
    pub async fn remove_subscription(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin_write().await?;
        let id: Option<(i64,)> = sql("SELECT id FROM subscriptions WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut tx)
            .await?;
        let Some((id,)) = id else {
            return Ok(false);
        };
        for table in [
            "DELETE FROM delivery_lanes WHERE subscription_id = $1",
            "DELETE FROM delivery_attempts WHERE subscription_id = $1",
            "DELETE FROM delivery_dead_letters WHERE subscription_id = $1",
            "DELETE FROM subscriptions WHERE id = $1",
        ] {
            sql(table).bind(id).execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Bulk retry: exhausted lanes start again from their head, dead letters are queued for
    /// one more delivery each, and a disabled endpoint is enabled again.
    pub async fn retry_subscription(&self, name: &str) -> StoreResult<Option<RetryCounts>> {
        let mut tx = self.pool.begin_write().await?;
        let row: Option<(i64, Option<i64>)> =
            sql("SELECT id, disabled_at FROM subscriptions WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut tx)
                .await?;
        let Some((id, disabled_at)) = row else {
            return Ok(None);
        };
        let lanes = sql(
            "UPDATE delivery_lanes SET exhausted = FALSE, attempts = 0, next_attempt_at = 0 \
             WHERE subscription_id = $1 AND exhausted",
        )
        .bind(id)
        .execute(&mut tx)
        .await?;
        let dead_letters = sql("UPDATE delivery_dead_letters SET state = 'retry' \
             WHERE subscription_id = $1 AND state = 'dead'")
        .bind(id)
        .execute(&mut tx)
        .await?;
        sql(
            "UPDATE subscriptions SET disabled_at = NULL, disabled_reason = NULL, \
             failing_since = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(Some(RetryCounts {
            lanes,
            dead_letters,
            re_enabled: disabled_at.is_some(),
        }))
    }

    /// Active subscriptions whose cursor is behind the outbox's newest change event.
    pub async fn subscriptions_behind(&self) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sql(
            "SELECT id FROM subscriptions WHERE NOT paused AND disabled_at IS NULL \
             AND url <> '' AND scan_position < (SELECT COALESCE(MAX(position), 0) FROM change_events)",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Takes (or renews) a subscription's cursor for `owner` until `until_ms`, unless another
    /// owner holds a live lease. Returns the cursor's position when `owner` holds it now.
    pub async fn take_cursor(
        &self,
        subscription_id: i64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> = CURSOR
            .claim(vec![subscription_id.into()], owner, now_ms, until_ms)
            .push(" RETURNING scan_position")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(p,)| p))
    }

    /// A pull-only subscription's reader has everything up to `position` (it asked for the
    /// events after it): its cursor, and so its lag, moves there. A push subscription's
    /// cursor belongs to its pump and is left alone.
    pub async fn acknowledge_pull(&self, subscription_id: i64, position: i64) -> StoreResult<()> {
        sql(
            "UPDATE subscriptions SET scan_position = CASE WHEN scan_position > $1 THEN scan_position ELSE $1 END \
             WHERE id = $2 AND url = ''",
        )
        .bind(position)
        .bind(subscription_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a subscription's cursor up (its pump has stopped).
    pub async fn release_cursor(&self, subscription_id: i64, owner: &str) -> StoreResult<()> {
        CURSOR
            .release(vec![subscription_id.into()], owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` change events with `position > after`, by position, each with whether
    /// its subject has a lane for the subscription.
    pub async fn events_past_cursor(
        &self,
        subscription_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<CursorEvent>> {
        let rows: Vec<CursorEventRecord> = sql(
            "SELECT c.*, i.received_at AS inbox_received_at, EXISTS (SELECT 1 FROM \
             delivery_lanes l WHERE l.subscription_id = $1 AND l.subject = c.subject) AS on_lane \
             FROM change_events c LEFT JOIN inbox i ON i.id = c.inbox_id \
             WHERE c.position > $2 ORDER BY c.position LIMIT $3",
        )
        .bind(subscription_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CursorEvent {
                    event: r.event.try_into()?,
                    on_lane: r.on_lane,
                })
            })
            .collect()
    }

    /// Lanes of active (not paused, not disabled) subscriptions that are due at `now_ms`, not
    /// exhausted, and have an event past their acknowledged sequence.
    pub async fn due_lanes(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<DeliveryLane>> {
        sql(
            "SELECT l.subscription_id, l.subject, l.acked_sequence, l.latest_sequence, l.attempts \
             FROM delivery_lanes l JOIN subscriptions s ON s.id = l.subscription_id \
             WHERE NOT s.paused AND s.disabled_at IS NULL AND NOT l.exhausted \
             AND l.latest_sequence > l.acked_sequence AND l.next_attempt_at <= $1 \
             ORDER BY l.next_attempt_at LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// In one transaction, takes each lane for `owner` until `until_ms` unless another owner
    /// holds a live lease. Returns the lanes taken, as stored now.
    pub async fn claim_delivery_lanes(
        &self,
        lanes: &[DeliveryLane],
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryLane>> {
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin_write().await?;
        let mut won = Vec::with_capacity(lanes.len());
        for lane in lanes {
            let key = vec![lane.subscription_id.into(), (&lane.subject).into()];
            let row: Option<DeliveryLane> = DELIVERY_LANE
                .claim(key, owner, now_ms, until_ms)
                .push(" RETURNING subscription_id, subject, acked_sequence, latest_sequence, attempts")
                .fetch_optional(&mut tx)
                .await?;
            won.extend(row);
        }
        tx.commit().await?;
        Ok(won)
    }

    /// Takes (or renews) the lane for `owner` until `until_ms`, unless another owner holds
    /// a live lease. True when `owner` holds it now.
    pub async fn lease_lane(
        &self,
        subscription_id: i64,
        subject: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let done = DELIVERY_LANE
            .claim(
                vec![subscription_id.into(), subject.into()],
                owner,
                now_ms,
                until_ms,
            )
            .execute(&self.pool)
            .await?;
        Ok(done > 0)
    }

    /// The lane as stored now.
    pub async fn lane(
        &self,
        subscription_id: i64,
        subject: &str,
    ) -> StoreResult<Option<DeliveryLane>> {
        sql(
            "SELECT subscription_id, subject, acked_sequence, latest_sequence, attempts \
             FROM delivery_lanes WHERE subscription_id = $1 AND subject = $2",
        )
        .bind(subscription_id)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
    }

    /// The lowest-position change event of `subject` with a sequence above `after_sequence`.
    pub async fn next_lane_event(
        &self,
        subject: &str,
        after_sequence: i64,
    ) -> StoreResult<Option<LaneEvent>> {
        let row: Option<LaneEventRecord> = sql(
            "SELECT c.*, i.received_at AS inbox_received_at FROM change_events c \
             LEFT JOIN inbox i ON i.id = c.inbox_id \
             WHERE c.subject = $1 AND c.sequence > $2 ORDER BY c.position LIMIT 1",
        )
        .bind(subject)
        .bind(after_sequence)
        .fetch_optional(&self.pool)
        .await?;
        row.map(LaneEvent::try_from).transpose()
    }

    /// Writes `ops` in ONE transaction, in order, and returns one result per op. The deliverer
    /// groups the writes of many lanes this way (one commit, one fsync on SQLite, for many
    /// deliveries); the single-op methods below are the same thing for one write.
    pub async fn record_delivery(&self, ops: &[DeliveryOp]) -> StoreResult<Vec<DeliveryOpResult>> {
        let mut tx = self.pool.begin_write().await?;
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
                    sql(
                        "UPDATE delivery_lanes SET acked_sequence = $1, attempts = 0, \
                         next_attempt_at = 0 \
                         WHERE subscription_id = $2 AND subject = $3 AND acked_sequence < $4",
                    )
                    .bind(sequence)
                    .bind(subscription_id)
                    .bind(subject)
                    .bind(sequence)
                    .execute(&mut tx)
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
                    DELIVERY_LANE
                        .release(vec![subscription_id.into(), subject.into()], owner)
                        .execute(&mut tx)
                        .await?;
                    DeliveryOpResult::Done
                }
            });
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Gives the lane up.
    pub async fn release_delivery_lane(
        &self,
        subscription_id: i64,
        subject: &str,
        owner: &str,
    ) -> StoreResult<()> {
        self.record_delivery(&[DeliveryOp::Release {
            subscription_id,
            subject: subject.to_owned(),
            owner: owner.to_owned(),
        }])
        .await
        .map(drop)
    }

    /// Moves the lane past an event the subscription does not want (type filter).
    pub async fn skip_event(
        &self,
        subscription_id: i64,
        subject: &str,
        sequence: i64,
    ) -> StoreResult<()> {
        self.record_delivery(&[DeliveryOp::Skip {
            subscription_id,
            subject: subject.to_owned(),
            sequence,
        }])
        .await
        .map(drop)
    }

    /// Commits the attempt row before the request goes out (the lane's attempt count moves
    /// with the answer).
    pub async fn begin_attempt(&self, start: &AttemptStart) -> StoreResult<i64> {
        match self
            .record_delivery(&[DeliveryOp::Begin(start.clone())])
            .await?
            .pop()
        {
            Some(DeliveryOpResult::AttemptId(id)) => Ok(id),
            other => Err(StoreError::Other(format!(
                "begin_attempt: unexpected {other:?}"
            ))),
        }
    }

    /// Records the answer and moves the lane, in one transaction. Returns true if this
    /// disabled the endpoint.
    pub async fn finish_attempt(
        &self,
        start: &AttemptStart,
        end: &AttemptEnd,
    ) -> StoreResult<bool> {
        match self
            .record_delivery(&[DeliveryOp::Finish(start.clone(), end.clone())])
            .await?
            .pop()
        {
            Some(DeliveryOpResult::Disabled(disabled)) => Ok(disabled),
            other => Err(StoreError::Other(format!(
                "finish_attempt: unexpected {other:?}"
            ))),
        }
    }

    /// The lanes (failing subjects) of a subscription, most behind first, at most `limit`.
    pub async fn lanes_of(&self, subscription_id: i64, limit: i64) -> StoreResult<Vec<LaneStatus>> {
        sql("SELECT * FROM delivery_lanes WHERE subscription_id = $1 \
             ORDER BY latest_sequence - acked_sequence DESC, subject LIMIT $2")
        .bind(subscription_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Attempts of a subscription, oldest first.
    pub async fn attempts(&self, subscription_id: i64) -> StoreResult<Vec<AttemptRow>> {
        sql("SELECT * FROM delivery_attempts WHERE subscription_id = $1 ORDER BY id")
            .bind(subscription_id)
            .fetch_all(&self.pool)
            .await
    }

    /// Dead letters of a subscription, oldest first.
    pub async fn dead_letters(&self, subscription_id: i64) -> StoreResult<Vec<DeadLetter>> {
        sql("SELECT * FROM delivery_dead_letters WHERE subscription_id = $1 ORDER BY id")
            .bind(subscription_id)
            .fetch_all(&self.pool)
            .await
    }

    /// Dead letters queued for retry on active subscriptions.
    /// Dead letters queued for one more delivery on active subscriptions, oldest event first,
    /// with those whose sending was cut off (taken before `stale_before_ms`, never finished).
    pub async fn dead_letters_to_retry(
        &self,
        stale_before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeadLetter>> {
        sql(
            "SELECT d.* FROM delivery_dead_letters d JOIN subscriptions s \
             ON s.id = d.subscription_id \
             WHERE (d.state = 'retry' OR (d.state = 'sending' AND d.at < $1)) \
             AND NOT s.paused AND s.disabled_at IS NULL ORDER BY d.event_position LIMIT $2",
        )
        .bind(stale_before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Marks a queued dead letter as being sent; false when it is not queued any more (sent
    /// meanwhile, or being sent by another task or process).
    pub async fn take_dead_letter(
        &self,
        id: i64,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> StoreResult<bool> {
        let done = sql(
            "UPDATE delivery_dead_letters SET state = 'sending', at = $1 WHERE id = $2 \
             AND (state = 'retry' OR (state = 'sending' AND at < $3))",
        )
        .bind(now_ms)
        .bind(id)
        .bind(stale_before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done > 0)
    }

    /// The event at an outbox position.
    pub async fn change_event_at(&self, position: i64) -> StoreResult<Option<ChangeEventRow>> {
        let row: Option<ChangeEventRecord> = sql("SELECT * FROM change_events WHERE position = $1")
            .bind(position)
            .fetch_optional(&self.pool)
            .await?;
        row.map(ChangeEventRow::try_from).transpose()
    }

    /// Records the answer to a dead letter's re-send (`end.lane` is ignored) and marks it
    /// delivered, or back to dead; `end` is `None` when its event no longer exists.
    pub async fn finish_dead_letter(
        &self,
        id: i64,
        delivered: bool,
        end: Option<&AttemptEnd>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        if let Some(end) = end {
            sql(
                "UPDATE delivery_attempts SET finished_at = $1, status = $2, outcome = $3, \
                 error = $4 WHERE id = $5",
            )
            .bind(end.finished_at_ms)
            .bind(end.status)
            .bind(if delivered { "delivered" } else { "failed" })
            .bind(&end.error)
            .bind(end.attempt_id)
            .execute(&mut tx)
            .await?;
        }
        sql("UPDATE delivery_dead_letters SET state = $1 WHERE id = $2")
            .bind(if delivered { "delivered" } else { "dead" })
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` change events with `position > after` created in `[from_ms, to_ms)`, by
    /// position (the window a `replay --subscription` re-delivers).
    pub async fn change_events_created_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEventRow>> {
        let rows: Vec<ChangeEventRecord> = sql(
            "SELECT * FROM change_events WHERE created_at >= $1 AND created_at < $2 \
             AND position > $3 ORDER BY position LIMIT $4",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ChangeEventRow::try_from).collect()
    }

    /// Queues `events` for one more delivery each to the subscription, with their own ids, out
    /// of lane order (the dead-letter retry path; one event per subject at a time, oldest
    /// first). Returns how many were queued.
    pub async fn queue_redeliveries(
        &self,
        subscription_id: i64,
        events: &[ChangeEventRow],
        reason: &str,
        at_ms: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin_write().await?;
        for event in events {
            sql(
                "INSERT INTO delivery_dead_letters (subscription_id, event_position, event_id, \
                 subject, sequence, state, reason, at) VALUES ($1, $2, $3, $4, $5, 'retry', $6, $7) \
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
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(events.len() as u64)
    }

    /// The outbox position a sink has published up to (0 if never).
    pub async fn sink_cursor(&self, name: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = sql("SELECT position FROM sink_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |(p,)| p))
    }

    /// Records that a sink has published up to `position`.
    pub async fn set_sink_cursor(&self, name: &str, position: i64) -> StoreResult<()> {
        sql("INSERT INTO sink_cursors (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position")
        .bind(name)
        .bind(position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Per subscription name: creation time of its oldest undelivered event, if any.
    pub async fn delivery_backlog(&self) -> StoreResult<Vec<(String, Option<i64>)>> {
        let rows: Vec<(String, Option<i64>, Option<i64>)> = sql("SELECT s.name, \
             (SELECT MIN(c.created_at) FROM delivery_lanes l JOIN change_events c \
              ON c.subject = l.subject AND c.sequence = l.acked_sequence + 1 \
              WHERE l.subscription_id = s.id), \
             (SELECT MIN(c.created_at) FROM change_events c WHERE c.position > s.scan_position) \
             FROM subscriptions s ORDER BY s.name")
        .fetch_all(&self.pool)
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

/// [`DeliveryOp::Begin`] inside its transaction.
async fn begin_in(tx: &mut Tx, start: &AttemptStart) -> StoreResult<i64> {
    let (id,): (i64,) = sql(
        "INSERT INTO delivery_attempts (subscription_id, subject, event_id, sequence, \
         attempt, started_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
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
async fn finish_in(tx: &mut Tx, start: &AttemptStart, end: &AttemptEnd) -> StoreResult<bool> {
    let delivered = end.lane == LaneMove::Acked;
    sql(
        "UPDATE delivery_attempts SET finished_at = $1, status = $2, outcome = $3, error = $4 \
         WHERE id = $5",
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
    sql(
        "UPDATE delivery_lanes SET acked_sequence = CASE WHEN acked_sequence > COALESCE($1, 0) THEN acked_sequence ELSE COALESCE($1, 0) END, \
         attempts = $2, next_attempt_at = $3, exhausted = $4, last_error = $5, \
         lease_owner = CASE WHEN $8 THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN $8 THEN 0 ELSE lease_until END \
         WHERE subscription_id = $6 AND subject = $7",
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
    tx: &mut Tx,
    start: &AttemptStart,
    position: i64,
    end: &AttemptEnd,
) -> StoreResult<()> {
    sql(
        "INSERT INTO delivery_dead_letters (subscription_id, event_position, \
         event_id, subject, sequence, state, reason, at) \
         VALUES ($1, $2, $3, $4, $5, 'dead', $6, $7) \
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
async fn drop_caught_up_lane(tx: &mut Tx, subscription_id: i64, subject: &str) -> StoreResult<()> {
    sql(
        "DELETE FROM delivery_lanes WHERE subscription_id = $1 AND subject = $2 \
         AND acked_sequence >= latest_sequence AND NOT exhausted",
    )
    .bind(subscription_id)
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A delivery succeeded: the subscription is not failing any more.
async fn clear_failing_in(tx: &mut Tx, subscription_id: i64) -> StoreResult<()> {
    sql("UPDATE subscriptions SET failing_since = NULL \
         WHERE id = $1 AND failing_since IS NOT NULL")
    .bind(subscription_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An answer's mark on the subscription: a success clears `failing_since` (when asked), a
/// failure sets it and disables the endpoint past the window. True if this disabled it.
async fn note_answer_in(
    tx: &mut Tx,
    subscription_id: i64,
    delivered: bool,
    end: &AttemptEnd,
) -> StoreResult<bool> {
    let disabled = if delivered {
        if end.clear_failing {
            clear_failing_in(tx, subscription_id).await?;
        }
        false
    } else {
        sql("UPDATE subscriptions SET failing_since = COALESCE(failing_since, $1) WHERE id = $2")
            .bind(end.finished_at_ms)
            .bind(subscription_id)
            .execute(&mut *tx)
            .await?;
        let done = sql(
            "UPDATE subscriptions SET disabled_at = $1, disabled_reason = $2 \
             WHERE id = $3 AND disabled_at IS NULL AND ($4 OR failing_since < $5)",
        )
        .bind(end.finished_at_ms)
        .bind(&end.disable_reason)
        .bind(subscription_id)
        .bind(end.disable_now)
        .bind(end.disable_if_failing_since_before_ms)
        .execute(&mut *tx)
        .await?;
        done > 0
    };
    Ok(disabled)
}

/// [`DeliveryOp::Advance`] inside its transaction.
async fn advance_in(tx: &mut Tx, advance: &CursorAdvance) -> StoreResult<DeliveryOpResult> {
    // The cursor moves only while this process still holds its lease.
    let held = CURSOR
        .renew_setting(
            vec![advance.subscription_id.into()],
            &advance.owner,
            advance.lease_until_ms,
            ", scan_position = CASE WHEN scan_position > $4 THEN scan_position ELSE $4 END",
        )
        .bind(advance.position)
        .execute(&mut *tx)
        .await?
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
            sql(
                "INSERT INTO delivery_attempts (subscription_id, subject, event_id, sequence, \
                 attempt, started_at, finished_at, status, outcome, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'failed', $9)",
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
        sql(
            "INSERT INTO delivery_lanes (subscription_id, subject, acked_sequence, \
             latest_sequence, attempts, next_attempt_at, exhausted, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (subscription_id, subject) DO UPDATE \
             SET latest_sequence = CASE WHEN delivery_lanes.latest_sequence > excluded.latest_sequence \
             THEN delivery_lanes.latest_sequence ELSE excluded.latest_sequence END",
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
        clear_failing_in(tx, sub).await?;
    }
    Ok(DeliveryOpResult::Advanced { held, disabled })
}
