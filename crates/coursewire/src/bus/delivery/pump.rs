//! The fast path of push delivery: one **pump** per subscription walks the outbox with a
//! cursor and sends each event as soon as it is read, many subjects at once, one event in
//! flight per subject. Nothing is written per delivery: the cursor moves in one write per
//! batch, once every event up to it is acknowledged (or filtered out, or handed to a lane).
//! That is what lets thousands of deliveries a second go out on SQLite, where a row per
//! delivery was the ceiling (bench `e2e`).
//!
//! A subject whose event fails leaves the fast path: the failed attempt and the subject's
//! later events are **handed off** to a lane for the subject (`mod.rs`), which retries on the
//! subscription's schedule, in order, without holding anyone else up. The pump hands every
//! later event of that subject to the lane as long as the lane exists; a lane that has
//! acknowledged all it was handed is deleted by the store, and the subject comes back here.
//!
//! Order per subject holds because (1) the pump sends a subject's events one at a time, in
//! outbox order; (2) an event goes to the lane when its subject has a lane or has a handoff
//! this pump has not committed yet, so nothing overtakes an event on its way to a lane; and
//! (3) only the pump holding the cursor's lease creates lanes for the subscription.
//!
//! A killed process leaves the cursor at its last write: the next pump sends the events past
//! it again, with the same `webhook-id`s (at least once, as Standard Webhooks expects).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::send::Answer;
use super::{Delivery, filter};
use crate::store::{
    AttemptEnd, AttemptStart, CursorAdvance, DeliveryOp, DeliveryOpResult, Handoff, LaneEvent,
    StoreError, StoreResult, Subscription,
};

/// Events read ahead of the cursor at most. A subject whose request hangs holds the cursor
/// (not the other subjects) until its timeout; this many events can go out meanwhile.
const WINDOW: usize = 4096;
/// Events read per look at the outbox.
const READ_PAGE: i64 = 512;
/// An idle pump gives its cursor up after this long (another process may take it).
const LINGER: Duration = Duration::from_secs(2);

/// A pump woken by new change events reads no sooner than this after its last read, so that
/// at high rates one read takes many events instead of each commit costing every pump a read.
const MIN_READ_GAP: Duration = Duration::from_millis(20);

/// What the answer to an event in flight needs to know about it.
#[derive(Debug, Clone)]
struct InFlight {
    id: String,
    subject: String,
    sequence: i64,
    received_at_ms: Option<i64>,
}

/// Where an event read by the pump stands.
#[derive(Debug)]
enum Slot {
    /// Waiting behind its subject's event in flight, or for a permit.
    Queued(LaneEvent),
    Sending(InFlight),
    /// Acknowledged, or filtered out.
    Done,
    /// For the subject's lane, with the failed attempt when this is the one that failed.
    Handed {
        subject: String,
        sequence: i64,
        failure: Option<(AttemptStart, AttemptEnd)>,
    },
}

#[derive(Debug, Default)]
struct SubjectState {
    /// Positions of queued events, in order.
    queue: VecDeque<i64>,
    sending: bool,
    /// Events handed off by this pump whose handoff is not committed yet.
    handed: usize,
}

impl SubjectState {
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && !self.sending && self.handed == 0
    }
}

/// Hands a subject's queued events to its lane (they stay in the window, in order, until an
/// advance commits them).
fn hand_off_queue(window: &mut BTreeMap<i64, Slot>, subject: &str, state: &mut SubjectState) {
    for position in state.queue.drain(..) {
        if let Some(slot) = window.get_mut(&position)
            && let Slot::Queued(queued) = slot
        {
            let sequence = queued.row.sequence;
            *slot = Slot::Handed {
                subject: subject.to_owned(),
                sequence,
                failure: None,
            };
            state.handed += 1;
        }
    }
}

/// A send's result, back from its task.
struct Sent {
    position: i64,
    started_at_ms: i64,
    answer: Answer,
}

/// An advance being written: the position, the handoffs per subject it commits, the result.
type Commit = tokio::task::JoinHandle<StoreResult<(i64, Vec<(String, usize)>, DeliveryOpResult)>>;

/// One subscription's pump. See the module documentation.
struct Pump {
    delivery: Arc<Delivery>,
    subscription: Subscription,
    permits: Arc<Semaphore>,
    window: BTreeMap<i64, Slot>,
    subjects: HashMap<String, SubjectState>,
    /// Subjects with a queued head and nothing in flight, waiting for a permit.
    ready: VecDeque<String>,
    /// The durable position (as of the last committed advance) and how far events were read.
    committed: i64,
    read_to: i64,
    lease_until: i64,
    clear_failing: bool,
    disabled: bool,
}

impl Delivery {
    /// Runs the pump of one subscription while it has work (and [`LINGER`] longer), if this
    /// process can take its cursor; false if another process holds it.
    pub(super) async fn run_pump(
        self: Arc<Self>,
        subscription: Subscription,
        permits: Arc<Semaphore>,
        news: watch::Receiver<u64>,
        stop: CancellationToken,
    ) -> StoreResult<bool> {
        let now = self.clock.now_ms();
        let until = now + self.lease_ms();
        let Some(position) = self
            .store
            .take_cursor(subscription.id, &self.owner, now, until)
            .await?
        else {
            return Ok(false);
        };
        let id = subscription.id;
        let mut pump = Pump {
            delivery: self.clone(),
            subscription,
            permits,
            window: BTreeMap::new(),
            subjects: HashMap::new(),
            ready: VecDeque::new(),
            committed: position,
            read_to: position,
            lease_until: until,
            clear_failing: false,
            disabled: false,
        };
        let result = pump.run(news, &stop).await;
        // Only now: giving the cursor up with an advance unwritten would let another process
        // send the same events while this one still does.
        if let Err(err) = self.store.release_cursor(id, &self.owner).await {
            tracing::debug!(error = %err, "delivery: cursor not released; its lease will expire");
        }
        result.map(|()| true)
    }
}

impl Pump {
    async fn run(
        &mut self,
        mut news: watch::Receiver<u64>,
        stop: &CancellationToken,
    ) -> StoreResult<()> {
        let mut sends: JoinSet<Sent> = JoinSet::new();
        let mut commit: Option<Commit> = None;
        let mut more = true;
        let mut last_read: Option<Instant> = None;
        let mut idle_since = Instant::now();
        let idle_poll = self.delivery.settings.idle_poll;
        loop {
            let stopping = stop.is_cancelled() || !self.refresh_subscription() || self.disabled;
            if stopping {
                self.hand_off_queued();
            }
            let gap_left =
                last_read.map_or(Duration::ZERO, |t| MIN_READ_GAP.saturating_sub(t.elapsed()));
            // A read only when a whole page fits: reading a few rows per freed slot would
            // cost a query per delivery.
            let room = WINDOW - self.window.len() >= READ_PAGE as usize;
            if !stopping && more && room && gap_left.is_zero() {
                more = self.read().await?;
                last_read = Some(Instant::now());
            }
            if !stopping {
                self.start_ready(&mut sends);
            }
            if commit.is_none() {
                commit = self.advance();
            }
            if sends.is_empty() && commit.is_none() {
                if stopping {
                    // Whatever is still queued stays past the cursor, for the next pump.
                    return Ok(());
                }
                if self.window.is_empty() && !more {
                    if idle_since.elapsed() >= LINGER {
                        return Ok(());
                    }
                } else {
                    idle_since = Instant::now();
                }
            } else {
                idle_since = Instant::now();
            }
            let held = self.delivery.held_for(self.subscription.id);
            let waiting_for_permit = !stopping && !self.ready.is_empty() && held.is_none();
            let mut nap = if more && room {
                gap_left.max(Duration::from_millis(1))
            } else {
                idle_poll
            };
            if let Some(held) = held {
                nap = nap.min(held.max(Duration::from_millis(1)));
            }
            tokio::select! {
                Some(sent) = sends.join_next(), if !sends.is_empty() => match sent {
                    Ok(sent) => self.sent(sent),
                    Err(err) => {
                        // The event stays unacknowledged, so the cursor stops before it and
                        // the next pump sends it again.
                        return Err(StoreError::Other(format!("delivery send task: {err}")));
                    }
                },
                done = async {
                    match commit.as_mut() {
                        Some(commit) => commit.await,
                        None => std::future::pending().await,
                    }
                }, if commit.is_some() => {
                    commit = None;
                    let (position, handed, result) = done
                        .map_err(|e| StoreError::Other(format!("delivery advance task: {e}")))??;
                    if !self.committed(position, handed, result)? {
                        return Ok(()); // the cursor is another process's now
                    }
                },
                permit = self.permits.clone().acquire_owned(), if waiting_for_permit => {
                    if let Ok(permit) = permit {
                        self.start_one(permit, &mut sends);
                    }
                },
                changed = news.changed(), if !stopping && !more => {
                    if changed.is_ok() {
                        more = true;
                    }
                },
                _ = tokio::time::sleep(nap), if !stopping => more = true,
                _ = stop.cancelled(), if !stop.is_cancelled() => {},
            }
        }
    }

    /// The subscription as of the deliverer's last look; false once it is paused, disabled
    /// or removed.
    fn refresh_subscription(&mut self) -> bool {
        let active = self
            .delivery
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.subscription.id)
            .cloned();
        match active {
            Some(subscription) => {
                self.subscription = subscription;
                true
            }
            None => false,
        }
    }

    /// Reads the next page past what was read; true if there may be more.
    async fn read(&mut self) -> StoreResult<bool> {
        let events = self
            .delivery
            .store
            .events_past_cursor(self.subscription.id, self.read_to, READ_PAGE)
            .await?;
        let full = events.len() as i64 == READ_PAGE;
        for cursor_event in events {
            let event = cursor_event.event;
            let position = event.row.position;
            self.read_to = self.read_to.max(position);
            if !filter::wants(&self.subscription.types, &event.row.r#type) {
                self.delivery
                    .metrics
                    .delivery(&self.subscription.name, "filtered");
                self.window.insert(position, Slot::Done);
                continue;
            }
            let subject = event.row.subject.clone();
            let state = self.subjects.entry(subject.clone()).or_default();
            if cursor_event.on_lane || state.handed > 0 {
                state.handed += 1;
                let sequence = event.row.sequence;
                let slot = Slot::Handed {
                    subject,
                    sequence,
                    failure: None,
                };
                self.window.insert(position, slot);
                continue;
            }
            state.queue.push_back(position);
            if !state.sending && state.queue.len() == 1 {
                self.ready.push_back(subject);
            }
            self.window.insert(position, Slot::Queued(event));
        }
        Ok(full)
    }

    /// Hands every event still waiting to its subject's lane. A stopping pump (paused,
    /// disabled, shutting down) does this so that its cursor can move past the events it
    /// did deliver: the next pump would otherwise send those again. Lanes wait while the
    /// subscription is paused or disabled, and keep each subject's order.
    fn hand_off_queued(&mut self) {
        self.ready.clear();
        for (subject, state) in &mut self.subjects {
            hand_off_queue(&mut self.window, subject, state);
        }
    }

    /// Starts the ready subjects a permit is free for.
    fn start_ready(&mut self, sends: &mut JoinSet<Sent>) {
        if self.delivery.held_for(self.subscription.id).is_some() {
            return;
        }
        while !self.ready.is_empty() {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                return;
            };
            self.start_one(permit, sends);
        }
    }

    /// Sends the head of the first ready subject.
    fn start_one(&mut self, permit: OwnedSemaphorePermit, sends: &mut JoinSet<Sent>) {
        while let Some(subject) = self.ready.pop_front() {
            let Some(state) = self.subjects.get_mut(&subject) else {
                continue;
            };
            let Some(position) = state.queue.pop_front() else {
                continue;
            };
            let Some(Slot::Queued(event)) = self.window.remove(&position) else {
                continue; // cannot happen: a queued position holds its event
            };
            state.sending = true;
            self.window.insert(
                position,
                Slot::Sending(InFlight {
                    id: event.row.id.clone(),
                    subject,
                    sequence: event.row.sequence,
                    received_at_ms: event.received_at_ms,
                }),
            );
            let delivery = self.delivery.clone();
            let subscription = self.subscription.clone();
            sends.spawn(async move {
                let _permit = permit;
                let started_at_ms = delivery.clock.now_ms();
                let answer = delivery
                    .send(&subscription, &event.row.id, &event.row.event)
                    .await;
                Sent {
                    position,
                    started_at_ms,
                    answer,
                }
            });
            return;
        }
    }

    /// An answer came back.
    fn sent(&mut self, sent: Sent) {
        let Some(Slot::Sending(event)) = self.window.remove(&sent.position) else {
            return;
        };
        let delivery = self.delivery.clone();
        let subscription = &self.subscription;
        let now = delivery.clock.now_ms();
        let state = self.subjects.entry(event.subject.clone()).or_default();
        state.sending = false;
        if let Answer::Delivered { .. } = sent.answer {
            if subscription.failing_since_ms.is_some() || delivery.failed_lately(subscription.id) {
                self.clear_failing = true;
            }
            delivery.note_outcome(subscription.id, true);
            delivery.count(subscription, "delivered", false);
            if let Some(received) = event.received_at_ms {
                delivery
                    .metrics
                    .delivery_latency
                    .observe((now - received).max(0) as f64 / 1000.0);
            }
            self.window.insert(sent.position, Slot::Done);
            if !state.queue.is_empty() {
                self.ready.push_back(event.subject);
            } else if state.is_idle() {
                self.subjects.remove(&event.subject);
            }
            return;
        }
        if let Answer::Failed {
            retry_after: Some(wait),
            ..
        } = &sent.answer
        {
            // Honoured for the whole subscription: its other subjects wait too.
            delivery.hold(subscription.id, *wait);
        }
        // The subject leaves the fast path: this event and those queued behind it go to
        // its lane, which retries on the subscription's schedule.
        let start = AttemptStart {
            subscription_id: subscription.id,
            subject: event.subject.clone(),
            event_id: event.id.clone(),
            sequence: event.sequence,
            attempt: 1,
            started_at_ms: sent.started_at_ms,
            dead_letter: None,
        };
        let (lane_move, outcome) =
            delivery.next_move(subscription, 1, &sent.answer, sent.position, now);
        let end = delivery.attempt_end(0, now, &sent.answer, lane_move, false, false);
        delivery.count(subscription, outcome, false);
        delivery.note_outcome(subscription.id, false);
        tracing::info!(
            subscription = %subscription.name,
            subject = %event.subject,
            event = %event.id,
            outcome,
            error = ?sent.answer,
            "delivery attempt failed; the subject goes to its lane"
        );
        state.handed += 1;
        self.window.insert(
            sent.position,
            Slot::Handed {
                subject: event.subject.clone(),
                sequence: event.sequence,
                failure: Some((start, end)),
            },
        );
        hand_off_queue(&mut self.window, &event.subject, state);
    }

    /// Starts writing the cursor past every finished event at the front of the window, with
    /// the handoffs among them; also when only the lease needs renewing.
    fn advance(&mut self) -> Option<Commit> {
        let mut position = self.committed;
        let mut handoffs: BTreeMap<String, Handoff> = BTreeMap::new();
        let mut handed: BTreeMap<String, usize> = BTreeMap::new();
        while let Some(entry) = self.window.first_entry() {
            if matches!(entry.get(), Slot::Queued(_) | Slot::Sending(_)) {
                break;
            }
            let (at, slot) = entry.remove_entry();
            position = at;
            if let Slot::Handed {
                subject,
                sequence,
                failure,
            } = slot
            {
                *handed.entry(subject.clone()).or_default() += 1;
                // In outbox order, so the first one of a subject has its lowest sequence (and
                // is the failure, if this batch has one: nothing is sent after a failure).
                handoffs
                    .entry(subject.clone())
                    .and_modify(|h| h.last_sequence = h.last_sequence.max(sequence))
                    .or_insert(Handoff {
                        subject,
                        first_sequence: sequence,
                        last_sequence: sequence,
                        failure,
                    });
            }
        }
        let now = self.delivery.clock.now_ms();
        let attempt_ms = self.delivery.attempt_ms();
        let renew = self.lease_until - now < attempt_ms;
        if position == self.committed && !renew && !self.clear_failing {
            return None;
        }
        self.lease_until = now + self.delivery.lease_ms();
        let op = DeliveryOp::Advance(CursorAdvance {
            subscription_id: self.subscription.id,
            owner: self.delivery.owner.clone(),
            position,
            lease_until_ms: self.lease_until,
            handoffs: handoffs.into_values().collect(),
            clear_failing: std::mem::take(&mut self.clear_failing),
        });
        let writer = self.delivery.writer.clone();
        let handed: Vec<(String, usize)> = handed.into_iter().collect();
        Some(tokio::spawn(async move {
            let result = writer.write(op).await?;
            Ok((position, handed, result))
        }))
    }

    /// An advance is committed; false when the cursor turned out to be another process's.
    fn committed(
        &mut self,
        position: i64,
        handed: Vec<(String, usize)>,
        result: DeliveryOpResult,
    ) -> StoreResult<bool> {
        let DeliveryOpResult::Advanced { held, disabled } = result else {
            return Err(StoreError::Other(format!("advance: unexpected {result:?}")));
        };
        if !held {
            tracing::warn!(subscription = %self.subscription.name, "delivery: cursor lease lost to another process");
            return Ok(false);
        }
        self.committed = self.committed.max(position);
        for (subject, n) in handed {
            if let Some(state) = self.subjects.get_mut(&subject) {
                state.handed = state.handed.saturating_sub(n);
                if state.is_idle() {
                    self.subjects.remove(&subject);
                }
            }
        }
        if disabled {
            self.disabled = true;
            self.delivery
                .metrics
                .delivery(&self.subscription.name, "disabled");
            tracing::warn!(subscription = %self.subscription.name, "endpoint disabled after failing too long");
        }
        Ok(true)
    }
}
