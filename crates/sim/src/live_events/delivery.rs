//! Delivery of Live Events to subscriptions. A queue ordered by simulated due time holds one
//! entry per (event, subscription); a worker sends due entries concurrently with a real-time
//! timeout, re-queues failures after a simulated back-off with jitter, and drops an event
//! after its last try. Signed subscriptions get a compact JWS (`application/jwt`) whose
//! claims are the envelope plus `iat`/`exp` (real time of the attempt, exp = iat + 300);
//! unsigned ones get the envelope JSON (`application/json`). The hub also keeps a bounded
//! log of every emitted event so tests can see what Canvas would have sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand08::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::config::{DeliveryConfig, SubscriptionConfig};
use crate::ids;
use crate::live_events::keys::KeyRing;

const LOG_CAPACITY: usize = 50_000;
const DAY_MS: i64 = 86_400_000;

/// Fault knobs for delivery (switchable at run time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryFaults {
    /// Probability that an event is delivered twice.
    pub duplicate_probability: f64,
    /// Probability that an event is held back up to `reorder_max_delay_seconds` (simulated).
    pub reorder_probability: f64,
    pub reorder_max_delay_seconds: f64,
    /// Probability that an event is never delivered (the documented best-effort loss).
    pub drop_probability: f64,
    /// While true, Canvas's delivery service is down: nothing is attempted, events wait.
    pub outage: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveEventCounters {
    pub emitted: u64,
    pub attempts: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub dropped_by_fault: u64,
    pub dropped_after_retries: u64,
    pub dropped_inactive: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Timeout,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionInfo {
    pub id: u64,
    pub url: String,
    pub signed: bool,
    pub active: bool,
    pub deactivated_reason: Option<String>,
    pub delivered: u64,
    pub dropped: u64,
}

#[derive(Debug)]
struct Subscription {
    info: SubscriptionInfo,
    /// Events finally lost in the last 24 simulated hours, by failure kind.
    failures: VecDeque<(i64, Failure)>,
}

#[derive(Debug, Clone)]
struct Delivery {
    sub_id: u64,
    event: Arc<Value>,
    attempts: u32,
}

#[derive(Debug)]
struct State {
    subs: Vec<Subscription>,
    queue: BTreeMap<(i64, u64), Delivery>,
    seq: u64,
    log: VecDeque<(u64, Arc<Value>)>,
    next_index: u64,
    counters: LiveEventCounters,
    faults: DeliveryFaults,
    rng: ChaCha20Rng,
}

#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    wake: Notify,
    config: DeliveryConfig,
}

/// A page of the event log.
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    pub events: Vec<LoggedEvent>,
    /// Pass as `after` to continue.
    pub next: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedEvent {
    pub index: u64,
    pub event: Value,
}

impl Hub {
    pub fn new(seed: u64, config: DeliveryConfig, subscriptions: &[SubscriptionConfig]) -> Hub {
        let hub = Hub {
            state: Mutex::new(State {
                subs: Vec::new(),
                queue: BTreeMap::new(),
                seq: 0,
                log: VecDeque::new(),
                next_index: 1,
                counters: LiveEventCounters::default(),
                faults: DeliveryFaults::default(),
                rng: ids::rng(seed, "delivery"),
            }),
            wake: Notify::new(),
            config,
        };
        for s in subscriptions {
            hub.subscribe(&s.url, s.signed);
        }
        hub
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn subscribe(&self, url: &str, signed: bool) -> u64 {
        let mut st = self.lock();
        let id = st.subs.len() as u64 + 1;
        st.subs.push(Subscription {
            info: SubscriptionInfo {
                id,
                url: url.to_owned(),
                signed,
                active: true,
                deactivated_reason: None,
                delivered: 0,
                dropped: 0,
            },
            failures: VecDeque::new(),
        });
        id
    }

    /// Stop delivering to a subscription (queued deliveries to it are discarded).
    pub fn deactivate(&self, id: u64, reason: &str) -> bool {
        let mut st = self.lock();
        deactivate_locked(&mut st, id, reason)
    }

    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.lock().subs.iter().map(|s| s.info.clone()).collect()
    }

    pub fn faults(&self) -> DeliveryFaults {
        self.lock().faults.clone()
    }

    pub fn set_faults(&self, faults: DeliveryFaults) {
        self.lock().faults = faults;
        self.wake.notify_one();
    }

    pub fn counters(&self) -> LiveEventCounters {
        let st = self.lock();
        let mut c = st.counters.clone();
        c.pending = st.queue.len() as u64;
        c
    }

    /// Accept the events a committed change produced, at simulated `now`.
    pub fn publish(&self, events: Vec<Value>, now: i64) {
        if events.is_empty() {
            return;
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        for event in events {
            let event = Arc::new(event);
            let index = st.next_index;
            st.next_index += 1;
            st.counters.emitted += 1;
            st.log.push_back((index, event.clone()));
            if st.log.len() > LOG_CAPACITY {
                st.log.pop_front();
            }
            let f = st.faults.clone();
            let active: Vec<u64> = st
                .subs
                .iter()
                .filter(|s| s.info.active)
                .map(|s| s.info.id)
                .collect();
            for sub_id in active {
                if st.rng.gen_bool(f.drop_probability.clamp(0.0, 1.0)) {
                    st.counters.dropped_by_fault += 1;
                    continue;
                }
                let mut due = now;
                if st.rng.gen_bool(f.reorder_probability.clamp(0.0, 1.0))
                    && f.reorder_max_delay_seconds > 0.0
                {
                    due += (st.rng.gen_range(0.0..f.reorder_max_delay_seconds) * 1000.0) as i64 + 1;
                    st.counters.reordered += 1;
                }
                let d = Delivery {
                    sub_id,
                    event: event.clone(),
                    attempts: 0,
                };
                push(st, due, d.clone());
                if st.rng.gen_bool(f.duplicate_probability.clamp(0.0, 1.0)) {
                    let later = due + st.rng.gen_range(0..60_000);
                    push(st, later, d);
                    st.counters.duplicated += 1;
                }
            }
        }
        drop(guard);
        self.wake.notify_one();
    }

    /// Events emitted after log index `after`, at most `limit`.
    pub fn log_page(&self, after: u64, limit: usize) -> LogPage {
        let st = self.lock();
        let events: Vec<LoggedEvent> = st
            .log
            .iter()
            .filter(|(i, _)| *i > after)
            .take(limit)
            .map(|(i, e)| LoggedEvent {
                index: *i,
                event: (**e).clone(),
            })
            .collect();
        let next = events.last().map_or(after, |e| e.index);
        LogPage { events, next }
    }

    /// Take up to `limit` deliveries due at `now`; also the next due time if none are.
    fn take_due(&self, now: i64, limit: usize) -> (Vec<(Delivery, SubscriptionInfo)>, Option<i64>) {
        let mut st = self.lock();
        if st.faults.outage {
            return (Vec::new(), None);
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(entry) = st.queue.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let d = entry.remove();
            let info = st
                .subs
                .iter()
                .find(|s| s.info.id == d.sub_id)
                .map(|s| s.info.clone());
            match info {
                Some(info) if info.active => out.push((d, info)),
                _ => st.counters.dropped_inactive += 1,
            }
        }
        let next = st.queue.first_key_value().map(|((t, _), _)| *t);
        (out, next)
    }

    fn complete(&self, mut d: Delivery, outcome: Result<(), Failure>, now: i64) {
        let cfg = &self.config;
        let mut st = self.lock();
        let st = &mut *st;
        st.counters.attempts += 1;
        d.attempts += 1;
        let sub_id = d.sub_id;
        match outcome {
            Ok(()) => {
                st.counters.delivered += 1;
                if let Some(s) = st.subs.iter_mut().find(|s| s.info.id == sub_id) {
                    s.info.delivered += 1;
                }
            }
            Err(kind) => {
                st.counters.failed_attempts += 1;
                if kind == Failure::Timeout {
                    st.counters.timeouts += 1;
                }
                if d.attempts < cfg.max_attempts {
                    let base = cfg
                        .backoff_seconds
                        .get(d.attempts as usize - 1)
                        .or(cfg.backoff_seconds.last())
                        .copied()
                        .unwrap_or(120.0);
                    let (lo, hi) = cfg.jitter;
                    let factor = if hi > lo {
                        st.rng.gen_range(lo..hi)
                    } else {
                        lo
                    };
                    let due = now + (base * factor * 1000.0) as i64;
                    st.counters.retries += 1;
                    push(st, due, d);
                } else {
                    st.counters.dropped_after_retries += 1;
                    let mut deactivate = None;
                    if let Some(s) = st.subs.iter_mut().find(|s| s.info.id == sub_id) {
                        s.info.dropped += 1;
                        s.failures.push_back((now, kind));
                        while s.failures.front().is_some_and(|(t, _)| *t < now - DAY_MS) {
                            s.failures.pop_front();
                        }
                        let timeouts = s
                            .failures
                            .iter()
                            .filter(|(_, k)| *k == Failure::Timeout)
                            .count() as u32;
                        let errors = s.failures.len() as u32 - timeouts;
                        if timeouts >= cfg.deactivate_after_timeouts {
                            deactivate = Some(format!("{timeouts} timeouts in 24 hours"));
                        } else if errors >= cfg.deactivate_after_errors {
                            deactivate = Some(format!("{errors} errors in 24 hours"));
                        }
                    }
                    if let Some(reason) = deactivate {
                        deactivate_locked(st, sub_id, &reason);
                    }
                }
            }
        }
    }
}

fn push(st: &mut State, due: i64, d: Delivery) {
    st.seq += 1;
    st.queue.insert((due, st.seq), d);
}

fn deactivate_locked(st: &mut State, id: u64, reason: &str) -> bool {
    let Some(s) = st.subs.iter_mut().find(|s| s.info.id == id) else {
        return false;
    };
    s.info.active = false;
    s.info.deactivated_reason = Some(reason.to_owned());
    let before = st.queue.len();
    st.queue.retain(|_, d| d.sub_id != id);
    st.counters.dropped_inactive += (before - st.queue.len()) as u64;
    true
}

/// Everything the delivery worker needs.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub hub: Arc<Hub>,
    pub keys: Arc<KeyRing>,
    pub clock: SimClock,
}

impl Deliverer {
    /// Deliver until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        let cfg = self.hub.config.clone();
        let client = match build_client(&cfg) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the Live Events HTTP client");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let free = slots.available_permits();
            let (batch, next) = if free == 0 {
                (Vec::new(), None)
            } else {
                self.hub.take_due(self.clock.now_ms(), free)
            };
            if batch.is_empty() {
                let clock = self.clock.clone();
                let until_due = async move {
                    match next {
                        Some(t) => clock.sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.hub.wake.notified() => {}
                    _ = until_due => {}
                    // A permit may free up without a notification.
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
            }
            for (d, sub) in batch {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let outcome = this.attempt(&client, &sub, &d.event).await;
                    this.hub.complete(d, outcome, this.clock.now_ms());
                    this.hub.wake.notify_one();
                    drop(permit);
                });
            }
        }
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        sub: &SubscriptionInfo,
        event: &Value,
    ) -> Result<(), Failure> {
        let (body, content_type) = if sub.signed {
            let keys = self.keys.clone();
            let claims = claims_for(event);
            let signed =
                tokio::task::spawn_blocking(move || keys.current().and_then(|k| k.sign(&claims)))
                    .await;
            match signed {
                Ok(Ok(jwt)) => (jwt.into_bytes(), "application/jwt"),
                _ => {
                    tracing::error!("signing a Live Event failed");
                    return Err(Failure::Error);
                }
            }
        } else {
            match serde_json::to_vec(event) {
                Ok(b) => (b, "application/json"),
                Err(_) => return Err(Failure::Error),
            }
        };
        let sent = client
            .post(&sub.url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::USER_AGENT, "Canvas-LiveEvents-Sim/1.0")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(_) => Err(Failure::Error),
            Err(e) if e.is_timeout() => Err(Failure::Timeout),
            Err(_) => Err(Failure::Error),
        }
    }
}

/// JWT claims: the envelope's own members plus `iat` and `exp` (real time, exp = iat + 300).
pub fn claims_for(event: &Value) -> Value {
    let mut claims = event.clone();
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some(m) = claims.as_object_mut() {
        m.insert("iat".into(), Value::from(iat));
        m.insert("exp".into(), Value::from(iat + 300));
    }
    claims
}

pub fn build_client(cfg: &DeliveryConfig) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(cfg.timeout)
        .tls_danger_accept_invalid_certs(cfg.accept_invalid_certs)
        .build()?)
}
