//! `coursewire rules` from the shell: a department's rules set, refused with the key or
//! template field named, versioned (an old version still readable, history with who), a course
//! override layered on top with each field's origin, and export → import into another
//! database giving the same rules.

mod common;

use std::process::Command;

use common::{Backend, TestDb};
use serde_json::Value;

fn rules(db: &str, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .arg("rules")
        .args(args)
        .env("COURSEWIRE_DATABASE_URL", db)
        .env("USER", "designer1")
        .output()
        .expect("run coursewire");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn rules_are_validated_versioned_layered_and_exported(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.store().await;
    let url = db.url.as_str();
    let (code, out, err) = rules(
        url,
        &[
            "set",
            "--department",
            "ENG",
            "caption_sla_hours=24",
            "viewers=course_roster",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["version"], 1);

    // Refused, by name: a template field, then a key.
    let (code, _, err) = rules(
        url,
        &[
            "set",
            "--department",
            "ENG",
            "session_name_template={course_code} {lecturer}",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("session_name_template") && err.contains("{lecturer}"),
        "{err}"
    );
    let (code, _, err) = rules(url, &["set", "--department", "ENG", "caption_sla=3"]);
    assert_eq!(code, 1);
    assert!(err.contains("caption_sla"), "{err}");

    let (code, out, _) = rules(
        url,
        &[
            "set",
            "--department",
            "ENG",
            "caption_sla_hours=12",
            "--reason",
            "new policy",
        ],
    );
    assert_eq!((code, out["version"].clone()), (0, 2.into()));
    // The same again is no new version.
    let (_, out, _) = rules(url, &["set", "--department", "ENG", "caption_sla_hours=12"]);
    assert_eq!(
        (out["version"].clone(), out["changed"].clone()),
        (2.into(), false.into())
    );

    // The old version is still readable; the current one applies.
    let (_, old, _) = rules(url, &["show", "--department", "ENG", "--version", "1"]);
    assert_eq!(old["own"]["rules"]["caption_sla_hours"], 24);
    assert_eq!(old["own"]["author"], "cli:designer1");
    let (_, now, _) = rules(url, &["show", "--department", "ENG"]);
    assert_eq!(now["effective"]["caption_sla_hours"], 12);
    assert_eq!(now["origin"]["caption_sla_hours"], "department:ENG");
    assert_eq!(now["origin"]["folder_template"], "default");
    let (_, history, _) = rules(url, &["show", "--department", "ENG", "--history"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["reason"], "new policy");
    let (code, _, err) = rules(url, &["show", "--department", "ENG", "--version", "9"]);
    assert_eq!(code, 1);
    assert!(err.contains("no version 9"), "{err}");

    // A course override over the root.
    rules(url, &["set", "caption_sla_hours=36"]);
    let (_, _, _) = rules(
        url,
        &[
            "set",
            "--course",
            "2025FA-BIO-101",
            "missing_grace_minutes=30",
        ],
    );
    let (_, course, _) = rules(url, &["show", "--course", "2025FA-BIO-101"]);
    assert_eq!(course["effective"]["missing_grace_minutes"], 30);
    assert_eq!(
        course["origin"]["missing_grace_minutes"],
        "course:2025FA-BIO-101"
    );
    assert_eq!(course["effective"]["caption_sla_hours"], 36);
    assert_eq!(course["origin"]["caption_sla_hours"], "root");

    // Export, then import into a fresh database: the same rules.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let (code, _, err) = rules(url, &["export", "--output", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("[department.ENG]") && text.contains("caption_sla_hours = 12"),
        "{text}"
    );
    let other = TestDb::new(backend).await.unwrap();
    other.store().await;
    let (code, out, err) = rules(&other.url, &["import", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["scopes"].as_array().unwrap().len(), 3);
    let (_, again, _) = rules(&other.url, &["show", "--course", "2025FA-BIO-101"]);
    assert_eq!(again["effective"], course["effective"]);
    // A bad document is refused whole, naming its scope.
    std::fs::write(&file, "[course.X]\nmodule_placement = \"middle\"\n").unwrap();
    let (code, _, err) = rules(&other.url, &["import", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("course.\"X\"") && err.contains("middle"),
        "{err}"
    );
}

both_backends!(by_backend: rules_are_validated_versioned_layered_and_exported);
