//! Startup and shutdown of the service: builds every part from the config, serves on a bound
//! listener until the shutdown future resolves, then drains. Tests call [`serve`] with a
//! listener on port 0; `coursewire serve` calls it with the configured address.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use canvas::signature::{JwksSource, Verifier};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::delivery::{self, Delivery};
use crate::bus::nats::NatsSink;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::ingest::{CanvasIngest, InboxWriter, IngestSettings};
use crate::metrics::Metrics;
use crate::processor::{self, Processor};
use crate::store;
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

/// Runs the service until `shutdown` resolves. In-flight requests get
/// `server.shutdown_grace_seconds` to finish; every accepted event is committed before return.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(config.database.url.expose())
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store.migrate().await.context("migrations failed")?;
    let metrics = Arc::new(Metrics::new());
    let (writer, writer_task) = InboxWriter::spawn(
        store.clone(),
        metrics.clone(),
        config.ingest.max_batch,
        config.ingest.rejected_log_rows,
    );
    let verifier = Verifier::new(
        JwksSource::Url {
            url: config.canvas.jwks_url.clone(),
            client: http_client()?,
        },
        Duration::from_secs(config.canvas.jwks_min_refresh_seconds),
        config.canvas.leeway_seconds,
    );
    let canvas = CanvasIngest::new(
        verifier,
        writer,
        metrics.clone(),
        IngestSettings {
            allow_unsigned: config.canvas.allow_unsigned,
        },
    );
    let stopping = CancellationToken::new();
    let mut appended = None;
    let processor_task = config.processor.enabled.then(|| {
        let processor = Processor::new(
            store.clone(),
            Arc::new(SystemClock),
            metrics.clone(),
            processor::Settings::from(&config.processor),
        )
        .wake_on(canvas.writer().committed());
        appended = Some(processor.appended());
        tokio::spawn(Arc::new(processor).run(stopping.child_token()))
    });
    let delivery_task = if config.delivery.enabled {
        let mut delivery = Delivery::new(
            store.clone(),
            Arc::new(SystemClock),
            metrics.clone(),
            delivery::Settings::from(&config.delivery),
        )?;
        if let Some(appended) = appended {
            delivery = delivery.wake_on(appended);
        }
        Some(tokio::spawn(Arc::new(delivery).run(stopping.child_token())))
    } else {
        None
    };
    let nats_task = (!config.nats.url.is_empty()).then(|| {
        let sink = NatsSink::new(store.clone(), metrics.clone(), config.nats.clone());
        tokio::spawn(sink.run(stopping.child_token()))
    });
    // The reconciler reads Canvas back and repairs lost Live Events through the inbox.
    let (reconcile_task, canvas_api) = if config.reconcile.enabled {
        let clock = Arc::new(SystemClock);
        let (task, client) =
            crate::reconcile::spawn(&config, clock.clone(), clock, stopping.child_token()).await?;
        (Some(task), Some(client))
    } else {
        (None, None)
    };
    let state = AppState {
        store: store.clone(),
        metrics,
        canvas: Arc::new(canvas),
        max_body_bytes: config.ingest.max_body_bytes,
        api_token: config.api.token.clone(),
        api_max_wait: Duration::from_secs(config.api.max_wait_seconds),
        default_retry_schedule_ms: config.delivery.retry_schedule_ms.clone(),
        canvas_api,
    };
    let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let local = listener.local_addr()?;
    tracing::info!(%local, store = store.backend(), database = %config.database.url, "coursewire serving");

    let trigger = stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let server =
        axum::serve(listener, app).with_graceful_shutdown(stopping.clone().cancelled_owned());
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        _ = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
        }
    }
    // The router (and with it every writer handle) is gone: the writer drains and stops.
    writer_task.await.context("inbox writer panicked")?;
    // The processor saw the same cancellation; each worker finishes its current event.
    stopping.cancel();
    if let Some(task) = processor_task {
        task.await.context("processor panicked")?;
    }
    if let Some(task) = delivery_task {
        task.await.context("delivery panicked")?;
    }
    if let Some(task) = nats_task {
        task.await.context("NATS sink panicked")?;
    }
    if let Some(task) = reconcile_task {
        task.await.context("reconciler panicked")?;
    }
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
