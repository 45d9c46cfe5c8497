//! `e2e`: signed Live Events POSTed to `/hooks/canvas` at a fixed rate, each creating a new
//! enrollment; `--subscribers` local receivers subscribed to everything, so every event becomes
//! one change event delivered to each of them. Reports events/s, deliveries/s and the latency
//! from the POST to each subscriber's receipt (p50/p99/max), and checks what subscribers saw:
//! every delivery arrived, no `webhook-id` twice, and per subject the sequences went up.
//!
//! `--find-max` runs the scenario at rising rates, each on a fresh database, and reports the
//! highest rate at which p99 stayed under `--p99-target-ms` with every delivery made.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::ingest::enrollment_created;
use crate::support::{BenchDb, CanvasSigner, LOOPBACK, percentile, start_service};

/// Enrollment ids in the events start here (see `ingest::enrollment_created`).
const FIRST_ENROLLMENT: u64 = 46_825;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Events POSTed per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    #[arg(long, default_value_t = 30)]
    subscribers: usize,
    /// Longest wait, after sending ends, for the last deliveries.
    #[arg(long, default_value_t = 60.0)]
    drain_seconds: f64,
    /// Run at rising rates and report the highest with p99 under `--p99-target-ms`.
    #[arg(long)]
    find_max: bool,
    #[arg(long, default_value_t = 1000.0)]
    p99_target_ms: f64,
    #[arg(
        long,
        env = "COURSEWIRE_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    store: String,
    rate_target: f64,
    subscribers: usize,
    seconds: f64,
    events_posted: usize,
    post_failures: usize,
    events_per_s: f64,
    deliveries_expected: usize,
    deliveries: usize,
    deliveries_per_s: f64,
    /// Deliveries that never arrived within the drain time.
    missing: usize,
    duplicate_webhook_ids: usize,
    out_of_order: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Seconds from the last POST to the last delivery.
    drain_seconds: f64,
}

impl RunReport {
    fn meets(&self, p99_target_ms: f64) -> bool {
        self.missing == 0
            && self.post_failures == 0
            && self.duplicate_webhook_ids == 0
            && self.out_of_order == 0
            && self.p99_ms < p99_target_ms
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    One {
        scenario: &'static str,
        #[serde(flatten)]
        run: RunReport,
        p99_target_ms: f64,
        meets_target: bool,
    },
    FindMax {
        scenario: &'static str,
        store: String,
        subscribers: usize,
        p99_target_ms: f64,
        /// The highest rate tried that met the target (every delivery, p99 under target).
        max_rate_meeting_target: Option<f64>,
        runs: Vec<RunReport>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<Report> {
    if !args.find_max {
        let run = run_at(&args, args.rate).await?;
        return Ok(Report::One {
            scenario: "e2e",
            meets_target: run.meets(args.p99_target_ms),
            p99_target_ms: args.p99_target_ms,
            run,
        });
    }
    let mut runs = Vec::new();
    let mut best = None;
    let mut rate = args.rate;
    loop {
        let run = run_at(&args, rate).await?;
        let met = run.meets(args.p99_target_ms);
        eprintln!(
            "rate {rate}/s: p99 {:.0} ms, missing {}, {}",
            run.p99_ms,
            run.missing,
            if met { "met" } else { "NOT met" }
        );
        runs.push(run);
        if !met {
            break;
        }
        best = Some(rate);
        rate *= 1.5;
    }
    Ok(Report::FindMax {
        scenario: "e2e",
        store: args.store.clone(),
        subscribers: args.subscribers,
        p99_target_ms: args.p99_target_ms,
        max_rate_meeting_target: best,
        runs,
    })
}

/// What the receivers saw, shared by all of them.
struct Seen {
    started: Instant,
    /// POST time of event n, in µs since `started` (0: not sent yet).
    posted_us: Vec<AtomicU64>,
    deliveries: AtomicUsize,
    last_us: AtomicU64,
    inner: Mutex<SeenInner>,
}

#[derive(Default)]
struct SeenInner {
    latencies_ms: Vec<f64>,
    ids: HashSet<(usize, String)>,
    duplicates: usize,
    /// Highest sequence seen per (subscriber, subject).
    sequences: std::collections::HashMap<(usize, String), i64>,
    out_of_order: usize,
}

async fn receive(
    State(seen): State<Arc<Seen>>,
    Path(subscriber): Path<usize>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let now_us = seen.started.elapsed().as_micros() as u64;
    let Ok(event) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let subject = event["subject"].as_str().unwrap_or_default().to_owned();
    let sequence: i64 = event["sequence"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let n = subject
        .rsplit('/')
        .next()
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| id.checked_sub(FIRST_ENROLLMENT));
    let posted = n
        .and_then(|n| seen.posted_us.get(n as usize))
        .map(|p| p.load(Ordering::Acquire))
        .unwrap_or(0);
    seen.deliveries.fetch_add(1, Ordering::Relaxed);
    seen.last_us.fetch_max(now_us, Ordering::Relaxed);
    let mut guard = seen.inner.lock().unwrap_or_else(|p| p.into_inner());
    let inner = &mut *guard;
    if posted > 0 {
        inner
            .latencies_ms
            .push(now_us.saturating_sub(posted) as f64 / 1000.0);
    }
    if !inner.ids.insert((subscriber, id)) {
        inner.duplicates += 1;
    }
    let last = inner.sequences.entry((subscriber, subject)).or_insert(0);
    if sequence <= *last {
        inner.out_of_order += 1;
    }
    *last = (*last).max(sequence);
    StatusCode::NO_CONTENT
}

async fn start_receivers(seen: Arc<Seen>) -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new()
        .route("/subscriber/{n}", axum::routing::post(receive))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn run_at(args: &Args, rate: f64) -> anyhow::Result<RunReport> {
    anyhow::ensure!(
        rate > 0.0 && args.seconds > 0.0,
        "rate and seconds must be positive"
    );
    let events = (rate * args.seconds).round() as usize;
    let signer = CanvasSigner::new()?;
    let jwks_url = signer.serve_jwks().await?;
    let db = BenchDb::new(&args.store, &args.postgres_url).await?;

    let seen = Arc::new(Seen {
        started: Instant::now(),
        posted_us: (0..events).map(|_| AtomicU64::new(0)).collect(),
        deliveries: AtomicUsize::new(0),
        last_us: AtomicU64::new(0),
        inner: Mutex::new(SeenInner::default()),
    });
    let receivers = start_receivers(seen.clone()).await?;
    {
        // Subscriptions first, so that every change event is for every subscriber.
        let store = coursewire::store::open(&db.url).await?;
        store.migrate().await?;
        let mut config = coursewire::config::Config::load_from(None, &[])?;
        config.delivery.allowed_networks = vec![LOOPBACK.into()];
        let limits = coursewire::bus::delivery::admin::Limits {
            default_schedule_ms: vec![1000],
            ..coursewire::bus::delivery::admin::Limits::from_config(&config, false)?
        };
        for i in 0..args.subscribers {
            let request = coursewire::bus::delivery::admin::AddRequest {
                name: format!("bench-{i}"),
                url: format!("http://{receivers}/subscriber/{i}"),
                ..Default::default()
            };
            coursewire::bus::delivery::admin::add(store.as_ref(), request, &limits, 0).await?;
        }
        store.close().await;
    }
    let (addr, stop) = start_service(&db.url, |c| c.canvas.jwks_url = jwks_url).await?;

    eprintln!("e2e: signing {events} events…");
    let bodies: Vec<String> = (0..events)
        .map(|n| {
            let mut claims = enrollment_created(n as u64);
            claims["iat"] = json!(chrono::Utc::now().timestamp());
            signer.sign(&claims)
        })
        .collect::<anyhow::Result<_>>()?;
    let client = coursewire::app::http_client()?;
    let url = format!("http://{addr}/hooks/canvas");
    let failures = Arc::new(AtomicUsize::new(0));

    eprintln!(
        "e2e: {rate} events/s for {} s to {} with {} subscribers…",
        args.seconds, args.store, args.subscribers
    );
    let interval = Duration::from_secs_f64(1.0 / rate);
    let send_start = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for (n, body) in bodies.into_iter().enumerate() {
        let due = send_start + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, seen, failures) =
            (client.clone(), url.clone(), seen.clone(), failures.clone());
        seen.posted_us[n].store(
            (seen.started.elapsed().as_micros() as u64).max(1),
            Ordering::Release,
        );
        posts.spawn(async move {
            let ok = client
                .post(&url)
                .header("content-type", "application/jwt")
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !ok {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while posts.join_next().await.is_some() {}
    let send_seconds = send_start.elapsed().as_secs_f64();
    let sent_at = seen.started.elapsed();

    let expected = events * args.subscribers;
    let deadline = Instant::now() + Duration::from_secs_f64(args.drain_seconds);
    while seen.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());

    let deliveries = seen.deliveries.load(Ordering::Relaxed);
    let last = Duration::from_micros(seen.last_us.load(Ordering::Relaxed));
    let mut inner = seen.inner.lock().unwrap_or_else(|p| p.into_inner());
    let mut latencies = std::mem::take(&mut inner.latencies_ms);
    latencies.sort_by(f64::total_cmp);
    let total_seconds = last.as_secs_f64().max(send_seconds);
    Ok(RunReport {
        store: args.store.clone(),
        rate_target: rate,
        subscribers: args.subscribers,
        seconds: send_seconds,
        events_posted: events,
        post_failures: failures.load(Ordering::Relaxed),
        events_per_s: events as f64 / send_seconds,
        deliveries_expected: expected,
        deliveries,
        deliveries_per_s: deliveries as f64 / total_seconds,
        missing: expected.saturating_sub(deliveries),
        duplicate_webhook_ids: inner.duplicates,
        out_of_order: inner.out_of_order,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        drain_seconds: last.saturating_sub(sent_at).as_secs_f64(),
    })
}
