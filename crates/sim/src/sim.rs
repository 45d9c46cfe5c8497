//! The simulator handle and its shared state: configuration, clock, the world behind one
//! lock, credentials, throttle buckets, counters, the Live Events hub and key ring. Every
//! access to the world first applies the timeline up to the current simulated time and,
//! after the change, hands the Live Events it produced to delivery, so no reader ever sees a
//! world that is behind the clock and no event is delivered before its change is visible.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::canvas::oauth::TokenStore;
use crate::canvas::throttle::Buckets;
use crate::clock::SimClock;
use crate::config::{SimConfig, ThrottleClock, ThrottleStatus};
use crate::counters::{Counters, LectureCounters, Stats, TimelineCounters};
use crate::ground_truth::{self, GroundTruth};
use crate::live_events::delivery::Deliverer;
use crate::live_events::envelope::Envelopes;
use crate::live_events::{DeliveryFaults, Hub, KeyRing};
use crate::panopto::PanoptoAccess;
use crate::panopto::faults::PanoptoFaults;
use crate::panopto::world::PanoptoWorld;
use crate::timeline::{self, Timeline};
use crate::university;
use crate::world::World;

/// Canvas-side fault knobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CanvasFaults {
    /// Throttled requests get `403 Forbidden (Rate Limit Exceeded)` instead of 429.
    pub legacy_throttle_status: bool,
    /// While true, Canvas's API (REST, GraphQL) answers `503 Service Unavailable`: an outage
    /// window. OAuth2 endpoints stay up, as Canvas's login service is separate.
    pub api_outage: bool,
}

/// Every fault knob, as `GET /_sim/faults` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub canvas: CanvasFaults,
    pub live_events: DeliveryFaults,
    pub panopto: PanoptoFaults,
}

pub struct Shared {
    pub config: SimConfig,
    pub clock: SimClock,
    world: Mutex<World>,
    tokens: Mutex<TokenStore>,
    buckets: Mutex<Buckets>,
    stats: Mutex<Stats>,
    canvas_faults: Mutex<CanvasFaults>,
    pub hub: Arc<Hub>,
    pub keys: Arc<KeyRing>,
    pub panopto: PanoptoAccess,
    wall_start: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("seed", &self.config.seed)
            .field("scale", &self.config.scale)
            .finish_non_exhaustive()
    }
}

pub type AppState = Arc<Shared>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Run `f` on the world brought up to the current simulated time; deliver its events.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let now = self.clock.now_ms();
        let (result, events) = {
            let mut w = lock(&self.world);
            timeline::advance(&mut w, now);
            let r = f(&mut w);
            (r, std::mem::take(&mut w.outbox))
        };
        self.hub.publish(events, now);
        result
    }

    /// Same as [`Shared::with_world`]; names a read-only use.
    pub fn with_world_read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        self.with_world(|w| f(w))
    }

    pub fn tokens(&self) -> MutexGuard<'_, TokenStore> {
        lock(&self.tokens)
    }

    pub fn buckets(&self) -> MutexGuard<'_, Buckets> {
        lock(&self.buckets)
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    /// Seconds on the clock that drains the throttle buckets.
    pub fn throttle_now(&self) -> f64 {
        match self.config.throttle.clock {
            ThrottleClock::Wall => self.wall_start.elapsed().as_secs_f64(),
            ThrottleClock::Simulated => self.clock.now_ms() as f64 / 1000.0,
        }
    }

    /// Now on the clock Panopto's rate limits are counted in, in ms.
    pub fn panopto_limits_now_ms(&self) -> i64 {
        match self.config.panopto_limits.clock {
            ThrottleClock::Wall => self.wall_start.elapsed().as_millis() as i64,
            ThrottleClock::Simulated => self.clock.now_ms(),
        }
    }

    pub fn api_outage(&self) -> bool {
        lock(&self.canvas_faults).api_outage
    }

    pub fn throttle_status(&self) -> ThrottleStatus {
        if lock(&self.canvas_faults).legacy_throttle_status {
            ThrottleStatus::LegacyForbidden
        } else {
            self.config.throttle.status
        }
    }

    pub fn faults(&self) -> Faults {
        Faults {
            canvas: lock(&self.canvas_faults).clone(),
            live_events: self.hub.faults(),
            panopto: self.with_world_read(|w| w.panopto.faults.clone()),
        }
    }

    /// Replace every fault knob; Panopto's are checked first (nothing changes if they are
    /// wrong) and reach every lecture that has not started yet.
    pub fn set_faults(&self, f: Faults) -> Result<(), String> {
        f.panopto.validate()?;
        *lock(&self.canvas_faults) = f.canvas;
        self.hub.set_faults(f.live_events);
        let now = self.clock.now_ms();
        self.with_world(|w| w.panopto.set_faults(f.panopto, now));
        Ok(())
    }

    pub fn counters(&self) -> Counters {
        let now = self.clock.now_ms();
        let (lectures, timeline, writes) = self.with_world_read(|w| {
            (
                LectureCounters {
                    sessions: w.panopto.sessions.len() as u64,
                    missed_lectures: w.panopto.missed_lectures(now),
                },
                TimelineCounters {
                    applied: w.timeline.applied,
                    pending: w.timeline.pending() as u64,
                },
                w.writes.clone(),
            )
        });
        let stats = self.stats();
        Counters {
            sim_time: crate::clock::iso_ms(now),
            canvas: stats.canvas.clone(),
            live_events: self.hub.counters(),
            panopto: stats.panopto.clone(),
            lectures,
            timeline,
            writes,
        }
    }
}

/// The simulator: a cheap, cloneable handle on one simulated Canvas + Panopto.
#[derive(Debug, Clone)]
pub struct Simulator {
    shared: AppState,
}

impl Simulator {
    pub fn new(config: SimConfig) -> anyhow::Result<Simulator> {
        let uni = university::generate(config.scale, config.seed);
        let panopto = PanoptoWorld::provision(&uni);
        let clock = SimClock::new(config.start_time, config.speed, config.start_paused);
        let first_day = uni.day_of(config.start_time.timestamp_millis());
        let admin = uni.admin_user_id;
        let ttl_ms = i64::try_from(config.access_token_ttl.as_millis()).unwrap_or(i64::MAX);
        let world = World {
            envelopes: Envelopes::new(config.seed, &config.canvas_hostname),
            timeline: Timeline::new(config.seed, config.scenario, first_day),
            panopto,
            uni,
            outbox: Vec::new(),
            writes: Default::default(),
        };
        let shared = Shared {
            tokens: Mutex::new(TokenStore::new(
                config.seed,
                &config.canvas_tokens,
                admin,
                ttl_ms,
            )),
            buckets: Mutex::new(Buckets::default()),
            stats: Mutex::new(Stats::default()),
            canvas_faults: Mutex::new(CanvasFaults::default()),
            hub: Arc::new(Hub::new(
                config.seed,
                config.delivery.clone(),
                &config.live_events,
            )),
            keys: Arc::new(KeyRing::new(config.seed)),
            panopto: PanoptoAccess::new(&config),
            world: Mutex::new(world),
            clock,
            wall_start: Instant::now(),
            config,
        };
        Ok(Simulator {
            shared: Arc::new(shared),
        })
    }

    /// The whole surface: Canvas (`/api/v1`, `/api/graphql`, `/login/oauth2`), Panopto
    /// (`/Panopto/...`), the control API (`/_sim/...`) and the Live Events JWKS (`/jwks`).
    pub fn router(&self) -> Router {
        Router::new()
            .merge(crate::canvas::router(self.shared.clone()))
            .merge(crate::panopto::router(self.shared.clone()))
            .merge(crate::control::router())
            .fallback(crate::control::not_found)
            .with_state(self.shared.clone())
    }

    /// Serve on `listener` until `shutdown` resolves; also runs the clock-driven timeline
    /// and Live Events delivery.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let tasks = self.spawn_background(cancel.clone());
        let app = self.router();
        let stop = cancel.clone();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = shutdown => {}
                    _ = stop.cancelled() => {}
                }
            })
            .await;
        cancel.cancel();
        for t in tasks {
            let _ = t.await;
        }
        result.map_err(Into::into)
    }

    /// Start the timeline ticker and the delivery worker (done by `serve`).
    pub fn spawn_background(&self, cancel: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let ticker = {
            let s = self.shared.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let mut changes = s.clock.subscribe();
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = changes.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    let s2 = s.clone();
                    // Applying a long stretch of timeline can take a while: keep it off the
                    // async workers.
                    let _ = tokio::task::spawn_blocking(move || s2.with_world(|_| ())).await;
                }
            })
        };
        let deliverer = Deliverer {
            hub: self.shared.hub.clone(),
            keys: self.shared.keys.clone(),
            clock: self.shared.clock.clone(),
        };
        let delivery = tokio::spawn(deliverer.run(cancel));
        vec![ticker, delivery]
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock.clone()
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Reads the simulated world (as of the last applied timeline step): for tests that need
    /// more than the ground truth (when a session finished processing).
    pub fn with_world_read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        self.shared.with_world_read(f)
    }

    /// Apply the timeline up to the current simulated time now.
    pub fn tick(&self) {
        self.shared.with_world(|_| ());
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    pub fn ground_truth(&self) -> GroundTruth {
        let now = self.shared.clock.now_ms();
        self.shared
            .with_world_read(|w| ground_truth::capture(w, now))
    }

    /// `{"keys":[previous, current, next]}` (generates keys on first use).
    pub fn jwks_json(&self) -> Value {
        self.shared
            .keys
            .jwks()
            .unwrap_or_else(|e| serde_json::json!({ "keys": [], "error": e.to_string() }))
    }

    pub fn rotate_keys(&self) {
        self.shared.keys.rotate();
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replace every fault knob (see [`Faults`]); refused, with the reason, if a Panopto
    /// knob is out of range.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        self.shared.set_faults(faults)
    }

    /// Add a Live Events subscription; returns its id.
    pub fn subscribe(&self, url: &str, signed: bool) -> u64 {
        self.shared.hub.subscribe(url, signed)
    }

    /// Revoke every OAuth2 access token issued so far (an administrator's "revoke all"); the
    /// refresh tokens keep working, so a client re-issues itself a token with the refresh
    /// grant. Returns how many were revoked. Static tokens are not affected.
    pub fn revoke_access_tokens(&self) -> usize {
        self.shared.tokens().revoke_all_access()
    }

    /// Revoke every Panopto OAuth2 token, refresh tokens included; returns how many access
    /// tokens were revoked.
    pub fn revoke_panopto_tokens(&self) -> usize {
        self.shared.panopto.revoke_all()
    }

    /// Mint a Canvas access/refresh token pair for a user (the admin by default).
    pub fn issue_canvas_token(&self, user_id: Option<u64>) -> (String, String) {
        let now = self.shared.clock.now_ms();
        let user = user_id.unwrap_or_else(|| self.shared.with_world_read(|w| w.uni.admin_user_id));
        let client = self.shared.config.oauth_client_id.clone();
        self.shared.tokens().issue_pair(user, &client, now)
    }

    /// One of the timetable CSV exports (`courses.csv`, `sections.csv`, `users.csv`,
    /// `enrollments.csv`, `rooms.csv`, `recorders.csv`, `meetings.csv`).
    pub fn timetable_csv(&self, file: &str) -> Option<String> {
        self.shared
            .with_world_read(|w| crate::timetable::export(w, file))
    }

    /// Every emitted Live Event after log index `after` (at most `limit`).
    pub fn live_events(&self, after: u64, limit: usize) -> crate::live_events::delivery::LogPage {
        self.shared.hub.log_page(after, limit)
    }
}
