//! The HTTP transport: one reqwest client per Canvas host, every request through the
//! [`QuotaGovernor`] and the [`TokenSource`], retried with jittered exponential back-off on
//! 5xx, timeouts and throttling (honouring `Retry-After`), refreshed-and-retried once on 401.
//! It owns *how* a request reaches Canvas; typed endpoints live in `rest`, pagination in
//! `pages`. Writes that may have reached Canvas (5xx, timeout) are **not** retried here: the
//! typed writes are find-before-create, so the caller retries the whole operation instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng as _;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::client::error::ClientError;
use crate::client::governor::{GovernorConfig, Priority, QuotaGovernor, request_class};
use crate::client::token::TokenSource;

/// A response body.
type Body = Vec<u8>;

/// How the client talks to one Canvas host.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://canvas.example.edu` (no trailing `/api/v1`).
    pub base_url: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retries after the first attempt (5xx, timeouts, throttling).
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Duration,
    /// `per_page` asked of list endpoints (Canvas clamps to 100).
    pub per_page: u32,
    pub governor: GovernorConfig,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(20),
            retry_after_max: Duration::from_secs(120),
            per_page: 100,
            governor: GovernorConfig::default(),
        }
    }

    /// The concurrency the caller would like; the governor may hold it lower.
    pub fn with_concurrency(mut self, n: usize) -> ClientConfig {
        self.governor.max_concurrency = n.max(1);
        self
    }
}

/// Transport counters (for metrics and tests).
#[derive(Debug, Default)]
pub struct TransportStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub unauthorized: AtomicU64,
}

/// A snapshot of [`TransportStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportCounts {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub unauthorized: u64,
}

/// One request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// A path under the base URL (`/api/v1/...`) or an absolute URL from a `Link` header.
    pub target: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub priority: Priority,
}

impl Call {
    pub fn get(path: impl Into<String>, priority: Priority) -> Call {
        Call {
            method: Method::GET,
            target: path.into(),
            query: Vec::new(),
            form: Vec::new(),
            priority,
        }
    }

    pub fn post(path: impl Into<String>, form: Vec<(String, String)>) -> Call {
        Call {
            method: Method::POST,
            target: path.into(),
            query: Vec::new(),
            form,
            priority: Priority::Write,
        }
    }

    pub fn put(path: impl Into<String>, form: Vec<(String, String)>) -> Call {
        Call {
            method: Method::PUT,
            ..Call::post(path, form)
        }
    }

    pub fn delete(path: impl Into<String>) -> Call {
        Call {
            method: Method::DELETE,
            ..Call::post(path, Vec::new())
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Call {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    fn idempotent(&self) -> bool {
        matches!(
            self.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        )
    }

    /// The path for logs and errors: never the query string (tokens could ride there).
    fn log_path(&self) -> String {
        let t = self.target.split('?').next().unwrap_or("");
        match t.find("://") {
            Some(i) => t[i + 3..]
                .find('/')
                .map_or_else(String::new, |j| t[i + 3 + j..].to_owned()),
            None => t.to_owned(),
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|source| ClientError::Decode {
            path: path.to_owned(),
            source,
        })
    }
}

/// The Canvas REST client. Cheap to clone; clones share the connection pool, the token, the
/// governor and the counters.
#[derive(Debug, Clone)]
pub struct CanvasClient {
    http: reqwest::Client,
    cfg: Arc<ClientConfig>,
    tokens: TokenSource,
    governor: Arc<QuotaGovernor>,
    stats: Arc<TransportStats>,
}

/// A `reqwest::Client` with coursewire's user agent and TLS provider.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    // Another crate may have installed the provider already; either way one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("coursewire/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ClientError::Config(e.to_string()))
}

enum Outcome {
    Done(Answer),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Throttled {
        after: Option<Duration>,
    },
    Unauthorized(u64),
}

fn is_throttle(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && String::from_utf8_lossy(body).contains("Rate Limit Exceeded"))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    delta.to_std().ok().or(Some(Duration::ZERO))
}

impl CanvasClient {
    pub fn new(cfg: ClientConfig, tokens: TokenSource) -> Result<CanvasClient, ClientError> {
        let governor = QuotaGovernor::new(cfg.governor.clone());
        CanvasClient::with_governor(cfg, tokens, governor)
    }

    /// Share one governor between clients that use the same token.
    pub fn with_governor(
        cfg: ClientConfig,
        tokens: TokenSource,
        governor: Arc<QuotaGovernor>,
    ) -> Result<CanvasClient, ClientError> {
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "base URL must be http(s): {}",
                cfg.base_url
            )));
        }
        Ok(CanvasClient {
            http: http_client(cfg.timeout)?,
            cfg: Arc::new(cfg),
            tokens,
            governor,
            stats: Arc::new(TransportStats::default()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub fn governor(&self) -> &Arc<QuotaGovernor> {
        &self.governor
    }

    pub fn counts(&self) -> TransportCounts {
        let s = &self.stats;
        TransportCounts {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            unauthorized: s.unauthorized.load(Ordering::Relaxed),
        }
    }

    fn url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_owned()
        } else {
            format!("{}{target}", self.cfg.base_url)
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .cfg
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.cfg.backoff_max);
        // "Equal jitter": at least half the step, so retries never bunch at zero.
        let half = exp / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// Send `call`, retrying as the module doc says.
    pub async fn execute(&self, call: &Call) -> Result<Answer, ClientError> {
        let path = call.log_path();
        let class = request_class(call.method.as_str(), &path);
        let mut unauthorized_retried = false;
        let mut attempt: u32 = 0;
        let mut throttles: u32 = 0;
        loop {
            let token = self.tokens.access().await?;
            let permit = self.governor.acquire(call.priority, &class).await;
            let outcome = self.attempt(call, token.secret.expose()).await;
            let outcome = match outcome {
                Ok((status, headers, body)) => {
                    if is_throttle(status, &body) {
                        permit.throttled();
                        Outcome::Throttled {
                            after: retry_after(&headers),
                        }
                    } else {
                        permit.complete(&headers);
                        self.classify(call, status, headers, body, (token.generation, attempt))?
                    }
                }
                Err(e) => {
                    drop(permit);
                    // Connection refused before sending is safe to retry for any method;
                    // a timeout on a write may have been applied.
                    if !call.idempotent() && !e.is_connect() {
                        return Err(self.unavailable(
                            call,
                            attempt + 1,
                            e.without_url().to_string(),
                        ));
                    }
                    Outcome::Retry {
                        reason: e.without_url().to_string(),
                        after: None,
                    }
                }
            };
            match outcome {
                Outcome::Done(a) => return Ok(a),
                Outcome::Unauthorized(generation) => {
                    self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                    if unauthorized_retried {
                        return Err(ClientError::Unauthorized(format!(
                            "Canvas refused a fresh token for {} {path}",
                            call.method
                        )));
                    }
                    unauthorized_retried = true;
                    self.tokens.on_unauthorized(generation).await?;
                }
                Outcome::Throttled { after } => {
                    throttles += 1;
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        method = %call.method, path = %path, throttles,
                        snapshot = ?self.governor.snapshot(),
                        "Canvas throttled a request: the quota governor let too much through (bug signal)"
                    );
                    if attempt >= self.cfg.max_retries {
                        return Err(ClientError::Throttled {
                            method: call.method.to_string(),
                            path,
                            attempts: attempt + 1,
                        });
                    }
                    self.sleep_before_retry(attempt, after).await;
                    attempt += 1;
                }
                Outcome::Retry { reason, after } => {
                    if attempt >= self.cfg.max_retries {
                        return Err(self.unavailable(call, attempt + 1, reason));
                    }
                    tracing::info!(method = %call.method, path = %path, attempt, %reason, "retrying Canvas request");
                    self.sleep_before_retry(attempt, after).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn sleep_before_retry(&self, attempt: u32, after: Option<Duration>) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        let wait = match after {
            Some(a) => a
                .min(self.cfg.retry_after_max)
                .max(self.backoff(attempt) / 4),
            None => self.backoff(attempt),
        };
        tokio::time::sleep(wait).await;
    }

    fn unavailable(&self, call: &Call, attempts: u32, reason: String) -> ClientError {
        ClientError::Unavailable {
            method: call.method.to_string(),
            path: call.log_path(),
            attempts,
            reason,
        }
    }

    fn classify(
        &self,
        call: &Call,
        status: StatusCode,
        headers: HeaderMap,
        body: Body,
        (generation, attempt): (u64, u32),
    ) -> Result<Outcome, ClientError> {
        if status.is_success() {
            return Ok(Outcome::Done(Answer {
                status,
                headers,
                body,
            }));
        }
        if status == StatusCode::UNAUTHORIZED {
            return Ok(Outcome::Unauthorized(generation));
        }
        if status.is_server_error() {
            if !call.idempotent() {
                return Err(self.unavailable(call, attempt + 1, format!("{status}")));
            }
            return Ok(Outcome::Retry {
                reason: status.to_string(),
                after: retry_after(&headers),
            });
        }
        let mut snippet = String::from_utf8_lossy(&body).into_owned();
        snippet.truncate(snippet.floor_char_boundary(512));
        Err(ClientError::Status {
            status,
            method: call.method.to_string(),
            path: call.log_path(),
            body: snippet,
        })
    }

    async fn attempt(
        &self,
        call: &Call,
        token: &str,
    ) -> Result<(StatusCode, HeaderMap, Body), reqwest::Error> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .request(call.method.clone(), self.url(&call.target))
            .bearer_auth(token);
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if !call.form.is_empty() {
            req = req.form(&call.form);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok((status, headers, body))
    }
}
