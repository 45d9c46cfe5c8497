//! Push delivery against both backends: subscribers that go down and come back, ordering and
//! de-duplication per subject, Standard Webhooks signatures checked by an independent
//! implementation (the `standardwebhooks` Python package), exhaustion, disabling, the
//! `subscriptions` CLI, and a SIGKILL in the middle of a delivery.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Backend, TestApp, TestDb};
use coursewire::clock::{Clock, SystemClock};
use coursewire::config::Secret;
use coursewire::store::Lane;
use serde_json::{Value, json};

const TOKEN: &str = "delivery-token";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// What the receiver answered.
    status: u16,
    at: std::time::Instant,
}

impl Received {
    fn event(&self) -> Value {
        serde_json::from_str(&self.body).expect("body is JSON")
    }
}

/// A webhook receiver whose answer tests can change, which records every request, and which
/// can hold the first request it gets for `hold_first` before answering.
#[derive(Clone)]
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    retry_after: Arc<Mutex<Option<String>>>,
    /// Answer 503 to events of this subject only.
    fail_subject: Arc<Mutex<Option<String>>>,
    /// When not 0: answer 503 to every n-th request.
    fail_every: Arc<AtomicUsize>,
    /// When not empty: request n is answered 503 if `pattern[n % len]`.
    fail_pattern: Arc<Mutex<Vec<bool>>>,
    /// Every request is held this long before it is answered.
    hold: Arc<Mutex<Duration>>,
    got: Arc<Mutex<Vec<Received>>>,
    arrivals: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(status: u16, hold_first: Duration) -> Receiver {
        let receiver = Receiver {
            url: String::new(),
            status: Arc::new(AtomicU16::new(status)),
            retry_after: Arc::new(Mutex::new(None)),
            fail_subject: Arc::new(Mutex::new(None)),
            fail_every: Arc::new(AtomicUsize::new(0)),
            fail_pattern: Arc::new(Mutex::new(Vec::new())),
            hold: Arc::new(Mutex::new(Duration::ZERO)),
            got: Arc::new(Mutex::new(Vec::new())),
            arrivals: Arc::new(AtomicUsize::new(0)),
        };
        let r = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let r = r.clone();
                async move {
                    let n = r.arrivals.fetch_add(1, Ordering::SeqCst);
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let mut status = r.status.load(Ordering::SeqCst);
                    let subject = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|e| e["subject"].as_str().map(str::to_owned));
                    if subject.is_some() && *r.fail_subject.lock().unwrap() == subject {
                        status = 503;
                    }
                    let every = r.fail_every.load(Ordering::SeqCst);
                    if every > 0 && n % every == every - 1 {
                        status = 503;
                    }
                    {
                        let pattern = r.fail_pattern.lock().unwrap();
                        if !pattern.is_empty() && pattern[n % pattern.len()] {
                            status = 503;
                        }
                    }
                    let received = Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                        status,
                        at: std::time::Instant::now(),
                    };
                    if n == 0 && !hold_first.is_zero() {
                        // Recorded as arrived (not answered) before holding it.
                        let mut arrived = received.clone();
                        arrived.status = 0;
                        r.got.lock().unwrap().push(arrived);
                        tokio::time::sleep(hold_first).await;
                        return (StatusCode::OK, HeaderMap::new());
                    }
                    r.got.lock().unwrap().push(received);
                    let hold = *r.hold.lock().unwrap();
                    if !hold.is_zero() {
                        tokio::time::sleep(hold).await;
                    }
                    let mut out = HeaderMap::new();
                    if let Some(after) = r.retry_after.lock().unwrap().clone() {
                        out.insert("retry-after", after.parse().unwrap());
                    }
                    (StatusCode::from_u16(status).unwrap(), out)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            ..receiver
        }
    }

    fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    fn accepted(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    async fn wait_accepted(&self, at_least: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.accepted().len() >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "receiver accepted {} of {at_least} in {timeout:?}",
            self.accepted().len()
        );
    }
}

/// A Canvas user event: `user/<id>` at version `second`.
fn user_event(id: i64, second: i64) -> Value {
    let time = chrono::DateTime::from_timestamp(1_788_000_000 + second, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    json!({
        "metadata": {
            "event_name": "user_updated", "event_time": time, "producer": "canvas",
            "hostname": "canvas.test.edu", "request_id": format!("u{id}-{second}"),
        },
        "body": {"user_id": id.to_string(), "name": format!("User {id} v{second}")},
    })
}

async fn spawn_app(db: TestDb, adjust: impl FnOnce(&mut coursewire::config::Config)) -> TestApp {
    spawn_app_on(db, Arc::new(SystemClock), adjust).await
}

async fn spawn_app_on(
    db: TestDb,
    clock: Arc<dyn Clock>,
    adjust: impl FnOnce(&mut coursewire::config::Config),
) -> TestApp {
    TestApp::spawn_on_clock(db, "http://127.0.0.1:9/jwks", clock, |c| {
        common::unsigned_from_anyone(c);
        c.api.token = Secret::new(TOKEN);
        c.processor.idle_poll_ms = 20;
        c.delivery.idle_poll_ms = 20;
        adjust(c);
    })
    .await
}

/// A clock that only moves when the test steps it.
#[derive(Debug)]
struct SteppedClock(AtomicI64);

impl SteppedClock {
    fn step(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

async fn subscribe(app: &TestApp, body: Value) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/subscriptions", app.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "create subscription");
    response.json().await.unwrap()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    app.client
        .get(format!("{}{path}", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `done` every 10 ms until it holds; fails the test with `what` after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the outbox holds at least `n` change events.
async fn wait_for_change_events(app: &TestApp, n: usize) {
    let store = app.db.store().await;
    eventually("events not processed", Duration::from_secs(20), || async {
        store.change_events_after(0, 1000).await.unwrap().len() >= n
    })
    .await;
}

/// Posts `versions` versions of each of `users` users, in version order.
async fn post_users(app: &TestApp, users: &[i64], versions: i64) {
    for second in 1..=versions {
        for id in users {
            let (status, _) = app
                .post_canvas(user_event(*id, second).to_string(), "application/json")
                .await;
            assert_eq!(status, 200);
        }
    }
}

/// Per subject, the sequences of the accepted requests; asserts no webhook-id twice.
fn accepted_by_subject(received: &[Received]) -> BTreeMap<String, Vec<i64>> {
    let mut ids = HashSet::new();
    let mut by_subject: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in received {
        assert!(
            ids.insert(r.id.clone()),
            "webhook-id {} accepted twice",
            r.id
        );
        let event = r.event();
        assert_eq!(
            event["id"].as_str(),
            Some(r.id.as_str()),
            "webhook-id is the CloudEvent id"
        );
        let sequence: i64 = event["sequence"].as_str().unwrap().parse().unwrap();
        by_subject
            .entry(event["subject"].as_str().unwrap().to_owned())
            .or_default()
            .push(sequence);
    }
    by_subject
}

/// Verifies every request with the `standardwebhooks` Python package.
fn verify_with_python(secret: &str, received: &[Received]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.json");
    let requests: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({"body": r.body, "headers": {
                "webhook-id": r.id, "webhook-timestamp": r.timestamp,
                "webhook-signature": r.signature,
            }})
        })
        .collect();
    std::fs::write(&file, serde_json::to_vec(&requests).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret, path = sys.argv[1], sys.argv[2]
wh = Webhook(secret)
n = 0
for r in json.load(open(path)):
    wh.verify(r["body"], r["headers"])
    n += 1
try:
    bad = dict(r["headers"]); wh.verify(r["body"] + " ", bad)
    print("tampered body verified"); sys.exit(3)
except Exception:
    pass
print(n)
"#;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(secret)
        .arg(&file)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'standardwebhooks'") {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but the standardwebhooks Python package is missing"
        );
        eprintln!("standardwebhooks not installed (pip install standardwebhooks): not verified");
        return;
    }
    assert!(
        out.status.success(),
        "python verify failed: {stdout}{stderr}"
    );
    assert_eq!(stdout.trim(), received.len().to_string());
}

both_backends!(
    backlog_drains_in_order_after_an_outage_and_holds_up_no_one,
    exhausted_events_block_or_dead_letter_until_retried,
    failing_endpoint_is_disabled_after_the_window,
    subscriptions_api_manages_and_protects,
    a_failing_subject_holds_up_no_other_subject,
    subjects_leave_the_fast_path_on_failure_and_come_back_in_order,
    a_subscription_added_with_start_now_gets_only_later_events,
    retry_after_holds_every_subject_of_the_subscription,
    a_pull_only_subscription_reads_its_events_with_a_cursor,
    a_flood_to_a_slow_subscriber_does_not_starve_retries,
    type_globs_filter_what_a_subscriber_gets,
    replay_redelivers_a_window_with_the_same_ids,
    a_paused_clock_holds_retry_timers_and_leases_until_stepped,
);

/// `coursewire replay --subscription NAME` sends a window's change events to one subscriber
/// again, with the same webhook-ids and in order per subject; others get nothing again.
async fn replay_redelivers_a_window_with_the_same_ids(db: TestDb) {
    let first = Receiver::start(200, Duration::ZERO).await;
    let other = Receiver::start(200, Duration::ZERO).await;
    let app = spawn_app(db, |_| {}).await;
    subscribe(&app, json!({"name": "first", "url": first.url})).await;
    subscribe(&app, json!({"name": "other", "url": other.url})).await;
    post_users(&app, &[1, 2, 3], 3).await;
    first.wait_accepted(9, Duration::from_secs(30)).await;
    other.wait_accepted(9, Duration::from_secs(30)).await;
    let original: Vec<String> = first.accepted().iter().map(|r| r.id.clone()).collect();

    let replay = |extra: &[&str]| {
        let mut args = vec!["--subscription", "first"];
        args.extend_from_slice(extra);
        common::json_report(&common::replay_everything(&app.db.url, &args))
    };
    let dry = replay(&["--dry-run"]);
    assert_eq!(
        dry,
        json!({"mode": "subscription", "dry_run": true, "matched": 9})
    );
    let filtered = replay(&["--dry-run", "--types", "edu.canvas.course.*"]);
    assert_eq!(filtered["matched"], 0);
    let queued = replay(&[]);
    assert_eq!(queued["queued"], 9);

    first.wait_accepted(18, Duration::from_secs(30)).await;
    let again: Vec<Received> = first.accepted()[9..].to_vec();
    let mut resent: Vec<String> = again.iter().map(|r| r.id.clone()).collect();
    let mut expected = original.clone();
    resent.sort();
    expected.sort();
    assert_eq!(
        resent, expected,
        "the same events, with the same webhook-ids"
    );
    for (subject, sequences) in accepted_by_subject(&again) {
        assert_eq!(sequences, vec![1, 2, 3], "{subject}: re-delivered in order");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        other.accepted().len(),
        9,
        "other subscribers are not re-sent anything"
    );
    app.stop().await.unwrap();
}

async fn a_failing_subject_holds_up_no_other_subject(db: TestDb) {
    let receiver = Receiver::start(200, Duration::ZERO).await;
    *receiver.fail_subject.lock().unwrap() = Some("user/1".into());
    let app = spawn_app(db, |_| {}).await;
    subscribe(
        &app,
        json!({"name": "one", "url": receiver.url, "retry_schedule_ms": vec![50; 100]}),
    )
    .await;
    post_users(&app, &[1, 2, 3], 4).await;
    // Every other subject is delivered in full while user/1 keeps failing.
    receiver.wait_accepted(8, Duration::from_secs(30)).await;
    let by_subject = accepted_by_subject(&receiver.accepted());
    assert!(!by_subject.contains_key("user/1"));
    assert_eq!(by_subject["user/2"], vec![1, 2, 3, 4]);
    assert_eq!(by_subject["user/3"], vec![1, 2, 3, 4]);
    // user/1's lane may not have made its first attempt yet when the others are done.
    let tried_user_1 = || -> HashSet<i64> {
        receiver
            .all()
            .iter()
            .filter(|r| r.event()["subject"] == "user/1")
            .map(|r| r.event()["sequence"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let mut tried = tried_user_1();
    for _ in 0..200 {
        if !tried.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        tried = tried_user_1();
    }
    assert_eq!(
        tried,
        HashSet::from([1]),
        "only the head of user/1 is tried"
    );
    // What an operator sees: user/1 is the failing subject, with its error, and the
    // subscription lags.
    let status = get_json(&app, "/api/v1/subscriptions/one").await;
    let failing = status["failing_subjects"].as_array().unwrap();
    assert_eq!(failing.len(), 1, "{status}");
    assert_eq!(failing[0]["subject"], "user/1");
    assert!(failing[0]["attempts"].as_i64().unwrap() >= 1, "{status}");
    assert!(
        failing[0]["last_error"].as_str().unwrap().contains("503"),
        "{status}"
    );
    assert!(status["lag_seconds"].as_f64().is_some(), "{status}");
    assert!(status["cursor"].as_i64().unwrap() > 0, "{status}");
    *receiver.fail_subject.lock().unwrap() = None;
    receiver.wait_accepted(12, Duration::from_secs(30)).await;
    assert_eq!(
        accepted_by_subject(&receiver.accepted())["user/1"],
        vec![1, 2, 3, 4]
    );
    app.stop().await.unwrap();
}

/// A subscriber that fails every third request: each failure sends its subject to a lane
/// (retried on the schedule) and the subject's later events follow it there; a lane that has
/// caught up is deleted and the subject goes back to the cursor. Through all of it every
/// subscriber sees each subject in order, once, and no lane is left at the end.
async fn subjects_leave_the_fast_path_on_failure_and_come_back_in_order(db: TestDb) {
    let receiver = Receiver::start(200, Duration::ZERO).await;
    receiver.fail_every.store(3, Ordering::SeqCst);
    let steady = Receiver::start(200, Duration::ZERO).await;
    let app = spawn_app(db, |_| {}).await;
    for (name, url) in [("flaky", &receiver.url), ("steady", &steady.url)] {
        subscribe(
            &app,
            json!({"name": name, "url": url, "retry_schedule_ms": vec![20; 100]}),
        )
        .await;
    }
    let users = [1, 2, 3, 4, 5, 6];
    // In bursts with pauses, so that lanes catch up (and go) between them.
    for burst in 0..5 {
        for second in burst * 3 + 1..=burst * 3 + 3 {
            for id in users {
                let (status, _) = app
                    .post_canvas(user_event(id, second).to_string(), "application/json")
                    .await;
                assert_eq!(status, 200);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let total = users.len() * 15;
    receiver.wait_accepted(total, Duration::from_secs(60)).await;
    steady.wait_accepted(total, Duration::from_secs(60)).await;
    let every: Vec<i64> = (1..=15).collect();
    for r in [&receiver, &steady] {
        let by_subject = accepted_by_subject(&r.accepted());
        for id in users {
            assert_eq!(by_subject[&format!("user/{id}")], every, "user/{id}");
        }
    }
    assert!(
        receiver.all().len() > total,
        "some requests failed and were retried"
    );
    assert_eq!(
        steady.all().len(),
        total,
        "the steady one got each event once"
    );
    let store = app.db.store().await;
    let flaky = store.subscription("flaky").await.unwrap().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        for id in users {
            if let Some(lane) = store.lane(flaky.id, &format!("user/{id}")).await.unwrap() {
                left.push(lane);
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lanes left after catching up: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!store.attempts(flaky.id).await.unwrap().is_empty());
    app.stop().await.unwrap();
}

/// `start: now` skips what the outbox already holds; the default starts from its beginning.
async fn a_subscription_added_with_start_now_gets_only_later_events(db: TestDb) {
    let (early, late) = (
        Receiver::start(200, Duration::ZERO).await,
        Receiver::start(200, Duration::ZERO).await,
    );
    let app = spawn_app(db, |_| {}).await;
    post_users(&app, &[1, 2], 2).await;
    wait_for_change_events(&app, 4).await;
    subscribe(&app, json!({"name": "early", "url": early.url})).await;
    subscribe(
        &app,
        json!({"name": "late", "url": late.url, "start": "now"}),
    )
    .await;
    let response = app
        .client
        .post(format!("{}/api/v1/subscriptions", app.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "odd", "url": late.url, "start": "tomorrow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422, "a bad start is refused");
    for id in [1, 2] {
        let (status, _) = app
            .post_canvas(user_event(id, 3).to_string(), "application/json")
            .await;
        assert_eq!(status, 200);
    }
    early.wait_accepted(6, Duration::from_secs(20)).await;
    late.wait_accepted(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let by_subject = accepted_by_subject(&late.accepted());
    assert_eq!(by_subject["user/1"], vec![3]);
    assert_eq!(by_subject["user/2"], vec![3]);
    assert_eq!(
        accepted_by_subject(&early.accepted())["user/1"],
        vec![1, 2, 3]
    );
    app.stop().await.unwrap();
}

/// A subscriber answering 429 with `Retry-After: 1` is left alone for that second: not only
/// the subject that got the answer, every subject of the subscription.
async fn retry_after_holds_every_subject_of_the_subscription(db: TestDb) {
    let receiver = Receiver::start(429, Duration::ZERO).await;
    *receiver.retry_after.lock().unwrap() = Some("1".into());
    let app = spawn_app(db, |_| {}).await;
    subscribe(
        &app,
        json!({"name": "busy", "url": receiver.url, "retry_schedule_ms": vec![50; 100]}),
    )
    .await;
    post_users(&app, &[1], 1).await;
    let store = app.db.store().await;
    let sub = store.subscription("busy").await.unwrap().unwrap();
    // The failed attempt is recorded after its answer was read (and the hold set).
    eventually("no attempt", Duration::from_secs(20), || async {
        !store.attempts(sub.id).await.unwrap().is_empty()
    })
    .await;
    *receiver.retry_after.lock().unwrap() = None;
    receiver.set_status(200);
    post_users(&app, &[2, 3, 4], 1).await;
    receiver.wait_accepted(4, Duration::from_secs(30)).await;
    let all = receiver.all();
    let refused = &all[0];
    assert_eq!(refused.status, 429);
    for r in &all[1..] {
        let after = r.at.duration_since(refused.at);
        assert!(
            after >= Duration::from_millis(950),
            "{} came {after:?} after the 429",
            r.event()["subject"]
        );
    }
    app.stop().await.unwrap();
}

/// `GET /api/v1/subscriptions/{name}/events`: a pull-only subscription (no URL) pages
/// through the events its types select with `after`/`next_after`, long-polls for the next
/// one, and each read acknowledges what came before it (its lag goes to none).
async fn a_pull_only_subscription_reads_its_events_with_a_cursor(db: TestDb) {
    let app = spawn_app(db, |_| {}).await;
    let created = subscribe(
        &app,
        json!({"name": "puller", "types": ["edu.canvas.user.updated"]}),
    )
    .await;
    assert_eq!(created["url"], "");
    post_users(&app, &[1, 2], 3).await;
    let store = app.db.store().await;
    wait_for_change_events(&app, 6).await;
    let shared = &app;
    let page = |after: i64, limit: i64, wait: u64| async move {
        let path =
            format!("/api/v1/subscriptions/puller/events?after={after}&limit={limit}&wait={wait}");
        get_json(shared, &path).await
    };
    let first = page(0, 3, 0).await;
    let second = page(first["next_after"].as_i64().unwrap(), 3, 0).await;
    let mut seen: Vec<(String, i64)> = Vec::new();
    for body in [&first, &second] {
        for event in body["events"].as_array().unwrap() {
            assert_eq!(event["type"], "edu.canvas.user.updated", "{event}");
            seen.push((
                event["subject"].as_str().unwrap().into(),
                event["sequence"].as_str().unwrap().parse().unwrap(),
            ));
        }
    }
    assert_eq!(first["events"].as_array().unwrap().len(), 3);
    seen.sort();
    let want: Vec<(String, i64)> = ["user/1", "user/2"]
        .iter()
        .flat_map(|s| [2, 3].map(|q| (s.to_string(), q)))
        .collect();
    assert_eq!(seen, want, "every update once, nothing else");
    let end = second["next_after"].as_i64().unwrap();
    let empty = page(end, 3, 0).await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["next_after"], end);

    // A long poll returns as soon as a selected event arrives.
    let started = std::time::Instant::now();
    let (polled, ()) = tokio::join!(page(end, 10, 10), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = app
            .post_canvas(user_event(1, 4).to_string(), "application/json")
            .await;
        assert_eq!(status, 200);
    });
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(polled["events"][0]["subject"], "user/1", "{polled}");
    let sequence = polled["events"][0]["sequence"].as_str().unwrap();
    assert_eq!(sequence.parse::<i64>().unwrap(), 4, "{polled}");

    // Reading past it acknowledges it: nothing is behind.
    let lag = |backlog: Vec<(String, Option<i64>)>| {
        backlog.into_iter().find(|(n, _)| n == "puller").unwrap().1
    };
    assert!(lag(store.delivery_backlog().await.unwrap()).is_some());
    page(polled["next_after"].as_i64().unwrap(), 10, 0).await;
    assert_eq!(lag(store.delivery_backlog().await.unwrap()), None);

    let missing = app
        .client
        .get(format!("{}/api/v1/subscriptions/nobody/events", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let anonymous = app
        .client
        .get(format!("{}/api/v1/subscriptions/puller/events", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    app.stop().await.unwrap();
}

/// Eight permits; a subscriber that holds every request for 3 s takes all the pumps' share,
/// and more events queue behind it. Another subscriber's failed subject is still retried at
/// once, from the lanes' reserve, instead of waiting for the slow one's requests to end.
async fn a_flood_to_a_slow_subscriber_does_not_starve_retries(db: TestDb) {
    let slow = Receiver::start(200, Duration::ZERO).await;
    *slow.hold.lock().unwrap() = Duration::from_secs(3);
    let flaky = Receiver::start(200, Duration::ZERO).await;
    *flaky.fail_subject.lock().unwrap() = Some("user/1".into());
    let app = spawn_app(db, |c| c.delivery.concurrency = 8).await;
    // The retry is due after the flood has taken every permit it can.
    for (name, url) in [("slow", &slow.url), ("flaky", &flaky.url)] {
        subscribe(
            &app,
            json!({"name": name, "url": url, "retry_schedule_ms": vec![600; 100]}),
        )
        .await;
    }
    post_users(&app, &[1], 1).await;
    eventually("flaky never tried", Duration::from_secs(20), || async {
        !flaky.all().is_empty()
    })
    .await;
    *flaky.fail_subject.lock().unwrap() = None;
    let users: Vec<i64> = (2..=12).collect();
    post_users(&app, &users, 1).await;
    let cleared = std::time::Instant::now();
    let retried = || {
        flaky
            .accepted()
            .into_iter()
            .find(|r| r.event()["subject"] == "user/1")
    };
    eventually("user/1 never retried", Duration::from_secs(20), || async {
        retried().is_some()
    })
    .await;
    let first = retried().expect("seen above");
    assert!(
        first.at.duration_since(cleared) < Duration::from_millis(1500),
        "the retry waited {:?}, behind the slow subscriber",
        first.at.duration_since(cleared)
    );
    slow.wait_accepted(12, Duration::from_secs(60)).await;
    flaky.wait_accepted(12, Duration::from_secs(60)).await;
    app.stop().await.unwrap();
}

async fn type_globs_filter_what_a_subscriber_gets(db: TestDb) {
    let updates = Receiver::start(200, Duration::ZERO).await;
    let all = Receiver::start(200, Duration::ZERO).await;
    let app = spawn_app(db, |_| {}).await;
    subscribe(
        &app,
        json!({"name": "updates", "url": updates.url, "types": ["edu.canvas.*.updated"]}),
    )
    .await;
    subscribe(&app, json!({"name": "all", "url": all.url})).await;
    post_users(&app, &[5, 6], 3).await;
    all.wait_accepted(6, Duration::from_secs(30)).await;
    updates.wait_accepted(4, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let by_subject = accepted_by_subject(&updates.accepted());
    for subject in ["user/5", "user/6"] {
        assert_eq!(by_subject[subject], vec![2, 3], "{subject}: only updates");
    }
    assert!(
        updates
            .accepted()
            .iter()
            .all(|r| r.event()["type"] == "edu.canvas.user.updated")
    );
    app.stop().await.unwrap();
}

async fn backlog_drains_in_order_after_an_outage_and_holds_up_no_one(db: TestDb) {
    let down = Receiver::start(503, Duration::ZERO).await;
    *down.retry_after.lock().unwrap() = Some("0".into());
    let up = Receiver::start(200, Duration::ZERO).await;
    let app = spawn_app(db, |_| {}).await;
    let schedule: Vec<u64> = vec![50; 100];
    subscribe(
        &app,
        json!({"name": "down", "url": down.url, "retry_schedule_ms": schedule}),
    )
    .await;
    let created = subscribe(&app, json!({"name": "up", "url": up.url})).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let users = [1, 2, 3, 4];
    post_users(&app, &users, 5).await;
    let total = users.len() * 5;
    // The healthy subscriber gets everything while the other is down.
    up.wait_accepted(total, Duration::from_secs(30)).await;
    assert!(down.accepted().is_empty());
    assert!(!down.all().is_empty(), "the down subscriber was tried");
    // The down subscriber comes back: its backlog drains.
    tokio::time::sleep(Duration::from_millis(300)).await;
    down.set_status(200);
    down.wait_accepted(total, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    for receiver in [&up, &down] {
        let by_subject = accepted_by_subject(&receiver.accepted());
        assert_eq!(by_subject.len(), users.len());
        for (subject, sequences) in &by_subject {
            assert_eq!(sequences, &vec![1, 2, 3, 4, 5], "{subject}: order, gaps");
        }
        // Never a later sequence of a subject before an earlier one was accepted.
        let mut acked: BTreeMap<String, i64> = BTreeMap::new();
        for r in receiver.all() {
            let event = r.event();
            let subject = event["subject"].as_str().unwrap().to_owned();
            let sequence: i64 = event["sequence"].as_str().unwrap().parse().unwrap();
            let last = acked.get(&subject).copied().unwrap_or(0);
            assert!(
                sequence <= last + 1,
                "{subject}: {sequence} sent before {} acked",
                last + 1
            );
            assert!(
                sequence >= last,
                "{subject}: {sequence} re-sent after acknowledgment"
            );
            if (200..300).contains(&r.status) {
                acked.insert(subject, sequence);
            }
        }
    }
    verify_with_python(&secret, &up.accepted());

    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"coursewire_delivery_deliveries_total{subscription="down",outcome="failed"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("coursewire_delivery_latency_seconds_count"));
    assert!(
        metrics.contains(r#"coursewire_delivery_lag_seconds{subscription="up"} 0.0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"coursewire_delivery_attempts_total{subscription="up"} 20"#),
        "{metrics}"
    );
    app.stop().await.unwrap();
}

async fn exhausted_events_block_or_dead_letter_until_retried(db: TestDb) {
    let blocked = Receiver::start(500, Duration::ZERO).await;
    let skipped = Receiver::start(500, Duration::ZERO).await;
    let app = spawn_app(db, |_| {}).await;
    subscribe(
        &app,
        json!({"name": "blocked", "url": blocked.url, "retry_schedule_ms": [10, 10]}),
    )
    .await;
    subscribe(
        &app,
        json!({"name": "skipped", "url": skipped.url, "retry_schedule_ms": [10, 10],
               "on_exhausted": "skip"}),
    )
    .await;
    post_users(&app, &[7], 2).await;
    // skip: each event gets 3 attempts, is dead-lettered, and the lane moves on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while skipped.all().len() < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(skipped.all().len(), 6, "3 attempts for each of 2 events");
    // block: the first event's 3 attempts, and the second never tried.
    let tried: Vec<i64> = blocked
        .all()
        .iter()
        .map(|r| r.event()["sequence"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(tried, vec![1, 1, 1]);

    blocked.set_status(200);
    skipped.set_status(200);
    for name in ["blocked", "skipped"] {
        let response = app
            .client
            .post(format!("{}/api/v1/subscriptions/{name}/retry", app.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    blocked.wait_accepted(2, Duration::from_secs(20)).await;
    skipped.wait_accepted(2, Duration::from_secs(20)).await;
    assert_eq!(
        accepted_by_subject(&blocked.accepted())["user/7"],
        vec![1, 2],
        "the blocked lane resumes in order"
    );
    let mut dead: Vec<i64> = accepted_by_subject(&skipped.accepted())["user/7"].clone();
    dead.sort();
    assert_eq!(dead, vec![1, 2], "dead letters are delivered on retry");
    let store = app.db.store().await;
    let skipped_sub = store.subscription("skipped").await.unwrap().unwrap();
    let letters = store.dead_letters(skipped_sub.id).await.unwrap();
    assert_eq!(letters.len(), 2);
    assert!(
        letters.iter().all(|l| l.state == "delivered"),
        "{letters:?}"
    );
    let attempts = store.attempts(skipped_sub.id).await.unwrap();
    assert_eq!(
        attempts.len(),
        8,
        "3 + 3 failed, then 2 re-sends: {attempts:?}"
    );
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.outcome.as_deref() == Some("delivered"))
            .count(),
        2
    );
    assert!(attempts.iter().all(|a| a.finished_at_ms.is_some()));
    app.stop().await.unwrap();
}

async fn failing_endpoint_is_disabled_after_the_window(db: TestDb) {
    let failing = Receiver::start(503, Duration::ZERO).await;
    let app = spawn_app(db, |c| c.delivery.disable_after_seconds = 1).await;
    subscribe(
        &app,
        json!({"name": "flaky", "url": failing.url, "retry_schedule_ms": vec![50; 100]}),
    )
    .await;
    post_users(&app, &[9], 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sub = get_json(&app, "/api/v1/subscriptions/flaky").await;
        if !sub["disabled_at_ms"].is_null() {
            assert!(sub["disabled_reason"].as_str().unwrap().contains("failing"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never disabled: {sub}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = failing.all().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        failing.all().len(),
        attempts,
        "a disabled endpoint is not called"
    );
    // Retry re-enables it.
    failing.set_status(200);
    let response = app
        .client
        .post(format!("{}/api/v1/subscriptions/flaky/retry", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["retried"]["re_enabled"], true);
    failing.wait_accepted(1, Duration::from_secs(10)).await;
    app.stop().await.unwrap();
}

async fn subscriptions_api_manages_and_protects(db: TestDb) {
    let app = spawn_app(db, |c| c.delivery.enabled = false).await;
    let url = format!("{}/api/v1/subscriptions", app.base);
    let refused = app.client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let created = subscribe(
        &app,
        json!({"name": "a", "url": "https://example.test/h", "types": ["edu.canvas.user.*"]}),
    )
    .await;
    assert_eq!(created["name"], "a");
    assert_eq!(created["types"], json!(["edu.canvas.user.*"]));
    assert_eq!(created["on_exhausted"], "block");
    let again = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": "a", "url": "https://example.test/h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let bad = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"name": "b", "url": "https://example.test/h", "secret": "plain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let listed = get_json(&app, "/api/v1/subscriptions").await;
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
    assert!(
        listed.to_string().find("whsec_").is_none(),
        "secrets are never listed"
    );
    for (action, paused) in [("pause", true), ("resume", false)] {
        app.client
            .post(format!("{url}/a/{action}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            get_json(&app, "/api/v1/subscriptions/a").await["paused"],
            paused
        );
    }
    let removed = app
        .client
        .delete(format!("{url}/a"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status().as_u16(), 204);
    let gone = app
        .client
        .get(format!("{url}/a"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    app.stop().await.unwrap();
}

/// The `coursewire subscriptions` command line.
#[tokio::test]
async fn subscriptions_cli_adds_lists_pauses_retries_removes() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
            .args(["subscriptions"])
            .args(args)
            .env("COURSEWIRE_DATABASE_URL", &db.url)
            .envs(common::LOOPBACK_SUBSCRIBERS)
            .output()
            .expect("run coursewire");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "add",
        "--name",
        "lms",
        "--url",
        "https://lms.test/hook",
        "--types",
        "edu.canvas.enrollment.*,edu.canvas.user.*",
        "--retry-schedule",
        "1s,5m",
    ]);
    assert!(ok, "{err}");
    let added: Value = serde_json::from_str(&out).unwrap();
    assert!(
        added["secret"].as_str().unwrap().starts_with("whsec_"),
        "{out}"
    );
    assert_eq!(added["retry_schedule_ms"], json!([1000, 300000]));
    let (ok, _, err) = run(&["add", "--name", "lms", "--url", "https://lms.test/hook"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, _) = run(&["list"]);
    assert!(
        ok && out.contains("\"lms\"") && !out.contains("whsec_"),
        "{out}"
    );
    assert!(run(&["pause", "lms"]).0);
    let (_, out, _) = run(&["list"]);
    assert!(out.contains("\"paused\": true"), "{out}");
    assert!(run(&["resume", "lms"]).0);
    let (ok, out, _) = run(&["show", "lms"]);
    let shown: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        ok && shown["mode"] == "push" && shown["failing_subjects"] == json!([]),
        "{out}"
    );
    assert!(!run(&["show", "nobody"]).0);
    let (ok, out, _) = run(&["retry", "lms"]);
    assert!(ok && out.contains("\"lanes\":0"), "{out}");
    assert!(run(&["remove", "lms"]).0);
    let (ok, _, err) = run(&["remove", "lms"]);
    assert!(!ok && err.contains("no subscription"), "{err}");
}

/// SIGKILL while a request is with the subscriber: after a restart the event is sent again
/// with the same webhook-id, and nothing is lost.
mod crash {
    use super::*;
    use common::ServeProcess;

    async fn start(db_url: &str, port: u16) -> ServeProcess {
        let mut env = vec![
            ("COURSEWIRE_CANVAS_JWKS_URL", "http://127.0.0.1:9/jwks"),
            ("COURSEWIRE_DELIVERY_TIMEOUT_SECONDS", "2"),
            ("COURSEWIRE_PROCESSOR_LEASE_SECONDS", "1"),
        ];
        env.extend(common::UNSIGNED_FROM_ANYONE);
        ServeProcess::start(db_url, port, &env).await
    }

    async fn killed_while_delivering(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        // The first request is held for a long time: the process is killed while it waits.
        let receiver = Receiver::start(200, Duration::from_secs(60)).await;
        let add = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
            .args([
                "subscriptions",
                "add",
                "--name",
                "crash",
                "--url",
                &receiver.url,
            ])
            .args(["--retry-schedule", "50ms,50ms,50ms,50ms,50ms"])
            .env("COURSEWIRE_DATABASE_URL", &db.url)
            .envs(common::LOOPBACK_SUBSCRIBERS)
            .output()
            .unwrap();
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );

        let port = ServeProcess::free_port();
        let serve = start(&db.url, port).await;
        let client = coursewire::app::http_client().unwrap();
        for second in 1..=3 {
            for id in [11, 12] {
                let response = client
                    .post(format!("http://127.0.0.1:{port}/hooks/canvas"))
                    .header("content-type", "application/json")
                    .body(user_event(id, second).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while receiver.arrivals.load(Ordering::SeqCst) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no delivery started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let held = receiver.all()[0].clone();
        serve.sigkill();

        let _serve = start(&db.url, port).await;
        receiver.wait_accepted(6, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // At least once: a request answered just as the process died may come again; a
        // receiver de-duplicates on webhook-id, and so does this check.
        let mut seen = HashSet::new();
        let accepted: Vec<Received> = receiver
            .accepted()
            .into_iter()
            .filter(|r| seen.insert(r.id.clone()))
            .collect();
        let by_subject = accepted_by_subject(&accepted);
        assert_eq!(by_subject["user/11"], vec![1, 2, 3]);
        assert_eq!(by_subject["user/12"], vec![1, 2, 3]);
        let resent = accepted
            .iter()
            .find(|r| r.id == held.id)
            .expect("the event in flight at the kill was sent again");
        assert_eq!(resent.body, held.body, "same event, same webhook-id");
        let store = db.store().await;
        let ids: HashSet<String> = store
            .change_events_after(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let delivered: HashSet<String> = accepted.iter().map(|r| r.id.clone()).collect();
        assert_eq!(delivered, ids, "nothing lost");
        // What made the re-send possible: the cursor was still before the held event (an
        // event in flight is never acknowledged by an advance), and it is past all now.
        let sub = store.subscription("crash").await.unwrap().unwrap();
        let newest = store
            .change_events_after(0, 1000)
            .await
            .unwrap()
            .last()
            .unwrap()
            .position;
        assert!(
            store.subscriptions_behind().await.unwrap().is_empty(),
            "the cursor has not reached the newest event, at {newest}"
        );
        assert!(
            store.attempts(sub.id).await.unwrap().is_empty(),
            "nothing failed, so no attempt was recorded"
        );
    }

    /// Two `serve` processes on one PostgreSQL, events posted to both, a subscriber that fails
    /// every fourth request: one process pumps the subscription at a time (its cursor's
    /// lease), lanes go to whichever claims them, and the subscriber still sees every subject
    /// in order, each event once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_serve_processes_deliver_each_event_once_in_order() {
        let Some(db) = TestDb::new(Backend::Postgres).await else {
            return;
        };
        let receiver = Receiver::start(200, Duration::ZERO).await;
        receiver.fail_every.store(4, Ordering::SeqCst);
        let add = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
            .args([
                "subscriptions",
                "add",
                "--name",
                "two",
                "--url",
                &receiver.url,
            ])
            .args([
                "--retry-schedule",
                "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
            ])
            .env("COURSEWIRE_DATABASE_URL", &db.url)
            .envs(common::LOOPBACK_SUBSCRIBERS)
            .output()
            .unwrap();
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let ports = [ServeProcess::free_port(), ServeProcess::free_port()];
        let _a = start(&db.url, ports[0]).await;
        let _b = start(&db.url, ports[1]).await;
        let client = coursewire::app::http_client().unwrap();
        let users = [21, 22, 23, 24, 25, 26, 27, 28];
        for second in 1..=5 {
            for (n, id) in users.iter().enumerate() {
                let port = ports[n % 2];
                let response = client
                    .post(format!("http://127.0.0.1:{port}/hooks/canvas"))
                    .header("content-type", "application/json")
                    .body(user_event(*id, second).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        receiver
            .wait_accepted(users.len() * 5, Duration::from_secs(60))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let by_subject = accepted_by_subject(&receiver.accepted());
        for id in users {
            assert_eq!(
                by_subject[&format!("user/{id}")],
                vec![1, 2, 3, 4, 5],
                "user/{id}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_sigkill_while_delivering_loses_nothing() {
        killed_while_delivering(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_sigkill_while_delivering_loses_nothing() {
        killed_while_delivering(Backend::Postgres).await;
    }
}

mod property {
    //! For random interleavings of events on several subjects, random failure patterns of
    //! the subscriber and a pause at a random point, the subscriber sees each subject's
    //! sequences 1, 2, 3 … in order, with no gap and no `webhook-id` twice; whatever went
    //! through lanes and back.

    use super::*;
    use proptest::prelude::*;

    const USERS: usize = 5;

    async fn run_case(posts: Vec<(usize, bool)>, mut pattern: Vec<bool>, pause_at: usize) {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let receiver = Receiver::start(200, Duration::ZERO).await;
        pattern.push(false); // some request in each cycle gets through
        *receiver.fail_pattern.lock().unwrap() = pattern;
        let app = spawn_app(db, |_| {}).await;
        subscribe(
            &app,
            json!({"name": "p", "url": receiver.url, "retry_schedule_ms": vec![10; 100]}),
        )
        .await;
        let mut versions = [0i64; USERS];
        for (step, (user, pause_after)) in posts.iter().enumerate() {
            let user = user % USERS;
            versions[user] += 1;
            let (status, _) = app
                .post_canvas(
                    user_event(user as i64 + 1, versions[user]).to_string(),
                    "application/json",
                )
                .await;
            assert_eq!(status, 200);
            if *pause_after {
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            if step == pause_at {
                for action in ["pause", "resume"] {
                    let response = app
                        .client
                        .post(format!("{}/api/v1/subscriptions/p/{action}", app.base))
                        .bearer_auth(TOKEN)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let total: usize = versions.iter().map(|v| *v as usize).sum();
        receiver.wait_accepted(total, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let by_subject = accepted_by_subject(&receiver.accepted());
        for (user, last) in versions.iter().enumerate() {
            let subject = format!("user/{}", user + 1);
            let want: Vec<i64> = (1..=*last).collect();
            let got = by_subject.get(&subject).cloned().unwrap_or_default();
            assert_eq!(got, want, "{subject}");
        }
        app.stop().await.unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn each_subject_arrives_in_order_once_whatever_fails(
            posts in prop::collection::vec((0..USERS, prop::bool::weighted(0.2)), 1..40),
            pattern in prop::collection::vec(prop::bool::weighted(0.35), 0..7),
            pause_at in 0..60usize,
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(run_case(posts, pattern, pause_at));
        }
    }
}

/// `serve` on an injected clock that stands still: a failed delivery is not retried, and a lane
/// lease left by a vanished process is not taken over, however long the test waits, until the
/// test steps the clock; then both happen.
async fn a_paused_clock_holds_retry_timers_and_leases_until_stepped(db: TestDb) {
    let clock = Arc::new(SteppedClock(AtomicI64::new(1_788_000_000_000)));
    let store = db.store().await;
    let now = clock.now_ms();
    let vanished = [Lane::Subject("user/2".into())];
    let held = store.claim_lanes(&vanished, "vanished", now, now + 30_000);
    assert_eq!(
        held.await.unwrap(),
        vanished,
        "a vanished process holds user/2"
    );
    let receiver = Receiver::start(503, Duration::ZERO).await;
    let app = spawn_app_on(db, clock.clone(), |_| {}).await;
    subscribe(
        &app,
        json!({"name": "paused", "url": receiver.url, "retry_schedule_ms": [100, 100, 100]}),
    )
    .await;
    post_users(&app, &[1, 2], 1).await;
    eventually("the first attempt", Duration::from_secs(20), || async {
        !receiver.all().is_empty()
    })
    .await;

    // On a running clock user/1 would be retried every 100 ms and user/2 processed at once.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        receiver.all().len(),
        1,
        "no retry while the clock stands still"
    );
    assert_eq!(
        store.inbox_depth().await.unwrap().pending,
        1,
        "user/2 waits"
    );

    receiver.set_status(200);
    clock.step(Duration::from_secs(1));
    receiver.wait_accepted(1, Duration::from_secs(20)).await;
    assert_eq!(receiver.accepted()[0].event()["subject"], "user/1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.inbox_depth().await.unwrap().pending,
        1,
        "the vanished process's lease still runs"
    );

    clock.step(Duration::from_secs(30));
    receiver.wait_accepted(2, Duration::from_secs(20)).await;
    assert_eq!(receiver.accepted()[1].event()["subject"], "user/2");
    app.stop().await.unwrap();
}
