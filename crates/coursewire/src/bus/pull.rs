//! Pull delivery: pages of the outbox for a reader that keeps its own cursor
//! (`GET /api/v1/events`, `GET /api/v1/subscriptions/{name}/events`).
//!
//! A page holds the change events with an outbox position above `after`, in position order,
//! that the reader's type globs select, and the cursor to pass next time. An empty page is
//! held back (long poll) until an event arrives or the wait ends: woken by this process's
//! processor when it appends, and looking again every second for other processes' events. Positions are handed out in
//! commit order (see `store::dialect`), so a cursor never skips an event that committed late.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::delivery::filter;
use crate::store::{Store, StoreResult};
use crate::wake::{Waiter, wait_or_sleep};

/// How often a long poll looks again when nothing in this process said the outbox grew: for
/// change events appended by another process. Between looks it holds no database connection.
const LONG_POLL_STEP: Duration = Duration::from_secs(1);
/// Change events scanned per look at most, however few of them the types select.
const SCAN: i64 = 1000;
pub const MAX_LIMIT: i64 = 1000;

/// What a reader asks for.
#[derive(Debug, Clone)]
pub struct PageRequest<'a> {
    pub after: i64,
    /// Events per page; clamped to `1..=MAX_LIMIT`.
    pub limit: i64,
    /// How long an empty page may be held back.
    pub wait: Duration,
    /// Type globs; empty selects every type.
    pub types: &'a [String],
    /// Signalled when this process appends to the outbox, so a long poll answers at once.
    pub appended: Option<Waiter>,
}

/// A page of events and where the next one starts. `next_after` is past events the types do
/// not select too, so a reader never scans them again.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub events: Vec<Value>,
    pub next_after: i64,
}

pub async fn page(store: &Store, mut request: PageRequest<'_>) -> StoreResult<Page> {
    let limit = request.limit.clamp(1, MAX_LIMIT) as usize;
    let deadline = tokio::time::Instant::now() + request.wait;
    // Without a filter every row is wanted: read no more than the page.
    let scan = if request.types.is_empty() {
        limit as i64
    } else {
        SCAN
    };
    let mut cursor = request.after;
    loop {
        let mut events = Vec::new();
        for row in store.change_events_after(cursor, scan).await? {
            if events.len() == limit {
                break;
            }
            cursor = row.position;
            if filter::wants(request.types, &row.r#type) {
                events.push(row.event);
            }
        }
        let now = tokio::time::Instant::now();
        if !events.is_empty() || now >= deadline {
            return Ok(Page {
                events,
                next_after: cursor,
            });
        }
        let step = LONG_POLL_STEP.min(deadline - now);
        wait_or_sleep(request.appended.as_mut(), step).await;
    }
}
