//! `api-calls`: what it costs Canvas to bring the catalog of one university up to date once,
//! counted by the simulator per token (requests and cost units):
//!
//! * **graphql**: course ids by GraphQL, then one nested read per course (sections,
//!   enrollments, assignments, modules with items; extra requests only for connections over
//!   100 rows);
//! * **rest**: the same catalog by REST alone at `per_page=100` (courses, then per course
//!   sections, enrollments, assignments, modules with `include[]=items`);
//! * **naive**: a typical downstream system's nightly crawl at Canvas's default page size of
//!   10 (courses → sections → enrollments → assignments), the same yardstick `coursewire
//!   demo` uses (`coursewire::demo::naive`). One such crawl is measured and multiplied by
//!   `--downstream-systems` (30): they would each do their own.
//!
//! Throttling is off and requests take no simulated time: this scenario counts work, it does
//! not time it (`quota` does that).

use anyhow::Context as _;
use canvas::client::{
    Call, CanvasClient, ClientConfig, Course, CourseRead, Enrollment, Priority, TokenSource,
};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use sim::{Scale, SimConfig, Simulator};

const GRAPHQL: &str = "bench-graphql";
const REST: &str = "bench-rest";
const NAIVE: &str = "bench-naive";
const ALL_STATES: [&str; 7] = [
    "active",
    "invited",
    "creation_pending",
    "deleted",
    "rejected",
    "completed",
    "inactive",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = Scale::Medium)]
    scale: Scale,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Downstream systems that each crawl Canvas nightly without coursewire.
    #[arg(long, default_value_t = 30)]
    downstream_systems: u32,
    /// Concurrent course reads of each crawl.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// What one crawl read, to check the strategies saw the same catalog.
#[derive(Debug, Default, PartialEq)]
struct Catalog {
    courses: usize,
    sections: usize,
    enrollments: usize,
    assignments: usize,
    modules: usize,
    module_items: usize,
}

fn client(base: &str, token: &str, per_page: u32) -> anyhow::Result<CanvasClient> {
    let mut cfg = ClientConfig::new(base).with_concurrency(16);
    cfg.per_page = per_page;
    Ok(CanvasClient::new(cfg, TokenSource::fixed(token))?)
}

async fn by_graphql(c: &CanvasClient, root: u64, concurrency: usize) -> anyhow::Result<Catalog> {
    let ids = c.account_course_ids(root, Priority::Bulk).await?;
    let read = CourseRead::default();
    let courses: Vec<_> = futures::stream::iter(ids)
        .map(|id| {
            let (c, read) = (c.clone(), read.clone());
            async move { c.nested_course(id, &read).await }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(Catalog {
        courses: courses.len(),
        sections: courses.iter().map(|n| n.sections.len()).sum(),
        enrollments: courses.iter().map(|n| n.enrollments.len()).sum(),
        assignments: courses.iter().map(|n| n.assignments.len()).sum(),
        modules: courses.iter().map(|n| n.modules.len()).sum(),
        module_items: courses
            .iter()
            .flat_map(|n| &n.modules)
            .map(|m| m.items.len())
            .sum(),
    })
}

/// `GET /courses/:id/modules?include[]=items`.
#[derive(Debug, serde::Deserialize)]
struct ModuleWithItems {
    #[serde(default)]
    items: Vec<Value>,
}

async fn rest_course(c: CanvasClient, course: u64) -> anyhow::Result<Catalog> {
    let p = Priority::Bulk;
    let sections = c.sections(course, p).try_collect::<Vec<_>>().await?.len();
    let enrollments = c
        .enrollments(course, &ALL_STATES, p)
        .try_collect::<Vec<Enrollment>>()
        .await?
        .len();
    let assignments = c
        .assignments(course, p)
        .try_collect::<Vec<_>>()
        .await?
        .len();
    let modules: Vec<ModuleWithItems> = c
        .collect(
            Call::get(format!("/api/v1/courses/{course}/modules"), p).query("include[]", "items"),
        )
        .await?;
    let module_items = modules.iter().map(|m| m.items.len()).sum();
    let modules = modules.len();
    Ok(Catalog {
        courses: 1,
        sections,
        enrollments,
        assignments,
        modules,
        module_items,
    })
}

async fn by_rest(c: &CanvasClient, root: u64, concurrency: usize) -> anyhow::Result<Catalog> {
    let courses: Vec<Course> = c
        .account_courses(root, Priority::Bulk)
        .try_collect()
        .await?;
    let parts: Vec<Catalog> = futures::stream::iter(courses.into_iter().map(|x| x.id))
        .map(|id| rest_course(c.clone(), id))
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(parts.into_iter().fold(Catalog::default(), |a, b| Catalog {
        courses: a.courses + b.courses,
        sections: a.sections + b.sections,
        enrollments: a.enrollments + b.enrollments,
        assignments: a.assignments + b.assignments,
        modules: a.modules + b.modules,
        module_items: a.module_items + b.module_items,
    }))
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(
        args.downstream_systems > 0,
        "--downstream-systems must be positive"
    );
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be positive");
    let mut config = SimConfig::new(args.scale, args.seed)
        .paused()
        .with_canvas_token(GRAPHQL)
        .with_canvas_token(REST)
        .with_canvas_token(NAIVE);
    config.throttle.enabled = false;
    config.throttle.cost.latency_scale = 0.0;
    eprintln!("building the {:?} university…", args.scale);
    let sim = Simulator::new(config).context("simulator")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = sim.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let root = sim.ground_truth().root_account_id;

    eprintln!("graphql sync…");
    let graphql = by_graphql(&client(&base, GRAPHQL, 100)?, root, args.concurrency).await?;
    eprintln!("rest sync (per_page=100)…");
    let rest = by_rest(&client(&base, REST, 100)?, root, args.concurrency).await?;
    eprintln!("one naive crawl (default page size 10)…");
    let naive = coursewire::demo::naive::crawl(
        &coursewire::demo::naive::client(&base, NAIVE, args.concurrency)?,
        root,
        args.concurrency,
    )
    .await?;

    let counters = sim.counters();
    let (g, r, n) = (
        counters.canvas_token(GRAPHQL),
        counters.canvas_token(REST),
        counters.canvas_token(NAIVE),
    );
    let systems = f64::from(args.downstream_systems);
    let naive_requests = n.requests as f64 * systems;
    let naive_units = n.cost_units * systems;
    Ok(json!({
        "scenario": "api-calls",
        "scale": args.scale,
        "courses": graphql.courses,
        "graphql": {"requests": g.requests, "cost_units": g.cost_units},
        "rest": {"requests": r.requests, "cost_units": r.cost_units},
        "naive": {
            "requests": naive_requests,
            "cost_units": naive_units,
            "downstream_systems": args.downstream_systems,
            "one_crawl_requests": n.requests,
            "one_crawl_cost_units": n.cost_units,
            "one_crawl_read": {
                "courses": naive.courses,
                "sections": naive.sections,
                "enrollments_default_states": naive.enrollments,
                "assignments": naive.assignments,
            },
            "note": "one naive crawl measured, multiplied by downstream_systems",
        },
        "ratio_requests_naive_to_graphql": naive_requests / g.requests.max(1) as f64,
        "ratio_requests_naive_to_rest": naive_requests / r.requests.max(1) as f64,
        "ratio_cost_naive_to_graphql": naive_units / g.cost_units.max(f64::EPSILON),
        "ratio_cost_naive_to_rest": naive_units / r.cost_units.max(f64::EPSILON),
        "graphql_and_rest_read_the_same_catalog": graphql == rest,
        "catalog": {
            "sections": graphql.sections,
            "enrollments": graphql.enrollments,
            "assignments": graphql.assignments,
            "modules": graphql.modules,
            "module_items": graphql.module_items,
        },
        "throttled": g.throttled + r.throttled + n.throttled,
    }))
}
