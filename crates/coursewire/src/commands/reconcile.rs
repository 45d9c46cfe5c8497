//! `coursewire reconcile [--course ID]` (one pass now, repairs written to the inbox) and
//! `coursewire verify` (a full read of Canvas compared with the catalog; exit 0 only with no
//! divergence, 1 with divergences, 2 on errors).

use std::process::ExitCode;

use super::print;
use crate::config::Config;

pub async fn run(config: &Config, course: Option<u64>) -> anyhow::Result<ExitCode> {
    let report = crate::reconcile::run_on_demand(config, course).await?;
    print(&serde_json::to_string(&report)?);
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `config` is the loaded configuration or why it could not be loaded: every error is exit
/// code 2, so "divergent" (1) is never confused with "broken".
pub async fn verify(config: anyhow::Result<Config>) -> anyhow::Result<ExitCode> {
    let report = match config {
        Ok(config) => crate::reconcile::verify(&config).await,
        Err(err) => Err(err),
    };
    match report {
        Ok(report) => {
            print(&serde_json::to_string(&report)?);
            Ok(ExitCode::from(if !report.errors.is_empty() {
                2
            } else if report.divergence_count() > 0 {
                1
            } else {
                0
            }))
        }
        Err(err) => {
            eprintln!("coursewire verify: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}
