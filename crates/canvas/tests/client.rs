//! The Canvas client against the simulator over real HTTP: pagination, token lifecycle
//! (expiry mid-crawl, one refresh under a 401 storm, revocation), the quota governor holding a
//! concurrency-16 crawl below Canvas's throttle, and retries on 5xx/throttling.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use canvas::client::{
    CanvasClient, ClientConfig, ClientError, OAuthCredentials, Priority, Secret, TokenSource,
};
use futures::{StreamExt as _, TryStreamExt as _};
use sim::{SimConfig, Simulator};
use tokio::sync::oneshot;

const TOKEN: &str = "tok";

/// A simulator on 127.0.0.1:0 whose token endpoint is counted.
struct Harness {
    sim: Simulator,
    base: String,
    token_posts: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
}

impl Harness {
    async fn start(seed: u64) -> Harness {
        Harness::start_with(SimConfig::small(seed).paused().with_canvas_token(TOKEN)).await
    }

    async fn start_with(config: SimConfig) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = Simulator::new(config).expect("simulator builds");
        let token_posts = Arc::new(AtomicU64::new(0));
        let counter = token_posts.clone();
        let app = sim.router().layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let counter = counter.clone();
                async move {
                    if req.method() == axum::http::Method::POST
                        && req.uri().path() == "/login/oauth2/token"
                    {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    next.run(req).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
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
            token_posts,
            stop: Some(tx),
        }
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(&self.base);
        c.timeout = Duration::from_secs(10);
        c.backoff_base = Duration::from_millis(20);
        c
    }

    fn fixed_client(&self, cfg: ClientConfig) -> CanvasClient {
        CanvasClient::new(cfg, TokenSource::fixed(TOKEN)).expect("client")
    }

    /// An OAuth client holding a freshly minted pair (client clock: the system's, so it
    /// only learns of expiry from a 401).
    fn oauth_client(&self, cfg: ClientConfig) -> (CanvasClient, String) {
        let (access, refresh) = self.sim.issue_canvas_token(None);
        (self.oauth_client_with(cfg, &access, &refresh), access)
    }

    fn oauth_client_with(&self, cfg: ClientConfig, access: &str, refresh: &str) -> CanvasClient {
        let http = canvas::client::http_client(Duration::from_secs(10)).expect("http");
        let creds = OAuthCredentials {
            token_url: format!("{}/login/oauth2/token", self.base),
            client_id: self.sim.config().oauth_client_id.clone(),
            client_secret: Secret::new(self.sim.config().oauth_client_secret.clone()),
            refresh_token: Secret::new(refresh),
        };
        let tokens = TokenSource::oauth(creds, http, Some((Secret::new(access), 3_600)));
        CanvasClient::new(cfg, tokens).expect("client")
    }

    fn root(&self) -> u64 {
        self.sim.ground_truth().root_account_id
    }

    fn live_course_ids(&self) -> HashSet<u64> {
        self.sim
            .ground_truth()
            .courses
            .iter()
            .filter(|c| c.workflow_state != "deleted")
            .map(|c| c.id)
            .collect()
    }

    fn advance(&self, seconds: u64) {
        self.sim.clock().advance(Duration::from_secs(seconds));
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
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

#[tokio::test]
async fn pagination_walks_every_item_exactly_once() {
    let h = Harness::start(41).await;
    let mut cfg = h.config();
    cfg.per_page = 7;
    let client = h.fixed_client(cfg);

    let mut pages = 0;
    let mut seen = Vec::new();
    let mut stream = client.account_courses(h.root(), Priority::Bulk);
    while let Some(c) = stream.try_next().await.expect("course page") {
        seen.push(c.id);
    }
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no course twice");
    assert_eq!(unique, h.live_course_ids(), "every course once");

    // Bookmark-paginated enrollments of the biggest course, page by page.
    let gt = h.sim.ground_truth();
    let biggest = gt
        .courses
        .iter()
        .max_by_key(|c| {
            gt.enrollments
                .iter()
                .filter(|e| e.course_id == c.id)
                .count()
        })
        .expect("courses")
        .id;
    let expected: HashSet<u64> = gt
        .enrollments
        .iter()
        .filter(|e| e.course_id == biggest)
        .map(|e| e.id)
        .collect();
    let mut call = canvas::client::Call::get(
        format!("/api/v1/courses/{biggest}/enrollments"),
        Priority::Bulk,
    );
    for s in ALL_STATES {
        call = call.query("state[]", s);
    }
    let mut ids = Vec::new();
    let mut page_stream = client.pages::<canvas::client::Enrollment>(call);
    while let Some(page) = page_stream.try_next().await.expect("page") {
        pages += 1;
        assert!(page.len() <= 7);
        ids.extend(page.into_iter().map(|e| e.id));
    }
    assert!(pages >= 2, "{pages} pages: the walk crossed bookmarks");
    assert_eq!(ids.len(), expected.len(), "no enrollment twice");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected);
    h.stop();
}

#[tokio::test]
async fn crawl_of_all_enrollments_at_concurrency_16_is_never_throttled() {
    let h = Harness::start(42).await;
    let mut cfg = h.config().with_concurrency(16);
    cfg.per_page = 10;
    let client = h.fixed_client(cfg);

    let courses: Vec<u64> = client
        .account_courses(h.root(), Priority::Bulk)
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .expect("courses");
    let per_course: Vec<Vec<u64>> = futures::stream::iter(courses.clone())
        .map(|course| {
            let client = client.clone();
            async move {
                client
                    .enrollments(course, &ALL_STATES, Priority::Bulk)
                    .map_ok(|e| e.id)
                    .try_collect::<Vec<u64>>()
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
        .expect("no failed call");
    let crawled: Vec<u64> = per_course.into_iter().flatten().collect();
    let crawled_set: HashSet<u64> = crawled.iter().copied().collect();
    let gt = h.sim.ground_truth();
    let course_set: HashSet<u64> = courses.iter().copied().collect();
    let expected: HashSet<u64> = gt
        .enrollments
        .iter()
        .filter(|e| course_set.contains(&e.course_id))
        .map(|e| e.id)
        .collect();
    assert_eq!(crawled.len(), crawled_set.len(), "each enrollment once");
    assert_eq!(crawled_set, expected);

    let at_sim = h.sim.counters().canvas_token(TOKEN);
    let snap = client.governor().snapshot();
    assert!(at_sim.requests > 50, "{} requests", at_sim.requests);
    assert_eq!(at_sim.throttled, 0, "sim saw no throttled request");
    assert_eq!(client.counts().throttled, 0);
    assert_eq!(snap.throttle_signals, 0);
    assert!(
        (2..=12).contains(&snap.max_in_flight_seen),
        "governor held 16 requested down to {} in flight",
        snap.max_in_flight_seen
    );
    h.stop();
}

#[tokio::test]
async fn slow_requests_at_concurrency_16_stay_under_the_mark() {
    // Each course read takes half a second of server time, so 16 unguarded callers would hold
    // 800 up-front units (> 600) and be throttled; the governor admits ~9 at a time.
    let mut config = SimConfig::small(48).paused().with_canvas_token(TOKEN);
    config
        .throttle
        .cost
        .overrides
        .insert("GET /api/v1/courses/{course_id}".into(), 0.5);
    let h = Harness::start_with(config).await;
    let client = h.fixed_client(h.config().with_concurrency(16));
    let ids: Vec<u64> = h.live_course_ids().into_iter().take(32).collect();
    let fetched: Vec<_> = futures::stream::iter(ids.clone())
        .map(|id| {
            let client = client.clone();
            async move { client.course(id).await }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
        .expect("no failed call");
    assert_eq!(fetched.len(), ids.len());
    assert_eq!(h.sim.counters().canvas_token(TOKEN).throttled, 0);
    let snap = client.governor().snapshot();
    // 12 running requests hold the 600-unit mark: the most Canvas admits.
    assert!(snap.max_in_flight_seen <= 12, "{snap:?}");
    assert_eq!(client.counts().retries, 0, "nothing had to be retried");
    h.stop();
}

#[tokio::test]
async fn token_expiry_mid_crawl_is_refreshed_with_no_failed_call() {
    let h = Harness::start(43).await;
    let mut cfg = h.config();
    cfg.per_page = 5;
    let (client, access) = h.oauth_client(cfg);

    let mut stream = client.account_courses(h.root(), Priority::Bulk);
    let mut ids = Vec::new();
    while let Some(c) = stream.try_next().await.expect("no failed call") {
        ids.push(c.id);
        if ids.len() == 12 {
            // The access token expires between two pages.
            h.advance(3_600);
        }
    }
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), h.live_course_ids());
    let health = client.tokens().health();
    assert_eq!(health.refreshes, 1);
    assert_eq!(health.refresh_failures, 0);
    assert!(!health.revoked);
    assert_eq!(h.token_posts.load(Ordering::SeqCst), 1);
    assert_eq!(client.counts().unauthorized, 1, "one 401, then the retry");
    let debug = format!("{client:?}");
    assert!(!debug.contains(&access), "no token in Debug");
    h.stop();
}

#[tokio::test]
async fn refresh_happens_ahead_of_expiry_on_the_callers_clock() {
    let h = Harness::start(44).await;
    let (access, refresh) = h.sim.issue_canvas_token(None);
    let http = canvas::client::http_client(Duration::from_secs(10)).expect("http");
    let clock = h.sim.clock();
    let tokens = TokenSource::oauth(
        OAuthCredentials {
            token_url: format!("{}/login/oauth2/token", h.base),
            client_id: h.sim.config().oauth_client_id.clone(),
            client_secret: Secret::new(h.sim.config().oauth_client_secret.clone()),
            refresh_token: Secret::new(refresh),
        },
        http,
        Some((Secret::new(access), 3_600)),
    )
    .with_clock(Arc::new(move || clock.now_ms()));
    let client = CanvasClient::new(h.config(), tokens).expect("client");
    let course = *h.live_course_ids().iter().next().expect("a course");
    client.course(course).await.expect("first call");
    let left = client.tokens().health().seconds_to_expiry;
    assert!(
        left.is_some_and(|s| (3_599..=3_600).contains(&s)),
        "{left:?}"
    );
    h.advance(3_400); // 200 s left: inside the 5-minute window
    client.course(course).await.expect("second call");
    let health = client.tokens().health();
    assert_eq!(health.refreshes, 1);
    assert_eq!(health.seconds_to_expiry, Some(3_600));
    assert_eq!(client.counts().unauthorized, 0, "refreshed before any 401");
    h.stop();
}

#[tokio::test]
async fn oauth_without_an_initial_token_starts_with_a_refresh_grant() {
    let h = Harness::start(49).await;
    let (_, refresh) = h.sim.issue_canvas_token(None);
    let http = canvas::client::http_client(Duration::from_secs(10)).expect("http");
    let tokens = TokenSource::oauth(
        OAuthCredentials {
            token_url: format!("{}/login/oauth2/token", h.base),
            client_id: h.sim.config().oauth_client_id.clone(),
            client_secret: Secret::new(h.sim.config().oauth_client_secret.clone()),
            refresh_token: Secret::new(refresh),
        },
        http,
        None,
    );
    assert_eq!(tokens.health().seconds_to_expiry, None);
    let client = CanvasClient::new(h.config(), tokens).expect("client");
    let course = *h.live_course_ids().iter().next().expect("a course");
    client.course(course).await.expect("call after the grant");
    assert_eq!(h.token_posts.load(Ordering::SeqCst), 1);
    let health = client.tokens().health();
    assert_eq!(health.refreshes, 1);
    assert!(health.seconds_to_expiry.is_some_and(|s| s > 3_000));
    h.stop();
}

#[tokio::test]
async fn fifty_concurrent_callers_hitting_401_cause_exactly_one_refresh() {
    let h = Harness::start(45).await;
    let (client, _) = h.oauth_client(h.config().with_concurrency(64));
    let course = *h.live_course_ids().iter().next().expect("a course");
    client.course(course).await.expect("warm-up");
    h.advance(3_600); // every caller's token is now expired at Canvas

    let calls = (0..50).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.course(course).await })
    });
    for r in futures::future::join_all(calls).await {
        r.expect("join").expect("every caller succeeds");
    }
    assert_eq!(h.token_posts.load(Ordering::SeqCst), 1, "one refresh grant");
    assert_eq!(client.tokens().health().refreshes, 1);
    assert!(client.counts().unauthorized >= 1);
    h.stop();
}

#[tokio::test]
async fn revoked_grant_gives_a_clear_unauthorized_error_and_fails_fast() {
    let h = Harness::start(46).await;
    let (access, _) = h.sim.issue_canvas_token(None);
    // The refresh token is unknown to Canvas: the grant was revoked.
    let client = h.oauth_client_with(h.config(), &access, "revoked-refresh-token");
    let course = *h.live_course_ids().iter().next().expect("a course");
    client
        .course(course)
        .await
        .expect("the access token still works");
    let revoke = reqwest::Client::new()
        .delete(format!("{}/login/oauth2/token", h.base))
        .bearer_auth(&access)
        .send()
        .await
        .expect("revoke");
    assert!(revoke.status().is_success());

    let err = client.course(course).await.expect_err("revoked");
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err:?}");
    assert!(!err.to_string().contains(&access));
    let health = client.tokens().health();
    assert!(health.revoked);
    assert_eq!(health.refresh_failures, 1);
    let err = client.course(course).await.expect_err("still revoked");
    assert!(matches!(err, ClientError::Unauthorized(_)));
    assert_eq!(
        h.token_posts.load(Ordering::SeqCst),
        1,
        "fails fast without another grant"
    );

    // A static token Canvas refuses is the same error.
    let bad = CanvasClient::new(h.config(), TokenSource::fixed("nope")).expect("client");
    let err = bad.course(course).await.expect_err("unknown token");
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err:?}");
    h.stop();
}

#[tokio::test]
async fn idempotent_module_and_external_url_item() {
    let h = Harness::start(47).await;
    let client = h.fixed_client(h.config());
    let course = *h.live_course_ids().iter().next().expect("a course");
    let m1 = client
        .create_module(course, "Lecture recordings")
        .await
        .expect("create");
    let m2 = client
        .create_module(course, "Lecture recordings")
        .await
        .expect("find");
    assert_eq!(m1.id, m2.id);
    let url = "https://panopto.example/Viewer.aspx?id=abc";
    let i1 = client
        .create_external_url_item(course, m1.id, "Week 1", url)
        .await
        .expect("create item");
    let i2 = client
        .create_external_url_item(course, m1.id, "Week 1 (renamed)", url)
        .await
        .expect("find item");
    assert_eq!(i1.id, i2.id);
    assert_eq!(i1.external_url.as_deref(), Some(url));
    let items: Vec<_> = client
        .module_items(course, m1.id, Priority::Interactive)
        .try_collect()
        .await
        .expect("items");
    assert_eq!(items.len(), 1);
    // The typed reads decode the simulator's objects.
    let _: Vec<_> = client
        .sections(course, Priority::Interactive)
        .try_collect()
        .await
        .expect("sections");
    let _: Vec<_> = client
        .assignments(course, Priority::Interactive)
        .try_collect()
        .await
        .expect("assignments");
    let users: Vec<_> = client
        .course_users(course, Priority::Interactive)
        .try_collect()
        .await
        .expect("users");
    if let Some(u) = users.first() {
        assert_eq!(client.user(u.id).await.expect("user").id, u.id);
    }
    h.stop();
}

/// A scripted server: the first answers are failures, then 200 with an empty list.
async fn scripted(
    failures: Vec<(u16, &'static str, Option<&'static str>)>,
) -> (String, Arc<AtomicU64>) {
    use axum::response::IntoResponse;
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let failures = Arc::new(failures);
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        let failures = failures.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
            match failures.get(n) {
                Some((status, body, retry_after)) => {
                    let mut r = (
                        axum::http::StatusCode::from_u16(*status).expect("status"),
                        *body,
                    )
                        .into_response();
                    if let Some(ra) = retry_after {
                        r.headers_mut()
                            .insert("retry-after", axum::http::HeaderValue::from_static(ra));
                    }
                    r
                }
                None => (
                    [
                        ("x-rate-limit-remaining", "600.0"),
                        ("x-request-cost", "0.1"),
                    ],
                    axum::Json(serde_json::json!([{"id": 1}])),
                )
                    .into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn retries_5xx_and_throttles_with_backoff_and_counts_throttles() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (base, hits) = scripted(vec![
        (503, "busy", Some("0")),
        (429, "Too Many Requests", None),
        (403, "403 Forbidden (Rate Limit Exceeded)\n", None),
        (500, "oops", None),
    ])
    .await;
    let mut cfg = ClientConfig::new(&base);
    cfg.backoff_base = Duration::from_millis(5);
    let client = CanvasClient::new(cfg, TokenSource::fixed("t")).expect("client");
    let courses: Vec<_> = client
        .account_courses(1, Priority::Interactive)
        .try_collect()
        .await
        .expect("succeeds after retries");
    assert_eq!(courses.len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 5);
    let counts = client.counts();
    assert_eq!((counts.retries, counts.throttled), (4, 2));
    assert_eq!(client.governor().snapshot().throttle_signals, 2);

    // A permission 403 is not a throttle: no retry.
    let (base, hits) = scripted(vec![(403, "forbidden", None)]).await;
    let client =
        CanvasClient::new(ClientConfig::new(&base), TokenSource::fixed("t")).expect("client");
    let err = client.course(1).await.expect_err("403");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
