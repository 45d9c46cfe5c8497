//! The same seed gives the same university, byte for byte, before and after the timeline
//! has run (with every kind of lecture fault on, and the lecture occurrences they decide);
//! different seeds give different universities; medium builds.

mod common;

use sha2::{Digest, Sha256};
use sim::{SimConfig, Simulator};

fn digest(sim: &Simulator) -> String {
    let bytes = serde_json::to_vec(&sim.ground_truth()).expect("serialises");
    hex::encode(Sha256::digest(&bytes))
}

#[test]
fn same_seed_same_ground_truth_bytes() {
    let a = Simulator::new(SimConfig::small(42).paused()).expect("a");
    let b = Simulator::new(SimConfig::small(42).paused()).expect("b");
    assert_eq!(digest(&a), digest(&b));
    let c = Simulator::new(SimConfig::small(43).paused()).expect("c");
    assert_ne!(digest(&a), digest(&c));
}

#[test]
fn same_seed_same_world_after_a_week_of_timeline() {
    let run = || {
        let s = Simulator::new(SimConfig::small(7).paused()).expect("sim");
        s.clock()
            .advance(std::time::Duration::from_secs(8 * 86_400));
        s.tick();
        s
    };
    let (a, b) = (run(), run());
    let gt = a.ground_truth();
    assert!(!gt.sessions.is_empty(), "lectures were recorded");
    assert!(a.counters().timeline.applied > 100, "the timeline ran");
    assert_eq!(digest(&a), digest(&b));
    assert_eq!(
        a.live_events(0, 100_000).events.len(),
        b.live_events(0, 100_000).events.len()
    );
}

#[test]
fn same_seed_same_lectures_under_every_lecture_fault() {
    use sim::panopto::faults::{RecorderFault, RecorderProblem, Window};
    let run = || {
        let s = Simulator::new(SimConfig::small(8).paused()).expect("sim");
        let gt = s.ground_truth();
        let rooms: Vec<String> = gt.recorders.iter().map(|r| r.room_id.clone()).collect();
        let mut f = s.faults();
        let p = &mut f.panopto;
        p.broken_recorder_rooms.insert(rooms[0].clone());
        p.recorders = vec![
            RecorderFault {
                room_id: rooms[1].clone(),
                problem: RecorderProblem::Offline,
                window: Window {
                    from: None,
                    until: Some("2025-08-26T20:00:00Z".into()),
                },
            },
            RecorderFault {
                room_id: rooms[2].clone(),
                problem: RecorderProblem::Faulted,
                window: Window {
                    from: Some("2025-08-27T12:00:00Z".into()),
                    until: Some("2025-08-28T12:00:00Z".into()),
                },
            },
        ];
        p.wrong_room_probability = 0.1;
        p.late_processing_probability = 0.2;
        p.late_processing_minutes = 90.0;
        p.late_captions_probability = 0.2;
        p.late_captions_minutes = 240.0;
        p.captions_never_probability = 0.1;
        p.staff_edit_probability = 0.2;
        p.staff_edit_delay_minutes = 30.0;
        s.set_faults(f).expect("faults");
        s.clock()
            .advance(std::time::Duration::from_secs(4 * 86_400));
        s.tick();
        s
    };
    let (a, b) = (run(), run());
    let gt = a.ground_truth();
    let outcomes: std::collections::BTreeSet<&str> =
        gt.lectures.iter().map(|l| l.outcome.as_str()).collect();
    for want in [
        "recorded",
        "recorded_late",
        "broken_recorder",
        "wrong_room",
        "no_recorder",
    ] {
        assert!(outcomes.contains(want), "no {want} lecture: {outcomes:?}");
    }
    assert!(gt.sessions.iter().any(|s| s.staff_edit.is_some()));
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn medium_generates_a_large_university() {
    let s = Simulator::new(SimConfig::medium(1).paused()).expect("medium");
    let gt = s.ground_truth();
    assert_eq!(gt.courses.len(), 3_000);
    let students = gt
        .enrollments
        .iter()
        .filter(|e| e.r#type == "StudentEnrollment")
        .count();
    assert!(students > 100_000, "{students} student enrollments");
    assert!(gt.users.len() > 30_000);
}
