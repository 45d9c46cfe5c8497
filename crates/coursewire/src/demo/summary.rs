//! The demo's result: the figures as one JSON document (`--json-summary`, stable in shape) and
//! as a table for the terminal, with the "must" checks that decide the exit code.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run: RunFigures,
    pub bootstrap: BootstrapFigures,
    pub live_events: LiveEventFigures,
    pub change_events: ChangeEventFigures,
    pub canvas_api: CanvasApiFigures,
    pub propagation: Propagation,
    pub reconcile: ReconcileFigures,
    pub checks: Vec<Check>,
    /// Every check passed.
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    pub scale: String,
    pub seed: u64,
    pub days: u32,
    pub speed: f64,
    pub faults: bool,
    pub simulated_from: String,
    pub simulated_to: String,
    pub wall_seconds: f64,
    pub data_dir: String,
    pub log_file: String,
    /// What `--faults` did, in order (empty without it).
    pub faults_injected: Vec<String>,
}

/// The catalog's first load, before the simulated days: one reconcile pass over Canvas.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapFigures {
    /// Inbox events the pass wrote (one per entity Canvas has).
    pub repairs: u64,
    /// Change events they produced, delivered to every subscriber before the days start.
    pub change_events: u64,
    pub requests: u64,
    pub seconds: f64,
}

/// Canvas's side (the simulator's counters) and ours (the inbox).
#[derive(Debug, Clone, Serialize)]
pub struct LiveEventFigures {
    /// Live Events Canvas produced for the changes it made.
    pub emitted: u64,
    /// Deliveries Canvas made that coursewire acknowledged (duplicates included).
    pub delivered: u64,
    /// Lost: by the injected loss, after Canvas's 4 tries, or to a deactivated subscription.
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Distinct events in coursewire's inbox from Canvas.
    pub received_distinct: u64,
    /// Events the reconciler synthesized for what Live Events missed.
    pub repairs_received: u64,
    pub quarantined: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeEventFigures {
    /// Change events in the outbox.
    pub produced: u64,
    pub from_live_events: u64,
    pub from_reconcile: u64,
    pub subscribers: usize,
    pub deliveries_expected: u64,
    pub delivered: u64,
    pub missing: u64,
    /// A `webhook-id` acknowledged twice by the same subscriber.
    pub duplicates: u64,
    /// A subject's `sequence` that was not the previous one plus one.
    pub out_of_order: u64,
    pub bad_signatures: u64,
    /// Attempts refused by the subscriber that was down (retried later).
    pub refused_while_down: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CanvasApiFigures {
    /// Requests coursewire made (reconciler passes and the final reconcile and verify).
    pub requests: u64,
    pub cost_units: f64,
    /// Throttled responses Canvas gave any of our clients.
    pub throttled: u64,
    /// Answers with 401 (revoked or expired tokens) and 5xx (the outage).
    pub unauthorized: u64,
    pub naive: NaiveFigures,
    /// Naive requests ÷ ours.
    pub requests_saved_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NaiveFigures {
    pub systems: u32,
    pub nights: u32,
    /// One crawl measured against the simulator, times systems × nights.
    pub requests: u64,
    pub cost_units: f64,
    pub one_crawl_requests: u64,
    pub one_crawl_cost_units: f64,
}

/// From a change in Canvas (the CloudEvent `time`) to its acknowledgment by a subscriber, for
/// change events caused by Live Events.
#[derive(Debug, Clone, Serialize)]
pub struct Propagation {
    pub deliveries_measured: u64,
    pub p50_simulated_seconds: f64,
    pub p99_simulated_seconds: f64,
    pub p50_wall_ms: f64,
    pub p99_wall_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileFigures {
    /// Repairs written by the final reconcile.
    pub final_repairs: u64,
    pub courses_verified: u64,
    /// Divergences `coursewire verify` finds after the final reconcile.
    pub divergence: u64,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub value: String,
}

impl Summary {
    /// The "must" figures, as checks.
    pub fn checks_for(
        change: &ChangeEventFigures,
        api: &CanvasApiFigures,
        reconcile: &ReconcileFigures,
    ) -> Vec<Check> {
        let zero = |name: &str, value: u64| Check {
            name: name.to_owned(),
            ok: value == 0,
            value: value.to_string(),
        };
        vec![
            zero("deliveries missing", change.missing),
            zero("duplicate deliveries", change.duplicates),
            zero("out-of-order deliveries", change.out_of_order),
            zero("bad signatures", change.bad_signatures),
            zero("throttled Canvas requests", api.throttled),
            zero("divergence after the final reconcile", reconcile.divergence),
            Check {
                name: "final verify read every course".into(),
                ok: reconcile.errors.is_empty() && reconcile.courses_verified > 0,
                value: format!(
                    "{} courses, {} errors",
                    reconcile.courses_verified,
                    reconcile.errors.len()
                ),
            },
        ]
    }

    /// The table for the terminal.
    pub fn table(&self) -> String {
        let r = &self.run;
        let l = &self.live_events;
        let c = &self.change_events;
        let a = &self.canvas_api;
        let p = &self.propagation;
        let rows: Vec<(String, String)> = vec![
            (
                "simulated".into(),
                format!(
                    "{} day(s) of term, {} → {}, in {:.0} s ({} scale, speed {}×{})",
                    r.days,
                    r.simulated_from,
                    r.simulated_to,
                    r.wall_seconds,
                    r.scale,
                    r.speed,
                    if r.faults { ", faults on" } else { "" }
                ),
            ),
            (
                "catalog load".into(),
                format!(
                    "{} entities read in {} requests, {} change events delivered, {:.1} s",
                    self.bootstrap.repairs,
                    self.bootstrap.requests,
                    self.bootstrap.change_events,
                    self.bootstrap.seconds
                ),
            ),
            (
                "Live Events".into(),
                format!(
                    "{} emitted by Canvas, {} delivered, {} dropped, {} duplicated, {} reordered",
                    l.emitted, l.delivered, l.dropped, l.duplicated, l.reordered
                ),
            ),
            (
                "inbox".into(),
                format!(
                    "{} distinct Live Events, {} reconcile repairs, {} quarantined",
                    l.received_distinct, l.repairs_received, l.quarantined
                ),
            ),
            (
                "change events".into(),
                format!(
                    "{} produced ({} from Live Events, {} from reconcile), {} of {} deliveries to {} subscribers",
                    c.produced,
                    c.from_live_events,
                    c.from_reconcile,
                    c.delivered,
                    c.deliveries_expected,
                    c.subscribers
                ),
            ),
            (
                "subscribers saw".into(),
                format!(
                    "{} duplicates, {} out of order, {} bad signatures, {} refused while down",
                    c.duplicates, c.out_of_order, c.bad_signatures, c.refused_while_down
                ),
            ),
            (
                "Canvas API".into(),
                format!(
                    "{} requests, {:.1} cost units, {} throttled, {} unauthorized",
                    a.requests, a.cost_units, a.throttled, a.unauthorized
                ),
            ),
            (
                "naive nightly sync".into(),
                format!(
                    "{} requests, {:.1} cost units ({} systems × {} nights; {:.0}× ours)",
                    a.naive.requests,
                    a.naive.cost_units,
                    a.naive.systems,
                    a.naive.nights,
                    a.requests_saved_ratio
                ),
            ),
            (
                "propagation".into(),
                format!(
                    "p50 {:.1} s / p99 {:.1} s simulated; p50 {:.0} ms / p99 {:.0} ms wall ({} deliveries)",
                    p.p50_simulated_seconds,
                    p.p99_simulated_seconds,
                    p.p50_wall_ms,
                    p.p99_wall_ms,
                    p.deliveries_measured
                ),
            ),
            (
                "final reconcile".into(),
                format!(
                    "{} repairs, {} courses verified, divergence {}",
                    self.reconcile.final_repairs,
                    self.reconcile.courses_verified,
                    self.reconcile.divergence
                ),
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        out.push('\n');
        for check in &self.checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("  [{mark}] {}: {}\n", check.name, check.value));
        }
        for fault in &r.faults_injected {
            out.push_str(&format!("  fault: {fault}\n"));
        }
        out.push_str(&format!("\n  log: {}\n", r.log_file));
        out
    }
}

/// The `p`th percentile of sorted values (nearest rank); 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
