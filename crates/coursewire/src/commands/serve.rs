//! `coursewire serve`: the service on the configured address and the wall clock, until
//! ctrl-c or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::app;
use crate::clock::SystemClock;
use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let listener = crate::web::edge::bind(config.server.listen)
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    app::serve(
        config,
        Arc::new(SystemClock),
        listener,
        app::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
