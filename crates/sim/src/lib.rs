//! Simulator of Canvas LMS and Panopto, faithful enough to test coursewire against
//! (`reference/canvas.md`, `reference/panopto.md`, the payloads in `shared/data/`).
//!
//! One [`Simulator`] serves both systems on one listener:
//!
//! * Canvas REST under `/api/v1/...` (Link pagination, bookmark cursors for enrollments and
//!   `/students/submissions`), GraphQL at `POST /api/graphql` (validated against Canvas's
//!   published schema), OAuth2 at `/login/oauth2/token` and `/login/oauth2/auth`, all behind
//!   Canvas's leaky-bucket throttle with `X-Request-Cost` / `X-Rate-Limit-Remaining`.
//! * Canvas Live Events pushed to subscriptions. Signed: the body is a compact JWS
//!   (`Content-Type: application/jwt`, header `{"alg":"RS256","typ":"JWT","kid":..}`) whose
//!   claims are the Canvas-format envelope (`metadata`, `body`) plus `iat`/`exp` (real time of
//!   the attempt, exp = iat + 300); the keys are served at **`GET /jwks`** as
//!   `{"keys":[previous, current, next]}`. Unsigned: the envelope JSON (`application/json`).
//! * Panopto REST v1 under `/Panopto/api/v1/...`, SOAP 4.6 at
//!   `/Panopto/PublicAPI/4.6/{SessionManagement,RemoteRecorderManagement,UserManagement,AccessManagement}.svc`
//!   (folders by external id, external groups and members, grants; [`panopto::soap`]), each
//!   with its WSDL at `GET …svc?wsdl` / `?singleWsdl`, schemas inline (zeep starts from it),
//!   OAuth2 at `/Panopto/oauth2/connect/token`.
//! * The control API under `/_sim/` (no authentication):
//!
//! | route | what |
//! |---|---|
//! | `GET /_sim` | seed, scale, paths, counts |
//! | `GET/POST /_sim/clock` | read; `{"advance_seconds":N}`, `{"set":"ISO"}`, `{"pause":bool}`, `{"speed":X}` |
//! | `GET /_sim/counters` | requests, cost units and throttles per token and endpoint; Live Events emitted/attempts/delivered/duplicated/dropped; Panopto requests and 429s; lectures; timeline; `writes` (every write through the APIs by operation and target: `folder.create`, `session.move`, `module_item.create`, …) |
//! | `GET/PUT /_sim/faults` | [`Faults`]: `canvas.{legacy_throttle_status, api_outage}`, `live_events.{duplicate_probability, reorder_probability, reorder_max_delay_seconds, drop_probability, outage}`, `panopto.{broken_recorder_rooms, recorders[{room_id, problem: faulted\|offline, from, until}], late_processing_*, late_captions_*, captions_never_probability, captions_late_folders, captions_never_folders, wrong_room_probability, staff_edit_*, outage{from, until}}` ([`panopto::faults`]); a bad value is refused with 400 and changes nothing |
//! | `GET /_sim/ground_truth` | [`GroundTruth`] at the current simulated time |
//! | `GET /_sim/ground_truth` `lectures` | every section meeting on every date reached: room, recorder, expected and actual outcome, session ([`panopto::lectures`]) |
//! | `GET /_sim/timetable/{file}` | SIS CSVs and the room/recorder/meeting/cancellation CSVs, every column documented ([`timetable`]) |
//! | `POST /_sim/timetable/cancellations` | call off a class: `{"meeting_id":N,"date":"YYYY-MM-DD","reason":".."}` |
//! | `GET /_sim/panopto/sessions/{id}/viewers` | who can view a session, as Panopto evaluates folders, groups and grants ([`panopto::viewers`]): `{level, audience, users, canvas_user_ids}`; also in the ground truth's sessions |
//! | `GET/PUT /_sim/panopto/folders/{id}/captioning` | a folder's automatic captioning `{"turnaround_minutes":N\|null}` |
//! | `POST /_sim/canvas/revoke_tokens`, `/_sim/panopto/revoke_tokens` | revoke every OAuth2 access token (Panopto: refresh tokens too) |
//! | `GET /_sim/live_events?after=N&limit=M` | every emitted Live Event, in emission order |
//! | `GET/POST /_sim/live_events/subscriptions` | list; add `{"url":..,"signed":bool}` |
//! | `POST /_sim/live_events/rotate_keys` | next key becomes current |
//! | `POST /_sim/canvas/tokens`, `/_sim/canvas/codes` | mint an access/refresh pair or an authorization code for `{"user_id":N}` (default: the admin) |
//!
//! The university is generated from a seed ([`university`]); a simulated clock
//! ([`clock::SimClock`]) drives the term timeline ([`timeline`]) and the lectures on the room
//! recorders ([`panopto::world`]). Tests build a [`SimConfig`] (e.g. `SimConfig::small(7).paused()`),
//! serve [`Simulator::router`] on `127.0.0.1:0` and drive the clock through `/_sim/clock`.

#![recursion_limit = "512"]

pub mod canvas;
pub mod changes;
mod client_auth;
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
    /// Sign Live Events: RS256 JWT bodies verifiable with the keys at `GET /jwks` (the default).
    #[arg(long = "sign", action = clap::ArgAction::SetTrue, overrides_with = "sign")]
    pub force_sign: bool,
    /// `--no-sign` sends Live Events as plain JSON; `sign` is the effective setting.
    #[arg(long = "no-sign", action = clap::ArgAction::SetFalse, overrides_with = "force_sign")]
    pub sign: bool,
    /// Start with the simulated clock paused (step it with `POST /_sim/clock`).
    #[arg(long)]
    pub paused: bool,
    /// Do not run the term timeline (a static university).
    #[arg(long)]
    pub no_scenario: bool,
}

impl SimArgs {
    pub fn to_config(&self) -> SimConfig {
        let mut c = SimConfig::new(self.scale, self.seed);
        c.speed = self.speed;
        c.start_paused = self.paused;
        c.scenario = !self.no_scenario;
        c.canvas_tokens.extend(self.canvas_token.clone());
        c.panopto_tokens.extend(self.panopto_token.clone());
        let signed = self.sign;
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> SimArgs {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied()))
            .expect("parses")
            .sim
    }

    #[test]
    fn arguments_parse_with_defaults_and_sign_switches() {
        let a = parse(&[]);
        assert_eq!(a.scale, Scale::Small);
        assert_eq!(a.listen.to_string(), "127.0.0.1:8090");
        assert!(a.sign, "signed by default");
        assert!(!parse(&["--no-sign"]).sign);
        assert!(parse(&["--no-sign", "--sign"]).sign);
        assert!(!parse(&["--sign", "--no-sign"]).sign);
        let a = parse(&[
            "--scale",
            "medium",
            "--seed",
            "9",
            "--listen",
            "0.0.0.0:0",
            "--speed",
            "60",
            "--canvas-token",
            "T",
            "--panopto-token",
            "P",
            "--live-events-url",
            "https://a/hooks",
            "--live-events-url",
            "https://b/hooks",
        ]);
        let c = a.to_config();
        assert_eq!((c.scale, c.seed, c.speed), (Scale::Medium, 9, 60.0));
        assert_eq!(c.canvas_tokens, vec!["T".to_owned()]);
        assert_eq!(c.panopto_tokens, vec!["P".to_owned()]);
        assert_eq!(c.live_events.len(), 2);
        assert!(c.live_events.iter().all(|s| s.signed));
        assert!(Cli::try_parse_from(["sim", "--scale", "huge"]).is_err());
    }
}
