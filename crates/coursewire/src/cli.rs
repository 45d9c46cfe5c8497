//! The `coursewire` command line: parsing only; each command calls into the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "coursewire",
    version,
    about = "Canvas/Panopto integration hub: signed Live Events in, ordered change events out"
)]
pub struct Cli {
    /// Configuration file (TOML); see `coursewire config print-default`.
    #[arg(long, global = true, env = "COURSEWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: webhooks, API, metrics.
    Serve,
    /// Show the whole Canvas side working: the simulator, the service on SQLite, demo
    /// subscribers and the reconciler, over simulated teaching days (optionally under faults);
    /// prints a summary and exits non-zero if a "must" figure fails.
    Demo(crate::demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Decode Live Events files into CloudEvents JSON, one per line.
    Decode {
        /// Files holding one Canvas or Caliper message (JSON) or one signed JWS; `-` is stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Verify JWS input against this JWKS file.
        #[arg(long)]
        jwks: Option<PathBuf>,
    },
    /// Re-run a time window: process its inbox events again (--reprocess; idempotent), or
    /// re-deliver its change events to one subscription with the same ids (--subscription).
    Replay(ReplayArgs),
    /// Manage push subscriptions: change events POSTed to a URL as signed Standard Webhooks.
    Subscriptions {
        #[command(subcommand)]
        action: SubscriptionsAction,
    },
    /// Manage scoped API tokens (admin, operator, consumer); the token is printed once and
    /// only its hash is stored.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Run the simulator of Canvas and Panopto (for tests, the demo and benchmarks).
    Sim(sim::SimArgs),
    /// Read Canvas back now and write every difference from the catalog into the inbox as a
    /// repair event (a running `serve` applies them); prints a JSON report. Exit code 0, or 2
    /// when a course could not be read.
    Reconcile {
        /// Only this course (its Canvas id); default every course of `canvas.api.account_id`.
        #[arg(long)]
        course: Option<u64>,
    },
    /// Import SIS CSV files (accounts, terms, courses, sections, xlists, users, enrollments)
    /// and the timetable files (rooms, recorders, meetings, cancellations) into the inbox;
    /// prints a JSON summary. Every bad line is reported as `file:line: problem`, and nothing
    /// of a file with errors is applied unless --partial. Importing the same files again
    /// changes nothing. Exit code 0: all good; 1: lines refused; 2: unreadable.
    Import {
        /// Directories (their known files are read) or files (named as above).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Apply the good rows of a file that has bad lines.
        #[arg(long)]
        partial: bool,
    },
    /// The recording workflow: list recordings, show one with every step, replay, park or
    /// unpark (queued for the running service's processor). Prints JSON.
    Recordings {
        #[command(subcommand)]
        action: RecordingsAction,
    },
    /// Publishing rules per department and course: show, set, export and import (TOML).
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Compare a full read of Canvas with the catalog and print every divergence as a JSON
    /// report. Exit code 0: none; 1: divergences; 2: Canvas or the store could not be read.
    Verify,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the documented default configuration file.
    PrintDefault,
    /// Print the effective configuration (defaults, file, environment), secrets redacted.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsAction {
    /// Add a subscription; prints it as JSON with its secret (shown this once).
    Add {
        #[arg(long)]
        name: String,
        /// Where to push the events; leave out for a pull-only subscription (read with
        /// `GET /api/v1/subscriptions/NAME/events`).
        #[arg(long)]
        url: Option<String>,
        /// whsec_<base64 of 24–64 bytes>; generated when not given.
        #[arg(long)]
        secret: Option<String>,
        /// Event-type globs, comma-separated (e.g. `edu.canvas.enrollment.*`); default all.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Delays after each failed attempt, e.g. `5s,5m,30m`; default delivery.retry_schedule_ms.
        #[arg(long)]
        retry_schedule: Option<String>,
        /// What to do with an event whose retries are used up: block (the lane waits) or skip
        /// (dead-letter it and go on).
        #[arg(long, default_value = "block")]
        on_exhausted: String,
        /// Where delivery starts: `beginning` (every change event kept in the outbox) or
        /// `now` (only events that come after the subscription is added).
        #[arg(long, default_value = "beginning")]
        start: String,
    },
    /// List subscriptions as JSON (secrets are not shown).
    List,
    /// One subscription and where its delivery stands: cursor, lag, failing subjects (with
    /// their last error and next attempt), dead letters.
    Show { name: String },
    /// Stop delivering to a subscription (events keep accumulating).
    Pause { name: String },
    /// Deliver again to a paused subscription, from where it stopped.
    Resume { name: String },
    /// Remove a subscription and its delivery state.
    Remove { name: String },
    /// Retry exhausted and dead-lettered events, and re-enable a disabled endpoint.
    Retry { name: String },
}

/// Which rules: the root's (neither given), a department's or a course's.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleScopeArgs {
    /// A department: the Canvas sub-account's SIS id.
    #[arg(long, conflicts_with = "course")]
    pub department: Option<String>,
    /// A course: its SIS id.
    #[arg(long)]
    pub course: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// The rule that applies (every field, and the scope that set it) and what this scope
    /// sets itself, as JSON.
    Show {
        #[command(flatten)]
        scope: RuleScopeArgs,
        /// An earlier version of this scope's own set.
        #[arg(long)]
        version: Option<i64>,
        /// Every version of this scope, with who changed it and when.
        #[arg(long)]
        history: bool,
    },
    /// Change this scope's rules: KEY=VALUE (a TOML value, or text), KEY= to unset. Saved as
    /// a new version; refused with the key or template field named when invalid.
    Set {
        #[command(flatten)]
        scope: RuleScopeArgs,
        #[arg(required = true)]
        changes: Vec<String>,
        /// Who is changing it (default cli:$USER).
        #[arg(long)]
        author: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every scope's current rules as one TOML document ([root], [department.ID], [course.ID]).
    Export {
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Apply a TOML document of `rules export`'s shape: every scope is checked first, then
    /// each changed one saved as a new version.
    Import {
        file: PathBuf,
        #[arg(long)]
        author: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordingsAction {
    /// Recordings by workflow state, section and lecture date, most recently changed first.
    List {
        /// detected, filed, captioned, posted, audited, parked, failed or withdrawn.
        #[arg(long)]
        state: Option<String>,
        /// A SIS section id.
        #[arg(long)]
        section: Option<String>,
        /// The lecture's local date.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// One recording: its progress, what Panopto last said, each command and each audited
    /// step with its upstream event.
    Show { id: String },
    /// Run the workflow again end to end (each command reads first: nothing right is written
    /// again): one recording, or every recording whose lecture started in --from..--to.
    Replay {
        id: Option<String>,
        #[arg(long, requires = "to", conflicts_with = "id")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, requires = "from")]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Who asks (default cli:$USER).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Leave a recording alone (nothing more is done to it) until unparked.
    Park {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Match a parked recording again and carry it on.
    Unpark {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Create a token; prints it as JSON with the token (shown this once).
    Add {
        #[arg(long)]
        name: String,
        /// admin (everything), operator (subscriptions, replay, incidents) or consumer (only
        /// the pull endpoints and status of its own subscriptions).
        #[arg(long)]
        role: String,
        /// A subscription a consumer token may read (repeat for several).
        #[arg(long = "subscription")]
        subscriptions: Vec<String>,
    },
    /// List tokens as JSON (names, roles, scopes; never the token or its hash).
    List,
    /// Revoke a token: refused from its next request on.
    Revoke { name: String },
}

/// `coursewire replay`'s arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["reprocess", "subscription"])))]
pub struct ReplayArgs {
    /// Start of the window (RFC 3339, e.g. 2026-09-01T00:00:00Z): time received for inbox
    /// rows, time created for change events.
    #[arg(long)]
    pub from: chrono::DateTime<chrono::Utc>,
    /// End of the window (exclusive); default now.
    #[arg(long)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events from this source: canvas, panopto or reconcile.
    #[arg(long)]
    pub source: Option<String>,
    /// Only these types (comma-separated globs): Live Event names such as `enrollment_*`
    /// with --reprocess, change event types such as `edu.canvas.enrollment.*` with
    /// --subscription.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Process the window's inbox events again (the catalog ends the same; a change event
    /// only where state really differs).
    #[arg(long)]
    pub reprocess: bool,
    /// Re-deliver the window's change events to this subscription, with the same ids.
    #[arg(long, value_name = "NAME")]
    pub subscription: Option<String>,
    /// Count what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --reprocess: also retry events that were quarantined (after a fix).
    #[arg(long)]
    pub include_quarantined: bool,
}
