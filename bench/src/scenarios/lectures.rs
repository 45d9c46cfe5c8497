//! `lectures`: a teaching day (06:00 onwards, local) at a university's scale with the
//! recording workflow on, as `serve` runs it: the SIS and timetable imported, Canvas's
//! catalog crawled once and kept by Live Events, Panopto polled every 60 s, every recording
//! filed, shared with its section, posted in Canvas and audited. Reports, from the
//! simulator's own records, the time from each session's `Complete` in Panopto to its Canvas
//! module item (p50/p99/max, simulated seconds; the rule does not wait for captions), the
//! Panopto requests per recording by priority class (the workflow's writes and the reads they
//! need, beside the poller's), the Canvas requests per recording on the module endpoints, the
//! busiest hour of Panopto requests against 5,000/h, and the requests refused (must be 0).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sim::Scale;

use crate::support::{
    BenchDb, busiest, percentile, start_service_on, teaching_day_sim, use_sim_panopto,
};

const CANVAS_TOKEN: &str = "bench-lectures-canvas-token";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = Scale::Medium)]
    scale: Scale,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Simulated hours from 06:00.
    #[arg(long, default_value_t = 16)]
    hours: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 300.0)]
    speed: f64,
    #[arg(long, default_value = "sqlite")]
    store: String,
    #[arg(
        long,
        env = "COURSEWIRE_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let (sim, base) =
        teaching_day_sim(args.scale, args.seed, |c| c.with_canvas_token(CANVAS_TOKEN)).await?;
    let db = BenchDb::new(&args.store, &args.postgres_url).await?;
    let root_uuid = sim.ground_truth().root_account_uuid;
    let (addr, stop) = start_service_on(&db.url, std::sync::Arc::new(sim.clock()), |cfg| {
        use_sim_panopto(cfg, &sim, &base);
        cfg.panopto.poll.lease_seconds = 10;
        cfg.canvas.jwks_url = format!("{base}/jwks");
        cfg.canvas.account_uuids = vec![root_uuid.clone()];
        cfg.canvas.api.url = base.clone();
        cfg.canvas.api.token = coursewire::config::Secret::new(CANVAS_TOKEN);
        cfg.workflow.lms_provider = "canvas-sim".into();
        cfg.workflow.idle_seconds = 1;
        cfg.reconcile.enabled = true;
        cfg.reconcile.period_seconds = 24 * 3600;
        cfg.reconcile.check_seconds = 1;
    })
    .await?;
    let store = coursewire::store::open(&db.url).await?;
    let dir = tempfile::tempdir()?;
    for file in sim::timetable::FILES {
        let csv = sim
            .timetable_csv(file)
            .ok_or_else(|| anyhow::anyhow!("no timetable file {file}"))?;
        std::fs::write(dir.path().join(file), csv)?;
    }
    let files = coursewire::sources::sis::collect(&[dir.path().to_owned()])?;
    let imported =
        coursewire::sources::sis::import(&store, &files, false, sim.clock().now_ms()).await?;
    anyhow::ensure!(imported.errors.is_empty(), "import: {:?}", imported.errors);
    sim.subscribe(&format!("http://{addr}/hooks/canvas"), true);
    // The university as it stands before the day: the import and Canvas's first crawl
    // processed (a deployment's first hours, not a teaching day's), on the paused clock.
    let warm_up = std::time::Instant::now();
    let mut quiet = 0;
    while quiet < 5 && warm_up.elapsed() < Duration::from_secs(1_800) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pending = store.inbox_depth().await?.pending;
        quiet = if pending == 0 { quiet + 1 } else { 0 };
        if warm_up.elapsed().as_secs().is_multiple_of(30) {
            eprintln!("warm-up: {pending} inbox rows pending");
        }
    }
    let warm_up_s = warm_up.elapsed().as_secs_f64();
    let warm_up_rows = store.inbox_depth().await?.processed;

    let start = sim.clock().now_ms();
    let end = start + args.hours as i64 * 3_600_000;
    sim.clock().set_speed(args.speed);
    sim.clock().resume();
    let mut samples: Vec<(i64, u64)> = vec![(start, sim.counters().panopto.requests)];
    let mut next = start + 5_000;
    while sim.clock().now_ms() < end {
        let now = sim.clock().now_ms();
        if now >= next {
            samples.push((now, sim.counters().panopto.requests));
            next += 5_000;
            if (now - start) % 3_600_000 < 5_000 {
                let commands = store.command_counts().await?;
                eprintln!(
                    "{} simulated hours: {} Panopto requests, inbox {:?}, commands {commands:?}",
                    (now - start) / 3_600_000,
                    sim.counters().panopto.requests,
                    store.inbox_depth().await?,
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.clock().pause();
    // What is still queued runs out, a simulated second at a time.
    for _ in 0..1_200 {
        let pending = store.inbox_depth().await?.pending;
        let open: i64 = store
            .command_counts()
            .await?
            .iter()
            .filter(|(_, status, _)| status == "pending")
            .map(|(_, _, n)| n)
            .sum();
        if pending == 0 && open == 0 && sim.counters().live_events.pending == 0 {
            break;
        }
        sim.clock().advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = coursewire::app::http_client()?
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let _ = stop.send(());
    let counters = sim.counters();

    // Complete in Panopto → the module item linking it, from the simulator's records.
    let (mut latencies, mut unposted) = (Vec::new(), 0);
    sim.with_world_read(|w| {
        let items: BTreeMap<&str, i64> = w
            .uni
            .module_items
            .iter()
            .filter(|i| i.workflow_state == "active")
            .filter_map(|i| {
                let url = i.external_url.as_deref()?;
                let (_, id) = url.rsplit_once("id=")?;
                Some((id, i.created_at))
            })
            .collect();
        for s in w.panopto.sessions.values() {
            let Some(complete) = s.complete_ms else {
                continue;
            };
            if complete > end || s.deleted_ms.is_some() {
                continue;
            }
            match items.get(s.id.as_str()) {
                Some(created) => latencies.push((created - complete) as f64 / 1000.0),
                None => unposted += 1,
            }
        }
    });
    latencies.sort_by(f64::total_cmp);
    let posted = latencies.len().max(1) as f64;
    let by_priority = |class: &str| -> f64 {
        let key = format!("coursewire_panopto_api{{measure=\"admitted_{class}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let canvas_modules: u64 = counters
        .canvas
        .per_endpoint
        .iter()
        .filter(|(endpoint, _)| endpoint.contains("/modules"))
        .map(|(_, e)| e.requests)
        .sum();
    let states = store.workflow_state_counts().await?;
    let inbox = store.inbox_depth().await?;
    let catalog_recordings = store
        .catalog_rows(coursewire::catalog::EntityKind::Recording)
        .await?
        .len();
    Ok(json!({
        "scenario": "lectures",
        "scale": format!("{:?}", args.scale).to_lowercase(),
        "store": args.store,
        "simulated_hours": args.hours,
        "speed": args.speed,
        "recordings_completed": latencies.len() + unposted,
        "recordings_posted": latencies.len(),
        "recordings_not_posted": unposted,
        "warm_up_rows": warm_up_rows,
        "warm_up_wall_s": warm_up_s,
        "inbox_pending": inbox.pending,
        "inbox_quarantined": inbox.quarantined,
        "catalog_recordings": catalog_recordings,
        "workflow_states": states.into_iter().collect::<BTreeMap<_, _>>(),
        "complete_to_item_p50_s": percentile(&latencies, 50.0),
        "complete_to_item_p99_s": percentile(&latencies, 99.0),
        "complete_to_item_max_s": latencies.last().copied().unwrap_or(0.0),
        "panopto_requests": counters.panopto.requests,
        "panopto_write_class_requests": by_priority("write"),
        "panopto_poll_class_requests": by_priority("poll"),
        "panopto_write_class_per_recording": by_priority("write") / posted,
        "panopto_busiest_hour": busiest(&samples, 3_600_000),
        "panopto_busiest_hour_share_of_limit": busiest(&samples, 3_600_000) as f64 / 5_000.0,
        "canvas_requests": counters.canvas.requests,
        "canvas_module_requests": canvas_modules,
        "canvas_module_requests_per_recording": canvas_modules as f64 / posted,
        "panopto_throttled": counters.panopto.throttled,
        "canvas_throttled": counters.canvas.throttled,
    }))
}
