//! Simulator of Canvas LMS and Panopto, faithful enough to test coursewire against
//! (`reference/canvas.md`, `reference/panopto.md`, the payloads in `shared/data/`).
//!
//! One [`Simulator`] serves both systems on one listener:
//!
//! * Canvas REST under `/api/v1/...` (Link pagination, bookmark cursors for enrollments),
//!   GraphQL at `POST /api/graphql`, OAuth2 at `/login/oauth2/token` (and `/login/oauth2/auth`),
//!   with Canvas's leaky-bucket throttle and `X-Request-Cost` / `X-Rate-Limit-Remaining`.
//! * Canvas Live Events pushed to subscriptions (signed RS256 JWT or plain JSON), with the
//!   signing keys' JWKS at **`GET /jwks`** (previous, current and next key).
//! * Panopto REST v1 under `/Panopto/api/v1/...`, SOAP at
//!   `/Panopto/PublicAPI/4.6/SessionManagement.svc`, OAuth2 at `/Panopto/oauth2/connect/token`.
//! * The control API under `/_sim/` (clock, faults, counters, ground truth, timetable CSVs,
//!   emitted Live Events, subscriptions, key rotation, credential minting).
//!
//! The university is generated from a seed ([`university`]); a simulated clock
//! ([`clock::SimClock`]) drives the term timeline ([`timeline`]) and the lectures on the room
//! recorders ([`panopto::world`]). Tests build a [`SimConfig`] (e.g. `SimConfig::small(7).paused()`),
//! serve [`Simulator::router`] on `127.0.0.1:0` and drive the clock through `/_sim/clock`.

#![recursion_limit = "512"]

pub mod canvas;
pub mod changes;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod ground_truth;
pub mod ids;
pub mod live_events;
pub mod panopto;
mod sim;
pub mod timeline;
pub mod timetable;
pub mod university;
pub mod world;

use std::net::SocketAddr;

pub use clock::SimClock;
pub use config::{Scale, SimConfig, SubscriptionConfig};
pub use counters::Counters;
pub use ground_truth::GroundTruth;
pub use sim::{CanvasFaults, Faults, Simulator};

/// `coursewire sim` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// University size: small (~50 courses), medium (~3,000 courses, ~30,000 students), large (10× medium).
    #[arg(long, value_enum, default_value = "small")]
    pub scale: Scale,
    /// Seed of the university and the term timeline (same seed, same university).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Address to listen on (Canvas, Panopto and the control API share it).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Simulated seconds per real second (600: a ten-hour teaching day in a minute).
    #[arg(long, default_value_t = 600.0)]
    pub speed: f64,
    /// A non-expiring Canvas token of the root-account admin, for scripts.
    #[arg(long)]
    pub canvas_token: Option<String>,
    /// A non-expiring Panopto token of a Panopto administrator, for scripts.
    #[arg(long)]
    pub panopto_token: Option<String>,
    /// Live Events subscription URL (repeatable). Signed bodies verify against `GET /jwks`.
    #[arg(long = "live-events-url")]
    pub live_events_url: Vec<String>,
    /// Sign Live Events (RS256 JWT bodies, keys at `/jwks`); the default.
    #[arg(long, overrides_with = "no_sign")]
    pub sign: bool,
    /// Send Live Events as plain JSON.
    #[arg(long = "no-sign", overrides_with = "sign")]
    pub no_sign: bool,
    /// Start with the simulated clock paused (step it with `POST /_sim/clock`).
    #[arg(long)]
    pub paused: bool,
    /// Do not run the term timeline (a static university).
    #[arg(long)]
    pub no_scenario: bool,
}

impl SimArgs {
    pub fn signed(&self) -> bool {
        !self.no_sign
    }

    pub fn to_config(&self) -> SimConfig {
        let mut c = SimConfig::new(self.scale, self.seed);
        c.speed = self.speed;
        c.start_paused = self.paused;
        c.scenario = !self.no_scenario;
        c.canvas_tokens.extend(self.canvas_token.clone());
        c.panopto_tokens.extend(self.panopto_token.clone());
        let signed = self.signed();
        c.live_events = self
            .live_events_url
            .iter()
            .map(|url| SubscriptionConfig {
                url: url.clone(),
                signed,
            })
            .collect();
        c
    }
}

/// Bind, print `coursewire sim listening on http://ADDR`, serve until ctrl-c.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let sim = Simulator::new(args.to_config())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("coursewire sim listening on http://{addr}");
    sim.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
