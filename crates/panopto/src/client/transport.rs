//! The HTTP transport: every request through the [`Pacer`] (one slot per attempt) and, for
//! REST, the [`TokenSource`]; retried with jittered exponential back-off on 5xx and timeouts,
//! after `Retry-After` on 429 and 503, renewed-and-retried once on 401. It owns *how* a request
//! reaches Panopto; typed calls live in `rest_calls` and `soap_calls`. Writes that may have
//! reached Panopto (a timeout, a 5xx) are **not** retried here: the caller re-reads the target
//! and decides, so nothing is done twice. Every wait is on the client's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng as _;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

use crate::client::clock::Clock;
use crate::client::error::ClientError;
use crate::client::pace::{Pacer, Priority};
use crate::client::secret::Secret;
use crate::client::token::TokenSource;

/// How SOAP calls authenticate (`AuthenticationInfo` in the envelope).
#[derive(Debug, Clone)]
pub enum SoapAuth {
    /// The service user's key and password (an internal Panopto user).
    Password { user_key: String, password: Secret },
    /// An identity-provider user: `AuthCode` from the provider's application key.
    AuthCode {
        user_key: String,
        application_key: Secret,
    },
    /// The REST access token as the password: accepted by the simulator only (its
    /// command-line tokens have no password).
    AccessToken { user_key: String },
}

/// How the client talks to one Panopto site.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://panopto.example.edu` (no trailing `/Panopto`).
    pub base_url: String,
    /// Per-attempt timeout (real time: it bounds a socket).
    pub timeout: Duration,
    /// Retries after the first attempt (5xx, timeouts, throttling).
    pub max_retries: u32,
    /// Back-off steps, in clock ms.
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    /// Longest `Retry-After` honoured, in clock ms.
    pub retry_after_max_ms: i64,
    pub soap_auth: SoapAuth,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, soap_auth: SoapAuth) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
            retry_after_max_ms: 300_000,
            soap_auth,
        }
    }

    /// The host name, for `AuthCode`.
    pub fn host(&self) -> &str {
        let rest = self.base_url.split("://").nth(1).unwrap_or(&self.base_url);
        rest.split(['/', ':']).next().unwrap_or(rest)
    }
}

/// Transport counters (for metrics and tests).
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    unauthorized: AtomicU64,
    server_errors: AtomicU64,
}

/// A snapshot of the transport counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportCounts {
    pub requests: u64,
    pub retries: u64,
    /// 429s: each a bug signal (the pacer's caps are wrong for this site).
    pub throttled: u64,
    pub unauthorized: u64,
    pub server_errors: u64,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Json(Vec<u8>),
    /// A SOAP envelope and its `SOAPAction`.
    Soap {
        action: String,
        envelope: String,
    },
}

/// One request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// A path under the base URL (`/Panopto/api/v1/...`).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Body,
    pub priority: Priority,
    /// Safe to send twice (reads; PUT and DELETE of a whole resource).
    pub idempotent: bool,
}

impl Request {
    pub fn get(path: impl Into<String>, priority: Priority) -> Request {
        Request {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: Body::Empty,
            priority,
            idempotent: true,
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Request {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    /// What to name the request in logs and errors: the method and path, or the SOAP
    /// operation; never the query string.
    pub fn what(&self) -> String {
        match &self.body {
            Body::Soap { action, .. } => {
                format!("SOAP {}", action.rsplit('/').next().unwrap_or(action))
            }
            _ => format!("{} {}", self.method, self.path),
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// The Panopto client. Cheap to clone; clones share the connection pool, the token, the pacer
/// and the counters.
#[derive(Debug, Clone)]
pub struct PanoptoClient {
    http: reqwest::Client,
    cfg: Arc<ClientConfig>,
    tokens: TokenSource,
    pacer: Arc<Pacer>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
}

/// A `reqwest::Client` with coursewire's user agent and the ring TLS provider.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    // Another crate may have installed the provider already; either way one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("coursewire-panopto/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ClientError::Config(e.to_string()))
}

/// `Retry-After` in clock ms: delta-seconds (Panopto's and the simulator's form) or an
/// HTTP-date. A date is read against the answer's own `Date` header (the server's clock on
/// both sides, so a skewed or simulated local clock does not matter), else the wall clock.
fn retry_after_ms(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1000.0) as i64);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or_else(std::time::SystemTime::now);
    let wait = at.duration_since(now).unwrap_or_default();
    Some(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

enum Outcome {
    Done(Answer),
    Retry { reason: String, after: Option<i64> },
    Throttled { after: Option<i64> },
    Unauthorized(u64),
}

impl PanoptoClient {
    pub fn new(
        cfg: ClientConfig,
        tokens: TokenSource,
        pacer: Arc<Pacer>,
        clock: Arc<dyn Clock>,
    ) -> Result<PanoptoClient, ClientError> {
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "Panopto base URL must be http(s): {}",
                cfg.base_url
            )));
        }
        Ok(PanoptoClient {
            http: http_client(cfg.timeout)?,
            cfg: Arc::new(cfg),
            tokens,
            pacer,
            clock,
            stats: Arc::new(Stats::default()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn counts(&self) -> TransportCounts {
        let s = &self.stats;
        TransportCounts {
            requests: s.requests.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            unauthorized: s.unauthorized.load(Ordering::Relaxed),
            server_errors: s.server_errors.load(Ordering::Relaxed),
        }
    }

    fn backoff_ms(&self, attempt: u32) -> i64 {
        let exp = self
            .cfg
            .backoff_base_ms
            .saturating_mul(1 << attempt.min(16))
            .min(self.cfg.backoff_max_ms);
        // "Equal jitter": at least half the step, so retries never bunch at zero.
        let half = exp / 2;
        half + (half as f64 * rand::rng().random::<f64>()) as i64
    }

    /// Send `req`, retrying as the module doc says.
    pub async fn execute(&self, req: &Request) -> Result<Answer, ClientError> {
        let what = req.what();
        let soap = matches!(req.body, Body::Soap { .. });
        let mut renewed = false;
        let mut attempt: u32 = 0;
        loop {
            // SOAP authenticates in the envelope (made by the caller); REST with a bearer.
            let token = if soap {
                None
            } else {
                Some(self.tokens.access().await?)
            };
            self.pacer
                .acquire(req.priority)
                .await
                .map_err(ClientError::Budget)?;
            let sent = self.attempt(req, token.as_ref().map(|t| &t.secret)).await;
            let outcome = match sent {
                Ok((status, headers, body)) => self.classify(
                    req,
                    status,
                    &headers,
                    body,
                    token.as_ref().map_or(0, |t| t.generation),
                    attempt,
                )?,
                Err(e) => {
                    // Connection refused before sending is safe to retry for any request;
                    // a timeout on a write may have been applied.
                    if !req.idempotent && !e.is_connect() {
                        return Err(ClientError::Unavailable {
                            what,
                            attempts: attempt + 1,
                            reason: e.without_url().to_string(),
                        });
                    }
                    Outcome::Retry {
                        reason: e.without_url().to_string(),
                        after: None,
                    }
                }
            };
            let after = match outcome {
                Outcome::Done(a) => return Ok(a),
                Outcome::Unauthorized(generation) => {
                    self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                    if renewed {
                        return Err(ClientError::Unauthorized(format!(
                            "Panopto refused a fresh token for {what}"
                        )));
                    }
                    renewed = true;
                    self.tokens.on_unauthorized(generation).await?;
                    continue;
                }
                Outcome::Throttled { after } => {
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        what = %what, attempt,
                        "Panopto throttled a request: the pacer let too much through (bug signal)"
                    );
                    if attempt >= self.cfg.max_retries {
                        return Err(ClientError::Throttled {
                            what,
                            attempts: attempt + 1,
                        });
                    }
                    after
                }
                Outcome::Retry { reason, after } => {
                    if attempt >= self.cfg.max_retries {
                        return Err(ClientError::Unavailable {
                            what,
                            attempts: attempt + 1,
                            reason,
                        });
                    }
                    tracing::info!(what = %what, attempt, %reason, "retrying Panopto request");
                    after
                }
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let wait = match after {
                Some(a) => a
                    .min(self.cfg.retry_after_max_ms)
                    .max(self.backoff_ms(attempt) / 4),
                None => self.backoff_ms(attempt),
            };
            self.clock.sleep_until(self.clock.now_ms() + wait).await;
            attempt += 1;
        }
    }

    fn classify(
        &self,
        req: &Request,
        status: StatusCode,
        headers: &HeaderMap,
        body: Vec<u8>,
        generation: u64,
        attempt: u32,
    ) -> Result<Outcome, ClientError> {
        let what = req.what();
        if status.is_success() {
            return Ok(Outcome::Done(Answer { status, body }));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Ok(Outcome::Throttled {
                after: retry_after_ms(headers),
            });
        }
        if status == StatusCode::UNAUTHORIZED && !matches!(req.body, Body::Soap { .. }) {
            return Ok(Outcome::Unauthorized(generation));
        }
        if status.is_server_error() {
            // WCF answers a refused operation with a SOAP fault and 500: that is an answer,
            // not an outage, and is not retried.
            if let Body::Soap { .. } = req.body
                && let Ok(text) = std::str::from_utf8(&body)
                && let Err(crate::soap::SoapError::Fault { code, message }) =
                    crate::soap::decode_result(text, "")
            {
                return Err(ClientError::Fault {
                    what,
                    code,
                    message,
                });
            }
            self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
            if !req.idempotent {
                return Err(ClientError::Unavailable {
                    what,
                    attempts: attempt + 1,
                    reason: status.to_string(),
                });
            }
            return Ok(Outcome::Retry {
                reason: status.to_string(),
                after: retry_after_ms(headers),
            });
        }
        let mut snippet = String::from_utf8_lossy(&body).into_owned();
        snippet.truncate(snippet.floor_char_boundary(512));
        Err(ClientError::Status {
            status,
            what,
            body: snippet,
        })
    }

    async fn attempt(
        &self,
        req: &Request,
        token: Option<&Secret>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), reqwest::Error> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{}", self.cfg.base_url, req.path);
        let mut r = self.http.request(req.method.clone(), url);
        if !req.query.is_empty() {
            r = r.query(&req.query);
        }
        r = match &req.body {
            Body::Empty => r,
            Body::Json(bytes) => r
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Soap { action, envelope } => r
                .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                .header("SOAPAction", format!("\"{action}\""))
                .body(envelope.clone()),
        };
        if let Some(t) = token {
            r = r.bearer_auth(t.expose());
        }
        let resp = r.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok((status, headers, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date_against_the_answers_date() {
        assert_eq!(
            retry_after_ms(&headers(&[("retry-after", "2")])),
            Some(2_000)
        );
        assert_eq!(
            retry_after_ms(&headers(&[("retry-after", "0.5")])),
            Some(500)
        );
        let dated = headers(&[
            ("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT"),
            ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ]);
        assert_eq!(retry_after_ms(&dated), Some(30_000));
        // A date already past: retry now. Nonsense: no hint.
        let past = headers(&[
            ("retry-after", "Wed, 21 Oct 2026 07:27:00 GMT"),
            ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ]);
        assert_eq!(retry_after_ms(&past), Some(0));
        assert_eq!(retry_after_ms(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after_ms(&headers(&[("retry-after", "-3")])), None);
    }
}
