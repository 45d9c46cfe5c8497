//! The `coursewire` binary's offline commands (`decode`, `config print-default`, `sim`) and
//! what `serve` refuses before it starts.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{keys, sign};
use serde_json::{Value, json};

fn shared(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(path)
}

fn examples(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn coursewire(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn every_published_example_decodes_to_cloudevents() {
    let canvas = examples("canvas/live_events");
    let caliper = examples("canvas/live_events/caliper");
    let mut args = vec!["decode".to_string()];
    args.extend(
        canvas
            .iter()
            .chain(&caliper)
            .map(|p| p.display().to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = coursewire(&args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let caliper_events: usize = caliper
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["data"].as_array().unwrap().len()
        })
        .sum();
    let events = lines(&out);
    assert_eq!(events.len(), canvas.len() + caliper_events);
    for event in &events {
        assert_eq!(event["specversion"], "1.0");
        assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(event["type"].as_str().unwrap().starts_with("edu.canvas."));
        assert!(event["source"].as_str().unwrap().starts_with("canvas://"));
    }
    // Same input, same ids.
    let again = lines(&coursewire(&args, None));
    let ids = |v: &[Value]| v.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&events), ids(&again));
}

#[test]
fn enrollment_example_has_local_subject_and_typed_data() {
    let file = shared("canvas/live_events/enrollment_created.json");
    let out = coursewire(&["decode", file.to_str().unwrap()], None);
    let event = &lines(&out)[0];
    assert_eq!(event["type"], "edu.canvas.enrollment.created");
    assert_eq!(event["subject"], "enrollment/46825");
    assert_eq!(event["data"]["course_id"], 565);
    assert_eq!(event["data"]["workflow_state"], "invited");
}

#[test]
fn stdin_and_signed_input_with_jwks() {
    let k = keys();
    let envelope: Value = serde_json::from_slice(
        &std::fs::read(shared("canvas/live_events/enrollment_created.json")).unwrap(),
    )
    .unwrap();
    let jws = sign(&envelope, &k[0]);
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [k[0].jwk.clone()]}).to_string()).unwrap();
    let out = coursewire(
        &["decode", "--jwks", jwks.to_str().unwrap(), "-"],
        Some(jws.as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out)[0]["subject"], "enrollment/46825");

    // The same JWS against a JWKS without its key is refused, naming the input.
    let other = dir.path().join("other.json");
    std::fs::write(&other, json!({"keys": [k[1].jwk.clone()]}).to_string()).unwrap();
    let out = coursewire(
        &["decode", "--jwks", other.to_str().unwrap(), "-"],
        Some(jws.as_bytes()),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-: signature check failed"), "{err}");
}

#[test]
fn invalid_input_exits_nonzero_with_one_clear_line_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random.bin", vec![0xff, 0x00, 0x13, 0x37, 0xfe]),
        (
            "truncated.json",
            br#"{"metadata": {"event_name": "course_cre"#.to_vec(),
        ),
        (
            "nested.json",
            format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes(),
        ),
        ("empty.json", Vec::new()),
    ];
    let good = shared("canvas/live_events/course_created.json");
    let mut args = vec!["decode".to_string(), good.display().to_string()];
    for (name, bytes) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        args.push(path.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = coursewire(&args, None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out).len(), 1, "the good file still decodes");
    let err = String::from_utf8_lossy(&out.stderr);
    let err_lines: Vec<&str> = err.lines().collect();
    assert_eq!(err_lines.len(), cases.len(), "{err}");
    for ((name, _), line) in cases.iter().zip(&err_lines) {
        assert!(
            line.starts_with("coursewire decode: ") && line.contains(name),
            "{line}"
        );
        assert!(line.len() < 300, "one short line: {line}");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = coursewire(&["decode", "/nonexistent/event.json"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/event.json") && err.contains("cannot read"),
        "{err}"
    );
}

/// Signed events bound to no root account would take any Canvas customer's events: `serve`
/// says what to set instead of starting.
#[test]
fn serve_refuses_to_start_without_our_root_account() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cw.db");
    let out = Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .arg("serve")
        .env(
            "COURSEWIRE_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("COURSEWIRE_LISTEN", "127.0.0.1:0")
        .env_remove("COURSEWIRE_CANVAS_ACCOUNT_UUIDS")
        .env_remove("COURSEWIRE_CANVAS_ALLOW_UNSIGNED")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("COURSEWIRE_CANVAS_ACCOUNT_UUIDS") && err.contains("/api/v1/accounts/self"),
        "{err}"
    );
    assert!(!db.exists(), "nothing opened before the refusal");
}

#[test]
fn print_default_prints_the_documented_config() {
    let out = coursewire(&["config", "print-default"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("allow_unsigned = false"));
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    assert!(parsed.contains_key("database"));
}

#[test]
fn sim_command_serves_and_prints_its_base_url() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--paused",
            "--canvas-token",
            "script-token",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("coursewire sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, courses) = runtime.block_on(async {
        let client = coursewire::app::http_client().unwrap();
        let r = client
            .get(format!("{base}/api/v1/accounts/1/courses?per_page=5"))
            .bearer_auth("script-token")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{courses}");
    assert_eq!(courses.as_array().map(Vec::len), Some(5));
}
