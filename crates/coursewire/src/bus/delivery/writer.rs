//! Group commit for delivery records, as the inbox writer does for ingest: every lane hands its
//! attempt rows and lane moves to one task, which writes whatever has queued up in ONE
//! transaction and then answers each lane. At thousands of deliveries a second, one commit
//! (one fsync on SQLite) per write would be the ceiling; this way it is one per batch, and a
//! lane still never goes on before its own write is committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{DeliveryOp, DeliveryOpResult, Store, StoreError, StoreResult};

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 512;
const QUEUE_DEPTH: usize = 8 * 1024;
/// Tries of a write on its own after its batch failed.
const WRITE_TRIES: u64 = 3;

type Job = (
    DeliveryOp,
    Option<oneshot::Sender<StoreResult<DeliveryOpResult>>>,
);

/// Handle to the writer task; the task ends when the last handle is dropped and the queue is
/// drained.
#[derive(Debug, Clone)]
pub struct DeliveryWriter {
    jobs: mpsc::Sender<Job>,
}

impl DeliveryWriter {
    pub fn spawn(store: Arc<Store>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(store, queue));
        Self { jobs }
    }

    /// Writes `op` and returns once it is committed.
    pub async fn write(&self, op: DeliveryOp) -> StoreResult<DeliveryOpResult> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((op, Some(reply)))
            .await
            .map_err(|_| StoreError::Unavailable("delivery writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("delivery writer dropped the write".into()))?
    }

    /// Queues `op` without waiting for it (a lease given up: losing it costs only a wait).
    pub fn send(&self, op: DeliveryOp) {
        if self.jobs.try_send((op, None)).is_err() {
            tracing::debug!("delivery writer queue full; lease release skipped");
        }
    }
}

async fn run(store: Arc<Store>, mut queue: mpsc::Receiver<Job>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some((op, reply)) = next {
            ops.push(op);
            replies.push(reply);
            next = if ops.len() < MAX_BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        match store.record_delivery(&ops).await {
            Ok(results) => {
                for (reply, result) in replies.drain(..).zip(results) {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(result));
                    }
                }
            }
            Err(err) => {
                // Most likely a transient conflict (PostgreSQL gives up one of two transactions
                // that lock lane rows in different orders): the batch was rolled back as a
                // whole, so each write is tried again on its own. A lane must not be told its
                // acknowledgment failed when only a neighbour's write did: it would send the
                // event again.
                tracing::debug!(error = %err, writes = ops.len(), "delivery batch failed; writing one by one");
                for (op, reply) in ops.drain(..).zip(replies.drain(..)) {
                    let result = write_alone(store.as_ref(), op).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        replies.clear();
        ops.clear();
    }
}

/// One write in a transaction of its own, tried a few times.
async fn write_alone(store: &Store, op: DeliveryOp) -> StoreResult<DeliveryOpResult> {
    let ops = [op];
    let mut tries = 0;
    loop {
        tries += 1;
        match store.record_delivery(&ops).await {
            Ok(mut results) => {
                return results
                    .pop()
                    .ok_or_else(|| StoreError::Other("delivery write gave no result".into()));
            }
            Err(err) if tries < WRITE_TRIES => {
                tracing::debug!(error = %err, tries, "delivery write failed; trying again");
                tokio::time::sleep(Duration::from_millis(20 * tries)).await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "delivery record not written");
                return Err(err);
            }
        }
    }
}
