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

/// What became of a submitted entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub outcome: InsertOutcome,
    /// Set when the store refused the row as read and it was kept quarantined as received,
    /// with this reason.
    pub as_received: Option<String>,
}

enum Job {
    Event(NewInboxEntry, oneshot::Sender<Result<Stored, StoreError>>),
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
    pub async fn submit(&self, entry: NewInboxEntry) -> Result<Stored, StoreError> {
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
            let results = commit(&store, &entries).await;
            let stored = results.iter().any(Result::is_ok);
            committing.store(
                stored
                    || results
                        .iter()
                        .all(|r| r.as_ref().is_err_and(|e| !e.is_transient())),
                Ordering::Relaxed,
            );
            if stored {
                committed.notify();
            }
            for (reply, result) in replies.drain(..).zip(results) {
                // A requester that gave up (client disconnected) no longer needs the answer;
                // its row is committed either way.
                let _ = reply.send(result);
            }
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

/// One group commit, and what each entry gets. When the batch fails for a reason of its own
/// rows (not a transient store failure), they are stored one by one, so one malformed row (a
/// NUL byte PostgreSQL will not keep in text, a field over an index's size) never fails the
/// others; that row is then kept quarantined as received, with the reason, or, if even that
/// fails, answered 503 alone.
async fn commit(store: &Store, entries: &[NewInboxEntry]) -> Vec<Result<Stored, StoreError>> {
    let stored = |outcome| Stored {
        outcome,
        as_received: None,
    };
    let err = match store.insert_inbox_batch(entries).await {
        Ok(outcomes) if outcomes.len() == entries.len() => {
            return outcomes.into_iter().map(|o| Ok(stored(o))).collect();
        }
        Ok(outcomes) => StoreError::Other(format!(
            "store returned {} outcomes for {} entries",
            outcomes.len(),
            entries.len()
        )),
        Err(err) => err,
    };
    if err.is_transient() {
        tracing::error!(error = %err, rows = entries.len(), "inbox commit failed; requests answered 503");
        let msg = err.to_string();
        return entries
            .iter()
            .map(|_| Err(StoreError::Unavailable(msg.clone())))
            .collect();
    }
    tracing::warn!(error = %err, rows = entries.len(), "inbox batch refused; storing its rows one by one");
    let mut results = Vec::with_capacity(entries.len());
    for entry in entries {
        let alone = match store.insert_inbox_batch(std::slice::from_ref(entry)).await {
            Ok(mut outcome) if outcome.len() == 1 => Ok(outcome.remove(0)),
            Ok(_) => Err(StoreError::Other("no outcome for one entry".into())),
            Err(err) => Err(err),
        };
        let result = match alone {
            Err(err) if !err.is_transient() => {
                tracing::warn!(error = %err, dedup_key = %entry.dedup_key, "inbox row refused; kept quarantined as received");
                let kept = as_received(entry, &err);
                let reason = kept.status_reason.clone();
                store
                    .insert_inbox_batch(std::slice::from_ref(&kept))
                    .await
                    .and_then(|mut outcome| {
                        outcome
                            .pop()
                            .ok_or_else(|| StoreError::Other("no outcome for one entry".into()))
                    })
                    .map(|outcome| Stored {
                        outcome,
                        as_received: reason,
                    })
            }
            other => other.map(stored),
        };
        results.push(result.map_err(|err| StoreError::Unavailable(err.to_string())));
    }
    results
}

/// A row the store refused, reduced to what it surely keeps: the body as received (bytes),
/// quarantined with the reason; the fields read from it (name, subject, key) are left out.
fn as_received(entry: &NewInboxEntry, err: &StoreError) -> NewInboxEntry {
    use sha2::{Digest, Sha256};
    let clean = |text: &str| text.replace('\0', "\\u0000");
    NewInboxEntry {
        source: entry.source.clone(),
        dedup_key: format!("raw:{}", hex::encode(Sha256::digest(&entry.body))),
        received_at_ms: entry.received_at_ms,
        event_name: None,
        event_time_ms: None,
        subject: None,
        body: entry.body.clone(),
        headers: clean(&entry.headers),
        verification: clean(&entry.verification),
        status: crate::store::InboxStatus::Quarantined,
        status_reason: Some(clean(&format!(
            "could not be stored as read (the store refused a field: {}); kept as received",
            err.to_string().chars().take(200).collect::<String>()
        ))),
    }
}
