//! `coursewire demo`: the whole Canvas side in one command. It starts the simulator of Canvas,
//! the service on the embedded SQLite default, a handful of demo subscribers and the
//! reconciler; points a signed Live Events subscription at the service; runs simulated
//! teaching days at high speed (optionally under faults); then settles, reconciles once more,
//! verifies the catalog against Canvas and reports the figures (see [`summary`]).
//!
//! It owns the orchestration and the yardsticks only: every part it runs is the production
//! code (`app::serve`, the reconciler, `verify`), talking over real HTTP. Canvas's time is the
//! simulator's clock, which the reconciler is given so that its repairs are dated the way
//! Canvas dates its Live Events.

pub mod faults;
pub mod naive;
pub mod receivers;
mod run;
pub mod summary;

use std::path::PathBuf;

pub use run::run;
pub use summary::Summary;

/// Sizes the demo runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoScale {
    /// About 50 courses and 600 students.
    Small,
    /// About 3,000 courses and 30,000 students.
    Medium,
}

impl DemoScale {
    fn sim(self) -> sim::Scale {
        match self {
            DemoScale::Small => sim::Scale::Small,
            DemoScale::Medium => sim::Scale::Medium,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DemoScale::Small => "small",
            DemoScale::Medium => "medium",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// University size.
    #[arg(long, value_enum, default_value_t = DemoScale::Small)]
    pub scale: DemoScale,
    /// Simulated teaching days to run, from the first day of term.
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 2400.0)]
    pub speed: f64,
    /// Lose, duplicate and reorder Live Events; a Canvas outage; a revoked token; a signing
    /// key rotation; a subscriber down for an hour.
    #[arg(long)]
    pub faults: bool,
    /// Seed of the simulated university and its term.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where the database and the log go (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Leave the service, the simulator and the API up afterwards, until ctrl-c.
    #[arg(long)]
    pub keep_running: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json_summary: Option<PathBuf>,
    /// Demo subscribers (each receives every change event).
    #[arg(long, default_value_t = 5, hide = true)]
    pub subscribers: usize,
}

impl DemoArgs {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=112).contains(&self.days),
            "--days must be 1 to 112 (a term)"
        );
        anyhow::ensure!(
            self.speed.is_finite() && (1.0..=100_000.0).contains(&self.speed),
            "--speed must be between 1 and 100000"
        );
        anyhow::ensure!(
            (1..=50).contains(&self.subscribers),
            "--subscribers must be 1 to 50"
        );
        Ok(())
    }
}
