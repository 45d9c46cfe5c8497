//! `quota`: a sustained read workload (enrollment pages of 100 across the courses, as Bulk,
//! mixed with single-course reads, as Interactive) through `CanvasClient` and its
//! `QuotaGovernor` against the simulator's leaky bucket for `--seconds`. Reports the achieved
//! requests/s against the two ceilings the bucket sets (canvas.md B3):
//!
//! * **drain**: outflow ÷ mean cost actually charged (`X-Request-Cost`), the rate the bucket
//!   sustains forever;
//! * **concurrency**: every running request holds the 50-unit up-front charge, so at most
//!   ⌈600 ÷ 50⌉ = 12 can run on an empty bucket; ÷ the mean time a request is in flight
//!   (Little's law on the governor's sampled in-flight count).
//!
//! The smaller one binds. An empty bucket also lends a one-off burst (its ~550 units of
//! headroom); a run of seconds would count that loan as throughput, so the report subtracts
//! the units the bucket still holds at the end (`bucket_credit_units`) before computing the
//! utilization. Throttles are counted by the simulator, not the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use canvas::client::{Call, CanvasClient, ClientConfig, Priority, TokenSource};
use serde_json::{Value, json};
use sim::{Scale, SimConfig, Simulator};

const TOKEN: &str = "bench-quota";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Length of the measured run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// University size the pages are read from.
    #[arg(long, value_enum, default_value_t = Scale::Medium)]
    scale: Scale,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Concurrency the caller asks for (the governor decides what runs).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Cost units per object returned. 0.002 makes a page of 100 enrollments cost about
    /// 0.21 units (0.21 s of Canvas CPU + DB time), a realistic figure for that endpoint.
    #[arg(long, default_value_t = 0.002)]
    per_item_cost: f64,
    /// Real seconds a request takes per cost unit (1.0: the cost is the server's time, as
    /// in Canvas).
    #[arg(long, default_value_t = 1.0)]
    latency_scale: f64,
    /// Share of requests that are Interactive single-course reads (the rest are Bulk pages).
    #[arg(long, default_value_t = 0.2)]
    interactive_share: f64,
}

/// The bucket's ceilings for the measured run.
#[derive(Debug)]
struct Ceilings {
    drain_rps: f64,
    concurrency_rps: f64,
    max_in_flight_at_canvas: f64,
}

impl Ceilings {
    fn binding(&self) -> (&'static str, f64) {
        if self.drain_rps <= self.concurrency_rps {
            ("drain", self.drain_rps)
        } else {
            ("concurrency", self.concurrency_rps)
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(args.seconds > 0, "--seconds must be positive");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.interactive_share),
        "--interactive-share must be within 0…1"
    );
    anyhow::ensure!(
        args.per_item_cost >= 0.0 && args.latency_scale >= 0.0,
        "costs and latency scale must not be negative"
    );
    let mut config = SimConfig::new(args.scale, args.seed)
        .paused()
        .with_canvas_token(TOKEN);
    config.throttle.cost.per_item = args.per_item_cost;
    config.throttle.cost.latency_scale = args.latency_scale;
    let throttle = config.throttle.clone();
    eprintln!("building the {:?} university…", args.scale);
    let sim = Simulator::new(config).context("simulator")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = sim.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let courses: Vec<u64> = sim
        .ground_truth()
        .courses
        .iter()
        .filter(|c| c.workflow_state != "deleted")
        .map(|c| c.id)
        .collect();
    anyhow::ensure!(!courses.is_empty(), "the university has no course");
    let mut cfg = ClientConfig::new(&base).with_concurrency(args.concurrency);
    cfg.governor.high_water_mark = throttle.high_water_mark;
    cfg.governor.up_front_cost = throttle.up_front_cost;
    cfg.governor.outflow_per_second = throttle.outflow_per_second;
    let client = CanvasClient::new(cfg, TokenSource::fixed(TOKEN))?;

    eprintln!(
        "reading for {} s at requested concurrency {}…",
        args.seconds, args.concurrency
    );
    let before = sim.counters().canvas_token(TOKEN);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let interactive_every = if args.interactive_share > 0.0 {
        (1.0 / args.interactive_share).round().max(1.0) as u64
    } else {
        u64::MAX
    };
    let courses = Arc::new(courses);
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (client, stop, next, failures, courses) = (
                client.clone(),
                stop.clone(),
                next.clone(),
                failures.clone(),
                courses.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let course = courses[(n as usize) % courses.len()];
                    let call = if n % interactive_every == 0 {
                        Call::get(format!("/api/v1/courses/{course}"), Priority::Interactive)
                    } else {
                        Call::get(
                            format!("/api/v1/courses/{course}/enrollments"),
                            Priority::Bulk,
                        )
                        .query("per_page", "100")
                    };
                    if let Err(e) = client.execute(&call).await {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("request failed: {e}");
                    }
                }
            })
        })
        .collect();

    // Little's law needs the mean number in flight: sample the governor.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let (mut samples, mut in_flight_sum) = (0u64, 0u64);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        in_flight_sum += client.governor().snapshot().in_flight as u64;
        samples += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = sim.counters().canvas_token(TOKEN);

    // What the bucket still holds (beyond a probe's own charge) is a loan from the empty
    // start, not sustained throughput.
    let probe = client
        .execute(&Call::get(
            format!("/api/v1/courses/{}", courses[0]),
            Priority::Interactive,
        ))
        .await?;
    let remaining: f64 = probe
        .headers
        .get("x-rate-limit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .context("the probe has no X-Rate-Limit-Remaining")?;
    let bucket_credit_units = (throttle.high_water_mark - remaining).max(0.0);

    let requests = (after.requests - before.requests) as f64;
    let cost_units = after.cost_units - before.cost_units;
    anyhow::ensure!(requests > 0.0, "no request completed");
    let mean_cost = cost_units / requests;
    let rps = requests / elapsed;
    let mean_in_flight = in_flight_sum as f64 / samples.max(1) as f64;
    let mean_latency = mean_in_flight / rps;
    let ceilings = Ceilings {
        drain_rps: throttle.outflow_per_second / mean_cost,
        max_in_flight_at_canvas: (throttle.high_water_mark / throttle.up_front_cost).ceil(),
        concurrency_rps: (throttle.high_water_mark / throttle.up_front_cost).ceil() / mean_latency,
    };
    let (binds, theoretical) = ceilings.binding();
    let sustained_rps = rps - bucket_credit_units / mean_cost / elapsed;
    let snapshot = client.governor().snapshot();
    Ok(json!({
        "scenario": "quota",
        "seconds": elapsed,
        "scale": args.scale,
        "requested_concurrency": args.concurrency,
        "per_item_cost": args.per_item_cost,
        "latency_scale": args.latency_scale,
        "interactive_share": args.interactive_share,
        "requests": requests,
        "requests_per_second": rps,
        "sustained_requests_per_second": sustained_rps,
        "bucket_credit_units": bucket_credit_units,
        "theoretical_max_requests_per_second": theoretical,
        "theoretical_drain_bound_rps": ceilings.drain_rps,
        "theoretical_concurrency_bound_rps": ceilings.concurrency_rps,
        "max_in_flight_at_canvas": ceilings.max_in_flight_at_canvas,
        "binding_constraint": binds,
        "utilization": sustained_rps / theoretical,
        "throttled": after.throttled - before.throttled,
        "client_throttled": client.counts().throttled,
        "failures": failures.load(Ordering::Relaxed),
        "mean_cost": mean_cost,
        "mean_latency_seconds": mean_latency,
        "mean_in_flight": mean_in_flight,
        "peak_in_flight": snapshot.max_in_flight_seen,
        "governor_throttle_signals": snapshot.throttle_signals,
    }))
}
