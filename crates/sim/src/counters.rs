//! Request and delivery counters the control API exposes, so tests and benchmarks can assert
//! "zero throttled requests", "no Panopto 429s", "every event delivered". Per-credential
//! counters are keyed by [`crate::ids::token_label`], never by the credential itself.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::ids::token_label;
use crate::live_events::LiveEventCounters;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenCounters {
    pub requests: u64,
    pub cost_units: f64,
    pub throttled: u64,
    pub unauthorized: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointCounters {
    pub requests: u64,
    pub throttled: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanvasCounters {
    pub requests: u64,
    pub cost_units: f64,
    pub throttled: u64,
    pub unauthorized: u64,
    pub per_token: BTreeMap<String, TokenCounters>,
    pub per_endpoint: BTreeMap<String, EndpointCounters>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PanoptoCounters {
    pub requests: u64,
    pub throttled: u64,
    pub unauthorized: u64,
    pub per_client: BTreeMap<String, TokenCounters>,
    pub per_endpoint: BTreeMap<String, EndpointCounters>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LectureCounters {
    pub sessions: u64,
    pub missed_lectures: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineCounters {
    pub applied: u64,
    pub pending: u64,
}

/// A snapshot of every counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub sim_time: String,
    pub canvas: CanvasCounters,
    pub live_events: LiveEventCounters,
    pub panopto: PanoptoCounters,
    pub lectures: LectureCounters,
    pub timeline: TimelineCounters,
    pub writes: Writes,
}

impl Counters {
    /// Counters of one Canvas credential (zeros if it made no request).
    pub fn canvas_token(&self, token: &str) -> TokenCounters {
        self.canvas
            .per_token
            .get(&token_label(token))
            .cloned()
            .unwrap_or_default()
    }
}

/// Writes made through the APIs (Canvas and Panopto), by operation and target: a write
/// repeated on one target shows here even when it changed nothing the second time, so a
/// test can tell "done once" from "done twice" (a folder created, a session moved, a grant,
/// a module item). Operations are named `<thing>.<verb>` (`folder.create`, `session.move`,
/// `module_item.create`); a target names what was written (`<parent>/<name>`, an id, `<folder>
/// <role> <principal>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Writes(pub BTreeMap<String, BTreeMap<String, u64>>);

impl Writes {
    pub fn record(&mut self, op: &str, target: impl Into<String>) {
        *self
            .0
            .entry(op.to_owned())
            .or_default()
            .entry(target.into())
            .or_default() += 1;
    }

    /// Writes of `op`, on every target.
    pub fn total(&self, op: &str) -> u64 {
        self.0.get(op).map_or(0, |t| t.values().sum())
    }

    /// Targets `op` wrote more than once, with their counts.
    pub fn repeated(&self, op: &str) -> Vec<(String, u64)> {
        self.0
            .get(op)
            .into_iter()
            .flatten()
            .filter(|(_, n)| **n > 1)
            .map(|(t, n)| (t.clone(), *n))
            .collect()
    }

    /// Every write of every operation.
    pub fn all(&self) -> u64 {
        self.0.values().flat_map(|t| t.values()).sum()
    }
}

/// The mutable request counters (live-event and lecture counters live with their owners).
#[derive(Debug, Default)]
pub struct Stats {
    pub canvas: CanvasCounters,
    pub panopto: PanoptoCounters,
}

impl Stats {
    pub fn canvas_request(&mut self, key: &str, endpoint: &str, cost: f64, status: StatusCode) {
        let c = &mut self.canvas;
        c.requests += 1;
        c.cost_units += cost;
        let t = c.per_token.entry(key.to_owned()).or_default();
        t.requests += 1;
        t.cost_units += cost;
        let e = c.per_endpoint.entry(endpoint.to_owned()).or_default();
        e.requests += 1;
        if status == StatusCode::UNAUTHORIZED {
            c.unauthorized += 1;
            t.unauthorized += 1;
        }
        if status.is_client_error() || status.is_server_error() {
            e.errors += 1;
        }
    }

    pub fn canvas_throttled(&mut self, key: &str, endpoint: &str) {
        let c = &mut self.canvas;
        c.requests += 1;
        c.throttled += 1;
        c.per_token.entry(key.to_owned()).or_default().throttled += 1;
        c.per_token.entry(key.to_owned()).or_default().requests += 1;
        let e = c.per_endpoint.entry(endpoint.to_owned()).or_default();
        e.requests += 1;
        e.throttled += 1;
    }

    pub fn panopto_request(&mut self, client: &str, endpoint: &str, status: StatusCode) {
        let p = &mut self.panopto;
        p.requests += 1;
        let c = p.per_client.entry(client.to_owned()).or_default();
        c.requests += 1;
        let e = p.per_endpoint.entry(endpoint.to_owned()).or_default();
        e.requests += 1;
        if status == StatusCode::TOO_MANY_REQUESTS {
            p.throttled += 1;
            c.throttled += 1;
            e.throttled += 1;
        } else if status == StatusCode::UNAUTHORIZED {
            p.unauthorized += 1;
            c.unauthorized += 1;
        }
        if status.is_client_error() || status.is_server_error() {
            e.errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Writes;

    #[test]
    fn a_write_repeated_on_one_target_is_told_from_writes_on_two() {
        let mut w = Writes::default();
        w.record("session.move", "s1");
        w.record("session.move", "s2");
        assert!(w.repeated("session.move").is_empty());
        w.record("session.move", "s1");
        assert_eq!(w.repeated("session.move"), vec![("s1".to_owned(), 2)]);
        assert_eq!((w.total("session.move"), w.total("folder.create")), (3, 0));
        w.record("folder.create", "/x");
        assert_eq!(w.all(), 4);
    }
}
