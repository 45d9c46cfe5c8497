//! Two processes on one Panopto API client: each with its own store connection pool and its
//! own client, counting requests in the one ledger in the database, stay inside Panopto's
//! windows together (the simulator refuses none); and of two pollers on one database, one
//! polls while the other waits, taking over once the first's lease has expired.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestDb};
use coursewire::clock::Clock;
use coursewire::config::Config;
use coursewire::sources::panopto::{PollError, Poller, Settings};
use panopto::client::Priority;
use sim::config::{PanoptoLimits, ThrottleClock};
use sim::{SimConfig, Simulator};

async fn setup(seed: u64) -> (Simulator, Config) {
    let mut c = SimConfig::small(seed).paused();
    c.panopto_limits = PanoptoLimits {
        clock: ThrottleClock::Simulated,
        ..PanoptoLimits::default()
    };
    let sim = Simulator::new(c).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    sim.clock().advance(Duration::from_secs(2 * 3600));
    sim.tick();
    let mut config = Config::load_from(None, &[]).unwrap();
    let s = sim.config();
    config.panopto.url = base;
    config.panopto.client_id = s.panopto_client_id.clone();
    config.panopto.client_secret = coursewire::config::Secret::new(s.panopto_client_secret.clone());
    config.panopto.username = s.panopto_username.clone();
    config.panopto.password = coursewire::config::Secret::new(s.panopto_password.clone());
    (sim, config)
}

async fn two_processes_share_one_budget_and_one_poller(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (sim, config) = setup(71).await;
    let clock: Arc<dyn Clock> = Arc::new(sim.clock());
    // Two processes: two pools on one database, two clients on one API client.
    let (a_store, b_store) = (db.store().await, db.store().await);
    let a =
        coursewire::panopto_api::client(&config.panopto, a_store.clone(), clock.clone()).unwrap();
    let b =
        coursewire::panopto_api::client(&config.panopto, b_store.clone(), clock.clone()).unwrap();
    let session = sim.ground_truth().sessions[0].id.clone();
    sim.clock().set_speed(100.0);
    sim.clock().resume();
    let burst = |c: panopto::client::PanoptoClient, n: usize| {
        let session = session.clone();
        async move {
            for _ in 0..n {
                c.session(&session, Priority::Backfill).await.expect("read");
            }
        }
    };
    // Each sends 4 concurrent streams: more than Panopto allows a second between them.
    let mut streams = Vec::new();
    for c in [&a, &b] {
        for _ in 0..4 {
            streams.push(tokio::spawn(burst(c.clone(), 15)));
        }
    }
    for s in streams {
        s.await.unwrap();
    }
    assert_eq!(
        sim.counters().panopto.throttled,
        0,
        "zero 429s across both processes"
    );
    assert_eq!(a.counts().throttled + b.counts().throttled, 0);
    let used = a.pacer().headroom().await.unwrap();
    assert_eq!(
        used[2].used, 120,
        "both processes' requests are in one ledger: {used:?}"
    );
    assert!(
        used[1].used <= 40,
        "backfill keeps to its half of the usable minute: {used:?}"
    );

    // One poller at a time.
    let settings = || Settings {
        interval_ms: 60_000,
        lease_ms: 120_000,
        first_lookback_ms: 3_600_000,
        recorders_every_ms: 300_000,
    };
    let first = Poller::new(a.clone(), a_store.clone(), clock.clone(), settings());
    let second = Poller::new(b.clone(), b_store.clone(), clock.clone(), settings());
    first.poll_once().await.expect("the first poller polls");
    assert!(matches!(second.poll_once().await, Err(PollError::NotHeld)));
    sim.clock().pause();
    sim.clock().advance(Duration::from_secs(121));
    sim.clock().resume();
    second
        .poll_once()
        .await
        .expect("the lease expired: the second takes over");
    assert!(
        matches!(first.poll_once().await, Err(PollError::NotHeld)),
        "the first is fenced off"
    );
}

both_backends!(by_backend: two_processes_share_one_budget_and_one_poller);
