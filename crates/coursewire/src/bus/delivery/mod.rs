//! Push delivery: change events from the outbox to subscribers, as signed Standard Webhooks.
//!
//! A **lane** is one (subscription, subject). A lane has at most one event in flight, and its
//! next event is the lowest-position change event of the subject whose sequence is above the
//! lane's acknowledged sequence, so each subscriber sees a subject's events in order. All
//! lanes run concurrently, bounded by `delivery.concurrency`: a subscriber that is down holds
//! back only its own lanes, and a slow subject only itself.
//!
//! * **Discovery**: each subscription keeps a scan position in the outbox; new events there
//!   make sure their subject has a lane. A new subscription starts from the outbox's start.
//! * **Durability**: the attempt row is committed before the request goes out, and the answer
//!   is committed with the lane's move before anything else happens ([`crate::store::DeliveryStore`]).
//!   A killed process resends the unacknowledged head with the same `webhook-id`.
//! * **Failures** follow the subscription's retry schedule ([`schedule`]); an exhausted event
//!   blocks its lane (`block`) or is dead-lettered and skipped (`skip`); an endpoint that
//!   fails without a success for `delivery.disable_after_seconds`, or answers 410, is
//!   disabled. `coursewire subscriptions retry NAME` undoes all three.
//! * **Several processes** (PostgreSQL) share lanes through a lease on the lane row, renewed
//!   before every attempt; a killed process's lanes wait `timeout + 5 s` before another (or
//!   the restarted) process takes them.

pub mod admin;
pub mod filter;
pub mod schedule;
pub mod send;
pub mod signature;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::DeliveryConfig;
use crate::metrics::{Metrics, SubscriptionLabel};
use crate::store::{
    AttemptEnd, AttemptStart, DeadLetter, DeliveryLane, LaneMove, OnExhausted, Store, StoreResult,
    Subscription,
};
use send::Answer;

/// Lanes asked for per look; more are found on the next look.
const DUE_PAGE: i64 = 1024;
/// Outbox events scanned per subscription per look.
const SCAN_PAGE: i64 = 1024;
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// A lane lease outlasts one attempt (the request timeout) by this much; a process that dies
/// holds its lanes for at most `timeout + LEASE_MARGIN`.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Delivery settings, from `[delivery]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    pub timeout: Duration,
    pub idle_poll: Duration,
    pub disable_after: Duration,
}

impl From<&DeliveryConfig> for Settings {
    fn from(c: &DeliveryConfig) -> Self {
        Self {
            concurrency: c.concurrency.max(1),
            timeout: Duration::from_secs(c.timeout_seconds.max(1)),
            idle_poll: Duration::from_millis(c.idle_poll_ms.max(1)),
            disable_after: Duration::from_secs(c.disable_after_seconds),
        }
    }
}

/// The deliverer of one process.
#[derive(Debug)]
pub struct Delivery {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    client: reqwest::Client,
    owner: String,
    in_flight: Mutex<HashSet<(i64, String)>>,
}

/// Removes a lane from the in-flight set when its task ends, however it ends.
struct InFlight<'a>(&'a Delivery, (i64, String));

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut set = self.0.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.1);
    }
}

/// A number in `[0, 1)` from the OS generator, for jitter.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

impl Delivery {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("coursewire/", env!("CARGO_PKG_VERSION")))
            // Standard Webhooks: a redirect is a failure, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let owner = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Ok(Self {
            store,
            clock,
            metrics,
            settings,
            client,
            owner,
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// Delivers until `stop` is cancelled; requests in flight then finish and are recorded.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Err(err) = done {
                    tracing::error!(error = %err, "delivery lane task panicked");
                }
            }
            let pause = match self.look(&permits, &mut tasks, &stop).await {
                Ok(()) => self.settings.idle_poll,
                Err(err) => {
                    tracing::warn!(error = %err, "delivery: store error; retrying");
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// One look: discover lanes, start the due ones, retry queued dead letters.
    async fn look(
        self: &Arc<Self>,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        stop: &CancellationToken,
    ) -> StoreResult<()> {
        let subscriptions: HashMap<i64, Subscription> = self
            .store
            .subscriptions()
            .await?
            .into_iter()
            .filter(|s| !s.paused && s.disabled_at_ms.is_none())
            .map(|s| (s.id, s))
            .collect();
        if subscriptions.is_empty() {
            return Ok(());
        }
        for id in subscriptions.keys() {
            while self.store.discover_lanes(*id, SCAN_PAGE).await? as i64 == SCAN_PAGE {}
        }
        let now = self.clock.now_ms();
        for lane in self.store.due_lanes(now, DUE_PAGE).await? {
            let Some(subscription) = subscriptions.get(&lane.subscription_id) else {
                continue;
            };
            let key = (lane.subscription_id, lane.subject.clone());
            {
                let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if set.contains(&key) {
                    continue;
                }
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                set.insert(key.clone());
                let this = self.clone();
                let subscription = subscription.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    let _guard = InFlight(&this, key);
                    if let Err(err) = this.run_lane(subscription, lane, &stop).await {
                        tracing::warn!(error = %err, "delivery lane stopped on a store error");
                    }
                });
            }
        }
        for letter in self.store.dead_letters_to_retry(DUE_PAGE).await? {
            let Some(subscription) = subscriptions.get(&letter.subscription_id) else {
                continue;
            };
            // Dead letters are out of lane order anyway: each is a task of its own.
            let key = (letter.subscription_id, format!("dead-letter/{}", letter.id));
            let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if set.contains(&key) {
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            set.insert(key.clone());
            let this = self.clone();
            let subscription = subscription.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _guard = InFlight(&this, key);
                if let Err(err) = this.retry_dead_letter(&subscription, &letter).await {
                    tracing::warn!(error = %err, "dead-letter retry stopped on a store error");
                }
            });
        }
        Ok(())
    }

    /// Delivers a lane's events in order until it is drained, fails, or `stop` is cancelled.
    async fn run_lane(
        &self,
        mut subscription: Subscription,
        lane: DeliveryLane,
        stop: &CancellationToken,
    ) -> StoreResult<()> {
        let (id, subject) = (lane.subscription_id, lane.subject.clone());
        let lease = self.settings.timeout + LEASE_MARGIN;
        let result = async {
            loop {
                let now = self.clock.now_ms();
                let until = now + lease.as_millis() as i64;
                if !self
                    .store
                    .lease_lane(id, &subject, &self.owner, now, until)
                    .await?
                {
                    return Ok(()); // another process delivers this lane
                }
                // Re-read both: a pause, a removal or another process's progress shows at once.
                let Some(lane) = self.store.lane(id, &subject).await? else {
                    return Ok(());
                };
                match self.store.subscription(&subscription.name).await? {
                    Some(s) if s.id == id && !s.paused && s.disabled_at_ms.is_none() => {
                        subscription = s
                    }
                    _ => return Ok(()),
                }
                let Some(event) = self
                    .store
                    .next_lane_event(&subject, lane.acked_sequence)
                    .await?
                else {
                    return Ok(());
                };
                if !filter::wants(&subscription.types, &event.row.r#type) {
                    self.store
                        .skip_event(id, &subject, event.row.sequence)
                        .await?;
                    self.metrics.delivery(&subscription.name, "filtered");
                    continue;
                }
                let delivered = self.attempt(&subscription, &lane, &event).await?;
                if !delivered || stop.is_cancelled() {
                    return Ok(());
                }
            }
        }
        .await;
        self.store
            .release_delivery_lane(id, &subject, &self.owner)
            .await?;
        result
    }

    /// One attempt at a lane's head: recorded, sent, answered, recorded. True if delivered.
    async fn attempt(
        &self,
        subscription: &Subscription,
        lane: &DeliveryLane,
        event: &crate::store::LaneEvent,
    ) -> StoreResult<bool> {
        let start = AttemptStart {
            subscription_id: subscription.id,
            subject: lane.subject.clone(),
            event_id: event.row.id.clone(),
            sequence: event.row.sequence,
            attempt: lane.attempts + 1,
            started_at_ms: self.clock.now_ms(),
            dead_letter: None,
        };
        let attempt_id = self.store.begin_attempt(&start).await?;
        let answer = self
            .send(subscription, &event.row.id, &event.row.event)
            .await;
        let now = self.clock.now_ms();
        let (move_, outcome) = match &answer {
            Answer::Delivered { .. } => (LaneMove::Acked, "delivered"),
            Answer::Failed { retry_after, .. } => match schedule::next_delay(
                &subscription.retry_schedule_ms,
                start.attempt,
                jitter(),
                *retry_after,
            ) {
                Some(delay) => (LaneMove::RetryAt(now + delay.as_millis() as i64), "failed"),
                None => match subscription.on_exhausted {
                    OnExhausted::Block => (LaneMove::Exhausted, "exhausted"),
                    OnExhausted::Skip => (
                        LaneMove::DeadLettered {
                            position: event.row.position,
                        },
                        "dead_lettered",
                    ),
                },
            },
        };
        let disabled = self
            .store
            .finish_attempt(&start, &self.attempt_end(attempt_id, now, &answer, move_))
            .await?;
        self.count(subscription, outcome, disabled);
        if let Some(received) = event.received_at_ms
            && outcome == "delivered"
        {
            self.metrics
                .delivery_latency
                .observe((now - received).max(0) as f64 / 1000.0);
        }
        if outcome != "delivered" {
            tracing::info!(
                subscription = %subscription.name,
                subject = %lane.subject,
                event = %event.row.id,
                attempt = start.attempt,
                outcome,
                error = ?answer,
                "delivery attempt failed"
            );
        }
        Ok(outcome == "delivered")
    }

    fn attempt_end(
        &self,
        attempt_id: i64,
        now: i64,
        answer: &Answer,
        lane: LaneMove,
    ) -> AttemptEnd {
        let (status, error, gone) = match answer {
            Answer::Delivered { status } => (Some(i64::from(*status)), None, false),
            Answer::Failed {
                status,
                error,
                gone,
                ..
            } => (status.map(i64::from), Some(error.clone()), *gone),
        };
        AttemptEnd {
            attempt_id,
            finished_at_ms: now,
            status,
            error,
            lane,
            disable_if_failing_since_before_ms: now
                .saturating_sub(self.settings.disable_after.as_millis() as i64),
            disable_now: gone.then(|| "the endpoint answered 410 Gone".to_owned()),
        }
    }

    fn count(&self, subscription: &Subscription, outcome: &str, disabled: bool) {
        self.metrics
            .delivery_attempts
            .get_or_create(&SubscriptionLabel {
                subscription: subscription.name.clone(),
            })
            .inc();
        self.metrics.delivery(&subscription.name, outcome);
        if disabled {
            self.metrics.delivery(&subscription.name, "disabled");
            tracing::warn!(subscription = %subscription.name, "endpoint disabled after failing too long");
        }
    }

    /// Signs and sends one event.
    async fn send(
        &self,
        subscription: &Subscription,
        id: &str,
        event: &serde_json::Value,
    ) -> Answer {
        let key = match signature::secret_key(&subscription.secret) {
            Ok(key) => key,
            Err(err) => {
                return Answer::Failed {
                    status: None,
                    error: err.to_string(),
                    retry_after: None,
                    gone: false,
                };
            }
        };
        let body = event.to_string();
        let timestamp = self.clock.now_ms().div_euclid(1000);
        send::send(
            &self.client,
            &subscription.url,
            &key,
            id,
            timestamp,
            &body,
            self.settings.timeout,
        )
        .await
    }

    /// One more delivery of a dead letter (out of lane order: the lane moved past it),
    /// recorded as an attempt like any other.
    async fn retry_dead_letter(
        &self,
        subscription: &Subscription,
        letter: &DeadLetter,
    ) -> StoreResult<()> {
        let Some(row) = self.store.change_event_at(letter.event_position).await? else {
            return self.store.finish_dead_letter(letter.id, false, None).await;
        };
        let attempts = self.store.attempts(subscription.id).await?;
        let previous = attempts.iter().filter(|a| a.event_id == row.id).count() as i64;
        let start = AttemptStart {
            subscription_id: subscription.id,
            subject: row.subject.clone(),
            event_id: row.id.clone(),
            sequence: row.sequence,
            attempt: previous + 1,
            started_at_ms: self.clock.now_ms(),
            dead_letter: Some(letter.id),
        };
        let attempt_id = self.store.begin_attempt(&start).await?;
        let answer = self.send(subscription, &row.id, &row.event).await;
        let delivered = matches!(answer, Answer::Delivered { .. });
        let now = self.clock.now_ms();
        let end = self.attempt_end(attempt_id, now, &answer, LaneMove::Acked);
        self.store
            .finish_dead_letter(letter.id, delivered, Some(&end))
            .await?;
        self.count(
            subscription,
            if delivered {
                "dead_letter_delivered"
            } else {
                "dead_letter_failed"
            },
            false,
        );
        Ok(())
    }
}
