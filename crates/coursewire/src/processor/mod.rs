//! The processor: drains `pending` inbox rows into the catalog, the change-event outbox and the
//! audit log, in order per entity and in parallel across entities (DESIGN principles 3–5).
//!
//! It owns leasing and the order of work; it does not own the merge rule (`catalog`), the
//! shape of change events (`bus`) or any SQL (`store`), and it never talks to the network.
//!
//! # Lanes and leases
//!
//! A **lane** is the inbox rows of one entity (the row's subject, `enrollment/48`); a row
//! without a subject is a lane of its own. A worker **claims** lanes (a row in
//! `processor_lanes` with an owner and a `lease_until`), then applies the lane's rows one at a
//! time, oldest event first (event time, else receive time; then dedup key), each in ONE
//! transaction that also renews the lease. So one entity is only ever worked on by one worker,
//! while other lanes proceed on other workers and other processes (PostgreSQL).
//!
//! * **Crash safety**: a worker that dies leaves its lease to expire (`processor.lease_seconds`);
//!   then any worker takes the lane over. Every transaction starts by renewing the lease *as
//!   its owner*: a worker that lost its lane (paused past its lease) writes nothing.
//! * **Poison rows**: a lane is released (its lease row deleted) whenever a worker leaves it
//!   normally, so finding an *expired* lease row at claim time means its owner crashed or
//!   stalled, most likely on the lane's head row; taking it over counts an attempt against
//!   that row. A row that keeps killing workers is quarantined once it has been abandoned
//!   `processor.max_attempts` times, with the reason, instead of taking the fleet down. A
//!   transaction that fails with a store error that is the row's own (a constraint, bad data)
//!   counts too (and leaves the error on the row), so a row that fails every time is
//!   quarantined instead of retried forever. A *transient* store error (busy, locked, lost
//!   connection, serialization failure, statement timeout: `StoreError::is_transient`) says
//!   nothing about the rows and never counts: the batch is simply tried again.
//! * **Bad events** (undecodable body, a catalog event without an id) are quarantined at once
//!   with the reason: visible, replayable after a fix, never a panic.
//! * **Fairness**: a lane is drained for at most `processor.max_rows_per_lane` rows per claim.
//!
//! Ordering is also what the catalog's merge rule enforces on its own (an older event never
//! overwrites newer state), so even a lane applied out of order could not corrupt the catalog;
//! lanes make it efficient and keep change events in event order.

mod apply;
mod body;
pub mod decode;
mod lanes;
pub mod replay;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use apply::Applied;
use apply::Item;
pub use body::decode_inbox_body;

use crate::clock::Clock;
use crate::config::ProcessorConfig;
use crate::metrics::Metrics;
use crate::store::{Lane, PendingRow, Store, StoreResult};
use crate::wake::{Waiter, Wake, wait_or_sleep};

/// Pending rows read per page while looking for unleased lanes.
const DISCOVERY_PAGE: i64 = 512;
/// Pages read at most per claim: a backlog beyond that is reached as the front drains.
const DISCOVERY_PAGES: usize = 32;
/// Shortest pause of a worker whose round found nothing to claim.
const IDLE_SETTLE: Duration = Duration::from_millis(20);
/// Pause after a store error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Processor settings, from `[processor]` in the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workers: usize,
    pub lease: Duration,
    pub max_attempts: i64,
    pub idle_poll: Duration,
    pub lanes_per_claim: usize,
    pub max_rows_per_lane: usize,
    pub batch_rows: usize,
}

impl From<&ProcessorConfig> for Settings {
    fn from(config: &ProcessorConfig) -> Self {
        Self {
            workers: config.workers.max(1),
            lease: Duration::from_secs(config.lease_seconds.max(1)),
            max_attempts: config.max_attempts.max(1),
            idle_poll: Duration::from_millis(config.idle_poll_ms.max(1)),
            lanes_per_claim: config.lanes_per_claim.max(1),
            max_rows_per_lane: config.max_rows_per_lane.max(1),
            batch_rows: config.batch_rows.max(1),
        }
    }
}

/// The processor of one process; `owner` names it in leases.
#[derive(Debug)]
pub struct Processor {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: Settings,
    owner: String,
    /// Signalled by this process's inbox writer; idle workers wait on it (or `idle_poll`).
    inbox: Option<Waiter>,
    /// Signalled after a batch that appended change events (the deliverer waits on it).
    outbox: Wake,
}

impl Processor {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        let owner = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Self {
            store,
            clock,
            metrics,
            settings,
            owner,
            inbox: None,
            outbox: Wake::new(),
        }
    }

    /// Wakes idle workers when this process's inbox writer commits new rows.
    pub fn wake_on(self, inbox: Waiter) -> Self {
        Self {
            inbox: Some(inbox),
            ..self
        }
    }

    /// Signalled whenever change events were appended.
    pub fn appended(&self) -> Waiter {
        self.outbox.waiter()
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs `settings.workers` workers until `stop` is cancelled; each finishes the row it is
    /// applying, gives up its lanes and returns.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut workers = JoinSet::new();
        for worker in 0..self.settings.workers {
            let (me, stop) = (self.clone(), stop.clone());
            workers.spawn(async move { me.worker(worker, stop).await });
        }
        tracing::info!(owner = %self.owner, workers = self.settings.workers, "processor started");
        while let Some(result) = workers.join_next().await {
            if let Err(err) = result {
                // A panic is a bug; its lanes' leases expire and another worker takes over.
                tracing::error!(error = %err, "processor worker ended abnormally");
            }
        }
        tracing::info!(owner = %self.owner, "processor stopped");
    }

    async fn worker(&self, worker: usize, stop: CancellationToken) {
        let mut inbox = self.inbox.clone();
        while !stop.is_cancelled() {
            let (settle, wait) = match self.run_once(&stop).await {
                // Nothing unleased: the other workers hold what is pending. Looking again at
                // every inbox commit would rescan the backlog hundreds of times a second under
                // load, so a worker that came back empty-handed settles briefly first.
                Ok(None) => (
                    IDLE_SETTLE.min(self.settings.idle_poll),
                    self.settings.idle_poll.saturating_sub(IDLE_SETTLE),
                ),
                Ok(Some(_)) => continue,
                Err(err) => {
                    tracing::warn!(worker, error = %err, "processor: store error; backing off");
                    (ERROR_BACKOFF, Duration::ZERO)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = async {
                    tokio::time::sleep(settle).await;
                    if !wait.is_zero() {
                        wait_or_sleep(inbox.as_mut(), wait).await;
                    }
                } => {}
            }
        }
    }

    /// One round: claims up to `lanes_per_claim` lanes and drains them. Returns the rows it
    /// finished, or `None` when no lane was waiting.
    pub async fn run_once(&self, stop: &CancellationToken) -> StoreResult<Option<usize>> {
        let now = self.clock.now_ms();
        let candidates = self.find_lanes(now).await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        let until = now + self.lease_ms();
        // Claims lock lease rows in key order, so two claimers can never deadlock; the lanes
        // are then drained oldest first, as discovered.
        let mut by_key = candidates.clone();
        by_key.sort_by_key(Lane::key);
        let claimed: HashSet<Lane> = self
            .store
            .claim_lanes(&by_key, &self.owner, now, until)
            .await?
            .into_iter()
            .collect();
        let won: Vec<Lane> = candidates
            .into_iter()
            .filter(|lane| claimed.contains(lane))
            .collect();
        self.drain_lanes(&won, until, stop).await.map(Some)
    }

    /// Runs rounds until one finds no unleased lane (tests, `replay`). Returns rows finished.
    pub async fn drain(&self) -> StoreResult<usize> {
        let stop = CancellationToken::new();
        let mut total = 0;
        while let Some(done) = self.run_once(&stop).await? {
            total += done;
        }
        Ok(total)
    }

    /// The lease in the clock's milliseconds: real time at any clock speed.
    fn lease_ms(&self) -> i64 {
        self.clock.span_ms(self.settings.lease).min(i64::MAX / 4)
    }

    async fn find_lanes(&self, now: i64) -> StoreResult<Vec<Lane>> {
        let leased: HashSet<String> = self
            .store
            .live_leases(now)
            .await?
            .into_iter()
            .map(|lease| lease.lane)
            .collect();
        let mut picked = Vec::new();
        let mut after = 0;
        for _ in 0..DISCOVERY_PAGES {
            let page = self.store.pending_after(after, DISCOVERY_PAGE).await?;
            lanes::pick_lanes(&page, &leased, &mut picked, self.settings.lanes_per_claim);
            match page.last() {
                Some(last) if picked.len() < self.settings.lanes_per_claim => after = last.id,
                _ => break,
            }
            if (page.len() as i64) < DISCOVERY_PAGE {
                break;
            }
        }
        Ok(picked)
    }

    /// Applies up to `max_rows_per_lane` rows of each claimed lane, `batch_rows` rows per
    /// transaction, then lets go of the lanes. Returns the rows finished.
    async fn drain_lanes(
        &self,
        won: &[Lane],
        until: i64,
        stop: &CancellationToken,
    ) -> StoreResult<usize> {
        let limit = self.settings.max_rows_per_lane as i64;
        // One read for every lane's head rows, then the items lane by lane, in claim order.
        let mut heads: std::collections::HashMap<Lane, Vec<PendingRow>> =
            std::collections::HashMap::with_capacity(won.len());
        for head in self.store.lanes_rows(won, limit).await? {
            let lane = Lane::of(head.row.subject.as_deref(), head.row.id);
            heads.entry(lane).or_default().push(head);
        }
        let mut items = Vec::new();
        for lane in won {
            for head in heads.remove(lane).unwrap_or_default() {
                items.push(Item {
                    lane,
                    inbox_id: head.row.id,
                    received_at_ms: head.row.received_at_ms,
                    poison: self.poison_reason(&head),
                });
            }
        }
        let mut left: HashSet<&Lane> = won.iter().collect();
        let result = self.apply_items(&items, until, stop, &mut left).await;
        for lane in left {
            // Gives back what was not drained: nobody must count it as abandoned.
            let _ = self.store.release_lane(lane, &self.owner).await;
        }
        result
    }

    /// Applies `items` batch by batch; removes from `held` the lanes released or lost.
    async fn apply_items(
        &self,
        items: &[Item<'_>],
        until: i64,
        stop: &CancellationToken,
        held: &mut HashSet<&Lane>,
    ) -> StoreResult<usize> {
        let mut done = 0;
        let mut rest = items;
        while !rest.is_empty() {
            // Held too long behind earlier batches, or asked to stop: what is left is given
            // back and found again by the next round.
            if stop.is_cancelled() || self.clock.now_ms() >= until {
                break;
            }
            let take = rest.len().min(self.settings.batch_rows);
            let batch: Vec<Item<'_>> = rest[..take]
                .iter()
                .filter(|item| held.contains(item.lane))
                .cloned()
                .collect();
            rest = &rest[take..];
            let now = self.clock.now_ms();
            let at = apply::Batch {
                owner: &self.owner,
                now_ms: now,
                lease_until_ms: now + self.lease_ms(),
            };
            let mut failed = None;
            let mut appended = false;
            let results = match apply::apply_batch(self.store.as_ref(), at, &batch).await {
                Ok(results) => results,
                // The database is busy, gone or restarting: no row is at fault. The round
                // ends; its lanes are given back and tried again, nothing counted.
                Err(err) if err.is_transient() => {
                    tracing::warn!(error = %err, rows = batch.len(), "store unavailable; the batch will be retried");
                    return Err(err);
                }
                Err(err) => {
                    // Row by row, so that the failure is counted against the row at fault
                    // and the others of the batch still go through.
                    tracing::debug!(error = %err, rows = batch.len(), "batch failed; applying its rows one by one");
                    let mut results = Vec::with_capacity(batch.len());
                    for item in &batch {
                        match self.apply_alone(item).await {
                            Ok(applied) => results.push(applied),
                            Err(err) => {
                                results.push(Applied::NotPending);
                                failed.get_or_insert(err);
                            }
                        }
                    }
                    results
                }
            };
            for (item, applied) in batch.iter().zip(results) {
                match applied {
                    Applied::Done {
                        outcomes,
                        change_events,
                        quarantined,
                        released,
                    } => {
                        done += 1;
                        self.metrics.processed(
                            &outcomes,
                            change_events,
                            quarantined,
                            (now - item.received_at_ms) as f64 / 1000.0,
                        );
                        if released {
                            held.remove(item.lane);
                        }
                        if change_events > 0 {
                            appended = true;
                        }
                    }
                    Applied::LostLease => {
                        if held.remove(item.lane) {
                            tracing::warn!(lane = %item.lane.key(), "lane lease lost to another worker");
                        }
                    }
                    Applied::NotPending => {}
                }
            }
            if appended {
                self.outbox.notify();
            }
            if let Some(err) = failed {
                return Err(err);
            }
        }
        Ok(done)
    }

    /// One row in a transaction of its own (after its batch failed); a failure is counted
    /// against the row.
    async fn apply_alone(&self, item: &Item<'_>) -> StoreResult<Applied> {
        let now = self.clock.now_ms();
        let at = apply::Batch {
            owner: &self.owner,
            now_ms: now,
            lease_until_ms: now + self.lease_ms(),
        };
        match apply::apply_batch(self.store.as_ref(), at, std::slice::from_ref(item)).await {
            Ok(mut results) => Ok(results.pop().unwrap_or(Applied::NotPending)),
            Err(err) => {
                if !err.is_transient() {
                    self.note_failure(item, &err).await;
                }
                Err(err)
            }
        }
    }

    /// Counted, so that a row that fails every time ends quarantined rather than retried
    /// forever; a transient outage costs a few attempts.
    async fn note_failure(&self, item: &Item<'_>, err: &crate::store::StoreError) {
        let _ = self
            .store
            .note_failure(item.inbox_id, &err.to_string())
            .await;
    }

    /// Why a row must be quarantined instead of applied, if it must.
    fn poison_reason(&self, head: &PendingRow) -> Option<String> {
        if head.attempts < self.settings.max_attempts {
            return None;
        }
        Some(match &head.row.status_reason {
            Some(error) => format!(
                "processing failed or was abandoned {} times; last error: {error}",
                head.attempts
            ),
            None => format!(
                "processing was abandoned {} times (a worker crashed or lost its lease each time)",
                head.attempts
            ),
        })
    }
}
