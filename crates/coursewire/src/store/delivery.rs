//! Store surface of push delivery: subscriptions, per-(subscription, subject) delivery lanes,
//! attempts and dead letters. Only SQL lives behind [`DeliveryStore`]; what to send, when to
//! retry and when to give up is decided by `bus::delivery`.
//!
//! Durability rule: an attempt row is committed before its request is sent
//! ([`DeliveryStore::begin_attempt`]) and the answer is recorded, together with the lane's
//! move (ack, retry time, exhausted or dead-lettered), in one transaction
//! ([`DeliveryStore::finish_attempt`]). A process killed in between leaves an unfinished
//! attempt and an unacknowledged lane: the event is sent again, with the same `webhook-id`.

use async_trait::async_trait;
use serde::Serialize;

use super::{ChangeEventRow, StoreError, StoreResult};

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
}

/// A lane ready for its next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaneStatus {
    pub subject: String,
    pub acked_sequence: i64,
    pub latest_sequence: i64,
    pub attempts: i64,
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
    /// Disable the endpoint now, with this reason (e.g. 410 Gone).
    pub disable_now: Option<String>,
    /// Give the lane's lease up in the same write (the lane has nothing left to send).
    pub release: bool,
    /// A success clears the subscription's `failing_since` (skipped when it is known clear:
    /// one statement less per delivery).
    pub clear_failing: bool,
}

/// One attempt as stored, for operators and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub subject: String,
    pub event_id: String,
    pub sequence: i64,
    pub attempt: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub status: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// A dead-lettered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Creates a subscription; `None` when the name is taken.
    async fn create_subscription(&self, new: &NewSubscription)
    -> StoreResult<Option<Subscription>>;

    /// Every subscription, by name.
    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>>;

    async fn subscription(&self, name: &str) -> StoreResult<Option<Subscription>>;

    /// Pauses or resumes; false when there is no such subscription.
    async fn set_paused(&self, name: &str, paused: bool) -> StoreResult<bool>;

    /// Removes a subscription with its lanes, attempts and dead letters.
    async fn remove_subscription(&self, name: &str) -> StoreResult<bool>;

    /// Bulk retry: exhausted lanes start again from their head, dead letters are queued for
    /// one more delivery each, and a disabled endpoint is enabled again.
    async fn retry_subscription(&self, name: &str) -> StoreResult<Option<RetryCounts>>;

    /// Active subscriptions whose cursor is behind the outbox's newest change event.
    async fn subscriptions_behind(&self) -> StoreResult<Vec<i64>>;

    /// Takes (or renews) a subscription's cursor for `owner` until `until_ms`, unless another
    /// owner holds a live lease. Returns the cursor's position when `owner` holds it now.
    async fn take_cursor(
        &self,
        subscription_id: i64,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Option<i64>>;

    /// A pull-only subscription's reader has everything up to `position` (it asked for the
    /// events after it): its cursor, and so its lag, moves there. A push subscription's
    /// cursor belongs to its pump and is left alone.
    async fn acknowledge_pull(&self, subscription_id: i64, position: i64) -> StoreResult<()>;

    /// Gives a subscription's cursor up (its pump has stopped).
    async fn release_cursor(&self, subscription_id: i64, owner: &str) -> StoreResult<()>;

    /// Up to `limit` change events with `position > after`, by position, each with whether
    /// its subject has a lane for the subscription.
    async fn events_past_cursor(
        &self,
        subscription_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<CursorEvent>>;

    /// Lanes of active (not paused, not disabled) subscriptions that are due at `now_ms`, not
    /// exhausted, and have an event past their acknowledged sequence.
    async fn due_lanes(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<DeliveryLane>>;

    /// In one transaction, takes each lane for `owner` until `until_ms` unless another owner
    /// holds a live lease. Returns the lanes taken, as stored now.
    async fn claim_delivery_lanes(
        &self,
        lanes: &[DeliveryLane],
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<DeliveryLane>>;

    /// Takes (or renews) the lane for `owner` until `until_ms`, unless another owner holds
    /// a live lease. True when `owner` holds it now.
    async fn lease_lane(
        &self,
        subscription_id: i64,
        subject: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool>;

    /// The lane as stored now.
    async fn lane(&self, subscription_id: i64, subject: &str) -> StoreResult<Option<DeliveryLane>>;

    /// The lowest-position change event of `subject` with a sequence above `after_sequence`.
    async fn next_lane_event(
        &self,
        subject: &str,
        after_sequence: i64,
    ) -> StoreResult<Option<LaneEvent>>;

    /// Writes `ops` in ONE transaction, in order, and returns one result per op. The deliverer
    /// groups the writes of many lanes this way (one commit, one fsync on SQLite, for many
    /// deliveries); the single-op methods below are the same thing for one write.
    async fn record_delivery(&self, ops: &[DeliveryOp]) -> StoreResult<Vec<DeliveryOpResult>>;

    /// Gives the lane up.
    async fn release_delivery_lane(
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
    async fn skip_event(
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

    /// Commits the attempt row before the request goes out (the lane's attempt count moves with
    /// the answer).
    async fn begin_attempt(&self, start: &AttemptStart) -> StoreResult<i64> {
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
    async fn finish_attempt(&self, start: &AttemptStart, end: &AttemptEnd) -> StoreResult<bool> {
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
    async fn lanes_of(&self, subscription_id: i64, limit: i64) -> StoreResult<Vec<LaneStatus>>;

    /// Attempts of a subscription, oldest first.
    async fn attempts(&self, subscription_id: i64) -> StoreResult<Vec<AttemptRow>>;

    /// Dead letters of a subscription, oldest first.
    async fn dead_letters(&self, subscription_id: i64) -> StoreResult<Vec<DeadLetter>>;

    /// Dead letters queued for retry on active subscriptions.
    /// Dead letters queued for one more delivery on active subscriptions, oldest event first,
    /// with those whose sending was cut off (taken before `stale_before_ms`, never finished).
    async fn dead_letters_to_retry(
        &self,
        stale_before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeadLetter>>;

    /// Marks a queued dead letter as being sent; false when it is not queued any more (sent
    /// meanwhile, or being sent by another task or process).
    async fn take_dead_letter(
        &self,
        id: i64,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> StoreResult<bool>;

    /// The event at an outbox position.
    async fn change_event_at(&self, position: i64) -> StoreResult<Option<ChangeEventRow>>;

    /// Records the answer to a dead letter's re-send (`end.lane` is ignored) and marks it
    /// delivered, or back to dead; `end` is `None` when its event no longer exists.
    async fn finish_dead_letter(
        &self,
        id: i64,
        delivered: bool,
        end: Option<&AttemptEnd>,
    ) -> StoreResult<()>;

    /// Up to `limit` change events with `position > after` created in `[from_ms, to_ms)`, by
    /// position (the window a `replay --subscription` re-delivers).
    async fn change_events_created_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEventRow>>;

    /// Queues `events` for one more delivery each to the subscription, with their own ids, out
    /// of lane order (the dead-letter retry path; one event per subject at a time, oldest
    /// first). Returns how many were queued.
    async fn queue_redeliveries(
        &self,
        subscription_id: i64,
        events: &[ChangeEventRow],
        reason: &str,
        at_ms: i64,
    ) -> StoreResult<u64>;

    /// The outbox position a sink has published up to (0 if never).
    async fn sink_cursor(&self, name: &str) -> StoreResult<i64>;

    /// Records that a sink has published up to `position`.
    async fn set_sink_cursor(&self, name: &str, position: i64) -> StoreResult<()>;

    /// Per subscription name: creation time of its oldest undelivered event, if any.
    async fn delivery_backlog(&self) -> StoreResult<Vec<(String, Option<i64>)>>;
}

/// Maps a `subscriptions` row; the columns agree on both backends.
pub(super) fn subscription_row<'r, R>(r: &'r R) -> StoreResult<Subscription>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let types: String = r.try_get("types")?;
    let schedule: String = r.try_get("retry_schedule_ms")?;
    let on_exhausted: String = r.try_get("on_exhausted")?;
    Ok(Subscription {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        types: serde_json::from_str(&types)
            .map_err(|e| StoreError::Other(format!("subscription types: {e}")))?,
        paused: r.try_get("paused")?,
        retry_schedule_ms: serde_json::from_str(&schedule)
            .map_err(|e| StoreError::Other(format!("subscription retry schedule: {e}")))?,
        on_exhausted: OnExhausted::parse(&on_exhausted)?,
        failing_since_ms: r.try_get("failing_since")?,
        disabled_at_ms: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
        created_at_ms: r.try_get("created_at")?,
        cursor: r.try_get("scan_position")?,
    })
}

pub(super) fn attempt_row<'r, R>(r: &'r R) -> StoreResult<AttemptRow>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AttemptRow {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        event_id: r.try_get("event_id")?,
        sequence: r.try_get("sequence")?,
        attempt: r.try_get("attempt")?,
        started_at_ms: r.try_get("started_at")?,
        finished_at_ms: r.try_get("finished_at")?,
        status: r.try_get("status")?,
        outcome: r.try_get("outcome")?,
        error: r.try_get("error")?,
    })
}

pub(super) fn dead_letter_row<'r, R>(r: &'r R) -> StoreResult<DeadLetter>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(DeadLetter {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        event_position: r.try_get("event_position")?,
        event_id: r.try_get("event_id")?,
        subject: r.try_get("subject")?,
        sequence: r.try_get("sequence")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
    })
}

pub(super) fn json_text<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}

pub(super) fn lane_status_row<'r, R>(r: &'r R) -> StoreResult<LaneStatus>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(LaneStatus {
        subject: r.try_get("subject")?,
        acked_sequence: r.try_get("acked_sequence")?,
        latest_sequence: r.try_get("latest_sequence")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at_ms: r.try_get("next_attempt_at")?,
        exhausted: r.try_get("exhausted")?,
        last_error: r.try_get("last_error")?,
    })
}
