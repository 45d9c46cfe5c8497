//! `coursewire replay`: re-runs a time window, in one of two ways.
//!
//! * **`--reprocess`** puts the inbox rows received in the window back to `pending` and
//!   processes them again, in this process (a running `serve` may share the work: leases keep
//!   the two apart). The catalog's versions make this idempotent: events already applied are
//!   duplicates or stale and produce no change event; only what was missed (or quarantined and
//!   since fixed, with `--include-quarantined`) changes anything.
//! * **`--subscription NAME`** re-delivers the change events created in the window to one
//!   subscription, with their own ids (`webhook-id`), one subject at a time and oldest first.
//!   The running `serve` sends them (the same path as retried dead letters); this command
//!   only queues them.
//!
//! `--source` and `--types` narrow the window; `--dry-run` counts and changes nothing. A
//! progress bar is drawn on a terminal only.

use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Processor, Settings};
use crate::bus::delivery::filter;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{self, Store};

/// Rows or events read per page while selecting the window.
const PAGE: i64 = 1000;
/// Rows requeued (or events queued) per transaction.
const CHUNK: usize = 500;

/// The inbox sources a replay can select.
pub const SOURCES: [&str; 3] = ["canvas", "panopto", "reconcile"];

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Only inbox rows of this source (`--reprocess`), or change events whose CloudEvent
    /// source is this system (`--subscription`).
    pub source: Option<String>,
    /// Type globs: inbox event names (`enrollment_*`) with `--reprocess`, change event types
    /// (`edu.canvas.enrollment.*`) with `--subscription`. Empty: all.
    pub types: Vec<String>,
    pub target: Target,
    pub dry_run: bool,
    pub include_quarantined: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Reprocess,
    Subscription(String),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReplayReport {
    /// `reprocess` or `subscription`.
    pub mode: &'static str,
    pub dry_run: bool,
    /// Inbox rows or change events in the window that passed the filters.
    pub matched: u64,
    /// Inbox rows put back to `pending` (`--reprocess`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeued: Option<u64>,
    /// Rows processed by this command (`--reprocess`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processed: Option<usize>,
    /// Events queued for re-delivery (`--subscription`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
}

impl ReplayRequest {
    fn check(&self) -> anyhow::Result<()> {
        if self.from >= self.to {
            bail!("--from must be before --to");
        }
        if let Some(source) = &self.source {
            if !SOURCES.contains(&source.as_str()) {
                bail!("--source must be one of {}", SOURCES.join(", "));
            }
            if source == "reconcile" && matches!(self.target, Target::Subscription(_)) {
                bail!(
                    "--source reconcile selects inbox rows; change events carry the system they \
                     describe (canvas or panopto)"
                );
            }
        }
        if self.include_quarantined && matches!(self.target, Target::Subscription(_)) {
            bail!("--include-quarantined applies to --reprocess only");
        }
        Ok(())
    }
}

/// Runs the replay against the configured store.
pub async fn run(config: &Config, request: &ReplayRequest) -> anyhow::Result<ReplayReport> {
    request.check()?;
    let store = store::open(config.database.url.expose())
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store.migrate().await.context("migrations failed")?;
    let report = match &request.target {
        Target::Reprocess => reprocess(config, &store, request).await,
        Target::Subscription(name) => redeliver(&store, request, name).await,
    };
    store.close().await;
    report
}

async fn reprocess(
    config: &Config,
    store: &Arc<Store>,
    request: &ReplayRequest,
) -> anyhow::Result<ReplayReport> {
    let (from, to) = (
        request.from.timestamp_millis(),
        request.to.timestamp_millis(),
    );
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .replay_candidates(from, to, request.include_quarantined, after, PAGE)
            .await
            .context("cannot read the inbox")?;
        let Some(last) = page.last() else { break };
        after = last.id;
        ids.extend(
            page.iter()
                .filter(|row| request.source.as_ref().is_none_or(|s| *s == row.source))
                .filter(|row| {
                    request.types.is_empty()
                        || row
                            .event_name
                            .as_deref()
                            .is_some_and(|name| filter::wants(&request.types, name))
                })
                .map(|row| row.id),
        );
    }
    let matched = ids.len() as u64;
    if request.dry_run {
        return Ok(ReplayReport {
            mode: "reprocess",
            dry_run: true,
            matched,
            requeued: None,
            processed: None,
            queued: None,
        });
    }
    let mut requeued = 0;
    for chunk in ids.chunks(CHUNK) {
        requeued += store.requeue_rows(chunk).await.context("requeue failed")?;
    }
    let processor = Processor::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        Settings::from(&config.processor),
    );
    let bar = progress(requeued, "processing");
    let stop = CancellationToken::new();
    let mut processed = 0;
    while let Some(done) = processor
        .run_once(&stop)
        .await
        .context("processing failed")?
    {
        processed += done;
        bar.set_position(processed as u64);
    }
    bar.finish_and_clear();
    Ok(ReplayReport {
        mode: "reprocess",
        dry_run: false,
        matched,
        requeued: Some(requeued),
        processed: Some(processed),
        queued: None,
    })
}

async fn redeliver(
    store: &Arc<Store>,
    request: &ReplayRequest,
    name: &str,
) -> anyhow::Result<ReplayReport> {
    let subscription = store
        .subscription(name)
        .await?
        .with_context(|| format!("no subscription named {name:?}"))?;
    let (from, to) = (
        request.from.timestamp_millis(),
        request.to.timestamp_millis(),
    );
    let prefix = request.source.as_ref().map(|s| format!("{s}://"));
    let bar = progress(0, "queueing");
    let mut matched = 0;
    let mut queued = 0;
    let mut after = 0;
    loop {
        let page = store
            .change_events_created_between(from, to, after, PAGE)
            .await
            .context("cannot read the outbox")?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let chosen: Vec<_> = page
            .into_iter()
            .filter(|event| {
                prefix.as_ref().is_none_or(|p| {
                    event.event["source"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(p.as_str()))
                })
            })
            .filter(|event| filter::wants(&request.types, &event.r#type))
            // What the subscription would never have been sent is not re-sent either.
            .filter(|event| filter::wants(&subscription.types, &event.r#type))
            .collect();
        matched += chosen.len() as u64;
        if !request.dry_run {
            for chunk in chosen.chunks(CHUNK) {
                queued += store
                    .queue_redeliveries(
                        subscription.id,
                        chunk,
                        "replay",
                        Utc::now().timestamp_millis(),
                    )
                    .await
                    .context("cannot queue the re-deliveries")?;
            }
        }
        bar.set_position(matched);
    }
    bar.finish_and_clear();
    Ok(ReplayReport {
        mode: "subscription",
        dry_run: request.dry_run,
        matched,
        requeued: None,
        processed: None,
        queued: (!request.dry_run).then_some(queued),
    })
}

/// A bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress(total: u64, what: &'static str) -> ProgressBar {
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::no_length()
    };
    let style = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what);
    bar
}
