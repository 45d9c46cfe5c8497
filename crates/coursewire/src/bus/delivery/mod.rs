//! Push delivery: change events from the outbox to subscribers, as signed Standard Webhooks.
//!
//! Two paths, one order. Each subscriber sees a subject's events in sequence order, one in
//! flight at a time, while all subjects and all subscriptions go on concurrently (bounded by
//! `delivery.concurrency`).
//!
//! * **Fast path** ([`pump`]): one pump per subscription walks the outbox with a cursor and
//!   sends events as it reads them; the cursor moves in one write per batch. A new
//!   subscription starts from the outbox's start.
//! * **Slow path**: a subject whose event failed is handed to a **lane**, one (subscription,
//!   subject), whose next event is the lowest-position change event of the subject above the
//!   lane's acknowledged sequence. Lanes retry on the subscription's schedule ([`schedule`]):
//!   a subscriber that is down holds back only its own lanes, and a failing subject only
//!   itself. A lane that has caught up is deleted and its subject returns to the pump.
//! * **Durability**: the cursor never passes an event in flight, and a lane's attempt row is
//!   committed before its request goes out and its answer with the lane's move
//!   ([`crate::store::Store`]). A killed process sends the unacknowledged events
//!   again with the same `webhook-id`. Writes go through one group-commit writer
//!   ([`writer`]), so many pumps and lanes share a transaction.
//! * **Failures**: an exhausted event blocks its lane (`block`) or is dead-lettered and
//!   skipped (`skip`); an endpoint that fails without a success for
//!   `delivery.disable_after_seconds`, or answers 410, is disabled. `coursewire
//!   subscriptions retry NAME` undoes all three.
//! * **Several processes** (PostgreSQL) share the work through leases: on a subscription's
//!   cursor (one pump per subscription at a time, anywhere) and on lane rows, taken for many
//!   lanes at once by each look. A killed process's leases expire after `2 × timeout + 5 s`.
//! * **Pacing**: a look runs again within milliseconds while there is work, at once when this
//!   process's processor appended change events ([`crate::wake`]), else every `idle_poll_ms`;
//!   each look wakes the pumps waiting for events.

pub mod admin;
pub mod filter;
mod pump;
pub mod schedule;
pub mod send;
pub mod signature;
pub mod target;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::{Metrics, SubscriptionLabel};
use crate::secrets::SecretsKey;
use crate::store::{
    AttemptEnd, AttemptStart, DeadLetter, DeliveryLane, DeliveryOp, DeliveryOpResult, LaneMove,
    OnExhausted, Store, StoreError, StoreResult, Subscription,
};
use crate::wake::{Waiter, wait_or_sleep};
use send::Answer;
use target::{GuardedResolver, TargetPolicy};

/// Lanes asked for per look; more are found on the next look.
const DUE_PAGE: i64 = 1024;
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// How long a subscription whose cursor another process holds is left alone before this
/// process tries to take it again (it is free once that process's pump has gone idle).
const PUMP_ELSEWHERE_RETRY: Duration = Duration::from_secs(1);
/// Pause between looks while there is more work than free permits (or lanes just started):
/// short, so that permits freed by finished lanes are used again soon.
const BUSY_PAUSE: Duration = Duration::from_millis(5);
/// Added to a lane lease beyond its attempts' timeouts; a process that dies holds its lanes for
/// at most `2 × timeout + LEASE_MARGIN`.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Delivery settings, from `[delivery]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    pub timeout: Duration,
    pub idle_poll: Duration,
    pub disable_after: Duration,
    /// Which addresses may be connected to.
    pub targets: Arc<TargetPolicy>,
    /// Opens the subscriptions' sealed signing secrets.
    pub secrets: Arc<SecretsKey>,
}

impl TryFrom<&Config> for Settings {
    type Error = anyhow::Error;

    fn try_from(config: &Config) -> anyhow::Result<Self> {
        let c = &config.delivery;
        Ok(Self {
            concurrency: c.concurrency.max(1),
            timeout: Duration::from_secs(c.timeout_seconds.max(1)),
            idle_poll: Duration::from_millis(c.idle_poll_ms.max(1)),
            disable_after: Duration::from_secs(c.disable_after_seconds),
            targets: Arc::new(TargetPolicy::new(&c.allowed_networks).map_err(anyhow::Error::msg)?),
            secrets: Arc::new(SecretsKey::new(config.secrets.key.expose())?),
        })
    }
}

/// Request permits (`delivery.concurrency` in all). Pumps take theirs from `pumps`; lanes and
/// dead-letter re-sends from a reserve of their own first, then from the pumps' share. A
/// pump with a backlog waits in the semaphore's queue and gets every permit freed, so
/// without the reserve a retry would wait until the backlog is gone: under a flood (a catalog
/// load, or more than the machine can deliver) failing subjects would not be retried at all.
#[derive(Debug, Clone)]
struct Permits {
    pumps: Arc<Semaphore>,
    lanes: Arc<Semaphore>,
}

impl Permits {
    fn new(concurrency: usize) -> Self {
        let reserve = concurrency / 8;
        Self {
            pumps: Arc::new(Semaphore::new(concurrency - reserve)),
            lanes: Arc::new(Semaphore::new(reserve)),
        }
    }

    fn available_to_lanes(&self) -> usize {
        self.lanes.available_permits() + self.pumps.available_permits()
    }

    fn for_lane(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.lanes
            .clone()
            .try_acquire_owned()
            .or_else(|_| self.pumps.clone().try_acquire_owned())
            .ok()
    }
}

/// The deliverer of one process.
#[derive(Debug)]
pub struct Delivery {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    client: reqwest::Client,
    owner: String,
    in_flight: Mutex<HashSet<(i64, String)>>,
    /// Active subscriptions as of the last look: lanes check it before every attempt, so a
    /// pause, a removal or a disabled endpoint stops them within one look.
    active: RwLock<HashMap<i64, Subscription>>,
    writer: writer::DeliveryWriter,
    outbox: tokio::sync::Mutex<Option<Waiter>>,
    /// Subscriptions with a failure recorded by this process since their last success here.
    failing: Mutex<HashSet<i64>>,
    /// Subscriptions whose pump runs in this process.
    pumps: Mutex<HashSet<i64>>,
    /// Subscriptions whose cursor another process held when last tried, and when to try again.
    elsewhere: Mutex<HashMap<i64, std::time::Instant>>,
    /// Subscriptions that answered with `Retry-After` (429, 503): nothing new is sent to them
    /// before this time, by the pump or by a lane.
    held: Mutex<HashMap<i64, std::time::Instant>>,
    /// Bumped whenever the deliverer wakes (new change events, or its poll): pumps waiting
    /// for events look again.
    news: tokio::sync::watch::Sender<u64>,
}

/// Removes a subscription from the running pumps when its task ends, however it ends.
struct PumpRunning(Arc<Delivery>, i64);

impl Drop for PumpRunning {
    fn drop(&mut self) {
        let mut set = self.0.pumps.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.1);
    }
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

/// What a look found.
#[derive(Debug, Clone, Copy, Default)]
struct Look {
    /// Lanes started, or work left that the free permits could not take.
    busy: bool,
}

impl Delivery {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("coursewire/", env!("CARGO_PKG_VERSION")))
            // Standard Webhooks: a redirect is a failure, never followed (it would also lead
            // past the target policy).
            .redirect(reqwest::redirect::Policy::none())
            // Every name is judged by what it resolves to, at each connection.
            .dns_resolver(Arc::new(GuardedResolver {
                policy: settings.targets.clone(),
            }))
            .build()?;
        let owner = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let writer = writer::DeliveryWriter::spawn(store.clone());
        Ok(Self {
            store,
            clock,
            metrics,
            settings,
            client,
            owner,
            in_flight: Mutex::new(HashSet::new()),
            active: RwLock::new(HashMap::new()),
            writer,
            outbox: tokio::sync::Mutex::new(None),
            failing: Mutex::new(HashSet::new()),
            pumps: Mutex::new(HashSet::new()),
            elsewhere: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            news: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Wakes the deliverer when this process's processor has appended change events.
    pub fn wake_on(self, outbox: Waiter) -> Self {
        Self {
            outbox: tokio::sync::Mutex::new(Some(outbox)),
            ..self
        }
    }

    /// A lane lease covers two attempts (plus a margin), and is renewed when less than one
    /// attempt's worth is left: a busy lane renews about once per `timeout`, not per event.
    /// In the clock's milliseconds (`Clock::span_ms`: a lease is real time at any speed).
    fn lease_ms(&self) -> i64 {
        self.clock.span_ms(self.settings.timeout * 2 + LEASE_MARGIN)
    }

    /// What one attempt may take, in the clock's milliseconds: a lease with less left is
    /// renewed before the attempt.
    fn attempt_ms(&self) -> i64 {
        self.clock.span_ms(self.settings.timeout + LEASE_MARGIN)
    }

    /// Delivers until `stop` is cancelled; requests in flight then finish and are recorded.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let permits = Permits::new(self.settings.concurrency);
        let mut tasks = JoinSet::new();
        let mut outbox = self.outbox.lock().await.take();
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Err(err) = done {
                    tracing::error!(error = %err, "delivery lane task panicked");
                }
            }
            let pause = match self.look(&permits, &mut tasks, &stop).await {
                Ok(look) if look.busy => BUSY_PAUSE,
                Ok(_) => self.settings.idle_poll,
                Err(err) => {
                    tracing::warn!(error = %err, "delivery: store error; retrying");
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = wait_or_sleep(outbox.as_mut(), pause) => {}
            }
            self.news.send_modify(|n| *n = n.wrapping_add(1));
        }
        while tasks.join_next().await.is_some() {}
    }

    /// One look: start a pump for each subscription behind the outbox, start the due lanes,
    /// retry queued dead letters.
    async fn look(
        self: &Arc<Self>,
        permits: &Permits,
        tasks: &mut JoinSet<()>,
        stop: &CancellationToken,
    ) -> StoreResult<Look> {
        let subscriptions: HashMap<i64, Subscription> = self
            .store
            .subscriptions()
            .await?
            .into_iter()
            .filter(|s| !s.paused && s.disabled_at_ms.is_none() && s.pushes())
            .map(|s| (s.id, s))
            .collect();
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = subscriptions.clone();
        if subscriptions.is_empty() {
            return Ok(Look::default());
        }
        for id in self.store.subscriptions_behind().await? {
            let Some(subscription) = subscriptions.get(&id) else {
                continue;
            };
            let later = self
                .elsewhere
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .is_some_and(|at| *at > std::time::Instant::now());
            if later {
                continue;
            }
            if !self
                .pumps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id)
            {
                continue;
            }
            let this = self.clone();
            let (subscription, permits, stop) =
                (subscription.clone(), permits.pumps.clone(), stop.clone());
            let news = self.news.subscribe();
            tasks.spawn(async move {
                let _running = PumpRunning(this.clone(), id);
                match this
                    .clone()
                    .run_pump(subscription, permits, news, stop)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        let again = std::time::Instant::now() + PUMP_ELSEWHERE_RETRY;
                        let mut elsewhere =
                            this.elsewhere.lock().unwrap_or_else(|p| p.into_inner());
                        elsewhere.insert(id, again);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "delivery pump stopped on a store error")
                    }
                }
            });
        }
        let now = self.clock.now_ms();
        let mut look = Look::default();
        // Enough to fill the free permits even if every lane in flight is among the first.
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        let page = (permits.available_to_lanes() + in_flight + 1) as i64;
        let due = self.store.due_lanes(now, page.min(DUE_PAGE)).await?;
        let due: Vec<DeliveryLane> = {
            let set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            due.into_iter()
                .filter(|lane| {
                    subscriptions.contains_key(&lane.subscription_id)
                        && self.held_for(lane.subscription_id).is_none()
                        && !set.contains(&(lane.subscription_id, lane.subject.clone()))
                })
                .collect()
        };
        let free = permits.available_to_lanes();
        look.busy = due.len() >= free;
        let mut wanted = due[..due.len().min(free)].to_vec();
        // Lane rows are locked in key order by every multi-lane transaction, so that two of
        // them (PostgreSQL, several processes) never wait on each other in a cycle.
        wanted
            .sort_by(|a, b| (a.subscription_id, &a.subject).cmp(&(b.subscription_id, &b.subject)));
        let until = now + self.lease_ms();
        for lane in self
            .store
            .claim_delivery_lanes(&wanted, &self.owner, now, until)
            .await?
        {
            let Some(subscription) = subscriptions.get(&lane.subscription_id) else {
                continue;
            };
            let Some(permit) = permits.for_lane() else {
                look.busy = true;
                break;
            };
            let key = (lane.subscription_id, lane.subject.clone());
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone())
            {
                continue;
            }
            look.busy = true;
            let this = self.clone();
            let subscription = subscription.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _guard = InFlight(&this, key);
                if let Err(err) = this.run_lane(subscription, lane, until, &stop).await {
                    tracing::warn!(error = %err, "delivery lane stopped on a store error");
                }
            });
        }
        let stale = now - self.lease_ms();
        // Subjects this look has met: only the oldest letter of each may go out in one look.
        // Checking the in-flight set alone is not enough: the task for a subject's first
        // letter can finish while this loop runs, and a later letter would overtake the second.
        let mut met = std::collections::HashSet::new();
        for letter in self.store.dead_letters_to_retry(stale, DUE_PAGE).await? {
            let Some(subscription) = subscriptions.get(&letter.subscription_id) else {
                continue;
            };
            // Out of lane order (the lane moved past them), but one per subject at a time,
            // oldest first: a replayed window arrives in order per subject.
            let key = (
                letter.subscription_id,
                format!("redeliver/{}", letter.subject),
            );
            if !met.insert(key.clone()) {
                continue;
            }
            let mut set = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if set.contains(&key) {
                continue;
            }
            let Some(permit) = permits.for_lane() else {
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
        Ok(look)
    }

    /// Delivers a claimed lane's events in order until it is drained, fails, or `stop` is
    /// cancelled; then gives the lane up.
    async fn run_lane(
        &self,
        mut subscription: Subscription,
        mut lane: DeliveryLane,
        mut lease_until: i64,
        stop: &CancellationToken,
    ) -> StoreResult<()> {
        let (id, subject) = (lane.subscription_id, lane.subject.clone());
        let mut released = false;
        let result = async {
            loop {
                match self
                    .active
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                {
                    Some(active) => subscription = active.clone(),
                    None => return Ok(()), // paused, disabled or removed
                }
                let now = self.clock.now_ms();
                let attempt_ms = self.attempt_ms();
                if lease_until - now < attempt_ms {
                    lease_until = now + self.lease_ms();
                    if !self
                        .store
                        .lease_lane(id, &subject, &self.owner, now, lease_until)
                        .await?
                    {
                        return Ok(()); // another process delivers this lane
                    }
                }
                if lane.acked_sequence >= lane.latest_sequence {
                    // Caught up with what discovery had seen when the lane was claimed; newer
                    // events make the lane due again for the next look.
                    return Ok(());
                }
                let Some(event) = self
                    .store
                    .next_lane_event(&subject, lane.acked_sequence)
                    .await?
                else {
                    return Ok(());
                };
                if !filter::wants(&subscription.types, &event.row.r#type) {
                    self.writer
                        .write(DeliveryOp::Skip {
                            subscription_id: id,
                            subject: subject.clone(),
                            sequence: event.row.sequence,
                        })
                        .await?;
                    self.metrics.delivery(&subscription.name, "filtered");
                    lane.acked_sequence = event.row.sequence;
                    lane.attempts = 0;
                    continue;
                }
                let delivered = self.attempt(&subscription, &lane, &event).await?;
                if delivered {
                    lane.acked_sequence = event.row.sequence;
                    lane.attempts = 0;
                    if lane.acked_sequence >= lane.latest_sequence {
                        released = true; // with the acknowledgment
                        return Ok(());
                    }
                }
                if !delivered || stop.is_cancelled() {
                    return Ok(());
                }
            }
        }
        .await;
        if !released {
            // Batched with other lanes' writes; nobody needs to wait for it.
            self.writer.send(DeliveryOp::Release {
                subscription_id: id,
                subject,
                owner: self.owner.clone(),
            });
        }
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
        let attempt_id = match self.writer.write(DeliveryOp::Begin(start.clone())).await? {
            DeliveryOpResult::AttemptId(id) => id,
            other => return Err(StoreError::Other(format!("begin: unexpected {other:?}"))),
        };
        let answer = self
            .send(subscription, &event.row.id, &event.row.event)
            .await;
        if let Answer::Failed {
            retry_after: Some(wait),
            ..
        } = &answer
        {
            self.hold(subscription.id, *wait);
        }
        let now = self.clock.now_ms();
        let (move_, outcome) = self.next_move(
            subscription,
            start.attempt,
            &answer,
            event.row.position,
            now,
        );
        let delivered = move_ == LaneMove::Acked;
        // The last event the lane knows of: the lease goes with the acknowledgment.
        let release = delivered && event.row.sequence >= lane.latest_sequence;
        let failing =
            subscription.failing_since_ms.is_some() || self.failed_lately(subscription.id);
        let end = self.attempt_end(attempt_id, now, &answer, move_, release, failing);
        let disabled = match self
            .writer
            .write(DeliveryOp::Finish(start.clone(), end))
            .await?
        {
            DeliveryOpResult::Disabled(disabled) => disabled,
            other => return Err(StoreError::Other(format!("finish: unexpected {other:?}"))),
        };
        self.count(subscription, outcome, disabled);
        self.note_outcome(subscription.id, delivered);
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
        Ok(delivered)
    }

    /// Where a lane goes after attempt number `attempt` at the event at `position` got
    /// `answer`, and the outcome to count.
    fn next_move(
        &self,
        subscription: &Subscription,
        attempt: i64,
        answer: &Answer,
        position: i64,
        now: i64,
    ) -> (LaneMove, &'static str) {
        match answer {
            Answer::Delivered { .. } => (LaneMove::Acked, "delivered"),
            Answer::Failed { retry_after, .. } => match schedule::next_delay(
                &subscription.retry_schedule_ms,
                attempt,
                jitter(),
                *retry_after,
            ) {
                Some(delay) => (LaneMove::RetryAt(now + delay.as_millis() as i64), "failed"),
                None => match subscription.on_exhausted {
                    OnExhausted::Block => (LaneMove::Exhausted, "exhausted"),
                    OnExhausted::Skip => (LaneMove::DeadLettered { position }, "dead_lettered"),
                },
            },
        }
    }

    /// A subscriber asked (`Retry-After`) not to be called for `wait`: the pump and the lanes
    /// send it nothing new until then. Requests already in flight finish.
    fn hold(&self, subscription_id: i64, wait: Duration) {
        let until = std::time::Instant::now() + wait.min(schedule::MAX_RETRY_AFTER);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let entry = held.entry(subscription_id).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// How long the subscription is still held, if it is.
    fn held_for(&self, subscription_id: i64) -> Option<Duration> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let until = *held.get(&subscription_id)?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            held.remove(&subscription_id);
            return None;
        }
        Some(left)
    }

    /// Whether this process saw the subscription fail since its last success here (the
    /// snapshot's `failing_since` can be a look behind).
    fn failed_lately(&self, subscription_id: i64) -> bool {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&subscription_id)
    }

    fn note_outcome(&self, subscription_id: i64, delivered: bool) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if delivered {
            failing.remove(&subscription_id);
        } else {
            failing.insert(subscription_id);
        }
    }

    fn attempt_end(
        &self,
        attempt_id: i64,
        now: i64,
        answer: &Answer,
        lane: LaneMove,
        release: bool,
        clear_failing: bool,
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
        // The endpoint is disabled at once when it says it is gone, or once it has failed for
        // longer than `disable_after`.
        let failing_since_before =
            now.saturating_sub(self.settings.disable_after.as_millis() as i64);
        let disable_reason = if gone {
            "the endpoint answered 410 Gone".to_owned()
        } else {
            format!("failing since before {failing_since_before} (disable window passed)")
        };
        AttemptEnd {
            attempt_id,
            finished_at_ms: now,
            status,
            error,
            lane,
            disable_if_failing_since_before_ms: failing_since_before,
            disable_now: gone,
            disable_reason,
            release,
            clear_failing,
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
        let secret = self.settings.secrets.open(&subscription.secret);
        let key = match secret
            .map_err(|e| e.to_string())
            .and_then(|secret| signature::secret_key(&secret).map_err(|e| e.to_string()))
        {
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
        // An IP literal never reaches the resolver: judge it here.
        if let Ok(url) = reqwest::Url::parse(&subscription.url)
            && let Err(refused) = self.settings.targets.check_literal(&url)
        {
            return Answer::Failed {
                status: None,
                error: send::refused_class(&refused),
                retry_after: None,
                gone: false,
            };
        }
        let body = event.to_string();
        // Real time, whatever the service's clock: receivers check it against their own
        // clocks to refuse replays (Standard Webhooks allows five minutes).
        let timestamp = crate::clock::SystemClock.now_ms().div_euclid(1000);
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
        // The look that listed it may have raced with a task that just sent it.
        let now = self.clock.now_ms();
        let stale = now - self.lease_ms();
        if !self.store.take_dead_letter(letter.id, now, stale).await? {
            return Ok(());
        }
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
        let end = self.attempt_end(attempt_id, now, &answer, LaneMove::Acked, false, true);
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
