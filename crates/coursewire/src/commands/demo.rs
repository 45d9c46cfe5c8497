//! `coursewire demo`: runs the demo (see `crate::demo`), prints its summary table (and writes
//! it as JSON with `--json-summary`); exit code non-zero when a "must" figure fails.

use std::process::ExitCode;

use anyhow::Context;

use super::print;
use crate::demo::DemoArgs;

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let json_file = args.json_summary.clone();
    let summary = crate::demo::run(args, |summary| {
        print(&summary.table());
        if let Some(path) = json_file {
            let json = serde_json::to_string_pretty(summary)?;
            std::fs::write(&path, json + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })
    .await?;
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
