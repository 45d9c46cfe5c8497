//! SIGKILL of `serve` mid-poll: a real `coursewire serve` process following the simulator's
//! clock polls Panopto through a lecture morning and is killed at random moments and
//! restarted; afterwards every session state change is in the inbox, none twice, the poller
//! resumed from its stored cursor each time, and Panopto refused nothing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Backend, ServeProcess, TestDb};
use coursewire::sources::event::SourceEvent;
use sim::config::{PanoptoLimits, ThrottleClock};
use sim::{SimConfig, Simulator};

async fn a_killed_poller_resumes_from_its_cursor_and_reports_each_change_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = SimConfig::small(61).paused();
    config.panopto_limits = PanoptoLimits {
        clock: ThrottleClock::Simulated,
        ..PanoptoLimits::default()
    };
    let sim = Simulator::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    sim.clock().advance(Duration::from_secs(7 * 3600 + 30 * 60));
    sim.tick();
    let store = db.store().await;
    let mut env = common::teaching::panopto_env(&sim, &base);
    env.push(("COURSEWIRE_CLOCK_FOLLOW".into(), base.clone()));
    env.push(("COURSEWIRE_PANOPTO_POLL_LEASE_SECONDS".into(), "1".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let start = || ServeProcess::start(&db.url, ServeProcess::free_port(), &env);

    // 07:30 → 11:30 at 300×: 48 real seconds, the morning's lectures starting and ending.
    let end = sim.clock().now_ms() + 4 * 3_600_000;
    sim.clock().set_speed(300.0);
    sim.clock().resume();
    let mut serve = start().await;
    let mut kills = 0;
    let mut cursors = Vec::new();
    while sim.clock().now_ms() < end - 20 * 60_000 {
        // A random moment: mid-poll, mid-commit or between polls.
        let wait = 3_000 + (uuid::Uuid::new_v4().as_u128() % 5_000) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let before = store.panopto_poller("sessions").await.unwrap();
        serve.sigkill();
        kills += 1;
        cursors.push(before.and_then(|p| p.cursor));
        serve = start().await;
    }
    while sim.clock().now_ms() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sim.clock().pause();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let progress = store
        .panopto_poller("sessions")
        .await
        .unwrap()
        .expect("polled");
    serve.sigterm();
    assert!(kills >= 3, "{kills} kills");

    // The cursor only moved forward across the kills: each start resumed from it.
    let mut last: Option<&String> = None;
    for c in cursors.iter().flatten().chain(progress.cursor.iter()) {
        assert!(
            last.is_none_or(|l| l <= c),
            "cursor went back: {last:?} → {c}"
        );
        last = Some(c);
    }

    // Every state change once, none lost.
    let mut by_subject: BTreeMap<String, Vec<SourceEvent>> = BTreeMap::new();
    for row in store.inbox_after(0, 1_000_000).await.unwrap() {
        if row.source == "panopto" {
            let e: SourceEvent = serde_json::from_slice(&row.body).unwrap();
            by_subject.entry(row.subject.unwrap()).or_default().push(e);
        }
    }
    for (subject, events) in &by_subject {
        for pair in events.windows(2) {
            assert_ne!(pair[0].state, pair[1].state, "{subject}: reported twice");
        }
    }
    let now = sim.clock().now_ms();
    let finished: Vec<(String, i64)> = sim.with_world_read(|w| {
        w.panopto
            .sessions
            .values()
            .filter_map(|s| s.complete_ms.map(|c| (s.id.clone(), c)))
            .filter(|(_, c)| *c < now - 10 * 60_000)
            .collect()
    });
    assert!(!finished.is_empty(), "lectures finished during the run");
    for (id, _) in &finished {
        let events = &by_subject[&format!("recording/{id}")];
        for state in ["Recording", "Processing", "Complete"] {
            assert!(
                events.iter().any(|e| e.state["state"] == state),
                "{id}: {state} never reported across {kills} kills"
            );
        }
    }
    assert_eq!(
        sim.counters().panopto.throttled,
        0,
        "zero 429s across restarts"
    );
}

both_backends!(by_backend: a_killed_poller_resumes_from_its_cursor_and_reports_each_change_once);
