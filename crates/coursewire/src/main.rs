//! The `coursewire` binary: parse the command line, load config, install tracing, run.

use std::process::ExitCode;

use clap::Parser;
use coursewire::cli::{Cli, Command};
use coursewire::commands;
use coursewire::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("coursewire: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("coursewire: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config, installs tracing (at the config's filter, or `quiet` for commands whose
/// output is a report) and runs the subcommand.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = cli.config.as_deref();
    let load = |quiet: Option<&str>| -> anyhow::Result<Config> {
        let config = Config::load(file)?;
        init_tracing(quiet.unwrap_or(&config.log.filter));
        for deprecated in &config.deprecations {
            tracing::warn!("{deprecated}");
        }
        Ok(config)
    };
    match cli.command {
        Command::Config { action } => commands::config::run(action, file),
        Command::Decode { files, jwks } => {
            Ok(commands::decode::command(&files, jwks.as_deref()).await)
        }
        Command::Reconcile { course } => {
            commands::reconcile::run(&load(Some("warn"))?, course).await
        }
        Command::Import { paths, partial } => {
            commands::import::run(&load(Some("warn"))?, paths, partial).await
        }
        Command::Rules { action } => commands::rules::run(&load(Some("warn"))?, action).await,
        Command::Recordings { action } => {
            commands::recordings::run(&load(Some("warn"))?, action).await
        }
        Command::Verify => commands::reconcile::verify(load(Some("warn"))).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Sim(args) => {
            init_tracing("info");
            sim::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(args) => commands::replay::run(&load(None)?, args).await,
        Command::Subscriptions { action } => {
            commands::subscriptions::run(&load(Some("warn"))?, action).await
        }
        Command::Tokens { action } => commands::tokens::run(&load(Some("warn"))?, action).await,
        Command::Migrate => commands::migrate::run(&load(None)?).await,
        Command::Serve => commands::serve::run(load(None)?).await,
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
