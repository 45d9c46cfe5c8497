//! Group commit for the inbox.
//!
//! A durable commit costs an fsync (about 3,000 a second on this class of machine), so one
//! transaction per webhook request caps ingest far below Canvas's peaks. Instead every request
//! hands its entry to one writer task and waits; the writer takes whatever has queued up while
//! the previous commit was in flight, writes it all in ONE transaction, and only then answers
//! each waiting request. No request is answered before its own row is committed, and under load
//! batches grow by themselves, so throughput rises with concurrency instead of latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{InsertOutcome, NewInboxEntry, RejectedRequest, Store, StoreError};
use crate::wake::{Waiter, Wake};

/// Requests waiting for the writer. Beyond this, submitters wait (back-pressure) instead of
/// piling up memory.
const QUEUE_DEPTH: usize = 16 * 1024;

enum Job {
    Event(
        NewInboxEntry,
        oneshot::Sender<Result<InsertOutcome, StoreError>>,
    ),
    Rejection(RejectedRequest),
}

/// Handle to the writer task. Cloneable; the task ends once every handle is dropped and the
/// queue is drained, which is how shutdown flushes.
#[derive(Debug, Clone)]
pub struct InboxWriter {
    jobs: mpsc::Sender<Job>,
    committed: Wake,
    /// False from a failed commit until the next one succeeds.
    committing: Arc<AtomicBool>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Event(entry, _) => write!(f, "Event({})", entry.dedup_key),
            Job::Rejection(r) => write!(f, "Rejection({})", r.reason),
        }
    }
}

impl InboxWriter {
    pub fn spawn(
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        max_batch: usize,
        rejected_log_rows: i64,
    ) -> (Self, JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let committed = Wake::new();
        let committing = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(run(
            store,
            metrics,
            queue,
            max_batch.max(1),
            rejected_log_rows,
            (committed.clone(), committing.clone()),
        ));
        (
            Self {
                jobs,
                committed,
                committing,
            },
            task,
        )
    }

    /// Whether the last group commit succeeded (readiness: events are being taken).
    pub fn committing(&self) -> bool {
        self.committing.load(Ordering::Relaxed)
    }

    /// Signalled after every commit of new rows (the processor waits on it).
    pub fn committed(&self) -> Waiter {
        self.committed.waiter()
    }

    /// Stores `entry` and returns once it is committed (or known to be a duplicate).
    pub async fn submit(&self, entry: NewInboxEntry) -> Result<InsertOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Event(entry, reply))
            .await
            .map_err(|_| StoreError::Unavailable("inbox writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("inbox writer dropped the request".into()))?
    }

    /// Queues a rejected request for the capped log. Best effort: under a flood of forgeries
    /// the log may skip some, but the counters never do.
    pub fn log_rejection(&self, rejected: RejectedRequest) {
        if self.jobs.try_send(Job::Rejection(rejected)).is_err() {
            tracing::debug!("rejected-request log queue full; entry skipped");
        }
    }
}

async fn run(
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    rejected_log_rows: i64,
    (committed, committing): (Wake, Arc<AtomicBool>),
) {
    let mut entries = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    let mut rejections = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Event(entry, reply) => {
                    entries.push(entry);
                    replies.push(reply);
                }
                Job::Rejection(r) => rejections.push(r),
            }
            next = if entries.len() < max_batch {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !entries.is_empty() {
            metrics.ingest_batch_size.observe(entries.len() as f64);
            let result = store.insert_inbox_batch(&entries).await;
            committing.store(result.is_ok(), Ordering::Relaxed);
            if result.is_ok() {
                committed.notify();
            }
            answer(result, replies.drain(..), entries.len());
            entries.clear();
        }
        if !rejections.is_empty() {
            if let Err(err) = store
                .record_rejections(&rejections, rejected_log_rows)
                .await
            {
                tracing::warn!(error = %err, "could not write the rejected-request log");
            }
            rejections.clear();
        }
    }
    tracing::debug!("inbox writer drained and stopped");
}

fn answer(
    result: Result<Vec<InsertOutcome>, StoreError>,
    replies: impl Iterator<Item = oneshot::Sender<Result<InsertOutcome, StoreError>>>,
    expected: usize,
) {
    match result {
        Ok(outcomes) if outcomes.len() == expected => {
            for (reply, outcome) in replies.zip(outcomes) {
                // A requester that gave up (client disconnected) no longer needs the answer;
                // its row is committed either way.
                let _ = reply.send(Ok(outcome));
            }
        }
        Ok(outcomes) => {
            let msg = format!(
                "store returned {} outcomes for {expected} entries",
                outcomes.len()
            );
            for reply in replies {
                let _ = reply.send(Err(StoreError::Other(msg.clone())));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "inbox commit failed; requests answered 503");
            let msg = err.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
            }
        }
    }
}
