//! `panopto`: a simulated teaching day (06:00–20:00 local) at a university's scale, the
//! service polling Panopto (the simulator, limits counted in simulated time) every 60 s.
//! Reports the Panopto requests per hour (the busiest sliding hour and the mean, each as a
//! share of the 5,000/h limit; the busiest minute against 100/min), the requests Panopto
//! throttled (must be 0), and the delay from each session state change and caption arrival
//! in Panopto to its change event (p50/p99, simulated seconds; a change is seen by the first
//! poll after it, so the bound is one interval plus the poll's own time), and of that delay
//! the wait for the poll that saw it (what the interval decides).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sim::Scale;

use crate::support::{
    BenchDb, busiest, percentile, start_service_on, teaching_day_sim, use_sim_panopto,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = Scale::Medium)]
    scale: Scale,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Simulated hours from 06:00.
    #[arg(long, default_value_t = 14)]
    hours: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 300.0)]
    speed: f64,
    #[arg(long, default_value_t = 60)]
    interval_seconds: u64,
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
    let (sim, base) = teaching_day_sim(args.scale, args.seed, |c| c).await?;
    let db = BenchDb::new(&args.store, &args.postgres_url).await?;
    let interval = args.interval_seconds;
    let (_addr, stop) = start_service_on(&db.url, std::sync::Arc::new(sim.clock()), |cfg| {
        use_sim_panopto(cfg, &sim, &base);
        cfg.panopto.poll.interval_seconds = interval;
        cfg.panopto.poll.lease_seconds = 10;
    })
    .await?;
    let store = coursewire::store::open(&db.url).await?;
    let start = sim.clock().now_ms();
    let end = start + args.hours as i64 * 3_600_000;
    sim.clock().set_speed(args.speed);
    sim.clock().resume();
    // Requests counted by Panopto, sampled every 5 simulated seconds (a window is measured
    // to within that).
    let mut samples: Vec<(i64, u64)> = vec![(start, sim.counters().panopto.requests)];
    let mut next = start + 5_000;
    while sim.clock().now_ms() < end {
        let now = sim.clock().now_ms();
        if now >= next {
            samples.push((now, sim.counters().panopto.requests));
            next += 5_000;
            if (now - start) % 3_600_000 < 5_000 {
                eprintln!("{} simulated hours", (now - start) / 3_600_000);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.clock().pause();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let counters = sim.counters().panopto;
    samples.push((sim.clock().now_ms(), counters.requests));
    let _ = stop.send(());

    let busiest_hour = busiest(&samples, 3_600_000);
    let busiest_minute = busiest(&samples, 60_000);
    let total = counters.requests - samples[0].1;
    let mean_hour = total as f64 / args.hours as f64;

    // Delay from each change in Panopto to its change event.
    let truth: Vec<(String, Vec<(&str, i64)>)> = sim.with_world_read(|w| {
        w.panopto
            .sessions
            .values()
            .map(|s| {
                let media = s.media_ms();
                let mut changes = Vec::new();
                if let Some(m) = media {
                    changes.push(("Recording", m.max(s.start_ms)));
                    changes.push(("Processing", m.max(s.end_ms)));
                }
                if let Some(c) = s.complete_ms {
                    changes.push(("Complete", c));
                    if let Some(cap) = s.captions_ms {
                        changes.push(("captions", cap.max(c)));
                    }
                }
                (s.id.clone(), changes)
            })
            .collect()
    });
    let mut events: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.change_events_after(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page {
            if e.subject.starts_with("recording/") {
                events
                    .entry(e.subject.clone())
                    .or_default()
                    .push((e.created_at_ms, e.event["data"].clone()));
            }
        }
    }
    // When the poll that first reported each state started (the poller's inbox rows).
    let mut polls: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
    for row in store.inbox_after(0, 10_000_000).await? {
        if row.source != "panopto" {
            continue;
        }
        let Ok(e) = serde_json::from_slice::<coursewire::sources::event::SourceEvent>(&row.body)
        else {
            continue;
        };
        if let (Some(subject), Some(started)) = (row.subject, e.poll_started_at_ms) {
            polls
                .entry(subject)
                .or_default()
                .push((started, Value::Object(e.state)));
        }
    }
    let now = sim.clock().now_ms();
    let bound = (interval as i64 + 60) * 1000;
    let mut waits = Vec::new();
    let mut delays = Vec::new();
    let mut missed = 0;
    for (id, changes) in &truth {
        let seen = events.get(&format!("recording/{id}"));
        for (what, at) in changes {
            if *at < start || *at + bound >= now {
                continue;
            }
            let found = seen.and_then(|es| {
                es.iter().find(|(_, d)| match *what {
                    "captions" => d["captions"] == true,
                    state => d["state"] == state,
                })
            });
            match found {
                Some((t, _)) => delays.push((t - at) as f64 / 1000.0),
                None => missed += 1,
            }
            let polled = polls.get(&format!("recording/{id}")).and_then(|ps| {
                ps.iter().find(|(_, d)| match *what {
                    "captions" => d["captions"] == true,
                    state => d["state"] == state,
                })
            });
            if let Some((started, _)) = polled {
                waits.push((started - at).max(0) as f64 / 1000.0);
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    waits.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "panopto",
        "scale": format!("{:?}", args.scale).to_lowercase(),
        "store": args.store,
        "simulated_hours": args.hours,
        "speed": args.speed,
        "interval_seconds": interval,
        "requests": total,
        "requests_per_hour_mean": mean_hour,
        "busiest_hour": busiest_hour,
        "busiest_hour_share_of_limit": busiest_hour as f64 / 5_000.0,
        "mean_hour_share_of_limit": mean_hour / 5_000.0,
        "busiest_minute": busiest_minute,
        "busiest_minute_share_of_limit": busiest_minute as f64 / 100.0,
        "throttled": counters.throttled,
        "changes_measured": delays.len(),
        "changes_missed": missed,
        "detection_delay_p50_s": percentile(&delays, 50.0),
        "detection_delay_p99_s": percentile(&delays, 99.0),
        "detection_delay_max_s": delays.last().copied().unwrap_or(0.0),
        // The part the interval decides: from the change to the start of the poll that saw it
        // (the rest is the poll's own requests and the processor, in simulated time, so it
        // grows with the speed the day is run at).
        "wait_for_poll_p50_s": percentile(&waits, 50.0),
        "wait_for_poll_p99_s": percentile(&waits, 99.0),
        "wait_for_poll_max_s": waits.last().copied().unwrap_or(0.0),
    }))
}
