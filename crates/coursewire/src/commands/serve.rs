//! `coursewire serve`: the service on the configured address and the wall clock (or, with
//! `clock.follow`, a simulator's), until ctrl-c or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::app;
use crate::clock::SystemClock;
use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let listener = crate::web::edge::bind(config.server.listen)
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let following = tokio_util::sync::CancellationToken::new();
    let clock: Arc<dyn crate::clock::Clock> = if config.clock.follow.is_empty() {
        Arc::new(SystemClock)
    } else {
        tracing::warn!(simulator = %config.clock.follow, "following a simulator's clock (not for production)");
        crate::clock::FollowedClock::follow(&config.clock.follow, following.clone())
            .await
            .with_context(|| format!("cannot read the clock of {}", config.clock.follow))?
    };
    let served = app::serve(config, clock, listener, app::shutdown_signal()).await;
    following.cancel();
    served?;
    Ok(ExitCode::SUCCESS)
}
