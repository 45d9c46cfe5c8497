//! `coursewire-bench SCENARIO [options]`: load generators for coursewire. Each scenario prints
//! human progress on stderr and ONE JSON object as the last line of stdout.

mod scenarios;
mod support;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "coursewire-bench",
    about = "coursewire benchmarks (build with --release)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Concurrent clients POST signed Live Events to /hooks/canvas.
    Ingest(scenarios::ingest::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        match cli.scenario {
            Scenario::Ingest(args) => scenarios::ingest::run(args).await,
        }
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
