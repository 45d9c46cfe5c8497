//! The reconciler: reads Canvas back course by course (GraphQL nested read), compares it with
//! the catalog and writes each difference into the inbox as a synthesized Live Event (source
//! `reconcile`), so events Canvas lost (Live Events are best effort, canvas.md A4) are repaired
//! by the same processor, merge rule and change events as pushed ones. `coursewire verify`
//! runs the same read and comparison without writing.
//!
//! It owns the read, the comparison ([`compare`]) and the shape of repair events
//! ([`synthesize`]); it must not touch the catalog directly: the processor decides, with its
//! version rule, whether a repair still applies when it gets to it.
//!
//! Scheduling ([`schedule`]): one pass over every course per `reconcile.period_seconds`, the
//! courses spread evenly over it at [`Priority::Bulk`]; a Live Events silence during teaching
//! hours or the end of a declared outage starts an immediate pass (a backfill).

pub mod compare;
mod course;
pub mod schedule;
pub mod synthesize;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context as _;
use canvas::client::{CanvasClient, CourseRead, GraphQlError, Priority};
use futures::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::canvas_api;
use crate::catalog::{EntityKind, EntityRef};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::{self, Store};
use crate::tasks::Tasks;
pub use compare::{Difference, Divergence};
pub use course::{CanvasCourse, Examined, examine};
pub use synthesize::{ReadContext, SOURCE};

/// Write the repairs (reconcile) or only report them (verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Repair,
    Report,
}

/// What a pass did: `coursewire reconcile` prints it, `coursewire verify` adds the list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    pub courses_read: usize,
    pub courses_failed: usize,
    /// Canvas HTTP requests made (retries included).
    pub requests: u64,
    pub entities_compared: usize,
    /// Divergent fields or presence per entity kind.
    pub differences: BTreeMap<EntityKind, usize>,
    /// Repair events new to the inbox, and repairs already waiting there (same content).
    pub events_written: usize,
    pub events_already_queued: usize,
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergences: Option<Vec<Divergence>>,
}

impl PassReport {
    pub fn divergence_count(&self) -> usize {
        self.differences.values().sum()
    }
}

/// The host Canvas's own Live Events name (`metadata.hostname`), from the base URL.
fn hostname(base_url: &str) -> String {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_ascii_lowercase()
}

/// One process's reconciler: a Canvas client, the store and the clock that dates reads.
#[derive(Debug, Clone)]
pub struct Reconciler {
    store: Arc<Store>,
    canvas: CanvasClient,
    clock: Arc<dyn Clock>,
    account_id: u64,
    hostname: String,
    read: CourseRead,
    /// Courses read side by side in an on-demand [`Reconciler::pass`].
    concurrency: usize,
}

impl Reconciler {
    /// A reconciler calling Canvas through `canvas` (the process's client of `[canvas.api]`),
    /// dating reads by `clock` (Canvas's time).
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        canvas: CanvasClient,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            canvas,
            store,
            clock,
            account_id: config.canvas.api.account_id,
            hostname: hostname(&config.canvas.api.url),
            concurrency: config.canvas.api.concurrency.max(1),
            read: CourseRead {
                page_size: config.reconcile.page_size,
                priority: Priority::Bulk,
                ..CourseRead::default()
            },
        }
    }

    /// For a command of its own (`reconcile`, `verify`): opens the store from `[database]`
    /// (migrating it, as `serve` does) and the Canvas client.
    pub async fn from_config(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let canvas = canvas_api::client(&config.canvas.api, clock.clone())?;
        let store = store::open(config.database.url.expose())
            .await
            .with_context(|| format!("cannot open the store at {}", config.database.url))?;
        store.migrate().await.context("migrations failed")?;
        Ok(Self::new(config, store, canvas, clock))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The courses of a pass: every live course of the account in Canvas, plus every live
    /// catalog course (so a course Canvas no longer lists is looked at too), in id order.
    pub async fn courses(&self) -> anyhow::Result<Vec<u64>> {
        let listed = self
            .canvas
            .account_course_ids(self.account_id, Priority::Bulk)
            .await
            .with_context(|| format!("cannot list the courses of account {}", self.account_id))?;
        let mut all: BTreeSet<u64> = listed.into_iter().collect();
        all.extend(
            self.store
                .catalog_course_ids()
                .await?
                .into_iter()
                .filter_map(|id| u64::try_from(id).ok()),
        );
        Ok(all.into_iter().collect())
    }

    /// Reads, compares and (in [`Mode::Repair`]) repairs one course, adding to `report`.
    pub async fn course(&self, course_id: u64, mode: Mode, report: &mut PassReport) {
        let before = self.canvas.counts().requests;
        let result = self.course_inner(course_id, mode, report).await;
        report.requests += self.canvas.counts().requests.saturating_sub(before);
        match result {
            Ok(()) => report.courses_read += 1,
            Err(err) => {
                tracing::warn!(course_id, error = %format!("{err:#}"), "course not reconciled");
                report.courses_failed += 1;
                report.errors.push(format!("course {course_id}: {err:#}"));
            }
        }
    }

    async fn course_inner(
        &self,
        course_id: u64,
        mode: Mode,
        report: &mut PassReport,
    ) -> anyhow::Result<()> {
        // Taken before the read: a change made while the read runs has a later Live Event,
        // which must win over what the read saw.
        let ctx = ReadContext {
            hostname: self.hostname.clone(),
            read_ms: self.clock.now_ms(),
        };
        let canvas = match self.canvas.nested_course(course_id, &self.read).await {
            Ok(read) => CanvasCourse::from_read(&read),
            Err(GraphQlError::NotFound { what, .. }) => {
                // Absent or hidden from this token: deleting what we cannot see would be a
                // guess, so the course is reported, not repaired.
                if let Ok(id) = i64::try_from(course_id)
                    && self
                        .store
                        .catalog_entity(&EntityRef::new(EntityKind::Course, id))
                        .await?
                        .is_some()
                {
                    self.note(
                        report,
                        vec![Divergence {
                            kind: EntityKind::Course,
                            id: id.into(),
                            difference: Difference::MissingInCanvas,
                        }],
                    );
                }
                anyhow::bail!("{what} is missing in Canvas or not visible to this token");
            }
            Err(err) => return Err(err).context("Canvas read failed"),
        };
        let catalog = course::catalog_for(self.store.as_ref(), &canvas).await?;
        let examined = examine(&ctx, &canvas, &catalog, self.clock.now_ms())?;
        report.entities_compared += examined.compared;
        self.note(report, examined.divergences);
        if mode == Mode::Repair {
            let (written, queued) = course::write(self.store.as_ref(), &examined.repairs).await?;
            report.events_written += written;
            report.events_already_queued += queued;
        }
        Ok(())
    }

    fn note(&self, report: &mut PassReport, divergences: Vec<Divergence>) {
        for d in &divergences {
            *report.differences.entry(d.kind).or_default() += 1;
        }
        if let Some(list) = report.divergences.as_mut() {
            list.extend(divergences);
        }
    }

    /// A pass over `courses` (all of them when `None`) with no spacing, up to `concurrency`
    /// courses at a time (the quota governor still decides what goes out); the report lists
    /// courses in id order whatever order they finish in.
    pub async fn pass(&self, courses: Option<Vec<u64>>, mode: Mode) -> PassReport {
        let mut report = PassReport {
            divergences: (mode == Mode::Report).then(Vec::new),
            ..PassReport::default()
        };
        let before = self.canvas.counts().requests;
        let courses = match courses {
            Some(courses) => courses,
            None => match self.courses().await {
                Ok(courses) => courses,
                Err(err) => {
                    report.requests = self.canvas.counts().requests.saturating_sub(before);
                    report.errors.push(format!("{err:#}"));
                    return report;
                }
            },
        };
        let parts: Vec<PassReport> = futures::stream::iter(courses)
            .map(|course_id| async move {
                let mut part = PassReport {
                    divergences: (mode == Mode::Report).then(Vec::new),
                    ..PassReport::default()
                };
                self.course(course_id, mode, &mut part).await;
                part
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        for part in parts {
            report.absorb(part);
        }
        // Per-course counts overlap when courses run side by side: count the pass as a whole.
        report.requests = self.canvas.counts().requests.saturating_sub(before);
        report
    }
}

impl PassReport {
    fn absorb(&mut self, part: PassReport) {
        self.courses_read += part.courses_read;
        self.courses_failed += part.courses_failed;
        self.entities_compared += part.entities_compared;
        for (kind, n) in part.differences {
            *self.differences.entry(kind).or_default() += n;
        }
        self.events_written += part.events_written;
        self.events_already_queued += part.events_already_queued;
        self.errors.extend(part.errors);
        if let (Some(all), Some(found)) = (self.divergences.as_mut(), part.divergences) {
            all.extend(found);
        }
    }
}

/// `coursewire reconcile [--course ID]`: one pass now, repairs written to the inbox (a running
/// `serve` applies them).
pub async fn run_on_demand(config: &Config, course: Option<u64>) -> anyhow::Result<PassReport> {
    let reconciler = Reconciler::from_config(config, Arc::new(crate::clock::SystemClock)).await?;
    let report = reconciler.pass(course.map(|c| vec![c]), Mode::Repair).await;
    reconciler.store.close().await;
    Ok(report)
}

/// `coursewire verify`: a full read of Canvas compared with the catalog; nothing is written.
pub async fn verify(config: &Config) -> anyhow::Result<PassReport> {
    let reconciler = Reconciler::from_config(config, Arc::new(crate::clock::SystemClock)).await?;
    let report = reconciler.pass(None, Mode::Report).await;
    reconciler.store.close().await;
    Ok(report)
}

/// Starts the background reconciler as a task of this process, on the process's store and
/// Canvas client. `canvas_clock` dates Canvas reads and runs the schedule (Canvas's time: the
/// simulator's in the demo).
pub fn spawn(
    config: &Config,
    store: Arc<Store>,
    canvas: CanvasClient,
    canvas_clock: Arc<dyn Clock>,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let settings = schedule::Settings::from_config(&config.reconcile, &config.university)?;
    let reconciler = Reconciler::new(config, store, canvas, canvas_clock.clone());
    tasks.spawn(
        "reconciler",
        schedule::run(reconciler, settings, canvas_clock, cancel.child_token()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_come_from_the_base_url() {
        assert_eq!(
            hostname("https://Canvas.Example.edu/"),
            "canvas.example.edu"
        );
        assert_eq!(hostname("http://127.0.0.1:8090"), "127.0.0.1:8090");
    }
}
