//! `coursewire replay --from T [--to T] (--reprocess | --subscription NAME) …`: re-runs a time
//! window (see `processor::replay`) and prints its JSON report.

use std::process::ExitCode;

use super::print;
use crate::cli::ReplayArgs;
use crate::config::Config;
use crate::processor::replay::{self, ReplayRequest, Target};

pub async fn run(config: &Config, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let target = match args.subscription {
        Some(name) => Target::Subscription(name),
        None => Target::Reprocess,
    };
    let request = ReplayRequest {
        from: args.from,
        to: args.to.unwrap_or_else(chrono::Utc::now),
        source: args.source,
        types: args.types,
        target,
        dry_run: args.dry_run,
        include_quarantined: args.include_quarantined,
    };
    let report = replay::run(config, &request).await?;
    print(&serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
