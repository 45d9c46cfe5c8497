//! `coursewire replay`: puts the inbox rows received in a time window back to `pending` and
//! processes them again, in this process (a running `serve` may share the work: leases keep
//! the two apart). The catalog's versions make this idempotent: events already applied are
//! duplicates or stale and produce no change event; only what was missed (or quarantined and
//! since fixed, with `--include-quarantined`) changes anything.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Processor, Settings};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store;

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub requeued: u64,
    pub processed: usize,
}

/// Replays the rows received in `[from, to)`.
pub async fn run(
    config: &Config,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    include_quarantined: bool,
) -> anyhow::Result<ReplayReport> {
    let store = store::open(config.database.url.expose())
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store.migrate().await.context("migrations failed")?;
    let requeued = store
        .requeue(
            from.timestamp_millis(),
            to.timestamp_millis(),
            include_quarantined,
        )
        .await
        .context("requeue failed")?;
    let processor = Processor::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        Settings::from(&config.processor),
    );
    let processed = processor.drain().await.context("processing failed")?;
    store.close().await;
    Ok(ReplayReport {
        requeued,
        processed,
    })
}
