//! What every scenario needs: a signing key and JWKS endpoint standing in for Canvas, a fresh
//! database, and the service itself on port 0.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coursewire::config::{Config, DatabaseUrl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

pub struct CanvasSigner {
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

impl CanvasSigner {
    pub fn new() -> anyhow::Result<Self> {
        let private = rsa::RsaPrivateKey::new(&mut rand08::thread_rng(), 2048)?;
        let der = private.to_pkcs1_der()?;
        let kid = "bench-key".to_string();
        let jwks = json!({"keys": [{
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        }]});
        Ok(Self {
            kid,
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            jwks,
        })
    }

    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }

    /// Serves the JWKS on 127.0.0.1:0 and returns its URL.
    pub async fn serve_jwks(&self) -> anyhow::Result<String> {
        let jwks = self.jwks.clone();
        let app = Router::new().route(
            "/jwks",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(format!("http://{addr}/jwks"))
    }
}

/// A fresh database: a SQLite file in a temp dir, or a new database on a PostgreSQL server.
pub struct BenchDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    pub async fn new(store: &str, postgres_url: &str) -> anyhow::Result<Self> {
        match store {
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            "postgres" => {
                use sqlx::Connection;
                let name = format!("cw_bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(postgres_url)
                    .await
                    .with_context(|| format!("cannot connect to {postgres_url}"))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let base = postgres_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or_else(|| postgres_url.to_string());
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                })
            }
            other => anyhow::bail!("unknown store {other:?} (sqlite or postgres)"),
        }
    }
}

/// Starts `coursewire serve` in-process on 127.0.0.1:0.
/// Where the benchmarks' receivers listen.
pub const LOOPBACK: &str = "127.0.0.0/8";

/// The root account of every event the benchmarks send, and the one the service takes.
pub const ROOT_ACCOUNT_UUID: &str = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs";

pub async fn start_service(
    db_url: &str,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    start_service_on(
        db_url,
        std::sync::Arc::new(coursewire::clock::SystemClock),
        adjust,
    )
    .await
}

/// [`start_service`] on `clock` (the simulator's, for scenarios that run in simulated time).
pub async fn start_service_on(
    db_url: &str,
    clock: std::sync::Arc<dyn coursewire::clock::Clock>,
    adjust: impl FnOnce(&mut Config),
) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let mut config = Config::load_from(None, &[])?;
    config.database.url = DatabaseUrl::new(db_url);
    config.log.filter = "warn".into();
    config.canvas.account_uuids = vec![ROOT_ACCOUNT_UUID.into()];
    // The benchmarks' subscribers listen on loopback.
    config.delivery.allowed_networks = vec![LOOPBACK.into()];
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(coursewire::app::serve(
        config,
        clock,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = coursewire::app::http_client()?;
    for _ in 0..500 {
        if let Ok(r) = client.get(format!("http://{addr}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok((addr, stop));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("coursewire did not become ready")
}

/// Percentile of sorted samples (nearest rank), as the demo reports them.
pub use coursewire::demo::summary::percentile;

/// The most counted in any sliding window of `span_ms`, from cumulative `(time, count)`
/// samples in time order (measured to within the sampling step).
pub fn busiest(samples: &[(i64, u64)], span_ms: i64) -> u64 {
    samples
        .iter()
        .map(|(t, n)| {
            let before = samples
                .iter()
                .rev()
                .find(|(u, _)| *u <= t - span_ms)
                .map_or(samples[0].1, |(_, m)| *m);
            n - before
        })
        .max()
        .unwrap_or(0)
}

/// The simulator at `scale`, paused at 06:00 of its first day, Panopto's limits counted in
/// simulated time, served over loopback; its base URL. `config` adjusts it first.
pub async fn teaching_day_sim(
    scale: sim::Scale,
    seed: u64,
    config: impl FnOnce(sim::SimConfig) -> sim::SimConfig,
) -> anyhow::Result<(sim::Simulator, String)> {
    let mut c = config(sim::SimConfig::new(scale, seed).paused());
    c.panopto_limits = sim::config::PanoptoLimits {
        clock: sim::config::ThrottleClock::Simulated,
        ..sim::config::PanoptoLimits::default()
    };
    let sim = sim::Simulator::new(c)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    sim.clock().advance(Duration::from_secs(6 * 3600));
    sim.tick();
    Ok((sim, base))
}

/// Points the service's Panopto client at the simulator (its URL and API client).
pub fn use_sim_panopto(cfg: &mut Config, sim: &sim::Simulator, base: &str) {
    let c = sim.config();
    cfg.panopto.url = base.to_owned();
    cfg.panopto.client_id = c.panopto_client_id.clone();
    cfg.panopto.client_secret = coursewire::config::Secret::new(c.panopto_client_secret.clone());
    cfg.panopto.username = c.panopto_username.clone();
    cfg.panopto.password = coursewire::config::Secret::new(c.panopto_password.clone());
}
