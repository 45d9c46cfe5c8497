//! `ingest`: many concurrent clients POST signed Live Events (shaped and sized like the
//! published examples, about 5% duplicates) to `/hooks/canvas`. Reports accepted events/s,
//! latency percentiles, and the inbox row count afterwards, which must equal the number of
//! distinct events sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::support::{BenchDb, CanvasSigner, percentile, start_service};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    store: String,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Requests to send in all (distinct events plus duplicates).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Share of requests that re-deliver an event already sent (re-signed, as Canvas retries).
    #[arg(long, default_value_t = 0.05)]
    duplicate_ratio: f64,
    /// Run the processor in the same process (it competes with ingest for the CPU and, on
    /// SQLite, for the write lock). Off measures an ingest-only node.
    #[arg(long)]
    with_processor: bool,
    #[arg(
        long,
        env = "COURSEWIRE_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    scenario: &'static str,
    store: String,
    with_processor: bool,
    clients: usize,
    requests: usize,
    distinct_events: usize,
    duplicates_sent: usize,
    mean_body_bytes: usize,
    seconds: f64,
    accepted_events_per_s: f64,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    non_2xx: usize,
    inbox_rows: i64,
    inbox_rows_match_distinct: bool,
}

pub async fn run(args: Args) -> anyhow::Result<Report> {
    let signer = CanvasSigner::new()?;
    let jwks_url = signer.serve_jwks().await?;
    let db = BenchDb::new(&args.store, &args.postgres_url).await?;
    let with_processor = args.with_processor;
    let (addr, stop) = start_service(&db.url, |c| {
        c.canvas.jwks_url = jwks_url;
        c.processor.enabled = with_processor;
        if let Ok(rows) = std::env::var("BENCH_BATCH_ROWS") {
            c.processor.batch_rows = rows.parse().unwrap_or(c.processor.batch_rows);
        }
    })
    .await?;

    eprintln!("signing {} events…", args.requests);
    let (bodies, distinct) = signed_bodies(&signer, args.requests, args.duplicate_ratio)?;
    let mean_body_bytes = bodies.iter().map(String::len).sum::<usize>() / bodies.len().max(1);
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let client = coursewire::app::http_client()?;
    let url = format!("http://{addr}/hooks/canvas");

    eprintln!("posting with {} clients to {}…", args.clients, args.store);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let (bodies, next, client, url) =
            (bodies.clone(), next.clone(), client.clone(), url.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let sent = Instant::now();
                let ok = client
                    .post(&url)
                    .header("content-type", "application/jwt")
                    .body(body.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                if !ok {
                    failures += 1;
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut non_2xx = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, f) = done?;
        latencies.extend(l);
        non_2xx += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);

    let store = coursewire::store::open(&db.url).await?;
    let inbox_rows = store.inbox_depth().await?.total();
    store.close().await;
    let _ = stop.send(());

    Ok(Report {
        scenario: "ingest",
        store: args.store,
        with_processor,
        clients: args.clients,
        requests: args.requests,
        distinct_events: distinct,
        duplicates_sent: args.requests - distinct,
        mean_body_bytes,
        seconds,
        accepted_events_per_s: distinct as f64 / seconds,
        requests_per_s: args.requests as f64 / seconds,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        non_2xx,
        inbox_rows,
        inbox_rows_match_distinct: inbox_rows == distinct as i64,
    })
}

/// Signed bodies in send order; every `1/duplicate_ratio`-th re-delivers an earlier event,
/// re-signed with a new `iat` as a Canvas retry would be.
fn signed_bodies(
    signer: &CanvasSigner,
    requests: usize,
    duplicate_ratio: f64,
) -> anyhow::Result<(Vec<String>, usize)> {
    let every = if duplicate_ratio > 0.0 {
        (1.0 / duplicate_ratio).round().max(2.0) as usize
    } else {
        usize::MAX
    };
    let mut bodies = Vec::with_capacity(requests);
    let mut distinct = 0;
    for i in 0..requests {
        let n = if i > 0 && i % every == 0 {
            (i * 7919) % distinct // an earlier event, spread out
        } else {
            distinct += 1;
            distinct - 1
        };
        let mut claims = enrollment_created(n as u64);
        claims["iat"] = json!(chrono::Utc::now().timestamp() + i as i64 % 5);
        bodies.push(signer.sign(&claims)?);
    }
    Ok((bodies, distinct))
}

/// An `enrollment_created` message with the metadata of a user-generated event, like the
/// published example (about 1.5 KB of JSON).
pub fn enrollment_created(n: u64) -> Value {
    let global = |local: u64| format!("{}", 21_070_000_000_000_000u64 + local);
    json!({
        "metadata": {
            "client_ip": "93.184.216.34",
            "context_account_id": global(79),
            "context_id": global(565 + n % 3000),
            "context_sis_source_id": format!("2026.FA.{}", 565 + n % 3000),
            "context_type": "Course",
            "developer_key_id": "170000000056",
            "event_name": "enrollment_created",
            "event_time": format!("2026-09-01T{:02}:{:02}:{:02}.{:03}Z", (n / 3_600_000) % 24, (n / 60_000) % 60, (n / 1000) % 60, n % 1000),
            "hostname": "canvas.example.edu",
            "http_method": "POST",
            "producer": "canvas",
            "referrer": null,
            "request_id": uuid::Uuid::from_u128(n as u128 + 1).to_string(),
            "root_account_id": global(1),
            "root_account_lti_guid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.canvas.example.edu",
            "root_account_uuid": crate::support::ROOT_ACCOUNT_UUID,
            "session_id": "ef686f8ed684abf78cbfa1f6a58112b5",
            "time_zone": "America/New_York",
            "url": format!("https://canvas.example.edu/api/v1/sections/{}/enrollments?enrollment[user_id]={}&amp;enrollment[type]=StudentEnrollment", 4811 + n % 9000, 20064 + n),
            "user_account_id": global(1),
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.103 Safari/537.36",
            "user_id": global(1),
            "user_login": "registrar@example.edu",
            "user_sis_id": "456-T45"
        },
        "body": {
            "course_id": global(565 + n % 3000),
            "course_section_id": global(4811 + n % 9000),
            "created_at": "2026-09-01T10:00:00Z",
            "enrollment_id": global(46825 + n),
            "limit_privileges_to_course_section": false,
            "type": "StudentEnrollment",
            "updated_at": "2026-09-01T10:00:00Z",
            "user_id": global(20064 + n),
            "user_name": format!("Student {n}"),
            "workflow_state": "active"
        }
    })
}
