//! The quota governor: one per Canvas token (share it between every client using that token),
//! deciding how many requests may be in flight so Canvas's leaky bucket (canvas.md B3) never
//! reaches the high-water mark. It must not sleep on a fixed schedule or retry anything; it
//! only admits, observes and adapts.
//!
//! **Why this control law.** Canvas charges every request an *up-front* 50 units while it runs
//! and refunds it at the end, adding the real cost (CPU + DB seconds, usually < 1 unit); the
//! bucket drains at 10 units/s and refuses a request that *arrives* while it holds ≥ 600. So
//! the level has two parts: 50 × requests in flight (concurrency) and the accumulated real
//! costs (rate × cost − drain). A token-bucket rate limiter controls neither; a concurrency
//! limit measured in bucket units controls both. Each admitted request reserves
//! `up_front + cost estimate` units (an EWMA of `X-Request-Cost` per request class, method +
//! path shape). The room not explained by our own in-flight requests, `baseline`, is
//! `X-Rate-Limit-Remaining + up_front × (others in flight)` at the last response, plus what
//! has drained since, capped at the mark. A request is admitted while what is *already* in
//! flight fits in `baseline − margin`: the arrival level is what Canvas checks, the new
//! request's own charge lands after the check. With the default 25-unit margin that is 12 in
//! flight on an empty bucket, the most Canvas admits (the 12th arrives at 550 + the
//! accumulated costs, and is admitted while those stay under 50; the governor admits it
//! while it believes they are under 14). The margin only has to cover what the baseline may
//! get wrong: costs of requests finished at Canvas whose responses are not read yet (each
//! well under 1 unit) and drift between observations; 25 units is many times that. A
//! 50-unit margin (one request) kept 11 in flight at most, and the Bulk class, which leaves
//! one request's room to the others, 10: 0.89 of the drain ceiling on a mixed workload where
//! 25 reaches 0.985. When costs accumulate faster than the drain, the baseline shrinks and so
//! does the concurrency, so the same law settles where the rate × cost equals the drain: it
//! is a proportional controller on the bucket level, exact because Canvas reports the level
//! with every response. That is why it reaches ≥ 98 % of the bucket's sustainable
//! throughput (`bench quota`) where a rate limiter tuned for safety could not.
//!
//! Other clients on the same token (another integration) are seen only through the headers:
//! we keep our own charged costs (drained at the outflow rate), so whatever the level holds
//! beyond them and our in-flight charges is someone else's. While such foreign load was seen
//! in the last `contention_window`, an extra `contention_margin` (one request) is kept free,
//! because the other client's next admissions are invisible until our next response.
//!
//! On top sits AIMD (after Netflix concurrency-limits and Vector's adaptive request
//! concurrency, prior-art.md §4): a throttle signal halves a count limit, zeroes the baseline
//! and counts as contention; every successful response with room adds `1/limit` back. AIMD
//! covers what the bucket model gets wrong (hosted Canvas uses different, unpublished
//! numbers), not the normal case: a gradient law (Vegas-style, on latency) was not chosen
//! because Canvas's signal is the bucket level itself, reported exactly, not queueing delay.
//! A throttle is treated as a bug signal by the transport (warn log + counter) because with
//! this law it should not happen.
//!
//! Priorities: [`Priority::Write`] (workflow writes) before [`Priority::Interactive`] reads
//! before [`Priority::Bulk`] crawls. Waiters queue per class and freed capacity goes to the
//! highest class first; bulk may use at most `budget − reserve` so one request's worth of
//! room is always kept for the others (a partitioned limit, so a crawl cannot starve writes).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tokio::sync::oneshot;

/// Request classes in priority order (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Writes a workflow is waiting on (create a module item after a recording).
    Write = 0,
    /// Reads a person is waiting on.
    Interactive = 1,
    /// Crawls and back-fills.
    Bulk = 2,
}

const CLASSES: [Priority; 3] = [Priority::Write, Priority::Interactive, Priority::Bulk];

/// Canvas's bucket numbers and the governor's knobs (open-source Canvas defaults).
#[derive(Debug, Clone)]
pub struct GovernorConfig {
    pub high_water_mark: f64,
    pub up_front_cost: f64,
    pub outflow_per_second: f64,
    /// Units kept free below the mark when no other client is seen on the token: covers cost
    /// estimates and the drain between two observations.
    pub margin: f64,
    /// Extra units kept free while another client spends the same token's quota (its next
    /// admissions are invisible until our next response shows them).
    pub contention_margin: f64,
    /// How long another client's load counts as present after it was last seen.
    pub contention_window: Duration,
    /// Hard ceiling on in-flight requests (the caller's requested concurrency).
    pub max_concurrency: usize,
    /// EWMA weight of a new `X-Request-Cost` sample.
    pub cost_alpha: f64,
    /// Cost estimate of a class never seen.
    pub initial_cost: f64,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        GovernorConfig {
            high_water_mark: 600.0,
            up_front_cost: 50.0,
            outflow_per_second: 10.0,
            margin: 25.0,
            contention_margin: 50.0,
            contention_window: Duration::from_secs(10),
            max_concurrency: 16,
            cost_alpha: 0.2,
            initial_cost: 1.0,
        }
    }
}

/// What the governor currently believes (for metrics and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorSnapshot {
    pub in_flight: usize,
    pub max_in_flight_seen: usize,
    pub reserved_units: f64,
    pub budget_units: f64,
    pub aimd_limit: f64,
    pub last_remaining: Option<f64>,
    pub throttle_signals: u64,
    pub waiting: usize,
    /// Units of the bucket last seen that neither our in-flight requests nor our own charged
    /// costs explain: another client on the same token.
    pub foreign_units: f64,
    pub contended: bool,
}

struct Waiter {
    units: f64,
    tx: oneshot::Sender<()>,
}

struct State {
    in_flight: usize,
    max_in_flight_seen: usize,
    reserved: f64,
    /// Bucket room not explained by our in-flight requests, at `observed_at`.
    baseline: f64,
    observed_at: Instant,
    last_remaining: Option<f64>,
    aimd_limit: f64,
    costs: HashMap<String, f64>,
    queues: [VecDeque<Waiter>; 3],
    throttle_signals: u64,
    /// Our own charged costs still in the bucket (drained at the outflow rate), at
    /// `own_at`: what lets us tell our load from another client's.
    own_level: f64,
    own_at: Instant,
    foreign_units: f64,
    contention_seen: Option<Instant>,
    /// Units held by other processes' governors on the same token, as they last published
    /// them (see [`QuotaGovernor::set_peer_units`]), and the value at our last observation.
    peer_units: f64,
    peer_units_at_observation: f64,
}

/// See the module documentation.
pub struct QuotaGovernor {
    cfg: GovernorConfig,
    state: Mutex<State>,
}

impl fmt::Debug for QuotaGovernor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaGovernor")
            .field("cfg", &self.cfg)
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// The room one request holds until it completes; dropping it frees the room.
#[must_use = "the permit must be held while the request is in flight"]
pub struct Permit {
    gov: Arc<QuotaGovernor>,
    units: f64,
    class: String,
    released: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("units", &self.units)
            .field("class", &self.class)
            .finish()
    }
}

impl Permit {
    /// Feed back the response headers (remaining and cost) and release the room.
    pub fn complete(mut self, headers: &HeaderMap) {
        self.gov.observe(&self.class, headers);
        self.released = true;
        self.gov.release(self.units);
    }

    /// Report a throttled response and release the room.
    pub fn throttled(mut self) {
        self.gov.on_throttle();
        self.released = true;
        self.gov.release(self.units);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.released {
            self.gov.release(self.units);
        }
    }
}

fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// The class of a request: method plus path with numeric and SIS-id segments replaced, so
/// `/courses/12/modules` and `/courses/13/modules` share a cost estimate.
pub fn request_class(method: &str, path: &str) -> String {
    let shape: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or("")
        .split('/')
        .map(|seg| {
            if !seg.is_empty() && (seg.bytes().all(|b| b.is_ascii_digit()) || seg.contains(':')) {
                ":id"
            } else {
                seg
            }
        })
        .collect();
    format!("{method} {}", shape.join("/"))
}

impl QuotaGovernor {
    pub fn new(cfg: GovernorConfig) -> Arc<QuotaGovernor> {
        let aimd_limit = cfg.max_concurrency.max(1) as f64;
        Arc::new(QuotaGovernor {
            state: Mutex::new(State {
                in_flight: 0,
                max_in_flight_seen: 0,
                reserved: 0.0,
                baseline: cfg.high_water_mark,
                observed_at: Instant::now(),
                last_remaining: None,
                aimd_limit,
                costs: HashMap::new(),
                queues: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
                throttle_signals: 0,
                own_level: 0.0,
                own_at: Instant::now(),
                foreign_units: 0.0,
                contention_seen: None,
                peer_units: 0.0,
                peer_units_at_observation: 0.0,
            }),
            cfg,
        })
    }

    pub fn config(&self) -> &GovernorConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent numbers; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn contended(&self, s: &State) -> bool {
        s.contention_seen
            .is_some_and(|t| t.elapsed() < self.cfg.contention_window)
    }

    /// Units our in-flight requests may hold: the bucket room not explained by them (drained
    /// since it was observed), less the margins.
    fn budget(&self, s: &State) -> f64 {
        let drained = s.observed_at.elapsed().as_secs_f64() * self.cfg.outflow_per_second;
        let contention = if self.contended(s) {
            self.cfg.contention_margin
        } else {
            0.0
        };
        // Peers' requests admitted since our last look at the bucket are not in `baseline` yet.
        let peers_since = (s.peer_units - s.peer_units_at_observation).max(0.0);
        (s.baseline + drained).min(self.cfg.high_water_mark)
            - self.cfg.margin
            - contention
            - peers_since
    }

    /// The units other processes' governors on the same token hold now (their reserved
    /// units, shared through coursewire's store). The bucket level in each response already
    /// counts what they held then; what they admitted since is taken off our budget until our
    /// next response shows it. This is what lets several processes share one token's budget
    /// without waiting to see each other in the headers.
    pub fn set_peer_units(&self, units: f64) {
        let mut s = self.lock();
        s.peer_units = units.max(0.0);
        self.dispatch(&mut s);
    }

    /// Units our in-flight requests hold (what a peer-sharing task publishes).
    pub fn reserved_units(&self) -> f64 {
        self.lock().reserved
    }

    fn fits(&self, s: &State, class: Priority) -> bool {
        let count_limit = (s.aimd_limit.floor() as usize)
            .min(self.cfg.max_concurrency)
            .max(1);
        if s.in_flight == 0 {
            // One request alone is always admitted by Canvas unless the bucket is full; the
            // transport's back-off handles that case.
            return true;
        }
        if s.in_flight >= count_limit {
            return false;
        }
        let reserve = if class == Priority::Bulk {
            self.cfg.up_front_cost
        } else {
            0.0
        };
        // Canvas refuses a request that *arrives* at or above the mark; the request's own
        // up-front charge is added after that check. So the test is on what is already in
        // flight, not on what will be after admitting this one.
        s.reserved + reserve < self.budget(s)
    }

    /// The learned cost of a class.
    pub fn cost_estimate(&self, class: &str) -> f64 {
        self.lock()
            .costs
            .get(class)
            .copied()
            .unwrap_or(self.cfg.initial_cost)
    }

    /// Wait for room for one request of `class` (see [`request_class`]) at `priority`.
    pub async fn acquire(self: &Arc<Self>, priority: Priority, class: &str) -> Permit {
        let rx = {
            let mut s = self.lock();
            let cost = s.costs.get(class).copied().unwrap_or(self.cfg.initial_cost);
            let units = self.cfg.up_front_cost + cost;
            let ahead = CLASSES
                .iter()
                .take_while(|p| **p <= priority)
                .any(|p| !s.queues[*p as usize].is_empty());
            if !ahead && self.fits(&s, priority) {
                Self::admit(&mut s, units);
                return self.permit(units, class);
            }
            let (tx, rx) = oneshot::channel();
            s.queues[priority as usize].push_back(Waiter { units, tx });
            (rx, units)
        };
        let (rx, units) = rx;
        let mut waiting = Waiting {
            gov: self.clone(),
            rx,
            units,
            done: false,
        };
        waiting.wait().await;
        self.permit(units, class)
    }

    fn permit(self: &Arc<Self>, units: f64, class: &str) -> Permit {
        Permit {
            gov: self.clone(),
            units,
            class: class.to_owned(),
            released: false,
        }
    }

    fn admit(s: &mut State, units: f64) {
        s.in_flight += 1;
        s.reserved += units;
        s.max_in_flight_seen = s.max_in_flight_seen.max(s.in_flight);
    }

    fn release(&self, units: f64) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.reserved = (s.reserved - units).max(0.0);
        if s.in_flight == 0 {
            s.reserved = 0.0;
        }
        self.dispatch(&mut s);
    }

    /// Hand freed room to waiters, highest priority first, in arrival order within a class.
    fn dispatch(&self, s: &mut State) {
        'outer: loop {
            for p in CLASSES {
                if s.queues[p as usize].is_empty() {
                    continue;
                }
                if !self.fits(s, p) {
                    // Strict priority: a lower class never overtakes a blocked higher one.
                    break 'outer;
                }
                let Some(w) = s.queues[p as usize].pop_front() else {
                    continue;
                };
                if w.tx.send(()).is_ok() {
                    Self::admit(s, w.units);
                }
                continue 'outer;
            }
            break;
        }
    }

    fn observe(&self, class: &str, headers: &HeaderMap) {
        let mut s = self.lock();
        let now = Instant::now();
        let drained = now.duration_since(s.own_at).as_secs_f64() * self.cfg.outflow_per_second;
        s.own_level = (s.own_level - drained).max(0.0);
        s.own_at = now;
        if let Some(cost) = header_f64(headers, "x-request-cost") {
            let alpha = self.cfg.cost_alpha;
            s.costs
                .entry(class.to_owned())
                .and_modify(|c| *c = alpha * cost + (1.0 - alpha) * *c)
                .or_insert(cost);
            s.own_level += cost.max(0.0);
        }
        if let Some(remaining) = header_f64(headers, "x-rate-limit-remaining") {
            // This response's own up-front charge was refunded before the header was
            // written; the other in-flight requests' charges were not.
            let others = s.in_flight.saturating_sub(1) as f64 * self.cfg.up_front_cost;
            s.baseline = (remaining + others).min(self.cfg.high_water_mark);
            s.observed_at = now;
            s.peer_units_at_observation = s.peer_units;
            s.last_remaining = Some(remaining);
            // Requests of ours that have not reached Canvas yet (or whose refund we have not
            // read yet) make this an underestimate, never an overestimate.
            // Peers sharing the budget through the store are known load, not foreign.
            s.foreign_units =
                (self.cfg.high_water_mark - remaining - others - s.own_level - s.peer_units)
                    .max(0.0);
            if s.foreign_units > self.cfg.up_front_cost / 2.0 {
                s.contention_seen = Some(now);
            }
            if remaining > self.cfg.margin * 2.0 {
                s.aimd_limit = (s.aimd_limit + 1.0 / s.aimd_limit.max(1.0))
                    .min(self.cfg.max_concurrency as f64);
            }
        }
    }

    /// A throttled (or about-to-be) signal: multiplicative decrease.
    pub fn on_throttle(&self) {
        let mut s = self.lock();
        s.throttle_signals += 1;
        // Our model of the bucket was wrong; most likely someone else spends the quota.
        s.contention_seen = Some(Instant::now());
        s.aimd_limit = (s.aimd_limit / 2.0).max(1.0);
        s.baseline = 0.0;
        s.observed_at = Instant::now();
        s.last_remaining = Some(0.0);
    }

    pub fn snapshot(&self) -> GovernorSnapshot {
        let s = self.lock();
        GovernorSnapshot {
            in_flight: s.in_flight,
            max_in_flight_seen: s.max_in_flight_seen,
            reserved_units: s.reserved,
            budget_units: self.budget(&s),
            aimd_limit: s.aimd_limit,
            last_remaining: s.last_remaining,
            throttle_signals: s.throttle_signals,
            waiting: s.queues.iter().map(VecDeque::len).sum(),
            foreign_units: s.foreign_units,
            contended: self.contended(&s),
        }
    }

    /// Re-check waiters (the budget grows with time as the bucket drains).
    fn poke(&self) {
        let mut s = self.lock();
        self.dispatch(&mut s);
    }
}

/// A queued acquire. Dropping it before it is granted removes the claim; dropping it after a
/// grant it never saw returns the room.
struct Waiting {
    gov: Arc<QuotaGovernor>,
    rx: oneshot::Receiver<()>,
    units: f64,
    done: bool,
}

impl Waiting {
    async fn wait(&mut self) {
        loop {
            // The budget grows as the bucket drains, which no release announces: re-check
            // periodically.
            match tokio::time::timeout(Duration::from_millis(50), &mut self.rx).await {
                Ok(Ok(())) => {
                    self.done = true;
                    return;
                }
                // The governor dropped the sender without granting: cannot happen while it
                // lives, but waiting forever would be worse than admitting.
                Ok(Err(_)) => {
                    let mut s = self.gov.lock();
                    QuotaGovernor::admit(&mut s, self.units);
                    self.done = true;
                    return;
                }
                Err(_) => self.gov.poke(),
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            self.gov.release(self.units);
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(cost: &str, remaining: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-request-cost", HeaderValue::from_str(cost).expect("v"));
        h.insert(
            "x-rate-limit-remaining",
            HeaderValue::from_str(remaining).expect("v"),
        );
        h
    }

    #[test]
    fn classes_share_shapes() {
        assert_eq!(
            request_class("GET", "/api/v1/courses/12/modules?per_page=100"),
            "GET /api/v1/courses/:id/modules"
        );
        assert_eq!(
            request_class("GET", "/api/v1/courses/sis_course_id:X/modules"),
            "GET /api/v1/courses/:id/modules"
        );
    }

    #[tokio::test]
    async fn empty_bucket_admits_twelve_whatever_is_requested() {
        let gov = QuotaGovernor::new(GovernorConfig {
            max_concurrency: 64,
            ..GovernorConfig::default()
        });
        let mut permits = Vec::new();
        for _ in 0..64 {
            match tokio::time::timeout(
                Duration::from_millis(5),
                gov.acquire(Priority::Interactive, "GET /x"),
            )
            .await
            {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        assert_eq!(
            permits.len(),
            12,
            "admitted while the in-flight 51-unit reservations stay below 600 − 25"
        );
        assert!(gov.snapshot().max_in_flight_seen <= 12);
        drop(permits);
        assert_eq!(gov.snapshot().in_flight, 0);
    }

    #[tokio::test]
    async fn learns_costs_shrinks_on_low_remaining_and_halves_on_throttle() {
        let gov = QuotaGovernor::new(GovernorConfig::default());
        let p = gov.acquire(Priority::Bulk, "GET /x").await;
        p.complete(&headers("3.0", "250.0"));
        assert_eq!(gov.cost_estimate("GET /x"), 3.0);
        let p = gov.acquire(Priority::Bulk, "GET /x").await;
        p.complete(&headers("13.0", "250.0"));
        assert!((gov.cost_estimate("GET /x") - 5.0).abs() < 1e-9);
        // 350 units are neither in flight nor our 16 units of cost: another client is on the
        // token, so a further 50 is kept free. 250 − 25 − 50 = 175 units of budget; bulk keeps
        // 50 of it for other classes: with 55-unit requests in flight, 105 and 160 < 175 admit
        // a second and a third, 215 ≥ 175 refuses a fourth.
        let snap = gov.snapshot();
        assert!(snap.contended, "{snap:?}");
        assert!((snap.foreign_units - 334.0).abs() < 1.0, "{snap:?}");
        let a = gov.acquire(Priority::Bulk, "GET /x").await;
        let b = gov.acquire(Priority::Bulk, "GET /x").await;
        let c = gov.acquire(Priority::Bulk, "GET /x").await;
        let d = tokio::time::timeout(
            Duration::from_millis(5),
            gov.acquire(Priority::Bulk, "GET /x"),
        )
        .await;
        assert!(d.is_err(), "fourth bulk request waits");
        // An interactive read may use the bulk reserve.
        let i = tokio::time::timeout(
            Duration::from_millis(5),
            gov.acquire(Priority::Interactive, "GET /x"),
        )
        .await;
        assert!(i.is_ok(), "165 < 175: the interactive read goes ahead");
        drop((a, b, c, i));
        let before = gov.snapshot().aimd_limit;
        gov.on_throttle();
        assert_eq!(gov.snapshot().aimd_limit, before / 2.0);
    }

    #[tokio::test]
    async fn peers_admitted_since_the_last_response_shrink_the_budget() {
        let gov = QuotaGovernor::new(GovernorConfig::default());
        gov.observe("GET /x", &headers("0.1", "600"));
        let before = gov.snapshot().budget_units;
        // Another process on the token admits four requests before our next response.
        gov.set_peer_units(4.0 * 50.0);
        let after = gov.snapshot().budget_units;
        assert!((before - after - 200.0).abs() < 1.0, "{before} -> {after}");
        // Our next response's bucket level includes them: no double counting.
        gov.observe("GET /x", &headers("0.1", "400"));
        let observed = gov.snapshot().budget_units;
        assert!((observed - (before - 200.0)).abs() < 1.0, "{observed}");
        // They finish: the budget comes back with the next response.
        gov.set_peer_units(0.0);
        gov.observe("GET /x", &headers("0.1", "600"));
        assert!((gov.snapshot().budget_units - before).abs() < 1.0);
    }

    #[tokio::test]
    async fn writes_go_before_bulk() {
        let gov = QuotaGovernor::new(GovernorConfig {
            max_concurrency: 1,
            ..GovernorConfig::default()
        });
        let first = gov.acquire(Priority::Bulk, "GET /x").await;
        let g1 = gov.clone();
        let bulk = tokio::spawn(async move {
            let p = g1.acquire(Priority::Bulk, "GET /x").await;
            drop(p);
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let g2 = gov.clone();
        let write = tokio::spawn(async move {
            let p = g2.acquire(Priority::Write, "POST /x").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(p);
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(first);
        let (b, w) = (bulk.await.expect("join"), write.await.expect("join"));
        assert!(w < b, "the write, queued later, ran first");
    }
}
