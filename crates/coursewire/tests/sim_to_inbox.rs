//! The simulated Canvas delivers signed Live Events, as the real one would, to the real service:
//! every delivered event lands in the inbox once, none is refused or quarantined, also across a
//! key rotation and with duplicate deliveries switched on.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Backend, TestApp, TestDb};
use sim::{SimConfig, Simulator};

async fn start_sim() -> (Simulator, String) {
    let sim = Simulator::new(SimConfig::small(11).paused()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    (sim, base)
}

/// Steps the paused clock a minute at a time (duplicates and retries are scheduled in
/// simulated time) until the simulator has nothing left to deliver.
async fn drained(sim: &Simulator) -> sim::Counters {
    for _ in 0..600 {
        let c = sim.counters();
        if c.live_events.pending == 0 && c.live_events.emitted > 0 {
            return c;
        }
        sim.clock().advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "Live Events not delivered: {:?}",
        sim.counters().live_events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_live_events_from_the_simulator_land_in_the_inbox_once() {
    let (sim, sim_base) = start_sim().await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let ours = sim.ground_truth().root_account_uuid;
    let app = TestApp::spawn_with(db, &format!("{sim_base}/jwks"), |c| {
        c.canvas.account_uuids = vec![ours]
    })
    .await;
    sim.subscribe(&format!("{}/hooks/canvas", app.base), true);
    let mut faults = sim.faults();
    faults.live_events.duplicate_probability = 0.2;
    sim.set_faults(faults).expect("faults");

    // The clock starts at midnight before the first day of term: a morning, a key rotation,
    // then the afternoon.
    sim.clock().advance(Duration::from_secs(12 * 3600));
    sim.tick();
    let first = drained(&sim).await;
    sim.rotate_keys();
    sim.clock().advance(Duration::from_secs(12 * 3600));
    sim.tick();
    let counters = drained(&sim).await;
    assert!(
        counters.live_events.emitted > first.live_events.emitted,
        "second half emitted events"
    );
    assert!(counters.live_events.duplicated > 0, "duplicates were sent");
    assert_eq!(counters.live_events.dropped_after_retries, 0);

    let store = app.db.store().await;
    // The inbox holds exactly the distinct events the simulator emitted (Canvas sends no id:
    // two emitted events with identical content are one event to any consumer). The clock is
    // paused, so both sides converge; a delivery may still be on its way when the simulator's
    // queue reads empty, hence the wait.
    let emitted_keys = || -> BTreeSet<String> {
        sim.live_events(0, 100_000)
            .events
            .iter()
            .map(|logged| {
                canvas::live_events::decode_value(&logged.event).unwrap()[0]
                    .dedup_key
                    .clone()
            })
            .collect()
    };
    let mut emitted = emitted_keys();
    let mut rows = Vec::new();
    for _ in 0..200 {
        emitted = emitted_keys();
        rows = store.inbox_after(0, 100_000).await.unwrap();
        if rows.len() >= emitted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored: BTreeSet<String> = rows.iter().map(|row| row.dedup_key.clone()).collect();
    assert_eq!(stored.len(), rows.len(), "no event stored twice");
    assert_eq!(
        emitted.symmetric_difference(&stored).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "inbox = emitted events; counters {:?}",
        counters.live_events
    );
    let depth = store.inbox_depth().await.unwrap();
    assert_eq!(depth.quarantined, 0, "every simulated event decodes");
    assert!(
        store.recent_rejections(10).await.unwrap().is_empty(),
        "nothing refused"
    );
    app.stop().await.unwrap();
}
