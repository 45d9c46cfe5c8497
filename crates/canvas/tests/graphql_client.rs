//! The GraphQL client against Canvas's published schema and the simulator over real HTTP: every
//! query validates; a nested course read equals the REST reads and the simulator's ground
//! truth (also across inner pages); errors in a `200` body are clear errors; and a crawl of the
//! `medium` university is never throttled, even while a second integration spends part of the
//! same token's quota.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use canvas::client::graphql::QUERIES;
use canvas::client::{
    Call, CanvasClient, ClientConfig, CourseRead, Enrollment, GraphQlError, ModuleItem,
    NestedCourse, Priority, TokenSource,
};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use sim::{GroundTruth, SimConfig, Simulator};
use tokio::sync::oneshot;

const TOKEN: &str = "tok";

struct Harness {
    sim: Simulator,
    base: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Harness {
    async fn start(config: SimConfig) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = Simulator::new(config).expect("simulator builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = sim.router();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Harness {
            sim,
            base: format!("http://{addr}"),
            stop: Some(tx),
        }
    }

    fn client(&self, concurrency: usize) -> CanvasClient {
        let mut cfg = ClientConfig::new(&self.base).with_concurrency(concurrency);
        cfg.timeout = Duration::from_secs(20);
        cfg.backoff_base = Duration::from_millis(20);
        CanvasClient::new(cfg, TokenSource::fixed(TOKEN)).expect("client")
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn schema_path() -> String {
    std::env::var("COURSEWIRE_SIM_GRAPHQL_SCHEMA").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/canvas/graphql/schema.graphql"
        )
        .to_owned()
    })
}

#[test]
fn every_query_validates_against_the_published_canvas_schema() {
    let path = schema_path();
    let sdl = std::fs::read_to_string(&path).expect("the Canvas schema is readable");
    let schema =
        apollo_compiler::Schema::parse_and_validate(sdl, "schema.graphql").expect("valid schema");
    assert!(QUERIES.len() >= 2, "the course and account queries");
    for (operation, query) in QUERIES {
        let doc =
            apollo_compiler::ExecutableDocument::parse_and_validate(&schema, *query, *operation)
                .unwrap_or_else(|e| panic!("{operation} is invalid: {}", e.errors));
        let op = doc
            .operations
            .get(Some(operation))
            .unwrap_or_else(|_| panic!("{operation} names its operation {operation}"));
        assert_eq!(
            op.operation_type,
            apollo_compiler::ast::OperationType::Query
        );
    }
    // The check can fail: a field Canvas does not have is refused.
    let bogus = QUERIES[0].1.replacen("courseCode", "courseCodez", 1);
    assert!(
        apollo_compiler::ExecutableDocument::parse_and_validate(&schema, bogus, "bogus").is_err()
    );
}

// ------------------------------------------------------------------ normalised rows

type EnrollmentRow = (
    u64,
    Option<u64>,
    Option<u64>,
    Option<String>,
    Option<String>,
);
type ItemRow = (
    u64,
    Option<u64>,
    Option<u32>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// (name, points possible, published)
type AssignmentRow = (Option<String>, Option<String>, Option<bool>);
/// (name, position, published)
type ModuleRow = (Option<String>, Option<u32>, Option<bool>);

/// What the catalog keeps of a course, comparable across GraphQL, REST and ground truth.
#[derive(Debug, Default, PartialEq)]
struct CourseRows {
    sections: BTreeMap<u64, (Option<String>, Option<String>)>,
    enrollments: BTreeSet<EnrollmentRow>,
    assignments: BTreeMap<u64, AssignmentRow>,
    modules: BTreeMap<u64, ModuleRow>,
    items: BTreeSet<ItemRow>,
}

fn enrollment_row(e: &Enrollment) -> EnrollmentRow {
    (
        e.id,
        e.user_id,
        e.course_section_id,
        e.kind.clone(),
        e.enrollment_state.clone(),
    )
}

fn item_row(i: &ModuleItem) -> ItemRow {
    (
        i.id,
        i.module_id,
        i.position,
        i.title.clone(),
        i.kind.clone(),
        i.external_url.clone(),
    )
}

fn points(p: Option<f64>) -> Option<String> {
    p.map(|p| format!("{p:.3}"))
}

fn rows_of_graphql(n: &NestedCourse) -> CourseRows {
    CourseRows {
        sections: n
            .sections
            .iter()
            .map(|s| (s.id, (s.name.clone(), s.sis_section_id.clone())))
            .collect(),
        enrollments: n.enrollments.iter().map(enrollment_row).collect(),
        assignments: n
            .assignments
            .iter()
            .map(|a| {
                (
                    a.id,
                    (a.name.clone(), points(a.points_possible), a.published),
                )
            })
            .collect(),
        modules: n
            .modules
            .iter()
            .map(|m| {
                let m = &m.module;
                (m.id, (m.name.clone(), m.position, m.published))
            })
            .collect(),
        items: n
            .modules
            .iter()
            .flat_map(|m| m.items.iter().map(item_row))
            .collect(),
    }
}

/// `GET /courses/:id/modules?include[]=items`.
#[derive(Debug, Deserialize)]
struct RestModule {
    id: u64,
    name: Option<String>,
    position: Option<u32>,
    published: Option<bool>,
    #[serde(default)]
    items: Vec<ModuleItem>,
}

const ALL_STATES: [&str; 7] = [
    "active",
    "invited",
    "creation_pending",
    "deleted",
    "rejected",
    "completed",
    "inactive",
];

async fn rows_of_rest(client: &CanvasClient, course: u64) -> CourseRows {
    let p = Priority::Interactive;
    let sections: Vec<_> = client
        .sections(course, p)
        .try_collect()
        .await
        .expect("sections");
    let enrollments: Vec<_> = client
        .enrollments(course, &ALL_STATES, p)
        .try_collect()
        .await
        .expect("enrollments");
    let assignments: Vec<_> = client
        .assignments(course, p)
        .try_collect()
        .await
        .expect("assignments");
    let modules: Vec<RestModule> = client
        .collect(
            Call::get(format!("/api/v1/courses/{course}/modules"), p).query("include[]", "items"),
        )
        .await
        .expect("modules with items");
    CourseRows {
        sections: sections
            .iter()
            .map(|s| (s.id, (s.name.clone(), s.sis_section_id.clone())))
            .collect(),
        enrollments: enrollments.iter().map(enrollment_row).collect(),
        assignments: assignments
            .iter()
            .map(|a| {
                (
                    a.id,
                    (a.name.clone(), points(a.points_possible), a.published),
                )
            })
            .collect(),
        modules: modules
            .iter()
            .map(|m| (m.id, (m.name.clone(), m.position, m.published)))
            .collect(),
        items: modules
            .iter()
            .flat_map(|m| m.items.iter().map(item_row))
            .collect(),
    }
}

fn rows_of_truth(gt: &GroundTruth, course: u64) -> CourseRows {
    let live_modules: HashSet<u64> = gt
        .modules
        .iter()
        .filter(|m| m.course_id == course && m.workflow_state != "deleted")
        .map(|m| m.id)
        .collect();
    CourseRows {
        sections: gt
            .sections
            .iter()
            .filter(|s| s.course_id == course && s.workflow_state == "active")
            .map(|s| (s.id, (Some(s.name.clone()), s.sis_section_id.clone())))
            .collect(),
        enrollments: gt
            .enrollments
            .iter()
            .filter(|e| e.course_id == course)
            .map(|e| {
                (
                    e.id,
                    Some(e.user_id),
                    Some(e.section_id),
                    Some(e.r#type.clone()),
                    Some(e.state.clone()),
                )
            })
            .collect(),
        assignments: gt
            .assignments
            .iter()
            .filter(|a| a.course_id == course)
            .map(|a| {
                (
                    a.id,
                    (
                        Some(a.name.clone()),
                        points(Some(a.points_possible)),
                        Some(a.published),
                    ),
                )
            })
            .collect(),
        modules: gt
            .modules
            .iter()
            .filter(|m| live_modules.contains(&m.id))
            .map(|m| {
                (
                    m.id,
                    (Some(m.name.clone()), Some(m.position), Some(m.published)),
                )
            })
            .collect(),
        items: gt
            .module_items
            .iter()
            .filter(|i| live_modules.contains(&i.module_id) && i.workflow_state != "deleted")
            .map(|i| {
                (
                    i.id,
                    Some(i.module_id),
                    Some(i.position),
                    Some(i.title.clone()),
                    Some(i.r#type.clone()),
                    i.external_url.clone(),
                )
            })
            .collect(),
    }
}

fn live_courses(gt: &GroundTruth) -> Vec<u64> {
    gt.courses
        .iter()
        .filter(|c| c.workflow_state != "deleted")
        .map(|c| c.id)
        .collect()
}

/// Pages a connection of `n` items takes at `page` per page (an empty one still takes one).
fn pages(n: usize, page: u32) -> u32 {
    u32::try_from(n.div_ceil(page as usize).max(1)).expect("small")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_read_equals_rest_and_ground_truth_for_every_course() {
    let h = Harness::start(SimConfig::small(51).paused().with_canvas_token(TOKEN)).await;
    let client = h.client(8);
    let gt = h.sim.ground_truth();
    let courses = live_courses(&gt);
    assert!(courses.len() >= 30, "{} courses", courses.len());
    let mut with_items = 0;
    for course in courses {
        let nested = client
            .nested_course(course, &CourseRead::default())
            .await
            .expect("nested read");
        assert_eq!(nested.course.id, course);
        let truth = rows_of_truth(&gt, course);
        let by_graphql = rows_of_graphql(&nested);
        assert_eq!(by_graphql, truth, "course {course}: GraphQL = ground truth");
        assert_eq!(
            rows_of_rest(&client, course).await,
            by_graphql,
            "course {course}: GraphQL = REST"
        );
        let expected_requests = [
            truth.sections.len(),
            truth.enrollments.len(),
            truth.assignments.len(),
            truth.modules.len(),
        ]
        .into_iter()
        .map(|n| pages(n, 100))
        .max()
        .unwrap_or(1);
        assert_eq!(nested.requests, expected_requests, "course {course}");
        with_items += usize::from(!truth.items.is_empty());
        let c = &nested.course;
        let row = gt.courses.iter().find(|r| r.id == course).expect("row");
        assert_eq!(c.name.as_deref(), Some(row.name.as_str()));
        assert_eq!(
            c.workflow_state.as_deref(),
            Some(row.workflow_state.as_str())
        );
        assert_eq!(c.account_id, Some(row.account_id));
    }
    assert!(
        with_items > 0,
        "module items were compared, not only empty lists"
    );
    assert_eq!(h.sim.counters().canvas_token(TOKEN).throttled, 0);
    h.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_connections_are_paged_together_with_a_small_page_size() {
    let h = Harness::start(SimConfig::small(52).paused().with_canvas_token(TOKEN)).await;
    let client = h.client(4);
    let gt = h.sim.ground_truth();
    let biggest = live_courses(&gt)
        .into_iter()
        .max_by_key(|c| gt.enrollments.iter().filter(|e| e.course_id == *c).count())
        .expect("courses");
    let truth = rows_of_truth(&gt, biggest);
    let page = 7;
    let read = CourseRead {
        page_size: page,
        ..CourseRead::default()
    };
    let before = h.sim.counters().canvas_token(TOKEN).requests;
    let nested = client.nested_course(biggest, &read).await.expect("read");
    let sent = h.sim.counters().canvas_token(TOKEN).requests - before;
    let counts = [
        truth.sections.len(),
        truth.enrollments.len(),
        truth.assignments.len(),
        truth.modules.len(),
    ];
    let expected = counts.iter().map(|n| pages(*n, page)).max().unwrap_or(1);
    assert!(
        expected >= 3,
        "the biggest course has {counts:?} rows: several enrollment pages"
    );
    assert_eq!(
        nested.requests, expected,
        "one request per page of the longest connection, not the sum ({counts:?})"
    );
    assert_eq!(
        u64::from(nested.requests),
        sent,
        "the simulator saw as many"
    );
    assert_eq!(
        nested.enrollments.len(),
        truth.enrollments.len(),
        "no duplicates"
    );
    assert_eq!(rows_of_graphql(&nested), truth);
    assert_eq!(
        rows_of_rest(&client, biggest).await,
        truth,
        "REST agrees on the same course"
    );
    h.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_course_ids_match_rest_and_ground_truth() {
    let h = Harness::start(SimConfig::small(53).paused().with_canvas_token(TOKEN)).await;
    let client = h.client(4);
    let gt = h.sim.ground_truth();
    let by_graphql = client
        .account_course_ids(gt.root_account_id, Priority::Bulk)
        .await
        .expect("ids");
    let by_rest: Vec<u64> = client
        .account_courses(gt.root_account_id, Priority::Bulk)
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("rest");
    let unique: BTreeSet<u64> = by_graphql.iter().copied().collect();
    assert_eq!(unique.len(), by_graphql.len(), "each course once");
    assert_eq!(unique, by_rest.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(
        unique,
        live_courses(&gt).into_iter().collect::<BTreeSet<_>>()
    );
    let err = client
        .account_course_ids(999_999, Priority::Bulk)
        .await
        .expect_err("no such account");
    assert!(matches!(err, GraphQlError::NotFound { .. }), "{err:?}");
    h.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_errors_and_bad_input_are_clear_errors() {
    let h = Harness::start(SimConfig::small(54).paused().with_canvas_token(TOKEN)).await;
    let client = h.client(4);
    let err = client
        .graphql::<serde_json::Value>(
            "Broken",
            "query Broken { course(id: \"1\") { noSuchField } }",
            serde_json::json!({}),
            Priority::Interactive,
        )
        .await
        .expect_err("invalid query");
    match &err {
        GraphQlError::Refused {
            operation,
            messages,
        } => {
            assert_eq!(*operation, "Broken");
            assert!(
                messages.iter().any(|m| m.contains("noSuchField")),
                "{messages:?}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert!(err.to_string().contains("noSuchField"), "{err}");

    let err = client
        .nested_course(987_654, &CourseRead::default())
        .await
        .expect_err("no such course");
    assert!(matches!(err, GraphQlError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("987654"), "{err}");

    for page_size in [0, 101] {
        let read = CourseRead {
            page_size,
            ..CourseRead::default()
        };
        let err = client.nested_course(1, &read).await.expect_err("bad page");
        assert!(matches!(err, GraphQlError::Invalid(_)), "{err:?}");
    }

    let bad = CanvasClient::new(
        ClientConfig::new(&h.base),
        TokenSource::fixed("not-a-token"),
    )
    .expect("client");
    let err = bad
        .nested_course(1, &CourseRead::default())
        .await
        .expect_err("unknown token");
    assert!(
        matches!(
            err,
            GraphQlError::Client(canvas::client::ClientError::Unauthorized(_))
        ),
        "{err:?}"
    );
    h.stop();
}

/// Issue 5: a crawl of the `medium` university (about 3,000 courses) by nested GraphQL reads
/// with zero throttled requests at Canvas, while a second integration with its own governor
/// crawls enrollments by REST on the same token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medium_crawl_shared_with_a_second_integration_is_never_throttled() {
    let started = Instant::now();
    // Canvas's bucket and cost model as they are; requests take a fifth of their cost in real
    // time (Canvas: all of it) so the debug build crawls in well under a minute. Shorter
    // requests make the test harder, not easier: the same bucket sees more requests/s.
    let mut config = SimConfig::medium(55).paused().with_canvas_token(TOKEN);
    config.throttle.cost.latency_scale = 0.2;
    let h = Harness::start(config).await;
    let gt = h.sim.ground_truth();
    let built = started.elapsed();

    let crawler = h.client(16);
    // Another integration: its own client and governor, the same token.
    let other = h.client(4);
    let (stop_other, mut stopped) = tokio::sync::watch::channel(false);
    let courses_for_other = live_courses(&gt);
    let other_task = {
        let other = other.clone();
        tokio::spawn(async move {
            let mut pages = 0u64;
            for course in courses_for_other.iter().cycle() {
                if *stopped.borrow_and_update() {
                    break;
                }
                let mut stream = other.pages::<Enrollment>(Call::get(
                    format!("/api/v1/courses/{course}/enrollments"),
                    Priority::Bulk,
                ));
                while let Some(page) = stream.next().await {
                    page.expect("the other integration is never refused");
                    pages += 1;
                }
            }
            pages
        })
    };

    let crawl_started = Instant::now();
    let ids = crawler
        .account_course_ids(gt.root_account_id, Priority::Bulk)
        .await
        .expect("course ids");
    let nested: Vec<NestedCourse> = futures::stream::iter(ids.clone())
        .map(|course| {
            let crawler = crawler.clone();
            async move { crawler.nested_course(course, &CourseRead::default()).await }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
        .expect("every course read");
    let crawl = crawl_started.elapsed();
    let _ = stop_other.send(true);
    let other_pages = other_task.await.expect("other integration");

    let at_sim = h.sim.counters().canvas_token(TOKEN);
    assert_eq!(at_sim.throttled, 0, "Canvas throttled nothing: {at_sim:?}");
    assert_eq!(crawler.counts().throttled, 0);
    assert_eq!(other.counts().throttled, 0);
    assert_eq!(crawler.governor().snapshot().throttle_signals, 0);

    let live: BTreeSet<u64> = live_courses(&gt).into_iter().collect();
    assert!(live.len() >= 2_500, "medium: {} courses", live.len());
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), live);
    assert_eq!(nested.len(), live.len());
    let enrollments: usize = nested.iter().map(|n| n.enrollments.len()).sum();
    let expected: usize = gt
        .enrollments
        .iter()
        .filter(|e| live.contains(&e.course_id))
        .count();
    assert_eq!(enrollments, expected, "every enrollment of every course");
    let requests: u32 = nested.iter().map(|n| n.requests).sum();
    let mut per_course: BTreeMap<u64, [usize; 4]> = BTreeMap::new();
    for s in gt.sections.iter().filter(|s| s.workflow_state == "active") {
        per_course.entry(s.course_id).or_default()[0] += 1;
    }
    for e in &gt.enrollments {
        per_course.entry(e.course_id).or_default()[1] += 1;
    }
    for a in &gt.assignments {
        per_course.entry(a.course_id).or_default()[2] += 1;
    }
    for m in gt.modules.iter().filter(|m| m.workflow_state != "deleted") {
        per_course.entry(m.course_id).or_default()[3] += 1;
    }
    let expected_requests: u32 = live
        .iter()
        .map(|c| {
            per_course
                .get(c)
                .map_or(1, |n| n.iter().map(|n| pages(*n, 100)).max().unwrap_or(1))
        })
        .sum();
    assert_eq!(
        requests, expected_requests,
        "one request per course unless a connection has more than 100 rows"
    );
    // The other integration really competed for the quota during the crawl.
    assert!(
        other_pages >= 100,
        "the other integration read {other_pages} pages"
    );
    let snap = crawler.governor().snapshot();
    assert!(snap.max_in_flight_seen >= 4, "{snap:?}");
    eprintln!(
        "medium: built in {built:?}, crawled {} courses ({requests} GraphQL requests) in \
         {crawl:?} while the other integration read {other_pages} pages; sim saw {} requests, \
         {:.1} units, 0 throttled; governor {snap:?}",
        nested.len(),
        at_sim.requests,
        at_sim.cost_units
    );
    h.stop();
}
