//! The Panopto client against the simulator over real HTTP: the password grant and refresh
//! ahead of expiry, one renewal under concurrency, recovery from revoked tokens, a clear error
//! for a refused password; pacing that keeps a burst (and two clients on one ledger) inside
//! Panopto's windows with zero 429s; retries through an outage and after a 429; and the typed
//! SOAP calls (sessions, recorders, folders, external groups, access).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request as HttpRequest;
use axum::middleware::Next;
use panopto::client::{
    ClientConfig, ClientError, Clock, Credentials, Grantee, Ledger, MemoryLedger, PaceConfig,
    Pacer, PanoptoClient, Priority, SoapAuth, TokenSource, http_client,
};
use sim::config::{PanoptoLimits, ThrottleClock};
use sim::{SimConfig, Simulator};
use tokio::sync::oneshot;

/// A simulator on 127.0.0.1:0 whose token endpoint is counted.
struct Harness {
    sim: Simulator,
    base: String,
    token_posts: Arc<AtomicU64>,
    _stop: oneshot::Sender<()>,
}

fn limits_on_sim_clock(mut c: SimConfig) -> SimConfig {
    c.panopto_limits = PanoptoLimits {
        clock: ThrottleClock::Simulated,
        ..PanoptoLimits::default()
    };
    c
}

impl Harness {
    async fn start(config: SimConfig) -> Harness {
        let sim = Simulator::new(config).expect("simulator builds");
        let token_posts = Arc::new(AtomicU64::new(0));
        let counter = token_posts.clone();
        let app = sim.router().layer(axum::middleware::from_fn(
            move |req: HttpRequest, next: Next| {
                let counter = counter.clone();
                async move {
                    if req.uri().path() == "/Panopto/oauth2/connect/token" {
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
            _stop: tx,
        }
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.sim.clock())
    }

    fn credentials(&self) -> Credentials {
        let c = self.sim.config();
        Credentials {
            token_url: format!("{}/Panopto/oauth2/connect/token", self.base),
            client_id: c.panopto_client_id.clone(),
            client_secret: c.panopto_client_secret.as_str().into(),
            username: c.panopto_username.clone(),
            password: c.panopto_password.as_str().into(),
        }
    }

    fn client_with(&self, creds: Credentials, ledger: Arc<dyn Ledger>) -> PanoptoClient {
        let clock = self.clock();
        let http = http_client(Duration::from_secs(30)).expect("http");
        let auth = SoapAuth::Password {
            user_key: creds.username.clone(),
            password: creds.password.clone(),
        };
        let tokens = TokenSource::password(creds, http, clock.clone());
        let pacer = Arc::new(Pacer::new(PaceConfig::default(), ledger, clock.clone()));
        let mut cfg = ClientConfig::new(&self.base, auth);
        cfg.backoff_base_ms = 200;
        PanoptoClient::new(cfg, tokens, pacer, clock).expect("client")
    }

    fn client(&self) -> PanoptoClient {
        self.client_with(self.credentials(), Arc::new(MemoryLedger::default()))
    }

    fn throttled(&self) -> u64 {
        self.sim.counters().panopto.throttled
    }

    /// Let simulated time run (the pacer waits on it: on a paused clock a fourth request
    /// within a second would wait for ever).
    fn run(&self, speed: f64) {
        self.sim.clock().set_speed(speed);
        self.sim.clock().resume();
    }

    async fn advance(&self, seconds: u64) {
        self.sim.clock().advance(Duration::from_secs(seconds));
        self.sim.tick();
    }
}

/// Some session id of the first teaching day.
async fn a_session(h: &Harness) -> String {
    h.sim
        .ground_truth()
        .sessions
        .first()
        .map(|s| s.id.clone())
        .expect("the first day's lectures are scheduled")
}

#[tokio::test]
async fn the_service_user_logs_on_once_and_refreshes_ahead_of_expiry() {
    let h = Harness::start(limits_on_sim_clock(SimConfig::small(31).paused())).await;
    h.advance(2 * 3600).await;
    h.run(100.0);
    let client = h.client();
    let id = a_session(&h).await;
    // Twenty callers at once on a client that has no token yet: one log-on.
    let calls = (0..20).map(|_| {
        let c = client.clone();
        let id = id.clone();
        async move { c.session(&id, Priority::Poll).await }
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.expect("read").expect("exists").id, id);
    }
    assert_eq!(h.token_posts.load(Ordering::SeqCst), 1);
    let health = client.tokens().health();
    assert_eq!((health.logons, health.refreshes), (1, 0));
    assert!(health.seconds_to_expiry.is_some_and(|s| s > 3_500));

    // 56 minutes later the token has under 5 minutes left: the next calls refresh it, once.
    h.advance(56 * 60).await;
    let calls = (0..10).map(|_| {
        let c = client.clone();
        let id = id.clone();
        async move { c.session(&id, Priority::Poll).await }
    });
    for r in futures::future::join_all(calls).await {
        r.expect("read after refresh");
    }
    assert_eq!(h.token_posts.load(Ordering::SeqCst), 2);
    let health = client.tokens().health();
    assert_eq!((health.logons, health.refreshes), (1, 1));
}

#[tokio::test]
async fn revoked_tokens_are_replaced_by_a_new_log_on_and_counted() {
    let h = Harness::start(limits_on_sim_clock(SimConfig::small(32).paused())).await;
    h.advance(2 * 3600).await;
    h.run(100.0);
    let client = h.client();
    let id = a_session(&h).await;
    client.session(&id, Priority::Poll).await.expect("read");
    assert!(h.sim.revoke_panopto_tokens() >= 1);
    // The next call gets 401, the refresh token is refused, the password logs on again.
    let s = client
        .session(&id, Priority::Poll)
        .await
        .expect("read after revocation");
    assert!(s.is_some());
    let health = client.tokens().health();
    assert_eq!(health.revocations, 1, "{health:?}");
    assert_eq!(health.logons, 2);
    assert!(!health.revoked);
}

#[tokio::test]
async fn a_refused_password_is_a_clear_error_and_fails_fast() {
    let h = Harness::start(SimConfig::small(33).paused()).await;
    let mut creds = h.credentials();
    creds.password = "wrong".into();
    let client = h.client_with(creds, Arc::new(MemoryLedger::default()));
    let err = client
        .folder("00000000-0000-0000-0000-000000000001", Priority::Poll)
        .await
        .expect_err("refused");
    assert!(matches!(err, ClientError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("fix the credentials"), "{err}");
    assert!(!err.to_string().contains("wrong"), "no password in errors");
    assert!(client.tokens().health().revoked);
    // Fails fast: no second log-on attempt within the minute.
    let posts = h.token_posts.load(Ordering::SeqCst);
    assert!(client.folder("x", Priority::Poll).await.is_err());
    assert_eq!(h.token_posts.load(Ordering::SeqCst), posts);
}

/// A burst of `n` reads of `class` from each client, on the running simulated clock.
async fn burst(clients: &[PanoptoClient], id: &str, n: usize) {
    let mut calls = Vec::new();
    for c in clients {
        for _ in 0..n {
            let c = c.clone();
            let id = id.to_owned();
            calls.push(async move { c.session(&id, Priority::Poll).await });
        }
    }
    for r in futures::future::join_all(calls).await {
        r.expect("paced read");
    }
}

#[tokio::test]
async fn a_burst_is_paced_inside_every_window_with_zero_429s() {
    let h = Harness::start(limits_on_sim_clock(SimConfig::small(34).paused())).await;
    h.advance(2 * 3600).await;
    let id = a_session(&h).await;
    let client = h.client();
    client.session(&id, Priority::Poll).await.expect("warm");
    h.run(100.0);
    let started = h.sim.clock().now_ms();
    // 150 reads: more than a minute's 100 and far more than a second's 5.
    burst(std::slice::from_ref(&client), &id, 150).await;
    let took_s = (h.sim.clock().now_ms() - started) as f64 / 1000.0;
    assert_eq!(h.throttled(), 0, "the simulator refused none");
    assert_eq!(client.counts().throttled, 0);
    // Polling may use 60 a minute: 150 needs at least two more minutes, and no more than a
    // little over what the caps allow.
    assert!(
        (120.0..200.0).contains(&took_s),
        "took {took_s} simulated s"
    );
    let headroom = client.pacer().headroom().await.expect("headroom");
    assert_eq!(headroom.len(), 3);
    assert!(headroom.iter().all(|w| w.used <= w.limit));
}

#[tokio::test]
async fn two_clients_sharing_one_ledger_stay_inside_the_api_clients_windows() {
    let h = Harness::start(limits_on_sim_clock(SimConfig::small(35).paused())).await;
    h.advance(2 * 3600).await;
    let id = a_session(&h).await;
    // Two processes on one API client: their own tokens, one shared ledger.
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let a = h.client_with(h.credentials(), ledger.clone());
    let b = h.client_with(h.credentials(), ledger);
    h.run(100.0);
    burst(&[a.clone(), b.clone()], &id, 60).await;
    assert_eq!(h.throttled(), 0);
    assert_eq!(a.counts().throttled + b.counts().throttled, 0);

    // Without the shared ledger, the same burst is refused: the test can fail.
    let c = h.client();
    let d = h.client();
    burst(&[c.clone(), d.clone()], &id, 60).await;
    assert!(
        h.throttled() > 0,
        "two unshared pacers overrun the API client"
    );
    assert!(c.counts().throttled + d.counts().throttled > 0);
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_counted() {
    // A site stricter than the pacer assumes: 2 a second.
    let mut config = limits_on_sim_clock(SimConfig::small(36).paused());
    config.panopto_limits.per_second = 2;
    let h = Harness::start(config).await;
    h.advance(2 * 3600).await;
    let id = a_session(&h).await;
    let client = h.client();
    h.run(50.0);
    burst(std::slice::from_ref(&client), &id, 12).await;
    let counts = client.counts();
    assert!(counts.throttled > 0, "{counts:?}");
    assert_eq!(counts.throttled, h.throttled(), "every 429 is counted");
    assert!(counts.retries >= counts.throttled);
}

#[tokio::test]
async fn an_outage_is_retried_until_panopto_answers_again() {
    let h = Harness::start(limits_on_sim_clock(SimConfig::small(37).paused())).await;
    h.advance(2 * 3600).await;
    let id = a_session(&h).await;
    let client = h.client();
    client.session(&id, Priority::Poll).await.expect("before");
    let now = h.sim.clock().now();
    let mut faults = h.sim.faults();
    faults.panopto.outage = Some(sim::panopto::faults::Window {
        from: Some(now.to_rfc3339()),
        until: Some((now + chrono::Duration::seconds(90)).to_rfc3339()),
    });
    h.sim.set_faults(faults).expect("faults");
    h.run(20.0);
    let s = client
        .session(&id, Priority::Poll)
        .await
        .expect("after the outage");
    assert!(s.is_some());
    let counts = client.counts();
    assert!(
        counts.server_errors >= 1 && counts.retries >= 1,
        "{counts:?}"
    );
    assert!(h.sim.clock().now_ms() >= now.timestamp_millis() + 90_000);
}

#[tokio::test]
async fn soap_calls_read_sessions_recorders_folders_and_manage_groups_and_access() {
    let h = Harness::start(limits_on_sim_clock(SimConfig::small(38).paused())).await;
    h.advance(2 * 3600).await;
    h.run(50.0);
    let gt = h.sim.ground_truth();
    let client = h.client();

    let ids: Vec<String> = gt.sessions.iter().map(|s| s.id.clone()).collect();
    let mut with_deleted = ids.clone();
    with_deleted.push("00000000-0000-0000-0000-00000000dead".into());
    let sessions = client
        .sessions_by_id(&with_deleted, Priority::Poll)
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), ids.len(), "an unknown id is absent");
    assert!(
        sessions
            .iter()
            .all(|s| s.state == panopto::SessionState::Scheduled)
    );

    let recorders = client.recorders(Priority::Poll).await.expect("recorders");
    assert_eq!(recorders.len(), gt.recorders.len());
    let room = recorders[0].external_id.clone().expect("a room");
    let by_room = client
        .recorders_by_external_id(std::slice::from_ref(&room), Priority::Poll)
        .await
        .expect("by external id");
    assert_eq!(by_room.len(), 1);
    assert_eq!(by_room[0].id, recorders[0].id);

    let course = gt.courses[0].id;
    let folders = client
        .folders_by_external_id(&[format!("canvas-sim:{course}")], Priority::Poll)
        .await
        .expect("folders");
    assert_eq!(folders.len(), 1);
    let folder = folders[0].id.clone();

    // An external group of two students, then one more, granted Viewer on the folder.
    let login = |i: usize| format!("canvas-sim\\{}", gt.users[i].login_id);
    let mut guids = Vec::new();
    for i in 0..3 {
        let u = client
            .user_by_key(&login(i), Priority::Write)
            .await
            .expect("user")
            .expect("known");
        guids.push(u.user_id);
    }
    assert!(
        client
            .user_by_key("canvas-sim\\nobody-here", Priority::Write)
            .await
            .expect("lookup")
            .is_none()
    );
    let group = client
        .create_external_group("Section 1", "canvas-sim", "section:test", &guids[..2])
        .await
        .expect("group");
    client
        .change_external_group_members("canvas-sim", "section:test", &guids[2..], true)
        .await
        .expect("add");
    let mut members = client
        .users_in_group(&group.id, Priority::Write)
        .await
        .expect("members");
    members.sort();
    let mut want = guids.clone();
    want.sort();
    assert_eq!(members, want);
    client
        .change_external_group_members("canvas-sim", "section:test", &guids[..1], false)
        .await
        .expect("remove");
    assert_eq!(
        client
            .users_in_group(&group.id, Priority::Write)
            .await
            .expect("members")
            .len(),
        2
    );
    // A second group with the same external id is refused: a fault, not an outage.
    let err = client
        .create_external_group("again", "canvas-sim", "section:test", &[])
        .await
        .expect_err("refused");
    assert!(matches!(err, ClientError::Fault { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(client.counts().retries, 0, "faults are not retried");
    assert_eq!(
        client
            .groups_by_name("Section 1", Priority::Write)
            .await
            .expect("by name")
            .len(),
        1
    );

    // Folders of the term tree inherit access; a course folder takes direct grants.
    match client
        .folder_access_change(&folder, &Grantee::Group(group.id.clone()), "Viewer", true)
        .await
    {
        Ok(()) => {
            let details = client
                .folder_access(&folder, Priority::Write)
                .await
                .expect("details");
            assert!(
                details.groups_with_viewer_access.contains(&group.id),
                "{details:?}"
            );
        }
        Err(ClientError::Fault { message, .. }) => {
            assert!(message.contains("inherits"), "{message}")
        }
        Err(e) => panic!("{e}"),
    }
    let session = client
        .session_access(&ids[0], Priority::Write)
        .await
        .expect("session access");
    assert_eq!(session.session_id, ids[0]);
}
