//! The demo's stages, in order: set up (simulator, store, subscribers, service, reconciler),
//! run the simulated days, settle, reconcile and verify, measure the naive yardstick, report.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sim::{Faults, SimConfig, Simulator};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::faults::{self, Fault};
use super::receivers::Receivers;
use super::summary::*;
use super::{DemoArgs, naive};
use crate::bus::delivery::admin::{self, AddRequest};
use crate::bus::delivery::signature::generate_secret;
use crate::canvas_api;
use crate::clock::Clock;
use crate::config::{Config, DatabaseUrl, OutageWindow, Secret};
use crate::reconcile::{self, Mode, Reconciler};
use crate::store::Store;
use crate::store::{self, InboxStatus};
use crate::tasks::Tasks;

/// The naive crawl's own token, so its requests are counted apart from ours.
const NAIVE_TOKEN: &str = "demo-naive-nightly-crawl";
const NAIVE_SYSTEMS: u32 = 30;
const MINUTE_MS: u64 = 60_000;
/// Subscribers' retries, in simulated time (the service runs on the simulator's clock): a
/// subscriber an hour down is retried a few times and caught up within about two hours.
const RETRY_SCHEDULE_MS: [u64; 12] = [
    4 * MINUTE_MS,
    10 * MINUTE_MS,
    20 * MINUTE_MS,
    40 * MINUTE_MS,
    80 * MINUTE_MS,
    120 * MINUTE_MS,
    200 * MINUTE_MS,
    200 * MINUTE_MS,
    200 * MINUTE_MS,
    200 * MINUTE_MS,
    400 * MINUTE_MS,
    400 * MINUTE_MS,
];
/// The reconciler reads every course once per period, as in production (simulated time).
const RECONCILE_PERIOD_SECONDS: u64 = 4 * 3600;
/// How often, in simulated time, the reconciler looks for silence or an ended outage.
const RECONCILE_CHECK_SECONDS: u64 = 10 * 60;
const DAY_MS: i64 = 86_400_000;

/// The data directory: the caller's, or a new temporary one that is kept afterwards, so the
/// database and the log can be looked at.
fn data_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ok(dir.to_owned())
        }
        None => Ok(tempfile::Builder::new()
            .prefix("coursewire-demo-")
            .tempdir()
            .context("cannot create a temporary directory")?
            .keep()),
    }
}

/// Log lines go to a file in the data directory: the terminal shows the progress only.
fn log_to(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("COURSEWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

async fn bind() -> anyhow::Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    Ok((listener, base))
}

fn stop_signal() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// Everything that runs during the demo.
struct Stage {
    args: DemoArgs,
    sim: Simulator,
    sim_base: String,
    sim_stop: oneshot::Sender<()>,
    service_base: String,
    api_token: String,
    service_stop: oneshot::Sender<()>,
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    config: Config,
    store: Arc<Store>,
    receivers: Receivers,
    outbox: Outbox,
    /// The simulator's clock, which the service and the demo's reconciler run on.
    clock: Arc<dyn Clock>,
    faults_injected: Vec<String>,
    subscriber_down: bool,
}

/// The change events seen so far, read from the outbox in order.
#[derive(Default)]
struct Outbox {
    cursor: i64,
    inbox_of: HashMap<String, i64>,
}

impl Outbox {
    async fn scan(&mut self, store: &Store) -> anyhow::Result<u64> {
        loop {
            let rows = store.change_events_after(self.cursor, 5_000).await?;
            let full = rows.len() == 5_000;
            for row in rows {
                self.cursor = row.position;
                self.inbox_of.insert(row.id, row.inbox_id);
            }
            if !full {
                return Ok(self.inbox_of.len() as u64);
            }
        }
    }
}

async fn wait_healthy(base: &str) -> anyhow::Result<()> {
    let client = crate::app::http_client()?;
    for _ in 0..500 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the service at {base} did not come up")
}

impl Stage {
    async fn start(args: DemoArgs, dir: &Path) -> anyhow::Result<Stage> {
        let mut sim_config = SimConfig::new(args.scale.sim(), args.seed)
            .paused()
            .with_canvas_token(NAIVE_TOKEN);
        sim_config.speed = args.speed;
        let oauth_client = (
            sim_config.oauth_client_id.clone(),
            sim_config.oauth_client_secret.clone(),
        );
        let sim = Simulator::new(sim_config).context("cannot build the simulated university")?;
        let (listener, sim_base) = bind().await?;
        let (sim_stop, stopped) = stop_signal();
        tokio::spawn(sim.clone().serve(listener, stopped));

        let mut config = Config::load_from(None, &[])?;
        let db = dir.join("coursewire.db");
        config.database.url = DatabaseUrl::new(format!("sqlite://{}", db.display()));
        config.canvas.jwks_url = format!("{sim_base}/jwks");
        config.canvas.account_uuids = vec![sim.ground_truth().root_account_uuid];
        config.university.time_zone = sim::university::TIME_ZONE.to_owned();
        // The demo's subscribers listen on loopback.
        config.delivery.allowed_networks = vec!["127.0.0.0/8".into()];
        config.server.shutdown_grace_seconds = 2;
        let api_token = format!("demo-{}", uuid::Uuid::new_v4().simple());
        config.api.token = Secret::new(api_token.clone());
        let (_, refresh) = sim.issue_canvas_token(None);
        let api = &mut config.canvas.api;
        api.url = sim_base.clone();
        api.account_id = sim.ground_truth().root_account_id;
        api.oauth_client_id = oauth_client.0;
        api.oauth_client_secret = Secret::new(oauth_client.1);
        api.oauth_refresh_token = Secret::new(refresh);
        let r = &mut config.reconcile;
        // The demo runs the background reconciler itself, to load the catalog first and to
        // read its pass reports; on the same clock as the service.
        r.enabled = false;
        r.period_seconds = RECONCILE_PERIOD_SECONDS;
        r.check_seconds = RECONCILE_CHECK_SECONDS;
        if args.faults {
            let (from, to) = faults::outage_window(sim.clock().now());
            r.outages = vec![OutageWindow { from, to }];
        }

        let store = store::open(config.database.url.expose()).await?;
        store.migrate().await?;
        let secrets: Vec<String> = (0..args.subscribers).map(|_| generate_secret()).collect();
        let receivers = Receivers::start(&secrets, sim.clock()).await?;
        for (n, secret) in secrets.into_iter().enumerate() {
            let request = AddRequest {
                name: format!("demo-subscriber-{n}"),
                url: receivers.url(n),
                secret: Some(secret),
                types: Vec::new(),
                retry_schedule_ms: Some(RETRY_SCHEDULE_MS.to_vec()),
                on_exhausted: Some("block".into()),
                start: None,
                created_by: "demo".into(),
            };
            admin::add(
                store.as_ref(),
                request,
                &admin::Limits::from_config(&config, false)?,
                Clock::now_ms(&sim.clock()),
            )
            .await?;
        }

        let (listener, service_base) = bind().await?;
        let (service_stop, stopped) = stop_signal();
        // The service runs on the simulator's clock, as everything it talks to does: its
        // timers (retries, the reconciler's period) pass in simulated time; its leases are
        // real durations at any speed (`Clock::span_ms`).
        let clock: Arc<dyn Clock> = Arc::new(sim.clock());
        let service = tokio::spawn(crate::app::serve(
            config.clone(),
            clock.clone(),
            listener,
            stopped,
        ));
        wait_healthy(&service_base).await?;
        sim.subscribe(&format!("{service_base}/hooks/canvas"), true);
        Ok(Stage {
            args,
            sim,
            sim_base,
            sim_stop,
            service_base,
            api_token,
            service_stop,
            service,
            config,
            store,
            receivers,
            outbox: Outbox::default(),
            clock,
            faults_injected: Vec::new(),
            subscriber_down: false,
        })
    }

    fn apply(&mut self, fault: Fault, at: DateTime<Utc>) {
        let mut f = self.sim.faults();
        let last = self.args.subscribers - 1;
        let mut detail = String::new();
        match fault {
            Fault::LossyLiveEvents => {
                f.live_events.drop_probability = faults::LOSS;
                f.live_events.duplicate_probability = faults::DUPLICATION;
                f.live_events.reorder_probability = faults::REORDERING;
                f.live_events.reorder_max_delay_seconds = faults::REORDER_MAX_DELAY_SECONDS;
            }
            Fault::SubscriberDown | Fault::SubscriberUp => {
                self.subscriber_down = fault == Fault::SubscriberDown;
                self.receivers.set_down(last, self.subscriber_down);
            }
            Fault::RotateSigningKeys => self.sim.rotate_keys(),
            Fault::CanvasOutageStarts | Fault::CanvasOutageEnds => {
                let down = fault == Fault::CanvasOutageStarts;
                f.canvas.api_outage = down;
                f.live_events.outage = down;
            }
            Fault::RevokeAccessTokens => {
                detail = format!(" ({} revoked)", self.sim.revoke_access_tokens());
            }
            Fault::Clear => {
                f = Faults::default();
                self.subscriber_down = false;
                for n in 0..self.args.subscribers {
                    self.receivers.set_down(n, false);
                }
            }
        }
        if let Err(e) = self.sim.set_faults(f) {
            tracing::warn!(error = %e, fault = fault.describe(), "the simulator refused a fault");
        }
        if fault != Fault::Clear {
            self.faults_injected
                .push(format!("{} {}{detail}", local(at), fault.describe()));
        }
    }

    /// The downed subscriber stays down past its hour until it has refused a delivery (at most
    /// three more simulated hours), so the fault is felt even when nothing was due for it.
    fn keep_subscriber_down(&self, up_at_ms: i64, now_ms: i64) -> bool {
        self.subscriber_down
            && self.receivers.tally().refused_while_down == 0
            && now_ms < up_at_ms + 3 * 3_600_000
    }

    /// Events in, change events out, deliveries behind.
    async fn status(&mut self, governor: &canvas::client::QuotaGovernor) -> anyhow::Result<String> {
        let inbox = self.store.inbox_depth().await?;
        let produced = self.outbox.scan(self.store.as_ref()).await?;
        let expected = produced * self.args.subscribers as u64;
        let behind = expected.saturating_sub(self.receivers.acknowledged());
        let quota = governor
            .snapshot()
            .last_remaining
            .map_or_else(|| "—".to_owned(), |r| format!("{r:.0}"));
        let throttled = self.sim.counters().canvas.throttled;
        Ok(format!(
            "{} · events in {} · change events {} · quota headroom {} · throttled {} · deliveries behind {}",
            local(self.sim.clock().now()),
            inbox.total(),
            produced,
            quota,
            throttled,
            behind
        ))
    }

    /// Until the inbox is processed and every change event reached every subscriber. With
    /// `let_time_pass`, the paused clock is stepped a simulated minute at a time while only
    /// deliveries are behind: their retries are timers on the simulated clock.
    async fn caught_up(&mut self, limit: Duration, let_time_pass: bool) -> anyhow::Result<bool> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let pending = self.store.inbox_depth().await?.get(InboxStatus::Pending);
            let produced = self.outbox.scan(self.store.as_ref()).await?;
            let expected = produced * self.args.subscribers as u64;
            if pending == 0 && self.receivers.acknowledged() >= expected {
                // One more look: the processor may have just appended.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let again = self.outbox.scan(self.store.as_ref()).await?;
                if again == produced && self.store.inbox_depth().await?.pending == 0 {
                    return Ok(true);
                }
                continue;
            }
            if let_time_pass && pending == 0 {
                self.sim.clock().advance(Duration::from_secs(60));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    }

    /// Canvas delivers what it still holds (retries and held-back events run on its clock).
    async fn drain_canvas(&self) {
        for _ in 0..600 {
            if self.sim.counters().live_events.pending == 0 {
                return;
            }
            self.sim.clock().advance(Duration::from_secs(60));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tracing::warn!("Canvas still holds undelivered Live Events");
    }
}

/// `Mon 25 Aug 09:12` at the university.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&sim::university::ZONE)
        .format("%a %d %b %H:%M")
        .to_string()
}

fn progress_bar(total_minutes: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_minutes);
    let style = ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Runs the demo and hands the summary to `report` (which prints it) before any
/// `--keep-running`; the caller picks the exit code from `ok`.
pub async fn run(
    args: DemoArgs,
    report: impl FnOnce(&Summary) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    args.validate()?;
    let dir = data_dir(args.data_dir.as_deref())?;
    let log_file = dir.join("coursewire-demo.log");
    log_to(&log_file)?;
    let wall_start = Instant::now();
    eprintln!(
        "coursewire demo: {} university, {} simulated day(s) at {}×{}; data in {}",
        args.scale.name(),
        args.days,
        args.speed,
        if args.faults { ", with faults" } else { "" },
        dir.display()
    );
    let mut stage = Stage::start(args.clone(), &dir).await?;

    // ---- the catalog starts as Canvas is: one reconcile pass loads it
    eprintln!("  loading the catalog from Canvas (one reconcile pass)…");
    // One Canvas client (one quota governor) for the load, the background reconciler and the
    // final pass, as `serve` has one.
    let cancel = CancellationToken::new();
    let mut background = Tasks::new(cancel.clone());
    let canvas = canvas_api::start(
        &stage.config.canvas.api,
        stage.store.clone(),
        stage.clock.clone(),
        stage.clock.clone(),
        &mut background,
        &cancel,
    )?;
    let reconciler = Reconciler::new(
        &stage.config,
        stage.store.clone(),
        canvas.clone(),
        stage.clock.clone(),
    );
    let loaded = Instant::now();
    let load = reconciler.pass(None, Mode::Repair).await;
    anyhow::ensure!(
        load.errors.is_empty(),
        "the first read of Canvas failed: {}",
        load.errors.join("; ")
    );
    anyhow::ensure!(
        stage.caught_up(Duration::from_secs(300), false).await?,
        "the catalog load did not reach the subscribers in 5 minutes"
    );
    let bootstrap = Bootstrap {
        repairs: load.events_written as u64,
        change_events: stage.outbox.scan(stage.store.as_ref()).await?,
        requests: load.requests,
        seconds: loaded.elapsed().as_secs_f64(),
    };
    reconcile::spawn(
        &stage.config,
        stage.store.clone(),
        canvas.clone(),
        stage.clock.clone(),
        &mut background,
        &cancel,
    )?;

    // ---- the simulated days
    let clock = stage.sim.clock();
    let start = clock.now();
    let start_ms = start.timestamp_millis();
    let end_ms = start_ms + i64::from(args.days) * DAY_MS;
    let mut plan = if args.faults {
        faults::plan(start)
    } else {
        Vec::new()
    }
    .into_iter()
    .peekable();
    let bar = progress_bar(((end_ms - start_ms) / 60_000) as u64);
    let quiet = bar.is_hidden();
    let mut last_line = Instant::now();
    clock.resume();
    let run_wall = Instant::now();
    loop {
        let now = clock.now_ms();
        while let Some((at, fault)) = plan.next_if(|(at, _)| {
            at.timestamp_millis() <= now && !stage.keep_subscriber_down(at.timestamp_millis(), now)
        }) {
            // A held fault (the subscriber coming back) is labelled with when it happened.
            let happened = at.max(clock.now());
            stage.apply(fault, happened);
            if let Some(line) = stage.faults_injected.last() {
                bar.println(format!("  fault: {line}"));
            }
        }
        let line = stage.status(canvas.governor()).await?;
        bar.set_position(((now.min(end_ms) - start_ms) / 60_000) as u64);
        bar.set_message(line.clone());
        if quiet && last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!("  {line}");
            last_line = Instant::now();
        }
        if now >= end_ms {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    clock.pause();
    let run_end_ms = clock.now_ms();
    bar.finish_and_clear();

    // ---- settle: faults off, Canvas delivers what it held, coursewire catches up
    eprintln!("  settling: Canvas delivers what it still holds; coursewire catches up…");
    stage.apply(Fault::Clear, clock.now());
    stage.drain_canvas().await;
    let settle_limit = Duration::from_secs(180);
    stage.caught_up(settle_limit, true).await?;
    cancel.cancel();
    background.join(Duration::from_secs(30)).await?;

    // ---- the final reconcile, then verify
    eprintln!("  final reconcile and verify…");
    let repair = reconciler.pass(None, Mode::Repair).await;
    stage.caught_up(settle_limit, true).await?;
    let verify = reconciler.pass(None, Mode::Report).await;

    // ---- the yardstick
    eprintln!("  measuring one naive nightly crawl…");
    let naive_client = naive::client(&stage.sim_base, NAIVE_TOKEN, 8)?;
    naive::crawl(&naive_client, stage.config.canvas.api.account_id, 8)
        .await
        .context("the naive crawl failed")?;

    let summary = summarize(
        &mut stage,
        &Measured {
            start,
            run_end_ms,
            run_wall,
            wall_start,
            bootstrap,
            repair,
            verify,
        },
        &dir,
        &log_file,
    )
    .await?;
    report(&summary)?;

    if args.keep_running {
        keep_running(&stage).await;
    }
    let _ = stage.service_stop.send(());
    let _ = stage.service.await;
    let _ = stage.sim_stop.send(());
    stage.store.close().await;
    Ok(summary)
}

async fn keep_running(stage: &Stage) {
    let clock = stage.sim.clock();
    clock.resume();
    eprintln!(
        "\nstill running (ctrl-c to stop); the simulated clock goes on at {}×:",
        clock.speed()
    );
    eprintln!(
        "  service      {}  (/metrics, /readyz, /api/v1/events)",
        stage.service_base
    );
    eprintln!("  API token    {}", stage.api_token);
    eprintln!(
        "  simulator    {}  (/_sim/counters, /_sim/ground_truth, /api/v1, /api/graphql)",
        stage.sim_base
    );
    eprintln!(
        "  subscriber   {}  (and the others, to {})",
        stage.receivers.url(0),
        stage.args.subscribers - 1
    );
    eprintln!("  database     {}", stage.config.database.url);
    crate::app::shutdown_signal().await;
}

struct Bootstrap {
    repairs: u64,
    change_events: u64,
    requests: u64,
    seconds: f64,
}

struct Measured {
    bootstrap: Bootstrap,
    start: DateTime<Utc>,
    run_end_ms: i64,
    run_wall: Instant,
    wall_start: Instant,
    repair: reconcile::PassReport,
    verify: reconcile::PassReport,
}

async fn summarize(
    stage: &mut Stage,
    m: &Measured,
    dir: &Path,
    log_file: &Path,
) -> anyhow::Result<Summary> {
    let args = &stage.args;
    let counters = stage.sim.counters();
    let produced = stage.outbox.scan(stage.store.as_ref()).await?;
    let sources = inbox_sources(stage.store.as_ref()).await?;
    let from_live: HashSet<&str> = stage
        .outbox
        .inbox_of
        .iter()
        .filter(|(_, inbox)| sources.get(inbox).is_some_and(|s| s == "canvas"))
        .map(|(id, _)| id.as_str())
        .collect();
    let tally = stage.receivers.tally();
    let subscribers = args.subscribers as u64;
    let change = ChangeEventFigures {
        produced,
        from_live_events: from_live.len() as u64,
        from_reconcile: produced - from_live.len() as u64,
        subscribers: args.subscribers,
        deliveries_expected: produced * subscribers,
        delivered: tally.acknowledged,
        missing: (produced * subscribers).saturating_sub(tally.acknowledged),
        duplicates: tally.duplicates,
        out_of_order: tally.out_of_order,
        bad_signatures: tally.bad_signatures,
        refused_while_down: tally.refused_while_down,
    };

    let naive = counters.canvas_token(NAIVE_TOKEN);
    let nights = args.days;
    let multiple = f64::from(NAIVE_SYSTEMS * nights);
    let requests = counters.canvas.requests - naive.requests;
    let api = CanvasApiFigures {
        requests,
        cost_units: counters.canvas.cost_units - naive.cost_units,
        throttled: counters.canvas.throttled,
        unauthorized: counters.canvas.unauthorized - naive.unauthorized,
        naive: NaiveFigures {
            systems: NAIVE_SYSTEMS,
            nights,
            requests: (naive.requests as f64 * multiple) as u64,
            cost_units: naive.cost_units * multiple,
            one_crawl_requests: naive.requests,
            one_crawl_cost_units: naive.cost_units,
        },
        requests_saved_ratio: naive.requests as f64 * multiple / requests.max(1) as f64,
    };

    let mut simulated = Vec::new();
    let mut wall = Vec::new();
    let speed = args.speed;
    for r in stage.receivers.receipts() {
        if !from_live.contains(r.id.as_str()) {
            continue;
        }
        simulated.push((r.received_sim_ms - r.change_ms).max(0) as f64 / 1000.0);
        // The clock ran steadily from `start` to `run_end_ms`: the change happened in Canvas
        // when the clock passed its time.
        if r.change_ms <= m.run_end_ms {
            let after_start = (r.change_ms - m.start.timestamp_millis()).max(0) as f64 / speed;
            let changed_at = m.run_wall + Duration::from_secs_f64(after_start / 1000.0);
            wall.push(
                r.received_wall
                    .saturating_duration_since(changed_at)
                    .as_secs_f64()
                    * 1000.0,
            );
        }
    }
    simulated.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    let propagation = Propagation {
        deliveries_measured: simulated.len() as u64,
        p50_simulated_seconds: percentile(&simulated, 50.0),
        p99_simulated_seconds: percentile(&simulated, 99.0),
        p50_wall_ms: percentile(&wall, 50.0),
        p99_wall_ms: percentile(&wall, 99.0),
    };

    let reconcile = ReconcileFigures {
        final_repairs: m.repair.events_written as u64,
        courses_verified: m.verify.courses_read as u64,
        divergence: m.verify.divergence_count() as u64,
        errors: m.verify.errors.clone(),
    };
    let depth = stage.store.inbox_depth().await?;
    let le = &counters.live_events;
    let live_events = LiveEventFigures {
        emitted: le.emitted,
        delivered: le.delivered,
        dropped: le.dropped_by_fault + le.dropped_after_retries + le.dropped_inactive,
        duplicated: le.duplicated,
        reordered: le.reordered,
        received_distinct: sources.values().filter(|s| *s == "canvas").count() as u64,
        repairs_received: sources.values().filter(|s| *s == reconcile::SOURCE).count() as u64,
        quarantined: depth.quarantined as u64,
    };
    let checks = Summary::checks_for(&change, &api, &reconcile);
    let b = &m.bootstrap;
    let bootstrap = BootstrapFigures {
        repairs: b.repairs,
        change_events: b.change_events,
        requests: b.requests,
        seconds: b.seconds,
    };
    let ok = checks.iter().all(|c| c.ok);
    Ok(Summary {
        run: RunFigures {
            scale: args.scale.name().to_owned(),
            seed: args.seed,
            days: args.days,
            speed: args.speed,
            faults: args.faults,
            simulated_from: local(m.start),
            simulated_to: local(
                chrono::DateTime::from_timestamp_millis(m.run_end_ms).unwrap_or(m.start),
            ),
            wall_seconds: m.wall_start.elapsed().as_secs_f64(),
            data_dir: dir.display().to_string(),
            log_file: log_file.display().to_string(),
            faults_injected: stage.faults_injected.clone(),
        },
        bootstrap,
        live_events,
        change_events: change,
        canvas_api: api,
        propagation,
        reconcile,
        checks,
        ok,
    })
}

/// Inbox row id → source, for every row.
async fn inbox_sources(store: &Store) -> anyhow::Result<HashMap<i64, String>> {
    let mut sources = HashMap::new();
    let mut after = 0;
    loop {
        let rows = store.inbox_after(after, 2_000).await?;
        let Some(last) = rows.last() else {
            return Ok(sources);
        };
        after = last.id;
        sources.extend(rows.into_iter().map(|r| (r.id, r.source)));
    }
}
