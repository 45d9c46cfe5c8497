//! Test harness: a simulator served on 127.0.0.1:0 with a reqwest client, plus helpers for
//! the control API and the shared data directory.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use sim::{SimConfig, Simulator};
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-canvas-token";
pub const PANOPTO_TOKEN: &str = "test-panopto-token";

pub fn data_path(rel: &str) -> String {
    format!("{}/../../../shared/data/{rel}", env!("CARGO_MANIFEST_DIR"))
}

pub fn data_json(rel: &str) -> Value {
    let path = data_path(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub struct TestSim {
    pub sim: Simulator,
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A small university with a paused clock and the static test tokens.
pub fn config(seed: u64) -> SimConfig {
    SimConfig::small(seed)
        .paused()
        .with_canvas_token(TOKEN)
        .with_panopto_token(PANOPTO_TOKEN)
}

impl TestSim {
    pub async fn start(config: SimConfig) -> TestSim {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = Simulator::new(config).expect("simulator builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let s2 = sim.clone();
        let task = tokio::spawn(async move {
            s2.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestSim {
            sim,
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// GET a Panopto path with the static Panopto token.
    pub async fn panopto_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(PANOPTO_TOKEN)
            .send()
            .await
            .expect("request")
    }

    pub async fn panopto_json(&self, path: &str) -> Value {
        let r = self.panopto_get(path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Follow `Link: rel="next"` from `path`, returning every item and the pages seen.
    pub async fn walk(&self, path: &str) -> (Vec<Value>, usize) {
        let mut url = self.url(path);
        let mut items = Vec::new();
        let mut pages = 0;
        loop {
            let r = self
                .http
                .get(&url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("request");
            assert!(r.status().is_success(), "GET {url}: {}", r.status());
            let next = next_link(r.headers());
            let page: Vec<Value> = r.json().await.expect("json array");
            pages += 1;
            items.extend(page);
            match next {
                Some(n) => url = n,
                None => return (items, pages),
            }
            assert!(pages < 10_000, "pagination does not end");
        }
    }

    pub async fn advance(&self, seconds: f64) -> Value {
        let r = self
            .http
            .post(self.url("/_sim/clock"))
            .json(&serde_json::json!({ "advance_seconds": seconds }))
            .send()
            .await
            .expect("clock");
        assert!(r.status().is_success());
        r.json().await.expect("json")
    }

    pub async fn live_events(&self, after: u64) -> Vec<Value> {
        let v: Value = self
            .http
            .get(self.url(&format!("/_sim/live_events?after={after}&limit=10000")))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("json");
        v["events"].as_array().cloned().unwrap_or_default()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    rel(link, "next")
}

pub fn rel(link: &str, want: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains(&format!("rel=\"{want}\"")).then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// Run a Python check that uses a real client library from PyPI (`module`): the script's
/// path under `tests/python/` and its arguments. Returns its stdout; `None` when a package it
/// imports is not installed and this is not CI (under `CI=true` a missing one fails the test).
pub fn python_check(module: &str, script: &str, args: &[&str]) -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(missing) = stderr
        .split("No module named '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but the Python package {missing} (for the {module} check) is missing"
        );
        eprintln!("{missing} not installed (see .ci/run's pip install): {module} not checked");
        return None;
    }
    assert!(out.status.success(), "{script}: {stdout}{stderr}");
    Some(stdout)
}
