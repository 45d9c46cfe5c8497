//! The `coursewire` binary: parse the command line, load config, install tracing, run.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use coursewire::cli::{Cli, Command, ConfigAction};
use coursewire::config::{Config, DEFAULT_FILE};
use coursewire::{app, decode, store};

/// `println!` that does not panic when the reader went away (`coursewire verify | head`): the
/// output is cut short, so the process stops with the status a shell gives a SIGPIPE death.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
            eprintln!("coursewire: cannot write to stdout: {err}");
            std::process::exit(1);
        }
    }};
}

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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config {
            action: ConfigAction::PrintDefault,
        } => {
            print!("{DEFAULT_FILE}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            action: ConfigAction::Show,
        } => {
            let config = Config::load(cli.config.as_deref())?;
            say!("{config:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode { files, jwks } => {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr();
            match decode::run(&files, jwks.as_deref(), &mut out, &mut err).await {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(_) => Ok(ExitCode::FAILURE),
            }
        }
        Command::Reconcile { course } => {
            let config = Config::load(cli.config.as_deref())?;
            init_tracing("warn");
            let report = coursewire::reconcile::run_on_demand(&config, course).await?;
            say!("{}", serde_json::to_string(&report)?);
            Ok(if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Verify => {
            // Exit code 2 for every error, so "divergent" (1) is never confused with "broken".
            let report = match Config::load(cli.config.as_deref()) {
                Ok(config) => {
                    init_tracing("warn");
                    coursewire::reconcile::verify(&config).await
                }
                Err(err) => Err(err),
            };
            match report {
                Ok(report) => {
                    say!("{}", serde_json::to_string(&report)?);
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
        Command::Demo(args) => {
            let json_file = args.json_summary.clone();
            let summary = coursewire::demo::run(args, |summary| {
                say!("{}", summary.table());
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
        Command::Sim(args) => {
            init_tracing("info");
            sim::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            from,
            to,
            source,
            types,
            reprocess,
            subscription,
            dry_run,
            include_quarantined,
        } => {
            use coursewire::processor::replay::{self, ReplayRequest, Target};
            let config = Config::load(cli.config.as_deref())?;
            init_tracing(&config.log.filter);
            let target = match (reprocess, subscription) {
                (_, Some(name)) => Target::Subscription(name),
                _ => Target::Reprocess,
            };
            let request = ReplayRequest {
                from,
                to: to.unwrap_or_else(chrono::Utc::now),
                source,
                types,
                target,
                dry_run,
                include_quarantined,
            };
            let report = replay::run(&config, &request).await?;
            say!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscriptions { action } => {
            let config = Config::load(cli.config.as_deref())?;
            init_tracing("warn");
            let out = coursewire::bus::delivery::admin::command(&config, action).await?;
            say!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let config = Config::load(cli.config.as_deref())?;
            init_tracing(&config.log.filter);
            let store = store::open(config.database.url.expose()).await?;
            store.migrate().await?;
            store.close().await;
            say!("migrations applied to {}", config.database.url);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            init_tracing(&config.log.filter);
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.server.listen))?;
            app::serve(config, listener, app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
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
