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
    /// Events POSTed at a fixed rate, delivered to many local subscribers; POST → receipt latency.
    E2e(scenarios::e2e::Args),
    /// Sustained Canvas reads through the quota governor: throughput against the bucket's ceilings.
    Quota(scenarios::quota::Args),
    /// Requests and cost units to sync one university: GraphQL, REST, 30 naive crawls.
    ApiCalls(scenarios::api_calls::Args),
    /// A simulated teaching day of Panopto polling: requests per hour against the limits,
    /// 429s, delay from a change in Panopto to its change event.
    Panopto(scenarios::panopto::Args),
    /// A simulated teaching day with the recording workflow: Panopto Complete → Canvas item
    /// latency, requests per recording, 429s.
    Lectures(scenarios::lectures::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        match cli.scenario {
            Scenario::Ingest(args) => scenarios::ingest::run(args).await.map(serde_json::to_value),
            Scenario::E2e(args) => scenarios::e2e::run(args).await.map(serde_json::to_value),
            Scenario::Quota(args) => scenarios::quota::run(args).await.map(serde_json::to_value),
            Scenario::ApiCalls(args) => scenarios::api_calls::run(args)
                .await
                .map(serde_json::to_value),
            Scenario::Panopto(args) => scenarios::panopto::run(args)
                .await
                .map(serde_json::to_value),
            Scenario::Lectures(args) => scenarios::lectures::run(args)
                .await
                .map(serde_json::to_value),
        }
    })??;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
