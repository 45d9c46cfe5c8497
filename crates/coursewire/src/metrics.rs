//! Prometheus metrics, named `coursewire_<area>_<what>_<unit>`. One [`Metrics`] per process,
//! shared by every part that counts something; `/metrics` renders it. Gauges that mirror the
//! store (inbox depth) are refreshed at scrape time rather than tracked by hand, so they cannot
//! drift from the truth.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::store::{InboxDepth, InboxStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    pub events_received: Counter,
    pub events_accepted: Counter,
    pub events_duplicate: Counter,
    pub events_quarantined: Counter,
    pub events_rejected: Family<ReasonLabel, Counter>,
    pub ingest_latency: Histogram,
    pub ingest_batch_size: Histogram,
    pub inbox_depth: Family<StatusLabel, Gauge>,
    pub processor_events: Family<OutcomeLabel, Counter>,
    pub processor_change_events: Counter,
    pub processor_quarantined: Counter,
    pub processor_lag: Histogram,
    pub delivery_attempts: Family<SubscriptionLabel, Counter>,
    pub delivery_outcomes: Family<DeliveryOutcomeLabel, Counter>,
    pub delivery_latency: Histogram,
    pub delivery_lag: Family<SubscriptionLabel, Gauge<f64, AtomicU64>>,
    /// Canvas API client health, mirrored from the client at each scrape (see
    /// [`Metrics::set_canvas_api`]).
    pub canvas_api: Family<CanvasApiLabel, Gauge>,
    /// Panopto API client health, mirrored at each scrape ([`Metrics::set_panopto_api`]).
    pub panopto_api: Family<CanvasApiLabel, Gauge>,
    /// Share of each of Panopto's windows used now, every process on the API client counted.
    pub panopto_budget: Family<WindowLabel, Gauge<f64, AtomicU64>>,
    /// Recordings by workflow state, read from the store at scrape time.
    pub workflow_recordings: Family<StateLabel, Gauge>,
    /// Workflow command rows by step and status (pending, done, failed).
    pub workflow_commands: Family<CommandLabel, Gauge>,
    /// Ready to post → posted, p50 and p99 over the recordings posted in the last day.
    pub workflow_post_latency: Family<QuantileLabel, Gauge<f64, AtomicU64>>,
    /// Recordings posted in the last day (the quantiles' sample).
    pub workflow_posted_day: Gauge,
    /// Audits that found a difference a person made, over every recording.
    pub workflow_drift_found: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabel {
    pub quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    pub step: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabel {
    /// `1s`, `60s`, `3600s`.
    pub window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CanvasApiLabel {
    pub measure: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabel {
    pub subscription: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryOutcomeLabel {
    pub subscription: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// One `measure` of an API client's gauge family.
fn set_measure(family: &Family<CanvasApiLabel, Gauge>, measure: &str, value: i64) {
    family
        .get_or_create(&CanvasApiLabel {
            measure: measure.to_owned(),
        })
        .set(value);
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Mirrors the Canvas API client's token health and request counts.
    pub fn set_canvas_api(&self, client: &canvas::client::CanvasClient) {
        let health = client.tokens().health();
        let counts = client.counts();
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (measure, value) in [
            (
                "token_seconds_to_expiry",
                health.seconds_to_expiry.unwrap_or(-1),
            ),
            ("token_refreshes", to_i64(health.refreshes)),
            ("token_refresh_failures", to_i64(health.refresh_failures)),
            ("token_revoked", i64::from(health.revoked)),
            ("requests", to_i64(counts.requests)),
            ("retries", to_i64(counts.retries)),
            ("throttled", to_i64(counts.throttled)),
            ("unauthorized", to_i64(counts.unauthorized)),
        ] {
            set_measure(&self.canvas_api, measure, value);
        }
    }

    /// Mirrors the Panopto API client's token health and request counts.
    pub fn set_panopto_api(&self, client: &panopto::client::PanoptoClient) {
        let health = client.tokens().health();
        let counts = client.counts();
        // Requests let through by the pacer, per priority class: the workflow's writes and
        // the reads they need, beside the poller's.
        let admitted = client.pacer().admitted();
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (measure, value) in [
            (
                "token_seconds_to_expiry",
                health.seconds_to_expiry.unwrap_or(-1),
            ),
            ("token_logons", to_i64(health.logons)),
            ("token_refreshes", to_i64(health.refreshes)),
            ("token_failures", to_i64(health.failures)),
            ("token_revocations", to_i64(health.revocations)),
            ("token_revoked", i64::from(health.revoked)),
            ("requests", to_i64(counts.requests)),
            ("retries", to_i64(counts.retries)),
            ("throttled", to_i64(counts.throttled)),
            ("server_errors", to_i64(counts.server_errors)),
            ("admitted_write", to_i64(admitted[0])),
            ("admitted_poll", to_i64(admitted[1])),
            ("admitted_backfill", to_i64(admitted[2])),
        ] {
            set_measure(&self.panopto_api, measure, value);
        }
    }

    /// Sets the share of each Panopto window in use.
    pub fn set_panopto_budget(&self, headroom: &[panopto::client::Headroom]) {
        for h in headroom {
            self.panopto_budget
                .get_or_create(&WindowLabel {
                    window: format!("{}s", h.span_ms / 1000),
                })
                .set(1.0 - h.free_share());
        }
    }

    pub fn new() -> Self {
        let mut registry = Registry::default();
        let events_received = Counter::default();
        let events_accepted = Counter::default();
        let events_duplicate = Counter::default();
        let events_quarantined = Counter::default();
        let events_rejected = Family::<ReasonLabel, Counter>::default();
        // 0.5 ms … ~1 s: an answer slower than that is already a problem for Canvas's 15 s budget.
        let ingest_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 12),
        );
        let ingest_batch_size = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 11),
        );
        let inbox_depth = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "coursewire_ingest_events_received",
            "Webhook requests received at /hooks/*",
            events_received.clone(),
        );
        registry.register(
            "coursewire_ingest_events_accepted",
            "Events committed to the inbox as new",
            events_accepted.clone(),
        );
        registry.register(
            "coursewire_ingest_events_duplicate",
            "Events already in the inbox (answered 2xx, stored once)",
            events_duplicate.clone(),
        );
        registry.register(
            "coursewire_ingest_events_quarantined",
            "Verified events that could not be parsed, stored as quarantined",
            events_quarantined.clone(),
        );
        registry.register(
            "coursewire_ingest_events_rejected",
            "Requests refused (401 failed verification, 413 too large, 503 keys unavailable)",
            events_rejected.clone(),
        );
        registry.register(
            "coursewire_ingest_latency_seconds",
            "Time from request received to answer, including the group commit",
            ingest_latency.clone(),
        );
        registry.register(
            "coursewire_ingest_commit_batch_events",
            "Events per inbox commit (group commit batch size)",
            ingest_batch_size.clone(),
        );
        registry.register(
            "coursewire_inbox_depth_events",
            "Inbox rows by status",
            inbox_depth.clone(),
        );
        let processor_events = Family::<OutcomeLabel, Counter>::default();
        let processor_change_events = Counter::default();
        let processor_quarantined = Counter::default();
        // 10 ms … ~5 min: from the inbox commit to the catalog commit.
        let processor_lag = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 15),
        );
        registry.register(
            "coursewire_processor_events",
            "Events applied, by outcome (created, updated, deleted, no_op, duplicate, stale, not_cataloged, quarantined …)",
            processor_events.clone(),
        );
        registry.register(
            "coursewire_processor_change_events",
            "Change events appended to the outbox",
            processor_change_events.clone(),
        );
        registry.register(
            "coursewire_processor_quarantined_rows",
            "Inbox rows the processor quarantined (bad event, or poison after max_attempts)",
            processor_quarantined.clone(),
        );
        registry.register(
            "coursewire_processor_lag_seconds",
            "Time from an event's arrival in the inbox to its processing",
            processor_lag.clone(),
        );
        let delivery_attempts = Family::<SubscriptionLabel, Counter>::default();
        let delivery_outcomes = Family::<DeliveryOutcomeLabel, Counter>::default();
        // 10 ms … ~45 h: from inbox receipt to the subscriber's 2xx, retries included.
        let delivery_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 25),
        );
        let delivery_lag = Family::<SubscriptionLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "coursewire_delivery_attempts",
            "Webhook requests sent to subscribers, by subscription",
            delivery_attempts.clone(),
        );
        registry.register(
            "coursewire_delivery_deliveries",
            "Attempts by outcome (delivered, failed, exhausted, dead_lettered, filtered, disabled)",
            delivery_outcomes.clone(),
        );
        registry.register(
            "coursewire_delivery_latency_seconds",
            "Time from an event's arrival in the inbox to its acknowledged delivery",
            delivery_latency.clone(),
        );
        registry.register(
            "coursewire_delivery_lag_seconds",
            "Age of the oldest change event not yet delivered, by subscription",
            delivery_lag.clone(),
        );
        let canvas_api = Family::<CanvasApiLabel, Gauge>::default();
        registry.register(
            "coursewire_canvas_api",
            "Canvas API client of this process, by measure: token_seconds_to_expiry (-1: a \
             token that does not expire), token_refreshes, token_refresh_failures, \
             token_revoked (1: Canvas refused the token or grant; re-authorise), requests, \
             retries, throttled (should stay 0), unauthorized",
            canvas_api.clone(),
        );
        let panopto_api = Family::<CanvasApiLabel, Gauge>::default();
        registry.register(
            "coursewire_panopto_api",
            "Panopto API client of this process, by measure: token_seconds_to_expiry (-1: a \
             token that does not expire), token_logons, token_refreshes, token_failures, \
             token_revocations (refresh tokens Panopto refused; each followed by a new log-on), \
             token_revoked (1: the service user's password is refused), requests, retries, \
             throttled (429s: should stay 0), server_errors",
            panopto_api.clone(),
        );
        let panopto_budget = Family::<WindowLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "coursewire_panopto_budget_used_ratio",
            "Share of Panopto's per-API-client limit used in each window (1s, 60s, 3600s), \
             every process on the API client counted",
            panopto_budget.clone(),
        );
        let workflow_recordings = Family::<StateLabel, Gauge>::default();
        registry.register(
            "coursewire_workflow_recordings",
            "Recordings by workflow state (detected, filed, captioned, posted, audited, parked, \
             failed, withdrawn)",
            workflow_recordings.clone(),
        );
        let workflow_commands = Family::<CommandLabel, Gauge>::default();
        registry.register(
            "coursewire_workflow_commands",
            "Workflow command rows by step and status: pending ones wait to run, failed ones \
             gave up (their recording is failed until replayed)",
            workflow_commands.clone(),
        );
        let workflow_post_latency = Family::<QuantileLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "coursewire_workflow_post_latency_seconds",
            "From a recording ready to post (seen Complete, and captioned when its rule waits) \
             to its Canvas item, quantile 0.5 and 0.99 over the recordings posted in the last \
             24 hours, read from the store (every process's recordings)",
            workflow_post_latency.clone(),
        );
        let workflow_posted_day = Gauge::default();
        registry.register(
            "coursewire_workflow_posted_last_day",
            "Recordings first posted in the last 24 hours",
            workflow_posted_day.clone(),
        );
        let workflow_drift_found = Gauge::default();
        registry.register(
            "coursewire_workflow_drift_found",
            "Audits that found a recording changed by a person (moved, renamed, access or item \
             changed), over every recording",
            workflow_drift_found.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            events_received,
            events_accepted,
            events_duplicate,
            events_quarantined,
            events_rejected,
            ingest_latency,
            ingest_batch_size,
            inbox_depth,
            processor_events,
            processor_change_events,
            processor_quarantined,
            processor_lag,
            delivery_attempts,
            delivery_outcomes,
            delivery_latency,
            delivery_lag,
            canvas_api,
            panopto_api,
            panopto_budget,
            workflow_recordings,
            workflow_commands,
            workflow_post_latency,
            workflow_posted_day,
            workflow_drift_found,
        }
    }

    /// Counts one inbox row the processor finished.
    pub fn processed(
        &self,
        outcomes: &[&str],
        change_events: usize,
        quarantined: bool,
        lag_seconds: f64,
    ) {
        for outcome in outcomes {
            self.processor_events
                .get_or_create(&OutcomeLabel {
                    outcome: (*outcome).to_string(),
                })
                .inc();
        }
        self.processor_change_events.inc_by(change_events as u64);
        if quarantined {
            self.processor_quarantined.inc();
        }
        self.processor_lag.observe(lag_seconds.max(0.0));
    }

    /// Counts one delivery outcome of a subscription.
    pub fn delivery(&self, subscription: &str, outcome: &str) {
        self.delivery_outcomes
            .get_or_create(&DeliveryOutcomeLabel {
                subscription: subscription.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Sets each subscription's lag from the creation time of its oldest undelivered event.
    pub fn set_delivery_lag(&self, backlog: &[(String, Option<i64>)], now_ms: i64) {
        for (name, oldest) in backlog {
            let lag = oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0);
            self.delivery_lag
                .get_or_create(&SubscriptionLabel {
                    subscription: name.clone(),
                })
                .set(lag);
        }
    }

    pub fn rejected(&self, reason: &str) {
        self.events_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn set_inbox_depth(&self, depth: &InboxDepth) {
        for status in InboxStatus::ALL {
            self.inbox_depth
                .get_or_create(&StatusLabel {
                    status: status.as_str().to_string(),
                })
                .set(depth.get(status));
        }
    }

    /// The workflow's gauges from the store's counts: every state and status is set, to 0
    /// when none, so a state that empties reads 0 rather than its last value.
    pub fn set_workflow(&self, states: &[(String, i64)], commands: &[(String, String, i64)]) {
        for state in crate::workflow::steps::State::ALL {
            let n = states
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.workflow_recordings
                .get_or_create(&StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(n);
        }
        for (step, status, n) in commands {
            self.workflow_commands
                .get_or_create(&CommandLabel {
                    step: step.clone(),
                    status: status.clone(),
                })
                .set(*n);
        }
    }

    /// Post latencies (ms, shortest first) of the last day and the drift count, from the
    /// store.
    pub fn set_workflow_timings(&self, latencies_ms: &[i64], drift_found: i64) {
        let seconds: Vec<f64> = latencies_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
        for (label, p) in [("0.5", 50.0), ("0.99", 99.0)] {
            // No recording posted in the window: no figure, rather than a 0 that looks good.
            let value = if seconds.is_empty() {
                f64::NAN
            } else {
                crate::demo::summary::percentile(&seconds, p)
            };
            self.workflow_post_latency
                .get_or_create(&QuantileLabel {
                    quantile: label.to_owned(),
                })
                .set(value);
        }
        self.workflow_posted_day.set(latencies_ms.len() as i64);
        self.workflow_drift_found.set(drift_found);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
