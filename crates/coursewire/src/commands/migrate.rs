//! `coursewire migrate`: applies the database migrations and exits (`serve` does the same at
//! every start).

use std::process::ExitCode;

use super::print;
use crate::config::Config;
use crate::store;

pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let store = store::open(config.database.url.expose()).await?;
    store.migrate().await?;
    store.close().await;
    print(&format!("migrations applied to {}", config.database.url));
    Ok(ExitCode::SUCCESS)
}
