//! A teaching day against the simulator, shared by the workflow tests: the simulator's
//! configuration, the SIS and timetable import, waiting until the workflow has settled, and
//! what a published recording must look like in Panopto and Canvas.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use coursewire::sources::sis;
use coursewire::store::Store;
use sim::config::{PanoptoLimits, ThrottleClock};
use sim::panopto::lectures::Lecture;
use sim::university::{EnrollmentState, EnrollmentType};
use sim::world::World;
use sim::{SimConfig, Simulator};

/// A `small` university, paused, Panopto's limits on simulated time, `canvas_token` valid.
pub fn sim_config(seed: u64, canvas_token: &str) -> SimConfig {
    let mut c = SimConfig::small(seed)
        .paused()
        .with_canvas_token(canvas_token);
    c.panopto_limits = PanoptoLimits {
        clock: ThrottleClock::Simulated,
        ..PanoptoLimits::default()
    };
    c
}

/// `serve`'s settings for the simulator's Panopto (URL and the API client's credentials).
pub fn panopto_env(sim: &Simulator, base: &str) -> Vec<(String, String)> {
    let c = sim.config();
    [
        ("COURSEWIRE_PANOPTO_URL", base.to_owned()),
        ("COURSEWIRE_PANOPTO_CLIENT_ID", c.panopto_client_id.clone()),
        (
            "COURSEWIRE_PANOPTO_CLIENT_SECRET",
            c.panopto_client_secret.clone(),
        ),
        ("COURSEWIRE_PANOPTO_USERNAME", c.panopto_username.clone()),
        ("COURSEWIRE_PANOPTO_PASSWORD", c.panopto_password.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `coursewire import` of the simulator's SIS and timetable export (through `dir`).
pub async fn import(sim: &Simulator, store: &Store, dir: &Path) {
    for file in sim::timetable::FILES {
        std::fs::write(dir.join(file), sim.timetable_csv(file).unwrap()).unwrap();
    }
    let files = sis::collect(&[dir.to_owned()]).unwrap();
    let summary = sis::import(store, &files, false, sim.clock().now_ms())
        .await
        .unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
}

/// Steps the paused clock until nothing is left to do (inbox, commands, Live Events queued
/// in the simulator); fails on a command that gave up or a quarantined Panopto or workflow
/// row.
pub async fn settle(sim: &Simulator, store: &Store) {
    let mut settled = false;
    // What was asked before the pause runs out on the paused clock.
    for _ in 0..600 {
        let pending = store.inbox_depth().await.unwrap().pending;
        let commands = store.command_counts().await.unwrap();
        let open = commands
            .iter()
            .filter(|(_, status, _)| status == "pending")
            .map(|(_, _, n)| n)
            .sum::<i64>();
        // Live Events still queued in the simulator (an enrollment change of the day's last
        // minutes) and the executor's next look both wait on the simulator's clock.
        let deliveries = sim.counters().live_events.pending;
        if pending == 0 && open == 0 && deliveries == 0 {
            settled = true;
            break;
        }
        sim.clock().advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = store.command_counts().await.unwrap();
    if !settled || counts.iter().any(|(_, status, _)| status == "failed") {
        for row in store.workflows(None).await.unwrap().iter().take(3) {
            for c in store.commands_of(&row.recording_id).await.unwrap() {
                eprintln!(
                    "{} {} {} attempts {}: {:?} {:?}",
                    c.recording_id, c.step, c.status, c.attempts, c.last_error, c.result
                );
            }
        }
    }
    assert!(settled, "the workflow did not settle: {counts:?}");
    assert!(
        counts.iter().all(|(_, status, _)| status != "failed"),
        "failed commands: {counts:?}"
    );

    let quarantined: Vec<String> = store
        .inbox_after(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status_reason.is_some() && r.source != "canvas")
        .map(|r| format!("{:?} {:?} {:?}", r.subject, r.status, r.status_reason))
        .collect();
    assert!(quarantined.is_empty(), "{quarantined:#?}");
}

/// Session `session_id` of `lecture` is in its section's folder under the course's, named
/// by the default template with its date in `date_format`, viewable by exactly the section's
/// roster, and linked by one published item in the course's "Lecture recordings" module.
pub fn assert_published(w: &World, session_id: &str, lecture: &Lecture, date_format: &str) {
    assert_filed_and_posted(w, session_id, lecture, date_format);
    if let Some(differs) = viewers_differ(w, session_id, lecture) {
        panic!("{differs}");
    }
}

/// [`assert_published`] without the viewers: the folder, the name and the one item.
pub fn assert_filed_and_posted(w: &World, session_id: &str, lecture: &Lecture, date_format: &str) {
    let u = &w.uni;
    let p = &w.panopto;
    let session = &p.sessions[session_id];
    let section = u.sections.get(lecture.section_id).unwrap();
    let course = u.courses.get(lecture.course_id).unwrap();
    let sis_section = section.sis_section_id.clone().unwrap();
    let folder = p.folders.get(&session.folder_id).unwrap();
    assert_eq!(
        folder.external_id.as_deref(),
        Some(format!("coursewire:section:{sis_section}").as_str()),
        "{session_id}"
    );
    assert_eq!(
        folder.parent.as_deref(),
        p.course_folders.get(&course.id).map(String::as_str),
        "{session_id}"
    );
    let name = format!(
        "{} {} — {}",
        course.course_code,
        sis_section,
        lecture.date.format(date_format)
    );
    assert_eq!(session.name, name, "{session_id}");
    // One published item linking it in the course's recordings module.
    let module = u
        .modules
        .iter()
        .find(|m| {
            m.course_id == course.id
                && m.name == "Lecture recordings"
                && m.workflow_state == "active"
        })
        .unwrap_or_else(|| panic!("{session_id}: no recordings module"));
    assert!(module.published);
    let links: Vec<_> = u
        .module_items
        .iter()
        .filter(|i| i.workflow_state == "active")
        .filter(|i| {
            i.external_url
                .as_deref()
                .is_some_and(|x| x.ends_with(&format!("id={session_id}")))
        })
        .collect();
    assert_eq!(links.len(), 1, "{session_id}: module items");
    assert_eq!(links[0].module_id, module.id);
    assert!(links[0].published);
}

/// How the session's viewers (the simulator's answer) differ from the section's roster, if
/// they do: the section's students, TAs and teachers, enrolled and not gone.
pub fn viewers_differ(w: &World, session_id: &str, lecture: &Lecture) -> Option<String> {
    let u = &w.uni;
    let p = &w.panopto;
    let section = u.sections.get(lecture.section_id).unwrap();
    let course = u.courses.get(lecture.course_id).unwrap();
    // Viewers: exactly the section's students, TAs and teachers (enrolled and not gone).
    let roster: BTreeSet<String> = u
        .enrollments
        .iter()
        .filter(|e| e.section_id == section.id)
        .filter(|e| {
            matches!(
                e.state,
                EnrollmentState::Active
                    | EnrollmentState::Invited
                    | EnrollmentState::CreationPending
            )
        })
        .filter(|e| {
            matches!(
                e.kind,
                EnrollmentType::StudentEnrollment
                    | EnrollmentType::TaEnrollment
                    | EnrollmentType::TeacherEnrollment
            )
        })
        .map(|e| sim::panopto::people::user_guid(u.seed, e.user_id))
        .collect();
    let viewers = p.viewers(session_id).unwrap();
    assert_eq!(viewers.audience, "restricted");
    if viewers.users != roster {
        let by_guid = sim::panopto::people::users_by_guid(u);
        let odd: Vec<String> = viewers
            .users
            .symmetric_difference(&roster)
            .map(|g| {
                let who = by_guid.get(g);
                let enrolled: Vec<String> = u
                    .enrollments
                    .iter()
                    .filter(|e| Some(e.user_id) == who.map(|w| w.canvas_id))
                    .filter(|e| e.course_id == course.id)
                    .map(|e| format!("{:?} {:?} in {}", e.kind, e.state, e.section_id))
                    .collect();
                format!("{g} {:?} {enrolled:?}", who.map(|w| &w.key))
            })
            .collect();
        return Some(format!(
            "{session_id}: viewers differ from roster of {}: {odd:#?}",
            section.id
        ));
    }
    None
}
