//! Simulator configuration: what the command line sets (`SimArgs`) plus the knobs tests turn
//! directly (throttle numbers and cost model, delivery timings, Panopto limits, token
//! lifetimes). Defaults are Canvas's and Panopto's documented or observed values, so a test
//! that changes one says so in its own code.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// University size presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// About 50 courses and 600 students: unit and integration tests.
    Small,
    /// About 3,000 courses and 30,000 students: a large university.
    Medium,
    /// Ten times medium.
    Large,
}

/// Status of a throttled Canvas request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleStatus {
    /// `429 Too Many Requests` (Canvas since late 2025).
    TooManyRequests,
    /// `403 Forbidden (Rate Limit Exceeded)`, plain text (older Canvas).
    LegacyForbidden,
}

/// Which time drains the leaky bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleClock {
    /// Real time (the default): Canvas throttles real request rates.
    Wall,
    /// The simulated clock: with a paused clock the bucket drains only when a test steps it.
    Simulated,
}

/// Per-request cost in units (Canvas: CPU seconds + DB seconds). A request's cost is
/// `base + per_item × items returned`, where `base` is the override for its route if any,
/// else `get` or `write`. A request also takes `cost × latency_scale` real seconds, because
/// in Canvas the cost is time the server spent: that keeps sequential clients under the
/// 10 units/s drain, as they are on a real Canvas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    pub get: f64,
    pub write: f64,
    pub per_item: f64,
    pub graphql_per_node: f64,
    /// Base cost by route pattern, e.g. `"GET /api/v1/courses/{course_id}/enrollments"`.
    pub overrides: BTreeMap<String, f64>,
    pub latency_scale: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            get: 0.01,
            write: 0.04,
            per_item: 0.0005,
            graphql_per_node: 0.0002,
            overrides: BTreeMap::new(),
            latency_scale: 1.0,
        }
    }
}

/// Canvas's leaky bucket (canvas.md B3; open-source defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleConfig {
    pub enabled: bool,
    pub high_water_mark: f64,
    pub maximum: f64,
    pub outflow_per_second: f64,
    pub up_front_cost: f64,
    pub status: ThrottleStatus,
    pub clock: ThrottleClock,
    pub cost: CostModel,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            high_water_mark: 600.0,
            maximum: 800.0,
            outflow_per_second: 10.0,
            up_front_cost: 50.0,
            status: ThrottleStatus::TooManyRequests,
            clock: ThrottleClock::Wall,
            cost: CostModel::default(),
        }
    }
}

/// One HTTPS (or, for tests, HTTP) Live Events subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionConfig {
    pub url: String,
    pub signed: bool,
}

/// Canvas's HTTPS delivery behaviour (canvas.md A3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryConfig {
    /// Real-time HTTP timeout of one attempt (Canvas: 15 s).
    pub timeout: Duration,
    /// Attempts per event including the first (Canvas: 4).
    pub max_attempts: u32,
    /// Simulated seconds before retry n (n = 1..), each multiplied by a jitter factor drawn
    /// from `jitter`: 120/240/480 s × [0.75, 1.4] spreads the 4 tries over 10–20 minutes.
    pub backoff_seconds: Vec<f64>,
    pub jitter: (f64, f64),
    /// Deactivate a subscription after this many timed-out (or otherwise failed) events in
    /// 24 simulated hours. Failures that later succeed do not count.
    pub deactivate_after_timeouts: u32,
    pub deactivate_after_errors: u32,
    /// Concurrent delivery attempts.
    pub concurrency: usize,
    /// Accept self-signed TLS certificates on receivers (tests with local HTTPS).
    pub accept_invalid_certs: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(15),
            max_attempts: 4,
            backoff_seconds: vec![120.0, 240.0, 480.0],
            jitter: (0.75, 1.4),
            deactivate_after_timeouts: 9_500,
            deactivate_after_errors: 28_000,
            concurrency: 16,
            accept_invalid_certs: false,
        }
    }
}

/// Panopto API-client rate limits (panopto.md d: about 5/s, 100/min, 5,000/h, then 429).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanoptoLimits {
    pub enabled: bool,
    pub per_second: u32,
    pub per_minute: u32,
    pub per_hour: u32,
    /// Which time the windows are counted in: real time (the default), or the simulated clock,
    /// so that a client pacing itself in simulated time is never refused at any speed.
    #[serde(default = "wall")]
    pub clock: ThrottleClock,
}

fn wall() -> ThrottleClock {
    ThrottleClock::Wall
}

impl Default for PanoptoLimits {
    fn default() -> Self {
        PanoptoLimits {
            enabled: true,
            per_second: 5,
            per_minute: 100,
            per_hour: 5_000,
            clock: ThrottleClock::Wall,
        }
    }
}

/// Everything needed to build a [`crate::Simulator`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub scale: Scale,
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Start with the clock paused (tests step it through `/_sim/clock`).
    pub start_paused: bool,
    pub start_time: DateTime<Utc>,
    /// Run the term timeline (add/drop waves, grading, lectures) as the clock moves.
    pub scenario: bool,
    /// Host name Canvas reports in Live Events metadata and object URLs.
    pub canvas_hostname: String,
    pub panopto_hostname: String,
    /// Non-expiring Canvas tokens of the root-account admin.
    pub canvas_tokens: Vec<String>,
    /// Non-expiring Panopto tokens of a Panopto administrator.
    pub panopto_tokens: Vec<String>,
    pub live_events: Vec<SubscriptionConfig>,
    pub access_token_ttl: Duration,
    pub oauth_client_id: String,
    pub oauth_client_secret: String,
    pub panopto_client_id: String,
    pub panopto_client_secret: String,
    /// Panopto service user for the password grant and SOAP `AuthenticationInfo`.
    pub panopto_username: String,
    pub panopto_password: String,
    /// The application key of the `canvas-sim` identity provider: SOAP callers may sign in as
    /// any of its users with `AuthCode` (`panopto::soap::auth_code`).
    pub panopto_application_key: String,
    pub throttle: ThrottleConfig,
    pub delivery: DeliveryConfig,
    pub panopto_limits: PanoptoLimits,
}

pub fn default_start() -> DateTime<Utc> {
    // Monday 25 August 2025, 00:00 at the university (EDT, UTC-4): the first day of term.
    crate::university::ZONE
        .with_ymd_and_hms(2025, 8, 25, 0, 0, 0)
        .single()
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

impl SimConfig {
    pub fn new(scale: Scale, seed: u64) -> SimConfig {
        SimConfig {
            scale,
            seed,
            speed: 600.0,
            start_paused: false,
            start_time: default_start(),
            scenario: true,
            canvas_hostname: "canvas.sim.coursewire.test".to_owned(),
            panopto_hostname: "panopto.sim.coursewire.test".to_owned(),
            canvas_tokens: Vec::new(),
            panopto_tokens: Vec::new(),
            live_events: Vec::new(),
            access_token_ttl: Duration::from_secs(3_600),
            oauth_client_id: "10000000000001".to_owned(),
            oauth_client_secret: "sim-client-secret".to_owned(),
            panopto_client_id: "sim-panopto-client".to_owned(),
            panopto_client_secret: "sim-panopto-secret".to_owned(),
            panopto_username: "sim\\svc-coursewire".to_owned(),
            panopto_password: "sim-panopto-password".to_owned(),
            panopto_application_key: "6c3e3b1e-5f2a-4d0b-9a57-0f4c2e8d1a90".to_owned(),
            throttle: ThrottleConfig::default(),
            delivery: DeliveryConfig::default(),
            panopto_limits: PanoptoLimits::default(),
        }
    }

    pub fn small(seed: u64) -> SimConfig {
        SimConfig::new(Scale::Small, seed)
    }

    pub fn medium(seed: u64) -> SimConfig {
        SimConfig::new(Scale::Medium, seed)
    }

    pub fn large(seed: u64) -> SimConfig {
        SimConfig::new(Scale::Large, seed)
    }

    /// A paused clock, no timeline: the fixed university only (most tests start here).
    pub fn paused(mut self) -> SimConfig {
        self.start_paused = true;
        self
    }

    pub fn with_canvas_token(mut self, token: &str) -> SimConfig {
        self.canvas_tokens.push(token.to_owned());
        self
    }

    pub fn with_panopto_token(mut self, token: &str) -> SimConfig {
        self.panopto_tokens.push(token.to_owned());
        self
    }
}
