//! Test harness shared by the integration tests: signing keys and a JWKS server that can
//! rotate, a fresh store per test (a SQLite file or a new PostgreSQL database), and `TestApp`,
//! the real service on port 0.
#![allow(dead_code)]

pub mod teaching;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coursewire::clock::{Clock, SystemClock};
use coursewire::config::{Config, DatabaseUrl};
use coursewire::store::{self, Store};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One test per backend, each in a `sqlite` and a `postgres` module. `both_backends!(a, b)`
/// calls `a(db: TestDb)` with a fresh database (none configured outside CI: skipped; under
/// `CI=true`, a failure); `both_backends!(by_backend: a, b)` calls `a(backend: Backend)` for
/// tests that make their own databases.
#[macro_export]
macro_rules! both_backends {
    (by_backend: $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                $crate::common::bounded(stringify!($name), super::$name($crate::common::Backend::Sqlite)).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                $crate::common::bounded(stringify!($name), super::$name($crate::common::Backend::Postgres)).await
            })*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite).await;
                if let Some(db) = db { $crate::common::bounded(stringify!($name), super::$name(db)).await }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let db = $crate::common::TestDb::new($crate::common::Backend::Postgres).await;
                if let Some(db) = db { $crate::common::bounded(stringify!($name), super::$name(db)).await }
            })*
        }
    };
}

/// How long one backend's run of a test may take: a test that hangs (a process that never
/// stops, a wait on a paused clock) fails with its name instead of stalling CI.
pub const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub async fn bounded<T>(name: &str, test: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_LIMIT, test).await {
        Ok(done) => done,
        Err(_) => panic!("{name} did not finish within {TEST_LIMIT:?}"),
    }
}

/// An RSA signing key as Canvas would hold it, with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub private: rsa::RsaPrivateKey,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

/// Four keys, made once per test binary: RSA key generation is slow.
pub fn keys() -> &'static [SigningKey] {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand08::thread_rng();
        (0..4)
            .map(|i| {
                let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA keygen");
                let der = private.to_pkcs1_der().expect("pkcs1 der");
                let kid = format!("test-key-{i}");
                let jwk = json!({
                    "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                    "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                    "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
                });
                SigningKey {
                    kid,
                    encoding: EncodingKey::from_rsa_der(der.as_bytes()),
                    private,
                    jwk,
                }
            })
            .collect()
    })
}

/// Signs `claims` as Canvas does: compact JWS, RS256, `kid` in the header.
pub fn sign(claims: &Value, key: &SigningKey) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// A JWKS endpoint whose key list tests can change (rotation) and whose fetches are counted.
#[derive(Clone)]
pub struct JwksServer {
    pub url: String,
    keys: Arc<RwLock<Vec<Value>>>,
    /// Instead of the keys: 503 (`None` inside) or this body.
    instead: Arc<RwLock<Option<Option<String>>>>,
    pub fetches: Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    pub async fn start(initial: &[&SigningKey]) -> Self {
        let keys = Arc::new(RwLock::new(
            initial.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
        ));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let instead: Arc<RwLock<Option<Option<String>>>> = Arc::default();
        let (k, f, i) = (keys.clone(), fetches.clone(), instead.clone());
        let app = Router::new().route(
            "/jwks",
            get(move || {
                let (k, f, i) = (k.clone(), f.clone(), i.clone());
                async move {
                    use axum::response::IntoResponse;
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match i.read().unwrap().clone() {
                        Some(None) => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
                        Some(Some(body)) => body.into_response(),
                        None => axum::Json(json!({"keys": *k.read().unwrap()})).into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/jwks"),
            keys,
            instead,
            fetches,
        }
    }

    pub fn set_keys(&self, keys: &[&SigningKey]) {
        *self.keys.write().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.instead.write().unwrap() = None;
    }

    /// Answers 503 from now on (until [`JwksServer::set_keys`]).
    pub fn go_down(&self) {
        *self.instead.write().unwrap() = Some(None);
    }

    /// Answers `body` instead of the keys (until [`JwksServer::set_keys`]).
    pub fn answer_with(&self, body: String) {
        *self.instead.write().unwrap() = Some(Some(body));
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test. Dropping it leaves the files/database for post-mortem;
/// the temp dir is removed with the process's temp cleanup.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server URL for tests, or None when not configured outside CI.
/// Under `CI=true` a missing PostgreSQL is a failure, never a skip.
pub fn postgres_server_url() -> Option<String> {
    match std::env::var("COURSEWIRE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but COURSEWIRE_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("COURSEWIRE_TEST_POSTGRES_URL not set: PostgreSQL test not run");
            None
        }
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path: PathBuf = dir.path().join("coursewire.db");
                Some(TestDb {
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let server = postgres_server_url()?;
                let name = format!("cw_test_{}", uuid::Uuid::new_v4().simple());
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .expect("connect to COURSEWIRE_TEST_POSTGRES_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = server
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(server.clone());
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    _dir: None,
                })
            }
        }
    }

    pub async fn store(&self) -> Arc<Store> {
        let store = store::open(&self.url).await.expect("open store");
        store.migrate().await.expect("migrate");
        store
    }
}

/// The real service on 127.0.0.1:0.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db: TestDb,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// `allow_unsigned`: see [`unsigned_from_anyone`].
    pub async fn spawn(db: TestDb, jwks_url: &str, allow_unsigned: bool) -> TestApp {
        Self::spawn_with(db, jwks_url, |c| {
            if allow_unsigned {
                unsigned_from_anyone(c)
            }
        })
        .await
    }

    pub async fn spawn_with(
        db: TestDb,
        jwks_url: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        Self::spawn_on_clock(db, jwks_url, Arc::new(SystemClock), adjust).await
    }

    /// The service on an injected clock (a paused one, stepped by the test).
    pub async fn spawn_on_clock(
        db: TestDb,
        jwks_url: &str,
        clock: Arc<dyn Clock>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = Config::load_from(None, &[]).unwrap();
        config.database.url = DatabaseUrl::new(db.url.clone());
        config.canvas.jwks_url = jwks_url.to_string();
        config.canvas.jwks_min_refresh_seconds = 60;
        config.canvas.account_uuids = test_accounts();
        config.delivery.allowed_networks = vec!["127.0.0.0/8".into()];
        config.delivery.min_retry_delay_ms = 1;
        config.server.shutdown_grace_seconds = 5;
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(coursewire::app::serve(
            config,
            clock,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        let client = coursewire::app::http_client().unwrap();
        let base = format!("http://{addr}");
        // Wait until it answers.
        for _ in 0..200 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        TestApp {
            addr,
            base,
            db,
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn post_canvas(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: &str,
    ) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/hooks/canvas", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST /hooks/canvas");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(Value::Null);
        (status, json)
    }

    pub async fn post_signed(&self, envelope: &Value, key: &SigningKey) -> (u16, Value) {
        self.post_canvas(sign(envelope, key), "application/jwt")
            .await
    }

    /// `method path` with a bearer token and an optional JSON body: the status and the JSON
    /// answer (`Null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("API call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Graceful shutdown, as on SIGTERM; returns the serve result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("serve task panicked"),
            None => Ok(()),
        }
    }
}

/// The root account of [`enrollment_event`].
pub const ROOT_ACCOUNT: &str = "ROOTUUID";

/// The root accounts a test service takes events from: [`ROOT_ACCOUNT`] and every root account
/// named in the published Live Events of `../shared/data`, so any of them may be posted.
pub fn test_accounts() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/canvas/live_events");
    let mut accounts = vec![ROOT_ACCOUNT.to_owned()];
    for sub in [dir.clone(), dir.join("caliper")] {
        let entries = std::fs::read_dir(&sub).expect("the published Live Events");
        for path in entries.map(|entry| entry.unwrap().path()) {
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            accounts.extend(
                canvas::live_events::root_accounts(&event)
                    .into_iter()
                    .flatten(),
            );
        }
    }
    accounts.sort();
    accounts.dedup();
    accounts
}

/// The settings that let subscriptions target the tests' receivers on loopback, with the
/// short retry delays the tests use.
pub const LOOPBACK_SUBSCRIBERS: [(&str, &str); 2] = [
    ("COURSEWIRE_DELIVERY_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ("COURSEWIRE_DELIVERY_MIN_RETRY_DELAY_MS", "1"),
];

/// Takes unsigned events from any root account: for tests whose synthetic events name none.
pub fn unsigned_from_anyone(config: &mut Config) {
    config.canvas.allow_unsigned = true;
    config.canvas.account_uuids.clear();
}

/// The `serve` environment of [`unsigned_from_anyone`].
pub const UNSIGNED_FROM_ANYONE: [(&str, &str); 2] = [
    ("COURSEWIRE_CANVAS_ALLOW_UNSIGNED", "true"),
    ("COURSEWIRE_CANVAS_ACCOUNT_UUIDS", ""),
];

/// A Canvas-format enrollment event with distinct content per `n`.
pub fn enrollment_event(n: u64) -> Value {
    json!({
        "metadata": {
            "event_name": "enrollment_updated",
            "event_time": format!("2026-09-01T10:{:02}:{:02}.{:03}Z", (n / 60000) % 60, (n / 1000) % 60, n % 1000),
            "producer": "canvas",
            "hostname": "canvas.test.edu",
            "root_account_uuid": ROOT_ACCOUNT,
            "root_account_id": "21070000000000001",
            "request_id": format!("req-{n}"),
            "context_type": "Course",
            "context_id": "21070000000000565",
        },
        "body": {
            "enrollment_id": format!("{}", 21070000000000000u64 + 40000 + n),
            "course_id": "21070000000000565",
            "course_section_id": "21070000000004811",
            "user_id": format!("{}", 21070000000000000u64 + 20000 + n),
            "user_name": format!("Student {n}"),
            "type": "StudentEnrollment",
            "workflow_state": "active",
            "created_at": "2026-09-01T10:00:00Z",
            "updated_at": "2026-09-01T10:00:00Z",
            "limit_privileges_to_course_section": false
        }
    })
}

/// `coursewire serve` as a child process, for the SIGKILL tests. Killed when dropped, so a test
/// that fails half-way leaves no server behind.
pub struct ServeProcess {
    child: std::process::Child,
    pub base: String,
}

impl ServeProcess {
    /// A port that was free a moment ago (the child binds it itself).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Starts `serve` on `db_url` and `port` with extra `COURSEWIRE_*` settings, and waits
    /// until `/readyz` answers.
    pub async fn start(db_url: &str, port: u16, env: &[(&str, &str)]) -> ServeProcess {
        Self::start_logging(db_url, port, env, None).await
    }

    /// [`ServeProcess::start`] with the process's log written to `log` instead of the test's
    /// standard error.
    pub async fn start_logging(
        db_url: &str,
        port: u16,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> ServeProcess {
        Self::start_limited(db_url, port, env, log, None).await
    }

    /// [`ServeProcess::start_logging`] under an open-file limit (`ulimit -n`).
    pub async fn start_limited(
        db_url: &str,
        port: u16,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
        file_limit: Option<u32>,
    ) -> ServeProcess {
        let stderr = match log {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path).unwrap()),
            None => std::process::Stdio::inherit(),
        };
        let mut command = match file_limit {
            Some(limit) => {
                let mut sh = std::process::Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" serve"))
                    .arg(env!("CARGO_BIN_EXE_coursewire"));
                sh
            }
            None => {
                let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"));
                serve.arg("serve");
                serve
            }
        };
        let child = command
            .env("COURSEWIRE_DATABASE_URL", db_url)
            .env("COURSEWIRE_LISTEN", format!("127.0.0.1:{port}"))
            .env("COURSEWIRE_LOG", "warn")
            .env("COURSEWIRE_CANVAS_ACCOUNT_UUIDS", test_accounts().join(","))
            .envs(LOOPBACK_SUBSCRIBERS)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn coursewire serve");
        let serve = ServeProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = coursewire::app::http_client().unwrap();
        for _ in 0..500 {
            if let Ok(r) = client.get(format!("{}/readyz", serve.base)).send().await
                && r.status().is_success()
            {
                return serve;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("coursewire serve did not become ready");
    }

    pub fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// Asks for a graceful stop, as an init system would, and waits for the exit: a process
    /// that has not stopped within a minute fails the test (it is killed) instead of hanging it.
    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let asked = std::time::Instant::now();
        while asked.elapsed() < std::time::Duration::from_secs(60) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("coursewire serve did not stop within 60 s of SIGTERM");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `coursewire replay` over every time on the database at `db_url`, with `extra`
/// arguments (target, filters, `--dry-run`).
pub fn replay_everything(db_url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "replay",
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ];
    args.extend_from_slice(extra);
    std::process::Command::new(env!("CARGO_BIN_EXE_coursewire"))
        .args(&args)
        .env("COURSEWIRE_DATABASE_URL", db_url)
        .env("COURSEWIRE_LOG", "warn")
        .output()
        .expect("run coursewire replay")
}

/// The JSON a successful command printed; fails the test with its stderr otherwise.
pub fn json_report(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON report on stdout")
}

/// The simulator serving over real HTTP on a free loopback port; its base URL.
pub async fn serve_sim(config: sim::SimConfig) -> (sim::Simulator, String) {
    let sim = sim::Simulator::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    (sim, base)
}
