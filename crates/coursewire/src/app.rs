//! Startup and shutdown of the service: builds every part from the config, serves on a bound
//! listener until the shutdown future resolves, then drains. Tests call [`serve`] with a
//! listener on port 0; `coursewire serve` calls it with the configured address.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use canvas::signature::{JwksSource, Verifier};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::delivery::{self, Delivery};
use crate::bus::nats::NatsSink;
use crate::canvas_api;
use crate::clock::Clock;
use crate::config::Config;
use crate::ingest::{CanvasIngest, InboxWriter, IngestSettings};
use crate::metrics::Metrics;
use crate::processor::{self, Processor};
use crate::store;
use crate::tasks::Tasks;
use crate::web::{self, AppState};

/// A reqwest client builder with the TLS provider installed and a user agent naming us.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    // Installing twice is harmless (the second call reports the first provider is in place).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("coursewire/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

/// Runs the service until `shutdown` resolves, on `clock` (the wall clock in production, a
/// simulated one in tests and the demo: every lease, retry and schedule reads it). In-flight
/// requests get `server.shutdown_grace_seconds` to finish; every accepted event is committed
/// before return.
pub async fn serve(
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.canvas.require_for_serve()?;
    // One pool for the whole process: every part below shares it.
    let store = store::open(config.database.url.expose())
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store.migrate().await.context("migrations failed")?;
    let secrets = crate::secrets::SecretsKey::new(config.secrets.key.expose())?;
    if secrets.is_set() {
        let sealed = delivery::admin::seal_stored_secrets(&store, &secrets).await?;
        if sealed > 0 {
            tracing::info!(
                sealed,
                "subscription secrets stored in the clear are now sealed"
            );
        }
    } else {
        tracing::warn!(
            "secrets.key is not set: subscription signing secrets are stored in the clear \
             (set COURSEWIRE_SECRETS_KEY to base64 of 32 random bytes)"
        );
    }
    let metrics = Arc::new(Metrics::new());
    let stopping = CancellationToken::new();
    let mut tasks = Tasks::new(stopping.clone());

    let (writer, writer_task) = InboxWriter::spawn(
        store.clone(),
        metrics.clone(),
        config.ingest.max_batch,
        config.ingest.rejected_log_rows,
    );
    tasks.spawn("inbox writer", async move {
        if let Err(err) = writer_task.await {
            tracing::error!(error = %err, "inbox writer ended abnormally");
        }
    });
    let verifier = Verifier::new(
        JwksSource::Url {
            url: config.canvas.jwks_url.clone(),
            client: http_client()?,
        },
        Duration::from_secs(config.canvas.jwks_min_refresh_seconds),
        config.canvas.leeway_seconds,
    )
    .with_max_token_age(Duration::from_secs(config.canvas.max_token_age_seconds))
    .with_schedule(
        Duration::from_secs(config.canvas.jwks_refresh_seconds),
        Duration::from_secs(config.canvas.jwks_key_grace_seconds),
    );
    tasks.spawn(
        "JWKS refresh",
        verifier
            .clone()
            .keep_fresh(stopping.child_token().cancelled_owned()),
    );
    let canvas = CanvasIngest::new(
        verifier,
        writer,
        metrics.clone(),
        clock.clone(),
        IngestSettings {
            allow_unsigned: config.canvas.allow_unsigned,
            account_uuids: config.canvas.account_uuids.clone(),
        },
    );
    let mut appended = None;
    if config.processor.enabled {
        let processor = Processor::new(
            store.clone(),
            clock.clone(),
            metrics.clone(),
            processor::Settings::from(&config.processor),
        )
        .wake_on(canvas.writer().committed());
        appended = Some(processor.appended());
        tasks.spawn("processor", Arc::new(processor).run(stopping.child_token()));
    }
    if config.delivery.enabled {
        let mut delivery = Delivery::new(
            store.clone(),
            clock.clone(),
            metrics.clone(),
            delivery::Settings::try_from(&config)?,
        )?;
        if let Some(appended) = appended.clone() {
            delivery = delivery.wake_on(appended);
        }
        tasks.spawn("delivery", Arc::new(delivery).run(stopping.child_token()));
    }
    if !config.nats.url.is_empty() {
        let sink = NatsSink::new(store.clone(), metrics.clone(), config.nats.clone());
        tasks.spawn("NATS sink", sink.run(stopping.child_token()));
    }
    // One Canvas client (one quota governor) for everything that calls Canvas; the
    // reconciler reads Canvas back with it and repairs lost Live Events through the inbox.
    // The workflow writes to both systems: it runs where both clients can be built.
    let workflow_runs = config.workflow.enabled
        && config.panopto.configured()
        && match config.canvas.api.require() {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(
                    reason = %why,
                    "recording workflow commands are not executed here: Canvas is not configured"
                );
                false
            }
        };
    let canvas_api = if config.reconcile.enabled || workflow_runs {
        let client = canvas_api::start(
            &config.canvas.api,
            store.clone(),
            clock.clone(),
            clock.clone(),
            &mut tasks,
            &stopping,
        )?;
        if config.reconcile.enabled {
            crate::reconcile::spawn(
                &config,
                store.clone(),
                client.clone(),
                clock.clone(),
                &mut tasks,
                &stopping,
            )?;
        }
        Some(client)
    } else {
        None
    };
    // One Panopto client (one pacer, its ledger in the store) for everything that calls
    // Panopto; the poller feeds Panopto's changes into the inbox with it.
    let panopto_api = if config.panopto.configured() {
        let client = crate::panopto_api::client(&config.panopto, store.clone(), clock.clone())?;
        if config.panopto.poll.enabled {
            crate::sources::panopto::spawn(
                &config.panopto.poll,
                client.clone(),
                store.clone(),
                clock.clone(),
                &mut tasks,
                &stopping,
            );
        }
        Some(client)
    } else {
        None
    };
    // The workflow's commands, performed with the same two clients at their write priority.
    if let (true, Some(panopto), Some(canvas)) = (workflow_runs, &panopto_api, &canvas_api) {
        let targets = crate::workflow::effects::Targets {
            store: store.clone(),
            panopto: panopto.clone(),
            canvas: canvas.clone(),
            clock: clock.clone(),
            provider: config.workflow.lms_provider.clone(),
            panopto_url: config.panopto.url.clone(),
        };
        let executor = crate::workflow::execute::Executor::new(
            targets,
            crate::workflow::execute::Settings::from(&config.workflow),
            format!("workflow-{}", uuid::Uuid::new_v4()),
        );
        tasks.spawn(
            "workflow executor",
            Arc::new(executor).run(stopping.child_token()),
        );
    }
    let state = AppState {
        store: store.clone(),
        metrics,
        clock,
        tasks: tasks.health(),
        canvas: Arc::new(canvas),
        max_body_bytes: config.ingest.max_body_bytes,
        api_token: config.api.token.clone(),
        api_max_wait: Duration::from_secs(config.api.max_wait_seconds),
        long_polls: Arc::new(tokio::sync::Semaphore::new(config.api.max_long_polls)),
        appended: appended.clone(),
        metrics_read: Arc::default(),
        subscription_limits: Arc::new(delivery::admin::Limits::from_config(&config, true)?),
        canvas_api,
        panopto_api,
        zone: config.university.zone()?,
    };
    let limits = web::edge::EdgeLimits::from_config(&config.server);
    let metrics_apart = !config.server.metrics_listen.is_empty();
    if metrics_apart {
        let addr = &config.server.metrics_listen;
        let metrics_listener = addr
            .parse()
            .map_err(anyhow::Error::new)
            .and_then(|addr| Ok(web::edge::bind(addr)?))
            .with_context(|| format!("cannot listen on server.metrics_listen {addr}"))?;
        tracing::info!(addr, "metrics on their own listener");
        let serving = web::edge::serve(
            metrics_listener,
            web::metrics_router(state.clone()),
            limits.clone(),
            stopping.clone(),
        );
        tasks.spawn("metrics listener", async move {
            if let Err(err) = serving.await {
                tracing::error!(error = %err, "metrics listener failed");
            }
        });
    }
    let app = web::router(state, !metrics_apart);
    let local = listener.local_addr()?;
    tracing::info!(%local, store = store.backend(), database = %config.database.url, "coursewire serving");

    let trigger = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let server = web::edge::serve(listener, app, limits, stopping.clone());
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        _ = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
        }
    }
    // The router (and with it every writer handle) is gone: the inbox writer drains and stops
    // (it was started first, so it is waited for first); every other task saw the same
    // cancellation and finishes what it holds, within the same grace.
    stopping.cancel();
    tasks.join(grace).await?;
    store.close().await;
    tracing::info!("coursewire stopped");
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
