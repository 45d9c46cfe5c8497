//! The demo's downstream systems: in-process HTTP receivers, one path per subscriber, that do
//! what a careful subscriber does and count what a careless one would miss. Each delivery's
//! Standard Webhooks signature is checked with the subscriber's own secret (a bad one is
//! refused with 401 and counted); an acknowledged `webhook-id` seen again is a duplicate; per
//! subject, each `sequence` must be the previous one plus one (a gap or a step back is out of
//! order). A subscriber can be taken down: it then answers 503, as a system being deployed.
//!
//! Receipts keep what the summary needs for propagation latency: the change's time in Canvas
//! (the CloudEvent `time`, simulated) and when the receipt happened, in both clocks.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sim::SimClock;

use crate::bus::delivery::signature;

/// Standard Webhooks' advice: refuse a timestamp more than five minutes from now (replays).
const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;

/// One acknowledged delivery.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub subscriber: usize,
    pub id: String,
    /// The change's time in Canvas (CloudEvent `time`), simulated ms.
    pub change_ms: i64,
    pub received_sim_ms: i64,
    pub received_wall: Instant,
}

/// What every subscriber saw, added up.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub acknowledged: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub bad_signatures: u64,
    pub refused_while_down: u64,
    pub malformed: u64,
    pub per_subscriber: Vec<u64>,
}

#[derive(Debug, Default)]
struct Seen {
    tally: Tally,
    ids: HashSet<(usize, String)>,
    last_sequence: HashMap<(usize, String), i64>,
    receipts: Vec<Receipt>,
}

#[derive(Debug)]
struct Shared {
    keys: Vec<Vec<u8>>,
    down: Vec<AtomicBool>,
    acknowledged: AtomicU64,
    clock: SimClock,
    seen: Mutex<Seen>,
}

/// The running receivers.
#[derive(Debug, Clone)]
pub struct Receivers {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Receivers {
    /// Starts one receiver per secret on a loopback port; subscriber `n` is at [`Self::url`].
    pub async fn start(secrets: &[String], clock: SimClock) -> anyhow::Result<Receivers> {
        let keys = secrets
            .iter()
            .map(|s| signature::secret_key(s))
            .collect::<Result<Vec<_>, _>>()?;
        let seen = Seen {
            tally: Tally {
                per_subscriber: vec![0; keys.len()],
                ..Tally::default()
            },
            ..Seen::default()
        };
        let shared = Arc::new(Shared {
            down: keys.iter().map(|_| AtomicBool::new(false)).collect(),
            keys,
            acknowledged: AtomicU64::new(0),
            clock,
            seen: Mutex::new(seen),
        });
        let app = axum::Router::new()
            .route("/demo/{n}", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receivers { shared, addr })
    }

    pub fn url(&self, n: usize) -> String {
        format!("http://{}/demo/{n}", self.addr)
    }

    pub fn set_down(&self, n: usize, down: bool) {
        if let Some(flag) = self.shared.down.get(n) {
            flag.store(down, Ordering::Relaxed);
        }
    }

    /// Acknowledged deliveries so far, all subscribers.
    pub fn acknowledged(&self) -> u64 {
        self.shared.acknowledged.load(Ordering::Relaxed)
    }

    pub fn tally(&self) -> Tally {
        self.seen().tally.clone()
    }

    pub fn receipts(&self) -> Vec<Receipt> {
        self.seen().receipts.clone()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Is `header` (space-separated `v1,<sig>` entries) signed with `key`?
fn signed(key: &[u8], headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let id = header(headers, "webhook-id")?;
    let timestamp: i64 = header(headers, "webhook-timestamp")?.parse().ok()?;
    let now = chrono::Utc::now().timestamp();
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return None;
    }
    let expected = signature::sign(key, id, timestamp, body);
    header(headers, "webhook-signature")?
        .split(' ')
        .any(|candidate| candidate == expected)
        .then(|| id.to_owned())
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let received_wall = Instant::now();
    let received_sim_ms = shared.clock.now_ms();
    let (Some(key), Some(down)) = (shared.keys.get(n), shared.down.get(n)) else {
        return StatusCode::NOT_FOUND;
    };
    let mut seen = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
    if down.load(Ordering::Relaxed) {
        seen.tally.refused_while_down += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let Some(id) = signed(key, &headers, &body) else {
        seen.tally.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        seen.tally.malformed += 1;
        return StatusCode::BAD_REQUEST;
    };
    let subject = event["subject"].as_str().unwrap_or_default().to_owned();
    let sequence = event["sequence"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok());
    let change_ms = event["time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    let (Some(sequence), Some(change_ms)) = (sequence, change_ms) else {
        seen.tally.malformed += 1;
        return StatusCode::BAD_REQUEST;
    };
    if !seen.ids.insert((n, id.clone())) {
        // Acknowledged before: a careful receiver answers 2xx again and does nothing.
        seen.tally.duplicates += 1;
        return StatusCode::NO_CONTENT;
    }
    let seen = &mut *seen;
    let last = seen.last_sequence.entry((n, subject)).or_insert(0);
    if sequence != *last + 1 {
        seen.tally.out_of_order += 1;
    }
    *last = (*last).max(sequence);
    seen.tally.acknowledged += 1;
    if let Some(count) = seen.tally.per_subscriber.get_mut(n) {
        *count += 1;
    }
    seen.receipts.push(Receipt {
        subscriber: n,
        id,
        change_ms,
        received_sim_ms,
        received_wall,
    });
    shared.acknowledged.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        h.insert("webhook-signature", signature.parse().unwrap());
        h
    }

    #[test]
    fn only_the_subscribers_own_recent_signature_passes() {
        let key = signature::secret_key(&signature::generate_secret()).unwrap();
        let other = signature::secret_key(&signature::generate_secret()).unwrap();
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"subject":"course/1"}"#;
        let good = signature::sign(&key, "evt_1", now, body);
        let h = headers("evt_1", now, &format!("v1,bm9wZQ== {good}"));
        assert_eq!(signed(&key, &h, body).as_deref(), Some("evt_1"));
        assert_eq!(signed(&other, &h, body), None, "another subscriber's key");
        assert_eq!(signed(&key, &h, b"{}"), None, "another body");
        let stale = now - 2 * TIMESTAMP_TOLERANCE_SECONDS;
        let old = signature::sign(&key, "evt_1", stale, body);
        assert_eq!(signed(&key, &headers("evt_1", stale, &old), body), None);
    }
}
